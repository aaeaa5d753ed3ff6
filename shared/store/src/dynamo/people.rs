//! Operators, approval policies, day usage, known beneficiaries and sessions on DynamoDB.
//!
//! Operators are one partition (`OPERATORS`, sort key `OP#{name}`) and policies another
//! (`POLICIES`, `POL#{scope}`): tens of items each, listed by one `Query`, each written by a put
//! conditional on its version (`attribute_not_exists` for the first). A merchant's day usage is
//! one item `USAGE#{merchant}`/`{yyyy-mm-dd}` counted by one `UpdateItem` (`ADD` to the count and
//! to the currency's `amt_<CUR>`, `UPDATED_NEW` answers the totals: DynamoDB applies updates of
//! one item one at a time, so no two calls read the same count), deleted by TTL a few days after
//! its day. Beneficiaries paid are `BEN#{merchant}`/`{fingerprint}`; sessions
//! `SESSION#{hash}`/`SESSION`, put on absence, deleted by TTL a day after they expire.

use aws_sdk_dynamodb::types::ReturnValue;
use cashout_core::auth::{OperatorName, OperatorRecord, SessionRecord};
use cashout_core::ids::MerchantId;
use cashout_core::money::Currency;
use cashout_core::ports::{DayUsageCount, PeopleStore, StoreError};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use time::{Date, OffsetDateTime};

use super::items::*;
use super::table::{TOTAL, Written, values};
use super::{DynamoStore, sdk_error};
use crate::codec::{from_json, to_epoch_seconds_ceil, to_ns};
use crate::people::{
    DAY_USAGE_KEPT_DAYS, SESSION_KEPT_AFTER_EXPIRY, check_fingerprint, operator_body, policy_body, session_body,
};

/// The most operators or policies a listing reads (a deployment has tens).
const MAX_LISTED: usize = 10_000;

impl PeopleStore for DynamoStore {
    async fn put_operator(&self, record: &OperatorRecord, expected_version: u64) -> Result<(), StoreError> {
        let item = versioned_item(
            operator_key(&record.name),
            record.version,
            operator_body(record, expected_version)?,
        );
        self.put_versioned("write an operator", item, expected_version).await
    }

    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        self.get_item("read an operator", operator_key(name))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "operator"))
            .transpose()
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.query_partition_up_to(
            "list operators",
            OPERATORS_PK.to_owned(),
            OPERATOR_SK_PREFIX,
            MAX_LISTED,
        )
        .await?
        .iter()
        .map(|item| from_json(get_s(item, BODY)?, "operator"))
        .collect()
    }

    async fn put_policy(&self, policy: &ApprovalPolicy, expected_version: u64) -> Result<(), StoreError> {
        let item = versioned_item(
            policy_key(&policy.scope),
            policy.version,
            policy_body(policy, expected_version)?,
        );
        self.put_versioned("write an approval policy", item, expected_version)
            .await
    }

    async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ApprovalPolicy>, StoreError> {
        self.get_item("read an approval policy", policy_key(scope))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "approval policy"))
            .transpose()
    }

    async fn list_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        self.query_partition_up_to(
            "list approval policies",
            POLICIES_PK.to_owned(),
            POLICY_SK_PREFIX,
            MAX_LISTED,
        )
        .await?
        .iter()
        .map(|item| from_json(get_s(item, BODY)?, "approval policy"))
        .collect()
    }

    async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(policy_key(scope)))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("delete an approval policy", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: Date,
        currency: Currency,
        amount_minor: i64,
    ) -> Result<DayUsageCount, StoreError> {
        let amount_attribute = usage_amount_attribute(currency);
        let expires = day.midnight().assume_utc() + time::Duration::days(DAY_USAGE_KEPT_DAYS + 1);
        // One update: its retry by the SDK after a lost answer could count the request twice,
        // which errs on the side of asking a person.
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(day_usage_key(merchant, day)))
            .update_expression("ADD #n :one, #amt :amount SET #ttl = :ttl")
            .expression_attribute_names("#n", USAGE_COUNT)
            .expression_attribute_names("#amt", &amount_attribute)
            .expression_attribute_names("#ttl", TTL)
            .set_expression_attribute_values(Some(values([
                (":one", n(1)),
                (":amount", n(amount_minor)),
                (":ttl", n(to_epoch_seconds_ceil(expires))),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("count a day's usage", e))?;
        self.meter.write(out.consumed_capacity());
        let totals = out.attributes.unwrap_or_default();
        Ok(DayUsageCount {
            count: get_n(&totals, USAGE_COUNT)?,
            amount_minor: get_n(&totals, &amount_attribute)?,
        })
    }

    async fn beneficiary_known(&self, merchant: &MerchantId, fingerprint: &str) -> Result<bool, StoreError> {
        check_fingerprint(fingerprint)?;
        Ok(self
            .get_item("read a known beneficiary", beneficiary_key(merchant, fingerprint))
            .await?
            .is_some())
    }

    async fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_fingerprint(fingerprint)?;
        // Idempotent: the first time recorded stays.
        let update = self
            .client
            .update_item()
            .set_key(Some(beneficiary_key(merchant, fingerprint)))
            .update_expression("SET #at = if_not_exists(#at, :at)")
            .expression_attribute_names("#at", "at")
            .set_expression_attribute_values(Some(values([(":at", n(to_ns(at)?))])));
        self.update_if("remember a beneficiary", update).await.map(drop)
    }

    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut item = session_key(&session.token_hash);
        item.insert(BODY.into(), s(session_body(session)?));
        item.insert(
            TTL.into(),
            n(to_epoch_seconds_ceil(session.expires_at + SESSION_KEPT_AFTER_EXPIRY)),
        );
        match self
            .put_if("write a session", item, "attribute_not_exists(pk)", None)
            .await?
        {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict { expected: 0 }),
        }
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        // TTL deletes lag by up to days; the caller judges expiry on `expires_at`.
        self.get_item("read a session", session_key(token_hash))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "session"))
            .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        // The old item comes back only to the delete that removed it: one winner among racers.
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(session_key(token_hash)))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("delete a session", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

impl DynamoStore {
    /// Puts a small versioned document on its version: absent for a first write, at
    /// `expected_version` otherwise; [`StoreError::Conflict`] if not.
    async fn put_versioned(&self, what: &str, item: Item, expected_version: u64) -> Result<(), StoreError> {
        let (condition, expected) = if expected_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("v = :expected", Some(values([(":expected", n(expected_version))])))
        };
        match self.put_if(what, item, condition, expected).await? {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
        }
    }
}
