//! The rows of the embedded store's tables, and their conversions from and to domain values.

use cashout_core::cashout::CashoutRequest;
use cashout_core::event::StatusEvent;
use cashout_core::ids::{IdempotencyKey, MerchantId};
use cashout_core::ports::{IdempotencyRecord, IdempotencyState, StoreError, StoredResponse, WorkList};
use rusqlite::{Connection, Params, Row, params};
use serde::de::DeserializeOwned;

use super::sql_error;
use crate::codec::{from_json, from_ns, to_json, to_ns};
use crate::work::status_list;

/// A request as its row.
pub(super) struct RequestRow {
    pub(super) id: String,
    pub(super) merchant_id: String,
    pub(super) status: &'static str,
    pub(super) version: i64,
    pub(super) next_check_at: Option<i64>,
    /// `request_date` in Unix ns: where the request sorts in a work list.
    pub(super) request_date: i64,
    /// The status work list it is in (`NULL`: none), see [`work_list_name`].
    pub(super) work_list: Option<&'static str>,
    /// 1 while flagged for attention, `NULL` otherwise.
    pub(super) attention: Option<i64>,
    pub(super) body: String,
}

/// A work list as the `work_list` column names it (the attention list has its own column).
pub(super) const fn work_list_name(list: WorkList) -> &'static str {
    match list {
        WorkList::Review => "review",
        WorkList::ProcessorError => "processor_error",
        WorkList::Attention => "attention",
    }
}

impl RequestRow {
    pub(super) fn of(request: &CashoutRequest) -> Result<Self, StoreError> {
        Ok(RequestRow {
            id: request.id().to_string(),
            merchant_id: request.merchant_id().to_string(),
            status: request.status().as_str(),
            version: version_i64(request.version())?,
            next_check_at: request.next_check_at().map(to_ns).transpose()?,
            request_date: to_ns(request.request_date())?,
            work_list: status_list(request).map(work_list_name),
            attention: request.needs_attention().then_some(1),
            body: to_json(request, "cashout request")?,
        })
    }
}

/// An event as its row.
pub(super) struct EventRow {
    request_id: String,
    sequence: i64,
    occurred_at: i64,
    merchant_id: String,
    event_type: &'static str,
    body: String,
}

impl EventRow {
    pub(super) fn of(event: &StatusEvent) -> Result<Self, StoreError> {
        Ok(EventRow {
            request_id: event.cashout_request_id.to_string(),
            sequence: version_i64(event.sequence)?,
            occurred_at: to_ns(event.occurred_at)?,
            merchant_id: event.merchant_id.to_string(),
            event_type: event.event_type().as_str(),
            body: to_json(event, "status event")?,
        })
    }
}

pub(super) fn version_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(format!("{v} is too large to store")))
}

/// A table of `(key, version, body)` rows written on their version.
#[derive(Debug, Clone, Copy)]
pub(super) enum Versioned {
    /// `provider_health`, keyed by provider.
    ProviderHealth,
    /// `reconciliations`, keyed by run id.
    Reconciliations,
    /// `operators`, keyed by name.
    Operators,
    /// `policies`, keyed by `PolicyScope::key`.
    Policies,
}

impl Versioned {
    /// The insert of a first write (nothing if a row has the key) and the update of a later one
    /// (only the row still at the expected version, `?4`).
    const fn statements(self) -> (&'static str, &'static str) {
        match self {
            Versioned::ProviderHealth => (
                "INSERT INTO provider_health (provider, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider) DO NOTHING",
                "UPDATE provider_health SET version = ?2, body = ?3 WHERE provider = ?1 AND version = ?4",
            ),
            Versioned::Reconciliations => (
                "INSERT INTO reconciliations (id, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
                "UPDATE reconciliations SET version = ?2, body = ?3 WHERE id = ?1 AND version = ?4",
            ),
            Versioned::Operators => (
                "INSERT INTO operators (name, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                "UPDATE operators SET version = ?2, body = ?3 WHERE name = ?1 AND version = ?4",
            ),
            Versioned::Policies => (
                "INSERT INTO policies (scope, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope) DO NOTHING",
                "UPDATE policies SET version = ?2, body = ?3 WHERE scope = ?1 AND version = ?4",
            ),
        }
    }
}

/// Writes a row of `table` on its version: a first write (`expected_version` 0) inserts it if no
/// row has the key, a later one updates the row still at `expected_version`. One row written,
/// or [`StoreError::Conflict`] and nothing.
pub(super) fn put_versioned(
    conn: &Connection,
    table: Versioned,
    key: &str,
    version: u64,
    expected_version: u64,
    body: &str,
) -> Result<(), StoreError> {
    let (insert, update) = table.statements();
    let (version, expected) = (version_i64(version)?, version_i64(expected_version)?);
    let written = if expected == 0 {
        conn.prepare_cached(insert)
            .and_then(|mut stmt| stmt.execute(rusqlite::params![key, version, body]))
    } else {
        conn.prepare_cached(update)
            .and_then(|mut stmt| stmt.execute(rusqlite::params![key, version, body, expected]))
    }
    .map_err(sql_error)?;
    if written == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            expected: expected_version,
        })
    }
}

/// Inserts a change's events (unpublished); one already stored is corrupt data.
pub(super) fn insert_events(tx: &Connection, events: &[EventRow]) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (request_id, sequence, occurred_at, published, body, merchant_id, event_type)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
        )
        .map_err(sql_error)?;
    for e in events {
        stmt.execute(params![
            e.request_id,
            e.sequence,
            e.occurred_at,
            e.body,
            e.merchant_id,
            e.event_type
        ])
        .map_err(|err| match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Corrupt {
                message: format!("event {} of request {} is already stored", e.sequence, e.request_id),
                source: Some(err.into()),
            },
            _ => sql_error(err),
        })?;
    }
    Ok(())
}

/// The columns of an idempotency record, in the order [`IdempotencyRow`] reads and writes them.
pub(super) const IDEMPOTENCY_COLUMNS: &str = "merchant_id, key, body_hash, request_id, state, until, \
                                              response_status, response_body, expires_at";

/// An idempotency record as its row: `until` when in progress, the response when completed.
pub(super) struct IdempotencyRow {
    pub(super) merchant_id: String,
    pub(super) key: String,
    body_hash: String,
    request_id: String,
    state: String,
    until: Option<i64>,
    response_status: Option<i64>,
    response_body: Option<String>,
    pub(super) expires_at: i64,
}

impl IdempotencyRow {
    pub(super) fn of(record: &IdempotencyRecord) -> Result<Self, StoreError> {
        let (state, until, response_status, response_body) = match &record.state {
            IdempotencyState::InProgress { until } => ("in_progress", Some(to_ns(*until)?), None, None),
            IdempotencyState::Completed { response } => (
                "completed",
                None,
                Some(i64::from(response.status)),
                Some(response.body.clone()),
            ),
        };
        Ok(IdempotencyRow {
            merchant_id: record.merchant_id.to_string(),
            key: record.key.to_string(),
            body_hash: record.body_hash.clone(),
            request_id: record.cashout_request_id.to_string(),
            state: state.to_owned(),
            until,
            response_status,
            response_body,
            expires_at: to_ns(record.expires_at)?,
        })
    }

    /// Reads a row selected as [`IDEMPOTENCY_COLUMNS`].
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(IdempotencyRow {
            merchant_id: row.get(0)?,
            key: row.get(1)?,
            body_hash: row.get(2)?,
            request_id: row.get(3)?,
            state: row.get(4)?,
            until: row.get(5)?,
            response_status: row.get(6)?,
            response_body: row.get(7)?,
            expires_at: row.get(8)?,
        })
    }

    pub(super) fn insert(&self, tx: &Connection) -> Result<(), StoreError> {
        tx.prepare_cached(&format!(
            "INSERT INTO idempotency ({IDEMPOTENCY_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))
        .map_err(sql_error)?
        .execute(params![
            self.merchant_id,
            self.key,
            self.body_hash,
            self.request_id,
            self.state,
            self.until,
            self.response_status,
            self.response_body,
            self.expires_at
        ])
        .map_err(sql_error)?;
        Ok(())
    }

    pub(super) fn into_record(self) -> Result<IdempotencyRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt {
            message: format!("idempotency record: {what}"),
            source: None,
        };
        let state = match (self.state.as_str(), self.until, self.response_status) {
            ("in_progress", Some(until), _) => IdempotencyState::InProgress { until: from_ns(until)? },
            ("completed", _, Some(status)) => IdempotencyState::Completed {
                response: StoredResponse {
                    status: u16::try_from(status).map_err(|_| corrupt("status"))?,
                    body: self.response_body.unwrap_or_default(),
                },
            },
            _ => return Err(corrupt("state")),
        };
        Ok(IdempotencyRecord {
            merchant_id: MerchantId::new(self.merchant_id)
                .map_err(|e| StoreError::corrupt("idempotency merchant id", e))?,
            key: IdempotencyKey::new(self.key).map_err(|e| StoreError::corrupt("idempotency key", e))?,
            body_hash: self.body_hash,
            cashout_request_id: self
                .request_id
                .parse()
                .map_err(|e| StoreError::corrupt("idempotency request id", e))?,
            state,
            expires_at: from_ns(self.expires_at)?,
        })
    }
}

/// The rows of a query whose first column is a JSON body (`what` names it in errors), decoded.
pub(super) fn json_bodies<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let bodies = stmt
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    bodies.iter().map(|b| from_json(b, what)).collect()
}
