//! Routing rules and provider health in memory.

use cashout_core::health::ProviderHealth;
use cashout_core::ids::RoutingRuleId;
use cashout_core::ports::{RoutingStore, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::routing::RoutingRule;
use cashout_core::routing::rules::MAX_RULES;

use super::MemoryStore;
use crate::routing::{health_body, rule_body, too_many_rules};

impl RoutingStore for MemoryStore {
    async fn list_routing_rules(&self) -> Result<Vec<RoutingRule>, StoreError> {
        Ok(self.state().rules.values().cloned().collect())
    }

    async fn get_routing_rule(&self, id: RoutingRuleId) -> Result<Option<RoutingRule>, StoreError> {
        Ok(self.state().rules.get(&id).cloned())
    }

    async fn put_routing_rule(&self, rule: &RoutingRule, expected_version: u64) -> Result<(), StoreError> {
        // The durable stores' checks (version, size); the JSON itself is not kept here.
        let _body = rule_body(rule, expected_version)?;
        let mut state = self.state();
        let stored = state.rules.get(&rule.id).map(|r| r.version);
        if stored != (expected_version > 0).then_some(expected_version) {
            return Err(StoreError::Conflict {
                expected: expected_version,
            });
        }
        if stored.is_none() && state.rules.len() >= MAX_RULES {
            return Err(too_many_rules());
        }
        state.rules.insert(rule.id, rule.clone());
        Ok(())
    }

    async fn delete_routing_rule(&self, id: RoutingRuleId) -> Result<bool, StoreError> {
        Ok(self.state().rules.remove(&id).is_some())
    }

    async fn get_provider_health(&self, provider: ProviderName) -> Result<Option<ProviderHealth>, StoreError> {
        Ok(self.state().health.get(&provider).cloned())
    }

    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        Ok(self.state().health.values().cloned().collect())
    }

    async fn put_provider_health(&self, health: &ProviderHealth, expected_version: u64) -> Result<(), StoreError> {
        let _body = health_body(health, expected_version)?;
        let mut state = self.state();
        let stored = state.health.get(&health.provider).map(|h| h.version);
        if stored != (expected_version > 0).then_some(expected_version) {
            return Err(StoreError::Conflict {
                expected: expected_version,
            });
        }
        state.health.insert(health.provider, health.clone());
        Ok(())
    }
}
