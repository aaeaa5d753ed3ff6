//! Routing rules (operators manage them over the API) and the choice of a request's providers
//! at approval.

use std::sync::{Arc, Mutex};

use cashout_core::auth::Principal;
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::RoutingRuleId;
use cashout_core::ports::{Store, StoreError};
use cashout_core::routing::{RoutingChoice, RoutingRule, RoutingRuleSpec};
use time::OffsetDateTime;

use crate::App;
use crate::access::{require_admin, require_operator};
use crate::error::AppError;

/// The routing rules a process read last, and when.
#[derive(Debug, Default)]
pub struct RulesCache {
    read: Mutex<Option<(Arc<Vec<RoutingRule>>, OffsetDateTime)>>,
}

impl RulesCache {
    fn get(&self) -> Option<(Arc<Vec<RoutingRule>>, OffsetDateTime)> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, value: Option<(Arc<Vec<RoutingRule>>, OffsetDateTime)>) {
        *self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Every routing rule, read again once older than `routing_rules_ttl`.
    pub(crate) async fn routing_rules(&self) -> Result<Arc<Vec<RoutingRule>>, AppError> {
        let now = self.now();
        if let Some((rules, at)) = self.rules.get()
            && crate::schedule::later(at, self.config.routing_rules_ttl) > now
        {
            return Ok(rules);
        }
        let rules = Arc::new(self.store.list_routing_rules().await?);
        self.rules.set(Some((rules.clone(), now)));
        Ok(rules)
    }

    /// The providers `request` goes to if it is approved now (`None`: the one chosen at
    /// creation only).
    pub(crate) fn choose_routes(&self, rules: &[RoutingRule], request: &CashoutRequest) -> Option<RoutingChoice> {
        RoutingChoice::choose(&self.config.coverage, rules, request)
    }

    /// Operator: every routing rule, in the order they are tried (each merchant's own, then the
    /// default ones; by priority, then age).
    pub async fn list_routing_rules(&self, principal: &Principal) -> Result<Vec<RoutingRule>, AppError> {
        require_operator(principal)?;
        let mut rules = self.store.list_routing_rules().await?;
        rules.sort_by(|a, b| {
            (
                a.spec.merchant_id.is_none(),
                &a.spec.merchant_id,
                a.spec.priority,
                a.created_at,
                a.id,
            )
                .cmp(&(
                    b.spec.merchant_id.is_none(),
                    &b.spec.merchant_id,
                    b.spec.priority,
                    b.created_at,
                    b.id,
                ))
        });
        Ok(rules)
    }

    /// Operator: one routing rule.
    pub async fn get_routing_rule(&self, principal: &Principal, id: RoutingRuleId) -> Result<RoutingRule, AppError> {
        require_operator(principal)?;
        self.store.get_routing_rule(id).await?.ok_or(AppError::NotFound)
    }

    /// Operator: a new routing rule; it applies to approvals from now on.
    #[tracing::instrument(skip(self, principal, spec))]
    pub async fn create_routing_rule(
        &self,
        principal: &Principal,
        spec: RoutingRuleSpec,
    ) -> Result<RoutingRule, AppError> {
        require_admin(principal)?;
        spec.check().map_err(AppError::Validation)?;
        let now = self.now();
        let rule = RoutingRule {
            id: RoutingRuleId::from_uuid(self.ids.uuid_v7(now)),
            spec,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store.put_routing_rule(&rule, 0).await?;
        self.rules.set(None);
        tracing::info!(routing_rule_id = %rule.id, "routing rule created");
        Ok(rule)
    }

    /// Operator: replaces a rule's spec. With `expected_version`, only if the rule is still at
    /// that version (409 `version_conflict` otherwise).
    #[tracing::instrument(skip(self, principal, spec))]
    pub async fn replace_routing_rule(
        &self,
        principal: &Principal,
        id: RoutingRuleId,
        spec: RoutingRuleSpec,
        expected_version: Option<u64>,
    ) -> Result<RoutingRule, AppError> {
        require_admin(principal)?;
        spec.check().map_err(AppError::Validation)?;
        let stored = self.store.get_routing_rule(id).await?.ok_or(AppError::NotFound)?;
        if let Some(expected) = expected_version.filter(|v| *v != stored.version) {
            return Err(AppError::RuleChanged {
                expected,
                actual: stored.version,
            });
        }
        let rule = RoutingRule {
            spec,
            updated_at: self.now(),
            version: stored.version.saturating_add(1),
            ..stored
        };
        match self.store.put_routing_rule(&rule, stored.version).await {
            Ok(()) => {}
            Err(StoreError::Conflict { expected }) => {
                return Err(AppError::RuleChanged {
                    expected,
                    actual: expected.saturating_add(1),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.rules.set(None);
        tracing::info!(routing_rule_id = %rule.id, version = rule.version, "routing rule replaced");
        Ok(rule)
    }

    /// Operator: deletes a rule.
    #[tracing::instrument(skip(self, principal))]
    pub async fn delete_routing_rule(&self, principal: &Principal, id: RoutingRuleId) -> Result<(), AppError> {
        require_admin(principal)?;
        if !self.store.delete_routing_rule(id).await? {
            return Err(AppError::NotFound);
        }
        self.rules.set(None);
        tracing::info!(routing_rule_id = %id, "routing rule deleted");
        Ok(())
    }

    /// Operator: every provider's health and circuit.
    pub async fn providers_health(
        &self,
        principal: &Principal,
    ) -> Result<Vec<cashout_core::health::ProviderHealth>, AppError> {
        require_operator(principal)?;
        Ok(self.all_health().await?)
    }
}
