//! Operators, approval policies, day usage, known beneficiaries and sessions on SQLite: a row
//! each; operators and policies written conditionally on their version (like routing rules),
//! usage counted by an upsert inside the one writer's transaction (so two calls never read the
//! same totals).

use cashout_core::auth::{OperatorName, OperatorRecord, SessionRecord};
use cashout_core::ids::MerchantId;
use cashout_core::money::Currency;
use cashout_core::ports::{DayUsageCount, PeopleStore, StoreError};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use rusqlite::{OptionalExtension, params};
use time::{Date, OffsetDateTime};

use super::rows::{Versioned, json_bodies, put_versioned};
use super::{SqliteStore, sql_error};
use crate::codec::to_ns;
use crate::people::{
    DAY_USAGE_KEPT_DAYS, SESSION_KEPT_AFTER_EXPIRY, check_fingerprint, operator_body, policy_body, session_body,
};

/// The most expired sessions a new session's write deletes on its way.
const SESSIONS_SWEPT: i64 = 16;

impl PeopleStore for SqliteStore {
    async fn put_operator(&self, record: &OperatorRecord, expected_version: u64) -> Result<(), StoreError> {
        let body = operator_body(record, expected_version)?;
        let (name, version) = (record.name.to_string(), record.version);
        self.write(move |conn, _| put_versioned(conn, Versioned::Operators, &name, version, expected_version, &body))
            .await
    }

    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        let name = name.to_string();
        self.read(move |conn| {
            super::routing::body_at(conn, "SELECT body FROM operators WHERE name = ?1", &name, "operator")
        })
        .await
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.read(|conn| json_bodies(conn, "SELECT body FROM operators ORDER BY name", [], "operator"))
            .await
    }

    async fn put_policy(&self, policy: &ApprovalPolicy, expected_version: u64) -> Result<(), StoreError> {
        let body = policy_body(policy, expected_version)?;
        let (scope, version) = (policy.scope.key(), policy.version);
        self.write(move |conn, _| put_versioned(conn, Versioned::Policies, &scope, version, expected_version, &body))
            .await
    }

    async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ApprovalPolicy>, StoreError> {
        let scope = scope.key();
        self.read(move |conn| {
            super::routing::body_at(
                conn,
                "SELECT body FROM policies WHERE scope = ?1",
                &scope,
                "approval policy",
            )
        })
        .await
    }

    async fn list_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        self.read(|conn| json_bodies(conn, "SELECT body FROM policies ORDER BY scope", [], "approval policy"))
            .await
    }

    async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool, StoreError> {
        let scope = scope.key();
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM policies WHERE scope = ?1")
                .map_err(sql_error)?
                .execute([scope])
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: Date,
        currency: Currency,
        amount_minor: i64,
    ) -> Result<DayUsageCount, StoreError> {
        let merchant = merchant.to_string();
        let day = i64::from(day.to_julian_day());
        let currency = currency.code();
        self.write(move |conn, _| {
            // Days no velocity rule reads any more go on the way (one merchant's: a few rows).
            conn.prepare_cached("DELETE FROM day_usage WHERE merchant_id = ?1 AND day < ?2")
                .map_err(sql_error)?
                .execute(params![merchant, day - DAY_USAGE_KEPT_DAYS])
                .map_err(sql_error)?;
            let stored: i64 = conn
                .prepare_cached("SELECT amount FROM day_usage WHERE merchant_id = ?1 AND day = ?2 AND currency = ?3")
                .map_err(sql_error)?
                .query_row(params![merchant, day, currency], |r| r.get(0))
                .optional()
                .map_err(sql_error)?
                .unwrap_or(0);
            let amount = stored
                .checked_add(amount_minor)
                .ok_or_else(|| StoreError::invalid("the day's amount overflows"))?;
            conn.prepare_cached(
                "INSERT INTO day_usage (merchant_id, day, currency, count, amount) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (merchant_id, day, currency) DO UPDATE SET count = count + 1, amount = ?4",
            )
            .map_err(sql_error)?
            .execute(params![merchant, day, currency, amount])
            .map_err(sql_error)?;
            let count: i64 = conn
                .prepare_cached("SELECT SUM(count) FROM day_usage WHERE merchant_id = ?1 AND day = ?2")
                .map_err(sql_error)?
                .query_row(params![merchant, day], |r| r.get(0))
                .map_err(sql_error)?;
            Ok(DayUsageCount {
                count: u64::try_from(count).map_err(|e| StoreError::corrupt("a day's count", e))?,
                amount_minor: amount,
            })
        })
        .await
    }

    async fn beneficiary_known(&self, merchant: &MerchantId, fingerprint: &str) -> Result<bool, StoreError> {
        check_fingerprint(fingerprint)?;
        let (merchant, fingerprint) = (merchant.to_string(), fingerprint.to_owned());
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM beneficiaries WHERE merchant_id = ?1 AND fingerprint = ?2")
                .map_err(sql_error)?
                .query_row(params![merchant, fingerprint], |_| Ok(()))
                .optional()
                .map_err(sql_error)
                .map(|found| found.is_some())
        })
        .await
    }

    async fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_fingerprint(fingerprint)?;
        let (merchant, fingerprint, at) = (merchant.to_string(), fingerprint.to_owned(), to_ns(at)?);
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO beneficiaries (merchant_id, fingerprint, first_paid_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (merchant_id, fingerprint) DO NOTHING",
            )
            .map_err(sql_error)?
            .execute(params![merchant, fingerprint, at])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let body = session_body(session)?;
        let (token, expires_at) = (session.token_hash.clone(), to_ns(session.expires_at)?);
        let stale_before = to_ns(self.now() - SESSION_KEPT_AFTER_EXPIRY)?;
        self.write(move |conn, _| {
            // A few long-expired sessions go on the way: bounded work, and the table stays small.
            conn.prepare_cached(
                "DELETE FROM sessions WHERE token_hash IN
                     (SELECT token_hash FROM sessions WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
            )
            .map_err(sql_error)?
            .execute(params![stale_before, SESSIONS_SWEPT])
            .map_err(sql_error)?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO sessions (token_hash, expires_at, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (token_hash) DO NOTHING",
                )
                .map_err(sql_error)?
                .execute(params![token, expires_at, body])
                .map_err(sql_error)?;
            if inserted == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict { expected: 0 })
            }
        })
        .await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let token = token_hash.to_owned();
        self.read(move |conn| {
            super::routing::body_at(
                conn,
                "SELECT body FROM sessions WHERE token_hash = ?1",
                &token,
                "session",
            )
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token = token_hash.to_owned();
        self.write(move |conn, _| {
            let deleted = conn
                .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .map_err(sql_error)?
                .execute([token])
                .map_err(sql_error)?;
            Ok(deleted == 1)
        })
        .await
    }
}
