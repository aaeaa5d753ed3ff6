//! Approval policies: the stored ones (admins manage them over the API), the configured
//! fallback, and what the review asks of the store before it applies one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cashout_core::auth::Principal;
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::MerchantId;
use cashout_core::ports::{Store, StoreError};
use cashout_core::review::{ApprovalPolicy, DayUsage, PolicyRule, PolicyScope, ReviewFacts};
use cashout_core::status::CashoutStatus;
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::App;
use crate::access::{require_admin, require_operator};
use crate::error::AppError;

/// Every stored policy by scope.
type Policies = Arc<HashMap<PolicyScope, ApprovalPolicy>>;

/// The stored policies a process read last, and when.
#[derive(Debug, Default)]
pub struct PolicyCache {
    read: Mutex<Option<(Policies, OffsetDateTime)>>,
}

impl PolicyCache {
    fn get(&self) -> Option<(Policies, OffsetDateTime)> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, value: Option<(Policies, OffsetDateTime)>) {
        *self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

/// The body of `PUT /v1/approval-policies/{scope}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// The rules (none: every request is approved at once).
    pub rules: Vec<PolicyRule>,
    /// Replace only this version (absent: whatever is stored).
    #[serde(default)]
    pub expected_version: Option<u64>,
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Every stored policy, read again once older than the routing rules' TTL.
    async fn stored_policies(&self) -> Result<Policies, AppError> {
        let now = self.now();
        if let Some((policies, at)) = self.policies.get()
            && crate::schedule::later(at, self.config.routing_rules_ttl) > now
        {
            return Ok(policies);
        }
        let all = self.store.list_policies().await?;
        let map = Arc::new(all.into_iter().map(|p| (p.scope.clone(), p)).collect::<HashMap<_, _>>());
        self.policies.set(Some((map.clone(), now)));
        Ok(map)
    }

    /// The policy that applies to a merchant: its stored one, else its configured one, else the
    /// stored default, else the configured default (`CASHOUT_AUTO_APPROVE_LIMIT`).
    pub(crate) async fn policy_for(&self, merchant: &MerchantId) -> Result<ApprovalPolicy, AppError> {
        let stored = self.stored_policies().await?;
        let policy = stored
            .get(&PolicyScope::Merchant(merchant.clone()))
            .or_else(|| self.config.merchant_review.get(merchant))
            .or_else(|| stored.get(&PolicyScope::Default))
            .unwrap_or(&self.config.review);
        Ok(policy.clone())
    }

    /// What `policy` needs to know of the store about `request`. The day's usage is counted
    /// here, once per review: a request reviewed again after a crash is counted twice, which
    /// can only send later requests to review, never approve one that should not be.
    pub(crate) async fn review_facts(
        &self,
        policy: &ApprovalPolicy,
        request: &CashoutRequest,
    ) -> Result<ReviewFacts, AppError> {
        let mut facts = ReviewFacts::default();
        if policy.needs_usage() {
            let amount = request.requested_amount();
            let minor = i64::try_from(amount.to_minor_units())
                .map_err(|_| AppError::Internal("an amount beyond i64 minor units".into()))?;
            let day = request.request_date().date();
            let usage = self
                .store
                .add_day_usage(request.merchant_id(), day, request.currency(), minor)
                .await?;
            facts.usage = Some(DayUsage {
                count: usage.count,
                amount: Decimal::from(usage.amount_minor) / Decimal::from(10u64.pow(request.currency().minor_units())),
            });
        }
        if policy.needs_beneficiary() {
            facts.beneficiary_known = Some(
                self.store
                    .beneficiary_known(request.merchant_id(), &request.beneficiary_fingerprint())
                    .await?,
            );
        }
        Ok(facts)
    }

    /// Remembers a paid request's beneficiary account (for the `new_beneficiary` rule). Missed
    /// on a crash: the account's next payout goes to review, the safe side.
    pub(crate) async fn remember_paid_beneficiary(&self, request: &CashoutRequest) {
        // Once, with the change that made it PAID: the reversal watch's later checks of a paid
        // request write nothing here.
        if request.status() != CashoutStatus::Paid || request.checks_since_change() > 0 {
            return;
        }
        if let Err(e) = self
            .store
            .remember_beneficiary(request.merchant_id(), &request.beneficiary_fingerprint(), self.now())
            .await
        {
            tracing::warn!(cashout_request_id = %request.id(), error = %e, "the paid beneficiary was not remembered; its next payout goes to review");
        }
    }

    /// Operator: the stored policies, and the configured default in effect where none is stored.
    pub async fn list_policies(&self, principal: &Principal) -> Result<Vec<ApprovalPolicy>, AppError> {
        require_operator(principal)?;
        let mut all = self.store.list_policies().await?;
        if !all.iter().any(|p| p.scope == PolicyScope::Default) {
            all.push(self.config.review.clone());
        }
        all.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(all)
    }

    /// Operator: one policy (`default` answers the configured one when none is stored; a
    /// merchant without one of its own is not found: the default applies to it).
    pub async fn get_policy(&self, principal: &Principal, scope: &PolicyScope) -> Result<ApprovalPolicy, AppError> {
        require_operator(principal)?;
        match self.store.get_policy(scope).await? {
            Some(p) => Ok(p),
            None if *scope == PolicyScope::Default => Ok(self.config.review.clone()),
            None => Err(AppError::NotFound),
        }
    }

    /// Admin: creates or replaces a policy. Applies to requests reviewed from then on (within
    /// the cache's few seconds in other processes); requests already under review keep theirs.
    pub async fn put_policy(
        &self,
        principal: &Principal,
        scope: PolicyScope,
        input: PolicyInput,
    ) -> Result<ApprovalPolicy, AppError> {
        let admin = require_admin(principal)?;
        let stored = self.store.get_policy(&scope).await?;
        let current = stored.as_ref().map_or(0, |p| p.version);
        if let Some(expected) = input.expected_version
            && expected != current
        {
            return Err(AppError::Conflict(format!(
                "the policy is at version {current}, not {expected}: read it again"
            )));
        }
        let policy = ApprovalPolicy {
            scope,
            rules: input.rules,
            version: current + 1,
            updated_at: self.now(),
            updated_by: Some(principal.actor()),
        };
        policy.validate().map_err(|e| AppError::InvalidBody(e.0))?;
        match self.store.put_policy(&policy, current).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AppError::Conflict("the policy changed meanwhile: read it again".into()));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(operator = %admin, scope = %policy.scope.key(), version = policy.version, "approval policy saved");
        self.policies.set(None);
        Ok(policy)
    }

    /// Admin: deletes a stored policy (the merchant falls back to the default; the default to
    /// the configured one).
    pub async fn delete_policy(&self, principal: &Principal, scope: &PolicyScope) -> Result<(), AppError> {
        let admin = require_admin(principal)?;
        if !self.store.delete_policy(scope).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(operator = %admin, scope = %scope.key(), "approval policy deleted");
        self.policies.set(None);
        Ok(())
    }
}
