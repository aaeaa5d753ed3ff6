//! Reconciliation runs and their differences on SQLite: a run is a row written conditionally on
//! its version (like routing rules); a difference is a row per (run, `Difference::key`).

use cashout_core::ids::ReconciliationId;
use cashout_core::ports::{Cursor, Page, ReconciliationStore, StoreError};
use cashout_core::reconcile::{Difference, Reconciliation};
use rusqlite::{OptionalExtension, params};

use super::rows::{Versioned, json_bodies, put_versioned};
use super::{SqliteStore, sql_error};
use crate::codec::{difference_cursor, differences_by_key, from_json, page_size, parse_difference_cursor, to_json};
use crate::routing::reconciliation_body;

impl ReconciliationStore for SqliteStore {
    async fn put_reconciliation(&self, run: &Reconciliation, expected_version: u64) -> Result<(), StoreError> {
        let body = reconciliation_body(run, expected_version)?;
        let (id, version) = (run.id.to_string(), run.version);
        self.write(move |conn, _| {
            put_versioned(conn, Versioned::Reconciliations, &id, version, expected_version, &body)
        })
        .await
    }

    async fn get_reconciliation(&self, id: ReconciliationId) -> Result<Option<Reconciliation>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM reconciliations WHERE id = ?1")
                .map_err(sql_error)?
                .query_row([id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|b| from_json(&b, "reconciliation"))
                .transpose()
        })
        .await
    }

    async fn put_differences(&self, id: ReconciliationId, differences: &[Difference]) -> Result<(), StoreError> {
        let rows = differences_by_key(differences)?
            .into_iter()
            .map(|(key, d)| Ok((key, to_json(d, "difference")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let id = id.to_string();
        self.write(move |conn, _| {
            let mut put = conn
                .prepare_cached(
                    "INSERT INTO differences (reconciliation_id, key, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (reconciliation_id, key) DO UPDATE SET body = excluded.body",
                )
                .map_err(sql_error)?;
            for (key, body) in rows {
                put.execute(params![id, key, body]).map_err(sql_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_differences(
        &self,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Difference>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(parse_difference_cursor).transpose()?;
        let id = id.to_string();
        self.read(move |conn| {
            let mut items: Vec<Difference> = json_bodies(
                conn,
                "SELECT body FROM differences
                 WHERE reconciliation_id = ?1 AND (?2 IS NULL OR key > ?2)
                 ORDER BY key LIMIT ?3",
                params![id, after, i64::try_from(limit + 1).unwrap_or(101)],
                "difference",
            )?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|d| difference_cursor(&d.key()))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }
}
