//! Routing rules and provider health on SQLite: a row each, its version in a column so that a
//! write can be conditional on it.

use cashout_core::health::ProviderHealth;
use cashout_core::ids::RoutingRuleId;
use cashout_core::ports::{RoutingStore, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::routing::RoutingRule;
use cashout_core::routing::rules::MAX_RULES;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{Versioned, json_bodies, put_versioned, version_i64};
use super::{SqliteStore, sql_error};
use crate::codec::from_json;
use crate::routing::{health_body, rule_body, too_many_rules};

impl RoutingStore for SqliteStore {
    async fn list_routing_rules(&self) -> Result<Vec<RoutingRule>, StoreError> {
        let rules: Vec<RoutingRule> = self
            .read(|conn| {
                json_bodies(
                    conn,
                    "SELECT body FROM routing_rules ORDER BY id LIMIT ?1",
                    [i64::try_from(MAX_RULES + 1).unwrap_or(i64::MAX)],
                    "routing rule",
                )
            })
            .await?;
        if rules.len() > MAX_RULES {
            return Err(StoreError::Corrupt {
                message: format!("more than {MAX_RULES} routing rules are stored"),
                source: None,
            });
        }
        Ok(rules)
    }

    async fn get_routing_rule(&self, id: RoutingRuleId) -> Result<Option<RoutingRule>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            body_at(
                conn,
                "SELECT body FROM routing_rules WHERE id = ?1",
                &id,
                "routing rule",
            )
        })
        .await
    }

    async fn put_routing_rule(&self, rule: &RoutingRule, expected_version: u64) -> Result<(), StoreError> {
        let body = rule_body(rule, expected_version)?;
        let id = rule.id.to_string();
        let version = version_i64(rule.version)?;
        let expected = version_i64(expected_version)?;
        self.write(move |conn, _| {
            if expected > 0 {
                let updated = conn
                    .prepare_cached("UPDATE routing_rules SET version = ?2, body = ?3 WHERE id = ?1 AND version = ?4")
                    .map_err(sql_error)?
                    .execute(params![id, version, body, expected])
                    .map_err(sql_error)?;
                return if updated == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict {
                        expected: expected_version,
                    })
                };
            }
            let exists = conn
                .prepare_cached("SELECT 1 FROM routing_rules WHERE id = ?1")
                .map_err(sql_error)?
                .query_row([&id], |_| Ok(()))
                .optional()
                .map_err(sql_error)?;
            if exists.is_some() {
                return Err(StoreError::Conflict { expected: 0 });
            }
            let stored: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM routing_rules")
                .map_err(sql_error)?
                .query_row([], |r| r.get(0))
                .map_err(sql_error)?;
            if usize::try_from(stored).unwrap_or(usize::MAX) >= MAX_RULES {
                return Err(too_many_rules());
            }
            conn.prepare_cached("INSERT INTO routing_rules (id, version, body) VALUES (?1, ?2, ?3)")
                .map_err(sql_error)?
                .execute(params![id, version, body])
                .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn delete_routing_rule(&self, id: RoutingRuleId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM routing_rules WHERE id = ?1")
                .map_err(sql_error)?
                .execute([id])
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn get_provider_health(&self, provider: ProviderName) -> Result<Option<ProviderHealth>, StoreError> {
        self.read(move |conn| {
            body_at(
                conn,
                "SELECT body FROM provider_health WHERE provider = ?1",
                provider.as_str(),
                "provider health",
            )
        })
        .await
    }

    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        self.read(|conn| {
            json_bodies(
                conn,
                "SELECT body FROM provider_health ORDER BY provider",
                [],
                "provider health",
            )
        })
        .await
    }

    async fn put_provider_health(&self, health: &ProviderHealth, expected_version: u64) -> Result<(), StoreError> {
        let body = health_body(health, expected_version)?;
        let (provider, version) = (health.provider.as_str(), health.version);
        self.write(move |conn, _| {
            put_versioned(
                conn,
                Versioned::ProviderHealth,
                provider,
                version,
                expected_version,
                &body,
            )
        })
        .await
    }
}

/// The JSON body a one-key query selects, decoded, if there is a row.
pub(super) fn body_at<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    key: &str,
    what: &str,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(sql_error)?
        .query_row([key], |r| r.get::<_, String>(0))
        .optional()
        .map_err(sql_error)?
        .map(|b| from_json(&b, what))
        .transpose()
}
