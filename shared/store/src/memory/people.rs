//! Operators, approval policies, day usage, known beneficiaries and sessions in memory.

use cashout_core::auth::{OperatorName, OperatorRecord, SessionRecord};
use cashout_core::ids::MerchantId;
use cashout_core::money::Currency;
use cashout_core::ports::{DayUsageCount, PeopleStore, StoreError};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use time::{Date, OffsetDateTime};

use super::MemoryStore;
use crate::people::{check_fingerprint, operator_body, policy_body, session_body};

/// Whether a versioned write from `expected` may go ahead over what is `stored`.
fn at_version(stored: Option<u64>, expected: u64) -> Result<(), StoreError> {
    if stored == (expected > 0).then_some(expected) {
        Ok(())
    } else {
        Err(StoreError::Conflict { expected })
    }
}

impl PeopleStore for MemoryStore {
    async fn put_operator(&self, record: &OperatorRecord, expected_version: u64) -> Result<(), StoreError> {
        // The durable stores' checks; the JSON itself is not kept here.
        let _body = operator_body(record, expected_version)?;
        let mut state = self.state();
        at_version(state.operators.get(&record.name).map(|o| o.version), expected_version)?;
        state.operators.insert(record.name.clone(), record.clone());
        Ok(())
    }

    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        Ok(self.state().operators.get(name).cloned())
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        Ok(self.state().operators.values().cloned().collect())
    }

    async fn put_policy(&self, policy: &ApprovalPolicy, expected_version: u64) -> Result<(), StoreError> {
        let _body = policy_body(policy, expected_version)?;
        let key = policy.scope.key();
        let mut state = self.state();
        at_version(state.policies.get(&key).map(|p| p.version), expected_version)?;
        state.policies.insert(key, policy.clone());
        Ok(())
    }

    async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ApprovalPolicy>, StoreError> {
        Ok(self.state().policies.get(&scope.key()).cloned())
    }

    async fn list_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        Ok(self.state().policies.values().cloned().collect())
    }

    async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool, StoreError> {
        Ok(self.state().policies.remove(&scope.key()).is_some())
    }

    async fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: Date,
        currency: Currency,
        amount_minor: i64,
    ) -> Result<DayUsageCount, StoreError> {
        let mut state = self.state();
        let (count, amounts) = state.day_usage.entry((merchant.clone(), day)).or_default();
        let amount = amounts.entry(currency).or_insert(0);
        let new_amount = amount
            .checked_add(amount_minor)
            .ok_or_else(|| StoreError::invalid("the day's amount overflows"))?;
        *amount = new_amount;
        *count += 1;
        Ok(DayUsageCount {
            count: *count,
            amount_minor: new_amount,
        })
    }

    async fn beneficiary_known(&self, merchant: &MerchantId, fingerprint: &str) -> Result<bool, StoreError> {
        check_fingerprint(fingerprint)?;
        Ok(self
            .state()
            .beneficiaries
            .contains(&(merchant.clone(), fingerprint.to_owned())))
    }

    async fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_fingerprint(fingerprint)?;
        self.state()
            .beneficiaries
            .insert((merchant.clone(), fingerprint.to_owned()));
        Ok(())
    }

    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let _body = session_body(session)?;
        let mut state = self.state();
        if state.sessions.contains_key(&session.token_hash) {
            return Err(StoreError::Conflict { expected: 0 });
        }
        state.sessions.insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.state().sessions.get(token_hash).cloned())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.state().sessions.remove(token_hash).is_some())
    }
}
