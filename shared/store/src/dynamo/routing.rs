//! Routing rules and provider health on DynamoDB.
//!
//! Rules are one partition (`RULES`, sort key `RR#{id}`), so that the list every approval reads
//! is one `Query`, read up to [`MAX_RULES`] + 1 items. Beside them an item `RULES`/`COUNT`
//! counts them: a creation is a transaction of the rule (`attribute_not_exists`) and the count
//! (`+1` while under [`MAX_RULES`]), a deletion one of the rule and `-1`, so that concurrent
//! creations cannot pass the limit. A replacement is one put conditional on the version. Each
//! provider's health is one item of partition `HEALTH`, written by a put conditional on its
//! version (`attribute_not_exists` for the first).

use cashout_core::health::ProviderHealth;
use cashout_core::ids::RoutingRuleId;
use cashout_core::ports::{RoutingStore, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::routing::RoutingRule;
use cashout_core::routing::rules::MAX_RULES;

use super::DynamoStore;
use super::items::*;
use super::table::{Cancelled, Written, cancelled_error, delete, put, update, values};
use crate::routing::{health_body, rule_body, too_many_rules};

impl RoutingStore for DynamoStore {
    async fn list_routing_rules(&self) -> Result<Vec<RoutingRule>, StoreError> {
        let items = self
            .query_partition_up_to("list routing rules", RULES_PK.to_owned(), RULE_SK_PREFIX, MAX_RULES)
            .await?;
        if items.len() > MAX_RULES {
            return Err(StoreError::Corrupt {
                message: format!("more than {MAX_RULES} routing rules are stored"),
                source: None,
            });
        }
        items.iter().map(rule_from_item).collect()
    }

    async fn get_routing_rule(&self, id: RoutingRuleId) -> Result<Option<RoutingRule>, StoreError> {
        self.get_item("read a routing rule", rule_key(id))
            .await?
            .map(|item| rule_from_item(&item))
            .transpose()
    }

    async fn put_routing_rule(&self, rule: &RoutingRule, expected_version: u64) -> Result<(), StoreError> {
        let item = rule_item(rule, rule_body(rule, expected_version)?);
        if expected_version == 0 {
            return self.create_rule(item).await;
        }
        let expected = Some(values([(":expected", n(expected_version))]));
        match self
            .put_if("replace a routing rule", item, "v = :expected", expected)
            .await?
        {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
        }
    }

    async fn delete_routing_rule(&self, id: RoutingRuleId) -> Result<bool, StoreError> {
        let table = &*self.table;
        let items = vec![
            delete(table, rule_key(id), "attribute_exists(pk)")?,
            update(
                table,
                rule_count_key(),
                "ADD #n :minus_one",
                None,
                [("#n".to_owned(), RULE_COUNT.to_owned())].into(),
                values([(":minus_one", n(-1))]),
            )?,
        ];
        match self.transact("delete a routing rule", items).await {
            Ok(()) => Ok(true),
            Err(Cancelled::Condition { index: 0, .. }) => Ok(false),
            Err(other) => Err(cancelled_error("delete a routing rule", other)),
        }
    }

    async fn get_provider_health(&self, provider: ProviderName) -> Result<Option<ProviderHealth>, StoreError> {
        self.get_item("read a provider's health", health_key(provider))
            .await?
            .map(|item| health_from_item(&item))
            .transpose()
    }

    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        let providers = ProviderName::ALL.len();
        let items = self
            .query_partition_up_to("list provider health", HEALTH_PK.to_owned(), "", providers)
            .await?;
        if items.len() > providers {
            return Err(StoreError::Corrupt {
                message: format!("more health items than the {providers} providers"),
                source: None,
            });
        }
        items.iter().map(health_from_item).collect()
    }

    async fn put_provider_health(&self, health: &ProviderHealth, expected_version: u64) -> Result<(), StoreError> {
        let item = health_item(health, health_body(health, expected_version)?);
        let (condition, expected) = if expected_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("v = :expected", Some(values([(":expected", n(expected_version))])))
        };
        match self
            .put_if("write a provider's health", item, condition, expected)
            .await?
        {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
        }
    }
}

impl DynamoStore {
    /// Writes a new rule's item and counts it, in one transaction: refused if the id is taken
    /// (a conflict) or if [`MAX_RULES`] rules are stored.
    async fn create_rule(&self, rule: Item) -> Result<(), StoreError> {
        let table = &*self.table;
        let items = vec![
            put(table, rule, "attribute_not_exists(pk)", None)?,
            update(
                table,
                rule_count_key(),
                "ADD #n :one",
                Some("attribute_not_exists(#n) OR #n < :max"),
                [("#n".to_owned(), RULE_COUNT.to_owned())].into(),
                values([(":one", n(1)), (":max", n(MAX_RULES))]),
            )?,
        ];
        match self.transact("create a routing rule", items).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition { index: 0, .. }) => Err(StoreError::Conflict { expected: 0 }),
            Err(Cancelled::Condition { index: 1, .. }) => Err(too_many_rules()),
            Err(other) => Err(cancelled_error("create a routing rule", other)),
        }
    }
}
