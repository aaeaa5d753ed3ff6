//! The steps of a creation on SQLite: the live idempotency record of the key, the invoice
//! claims, the new request's row, and the purge of expired records (SQLite has no TTL).

use cashout_core::claim::{InvoiceClaim, InvoiceKey};
use cashout_core::ports::{IdempotencyRecord, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{IDEMPOTENCY_COLUMNS, IdempotencyRow, RequestRow};
use super::sql_error;
use crate::codec::from_ns;

/// How many expired idempotency records a creation deletes on the way (the TTL of SQLite).
const PURGE_BATCH: i64 = 100;

/// The record of (`merchant`, `key`) if it is still live at `now`; an expired one not yet
/// purged counts as absent and is deleted.
pub(super) fn live_idempotency(
    tx: &Connection,
    merchant: &str,
    key: &str,
    now: i64,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency WHERE merchant_id = ?1 AND key = ?2"
        ))
        .map_err(sql_error)?
        .query_row([merchant, key], IdempotencyRow::read)
        .optional()
        .map_err(sql_error)?;
    let Some(record) = existing else {
        return Ok(None);
    };
    if record.expires_at > now {
        return record.into_record().map(Some);
    }
    tx.execute(
        "DELETE FROM idempotency WHERE merchant_id = ?1 AND key = ?2",
        [merchant, key],
    )
    .map_err(sql_error)?;
    Ok(None)
}

/// Claims every invoice for `holder`, or returns the first claim held by a request not in
/// `released` (having written none: claims are checked before any is written).
pub(super) fn claim_invoices(
    tx: &Connection,
    keys: &[InvoiceKey],
    holder: &str,
    claimed_at: i64,
    released: &[InvoiceClaim],
) -> Result<Option<InvoiceClaim>, StoreError> {
    let mut read = tx
        .prepare_cached("SELECT holder, claimed_at FROM invoice_claims WHERE key = ?1")
        .map_err(sql_error)?;
    for key in keys {
        let existing: Option<(String, i64)> = read
            .query_row([key.storage_key()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql_error)?;
        let Some((current, at)) = existing else { continue };
        let claim = InvoiceClaim {
            key: key.clone(),
            holder: current
                .parse()
                .map_err(|e| StoreError::corrupt("an invoice claim names no request id", format!("{e}")))?,
            claimed_at: from_ns(at)?,
        };
        if !released.contains(&claim) {
            return Ok(Some(claim));
        }
    }
    let mut write = tx
        .prepare_cached(
            "INSERT INTO invoice_claims (key, holder, claimed_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, claimed_at = excluded.claimed_at",
        )
        .map_err(sql_error)?;
    for key in keys {
        write
            .execute(params![key.storage_key(), holder, claimed_at])
            .map_err(sql_error)?;
    }
    Ok(None)
}

/// Inserts the new request's row; a request of that id already stored is a lost race.
pub(super) fn insert_new_request(tx: &Connection, request: &RequestRow) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO requests
                 (id, merchant_id, status, version, next_check_at, request_date, work_list, attention, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(sql_error)?
        .execute(params![
            request.id,
            request.merchant_id,
            request.status,
            request.version,
            request.next_check_at,
            request.request_date,
            request.work_list,
            request.attention,
            request.body
        ])
        .map_err(sql_error)?;
    if inserted == 0 {
        return Err(StoreError::Conflict { expected: 0 });
    }
    Ok(())
}

/// Deletes up to [`PURGE_BATCH`] records expired at `now`.
pub(super) fn purge_expired_idempotency(tx: &Connection, now: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "DELETE FROM idempotency WHERE (merchant_id, key) IN (
             SELECT merchant_id, key FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
    )
    .map_err(sql_error)?
    .execute(params![now, PURGE_BATCH])
    .map_err(sql_error)?;
    Ok(())
}
