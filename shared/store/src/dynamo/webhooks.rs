//! Webhook endpoints and delivery attempts on DynamoDB.
//!
//! Beside a merchant's endpoints (`M#{merchant}`/`EP#{id}`) an item `M#{merchant}`/`COUNT#EP`
//! counts them: a creation is a transaction of the endpoint (`attribute_not_exists`) and the
//! count (`+1` while under the cap), a deletion one of the endpoint and `-1`, so concurrent
//! creations cannot pass the cap. A merchant from before the count gets it on first need, from a
//! strongly consistent query of its endpoints ([`DynamoStore::endpoint_count`]). A replacement is
//! one put conditional on the endpoint's version (`v`; absent on old items: version 0).

use std::collections::HashMap;

use cashout_core::ids::{EndpointId, EventId, MerchantId};
use cashout_core::ports::{Cursor, Page, StoreError, WebhookStore};
use cashout_core::webhook::{DeliveryAttempt, EndpointCreated, WebhookEndpoint};

use super::DynamoStore;
use super::items::*;
use super::table::{Cancelled, Written, cancelled_error, delete, put, update, values};
use crate::codec::{AttemptPosition, from_json, page_size};
use crate::endpoints::{endpoint_body, read_endpoint};

/// How many times a creation or deletion is tried while the count moves under it (the count
/// is initialised at most once; the other tries are for deletions freeing a place meanwhile).
const COUNT_ATTEMPTS: usize = 4;

fn count_name() -> HashMap<String, String> {
    [("#n".to_owned(), ENDPOINT_COUNT.to_owned())].into()
}

fn still_racing(what: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!("{what}: the endpoint count kept changing after {COUNT_ATTEMPTS} attempts"),
        source: None,
    }
}

impl WebhookStore for DynamoStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint, max: usize) -> Result<EndpointCreated, StoreError> {
        let what = "create an endpoint";
        let item = endpoint_item(endpoint, endpoint_body(endpoint, 0, self.sealer.as_ref()).await?)?;
        let merchant = &endpoint.merchant_id;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        for _ in 0..COUNT_ATTEMPTS {
            let table = &*self.table;
            let items = vec![
                put(table, item.clone(), "attribute_not_exists(pk)", None)?,
                update(
                    table,
                    endpoint_count_key(merchant),
                    "ADD #n :one",
                    Some("#n < :max"),
                    count_name(),
                    values([(":one", n(1)), (":max", n(limit))]),
                )?,
            ];
            match self.transact(what, items).await {
                Ok(()) => return Ok(EndpointCreated::Created),
                Err(Cancelled::Condition { index: 0, .. }) => return Err(StoreError::Conflict { expected: 0 }),
                Err(Cancelled::Condition { index: 1, item }) => {
                    let stored = match item.as_ref().and_then(|i| get_n::<i64>(i, ENDPOINT_COUNT).ok()) {
                        Some(stored) => stored,
                        None => self.endpoint_count(merchant).await?,
                    };
                    if stored >= limit {
                        return Ok(EndpointCreated::LimitReached);
                    }
                    // The count was missing (now initialised) or a deletion freed a place: again.
                }
                Err(other) => return Err(cancelled_error(what, other)),
            }
        }
        Err(still_racing(what))
    }

    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint, expected_version: u64) -> Result<(), StoreError> {
        let item = endpoint_item(
            endpoint,
            endpoint_body(endpoint, expected_version, self.sealer.as_ref()).await?,
        )?;
        // Items written before versions have no `v`: they are at version 0.
        let condition = if expected_version == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(v) OR v = :expected)"
        } else {
            "v = :expected"
        };
        let expected = Some(values([(":expected", n(expected_version))]));
        match self.put_if("replace an endpoint", item, condition, expected).await? {
            Written::Yes => Ok(()),
            Written::Refused(None) => Err(StoreError::NotFound),
            Written::Refused(Some(_)) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
        }
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        match self.get_item("read an endpoint", endpoint_key(merchant_id, id)).await? {
            Some(item) => Ok(Some(read_endpoint(get_s(&item, BODY)?, self.sealer.as_ref()).await?)),
            None => Ok(None),
        }
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let items = self
            .query_partition("list endpoints", endpoint_pk(merchant_id), ENDPOINT_SK_PREFIX)
            .await?;
        let mut endpoints = Vec::with_capacity(items.len());
        for item in &items {
            endpoints.push(read_endpoint(get_s(item, BODY)?, self.sealer.as_ref()).await?);
        }
        endpoints.sort_by_key(|e| (e.created_at, e.id));
        Ok(endpoints)
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        let what = "delete an endpoint";
        for _ in 0..COUNT_ATTEMPTS {
            let table = &*self.table;
            let items = vec![
                delete(table, endpoint_key(merchant_id, id), "attribute_exists(pk)")?,
                update(
                    table,
                    endpoint_count_key(merchant_id),
                    "ADD #n :minus_one",
                    Some("attribute_exists(#n)"),
                    count_name(),
                    values([(":minus_one", n(-1))]),
                )?,
            ];
            match self.transact(what, items).await {
                Ok(()) => return Ok(true),
                Err(Cancelled::Condition { index: 0, .. }) => return Ok(false),
                Err(Cancelled::Condition { index: 1, .. }) => {
                    // A merchant whose endpoints predate the count: count them, then again.
                    self.endpoint_count(merchant_id).await?;
                }
                Err(other) => return Err(cancelled_error(what, other)),
            }
        }
        Err(still_racing(what))
    }

    async fn claim_attempt(
        &self,
        attempt: &DeliveryAttempt,
        stale_before: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.claim(attempt, stale_before).await
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.put_plain("record a delivery attempt", attempt_item(attempt)?)
            .await
    }

    async fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(AttemptPosition::from_cursor).transpose()?;
        let mut keys = self
            .query_index(
                "list delivery attempts",
                BY_OWNER,
                (GSI1PK, endpoint_attempts_pk(merchant_id, endpoint_id)),
                (GSI1SK, after.map(|p| s(p.sort_key())), "<"),
                false,
                limit + 1,
            )
            .await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let keys = keys
            .iter()
            .map(|k| Ok(key(get_s(k, PK)?.to_owned(), get_s(k, SK)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let items = self
            .batch_get("read listed attempts", keys)
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(attempt_position(last)?.cursor()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let mut attempts = self
            .query_partition("list an event's attempts", attempts_pk(event_id), "EP#")
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        attempts.sort_by_key(|a| (a.attempted_at, a.endpoint_id, a.attempt));
        Ok(attempts)
    }
}

impl DynamoStore {
    /// The merchant's endpoint count, initialised if missing: endpoints stored before the count
    /// existed are counted by a strongly consistent query, and the count is written only if
    /// still absent. While it is absent no creation or deletion can commit (theirs are
    /// conditional on it), so the query counted what the count must hold.
    async fn endpoint_count(&self, merchant: &MerchantId) -> Result<i64, StoreError> {
        if let Some(item) = self
            .get_item("read an endpoint count", endpoint_count_key(merchant))
            .await?
        {
            return get_n(&item, ENDPOINT_COUNT);
        }
        let stored = self
            .query_partition("count endpoints", endpoint_pk(merchant), ENDPOINT_SK_PREFIX)
            .await?
            .len();
        let stored = i64::try_from(stored).unwrap_or(i64::MAX);
        let written = self
            .update_if(
                "initialise an endpoint count",
                self.client
                    .update_item()
                    .set_key(Some(endpoint_count_key(merchant)))
                    .update_expression("SET #n = :n")
                    .condition_expression("attribute_not_exists(#n)")
                    .set_expression_attribute_names(Some(count_name()))
                    .set_expression_attribute_values(Some(values([(":n", n(stored))]))),
            )
            .await?;
        if written {
            tracing::info!(%merchant, stored, "endpoint count initialised from the stored endpoints");
            return Ok(stored);
        }
        // Initialised by someone else meanwhile: theirs counts.
        match self
            .get_item("read an endpoint count", endpoint_count_key(merchant))
            .await?
        {
            Some(item) => get_n(&item, ENDPOINT_COUNT),
            None => Err(StoreError::Corrupt {
                message: "an endpoint count refused as present is absent".into(),
                source: None,
            }),
        }
    }
}
