//! The claim of a delivery attempt number on SQLite (the rest of `WebhookStore` is in
//! `webhooks.rs`).

use cashout_core::ports::StoreError;
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt};
use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, sql_error};
use crate::codec::{to_json, to_ns};

/// Inserts the claim, or takes over a stale one (`Sending`, older than `stale_before`), in one
/// statement: the single writer makes it atomic.
pub(super) async fn claim_attempt(
    store: &SqliteStore,
    attempt: &DeliveryAttempt,
    stale_before: OffsetDateTime,
) -> Result<bool, StoreError> {
    let event_id = attempt.event_id.to_string();
    let endpoint_id = attempt.endpoint_id.to_string();
    let merchant = attempt.merchant_id.to_string();
    let number = i64::from(attempt.attempt);
    let attempted_at = to_ns(attempt.attempted_at)?;
    let stale = to_ns(stale_before)?;
    let body = to_json(attempt, "delivery attempt")?;
    store
        .write(move |conn, _| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO attempts (event_id, endpoint_id, attempt, merchant_id, attempted_at, body, dead)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
                     ON CONFLICT (event_id, endpoint_id, attempt)
                     DO UPDATE SET attempted_at = ?5, body = ?6, dead = NULL
                     WHERE json_extract(attempts.body, '$.outcome') = ?7 AND attempts.attempted_at < ?8",
                )
                .map_err(sql_error)?
                .execute(params![
                    event_id,
                    endpoint_id,
                    number,
                    merchant,
                    attempted_at,
                    body,
                    AttemptOutcome::Sending.as_str(),
                    stale
                ])
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
}
