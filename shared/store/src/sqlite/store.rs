//! The store ports on SQLite.

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::{InvoiceClaim, InvoiceKey};
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    ApiKeyStore, CashoutStore, CreateOutcome, Cursor, DueRequest, IdempotencyRecord, IdempotencyState, ListQuery, Page,
    StoreError, StoredResponse, WebhookStore,
};
use cashout_core::provider::ProviderName;
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{SqliteStore, sql_error};
use crate::codec::{
    AttemptPosition, from_json, from_ns, page_size, parse_request_cursor, request_cursor, to_json, to_ns,
};

/// How many expired idempotency records a creation deletes on the way (the TTL of SQLite).
const PURGE_BATCH: i64 = 100;

/// A request as its row.
struct RequestRow {
    id: String,
    merchant_id: String,
    status: &'static str,
    version: i64,
    next_check_at: Option<i64>,
    body: String,
}

impl RequestRow {
    fn of(request: &CashoutRequest) -> Result<Self, StoreError> {
        Ok(RequestRow {
            id: request.id().to_string(),
            merchant_id: request.merchant_id().to_string(),
            status: request.status().as_str(),
            version: version_i64(request.version())?,
            next_check_at: request.next_check_at().map(to_ns).transpose()?,
            body: to_json(request, "cashout request")?,
        })
    }
}

/// An event as its row.
struct EventRow {
    request_id: String,
    sequence: i64,
    occurred_at: i64,
    body: String,
}

impl EventRow {
    fn of(event: &StatusEvent) -> Result<Self, StoreError> {
        Ok(EventRow {
            request_id: event.cashout_request_id.to_string(),
            sequence: version_i64(event.sequence)?,
            occurred_at: to_ns(event.occurred_at)?,
            body: to_json(event, "status event")?,
        })
    }
}

fn version_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(format!("{v} is too large to store")))
}

/// Checks what every change must satisfy before anything is written.
fn check_change(change: &Change, creation: bool) -> Result<(), StoreError> {
    let id = change.request.id();
    if creation != (change.expected_version == 0) {
        return Err(StoreError::invalid(if creation {
            "a creation must expect version 0"
        } else {
            "a change to an existing request cannot expect version 0"
        }));
    }
    if change.request.version() != change.expected_version + 1 {
        return Err(StoreError::invalid(format!(
            "the new version {} does not follow {}",
            change.request.version(),
            change.expected_version
        )));
    }
    if let Some(e) = change.events.iter().find(|e| e.cashout_request_id != id) {
        return Err(StoreError::invalid(format!(
            "event {} belongs to another request",
            e.id
        )));
    }
    Ok(())
}

fn insert_events(tx: &Connection, events: &[EventRow]) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (request_id, sequence, occurred_at, published, body)
             VALUES (?1, ?2, ?3, 0, ?4)",
        )
        .map_err(sql_error)?;
    for e in events {
        stmt.execute(params![e.request_id, e.sequence, e.occurred_at, e.body])
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

fn idempotency_from_row(row: &Row<'_>) -> rusqlite::Result<RawIdempotency> {
    Ok(RawIdempotency {
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

const IDEMPOTENCY_COLUMNS: &str = "merchant_id, key, body_hash, request_id, state, until, \
                                   response_status, response_body, expires_at";

struct RawIdempotency {
    merchant_id: String,
    key: String,
    body_hash: String,
    request_id: String,
    state: String,
    until: Option<i64>,
    response_status: Option<i64>,
    response_body: Option<String>,
    expires_at: i64,
}

impl RawIdempotency {
    fn into_record(self) -> Result<IdempotencyRecord, StoreError> {
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

fn read_request(conn: &Connection, id: &str) -> Result<Option<CashoutRequest>, StoreError> {
    conn.prepare_cached("SELECT body FROM requests WHERE id = ?1")
        .map_err(sql_error)?
        .query_row([id], |r| r.get::<_, String>(0))
        .optional()
        .map_err(sql_error)?
        .map(|body| from_json(&body, "cashout request"))
        .transpose()
}

/// Claims every invoice for `holder`, or returns the first claim held by a request not in
/// `released` (having written none: claims are checked before any is written).
fn claim_invoices(
    tx: &rusqlite::Connection,
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

impl CashoutStore for SqliteStore {
    async fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        check_change(change, true)?;
        idempotency.check_creation(&change.request)?;
        let (state, until, response_status, response_body) = match &idempotency.state {
            IdempotencyState::InProgress { until } => ("in_progress", Some(to_ns(*until)?), None, None),
            IdempotencyState::Completed { response } => (
                "completed",
                None,
                Some(i64::from(response.status)),
                Some(response.body.clone()),
            ),
        };
        let request = RequestRow::of(&change.request)?;
        let events = change.events.iter().map(EventRow::of).collect::<Result<Vec<_>, _>>()?;
        let merchant = idempotency.merchant_id.to_string();
        let key = idempotency.key.to_string();
        let body_hash = idempotency.body_hash.clone();
        let expires_at = to_ns(idempotency.expires_at)?;
        let keys = change.request.invoice_keys();
        let claimed_at = to_ns(change.request.updated_at())?;
        let released = released.to_vec();
        self.write(move |conn, inner| {
            let now = to_ns(inner.clock.now())?;
            let tx = conn;
            let existing = tx
                .prepare_cached(&format!(
                    "SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency WHERE merchant_id = ?1 AND key = ?2"
                ))
                .map_err(sql_error)?
                .query_row([&merchant, &key], idempotency_from_row)
                .optional()
                .map_err(sql_error)?;
            if let Some(record) = existing {
                if record.expires_at > now {
                    return Ok(CreateOutcome::Existing(record.into_record()?));
                }
                // Expired but not yet purged: absent.
                tx.execute(
                    "DELETE FROM idempotency WHERE merchant_id = ?1 AND key = ?2",
                    [&merchant, &key],
                )
                .map_err(sql_error)?;
            }
            // Checked before anything is written (an outcome, not an error, commits).
            if let Some(held) = claim_invoices(tx, &keys, &request.id, claimed_at, &released)? {
                return Ok(CreateOutcome::InvoiceHeld(held));
            }
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO requests (id, merchant_id, status, version, next_check_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                )
                .map_err(sql_error)?
                .execute(params![
                    request.id,
                    request.merchant_id,
                    request.status,
                    request.version,
                    request.next_check_at,
                    request.body
                ])
                .map_err(sql_error)?;
            if inserted == 0 {
                return Err(StoreError::Conflict { expected: 0 });
            }
            insert_events(tx, &events)?;
            tx.prepare_cached(&format!(
                "INSERT INTO idempotency ({IDEMPOTENCY_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .map_err(sql_error)?
            .execute(params![
                merchant,
                key,
                body_hash,
                request.id,
                state,
                until,
                response_status,
                response_body,
                expires_at
            ])
            .map_err(sql_error)?;
            tx.prepare_cached(
                "DELETE FROM idempotency WHERE (merchant_id, key) IN (
                     SELECT merchant_id, key FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
            )
            .map_err(sql_error)?
            .execute(params![now, PURGE_BATCH])
            .map_err(sql_error)?;
            Ok(CreateOutcome::Created)
        })
        .await
    }

    async fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        new_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let IdempotencyState::InProgress { until } = observed.state else {
            return Ok(false);
        };
        let merchant = observed.merchant_id.to_string();
        let key = observed.key.to_string();
        let request_id = observed.cashout_request_id.to_string();
        let until = to_ns(until)?;
        let new_until = to_ns(new_until)?;
        self.write(move |conn, _| {
            let changed = conn
                .prepare_cached(
                    "UPDATE idempotency SET until = ?1
                     WHERE merchant_id = ?2 AND key = ?3 AND state = 'in_progress'
                       AND until = ?4 AND request_id = ?5",
                )
                .map_err(sql_error)?
                .execute(params![new_until, merchant, key, until, request_id])
                .map_err(sql_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let merchant = merchant_id.to_string();
        let key = key.to_string();
        let status = i64::from(response.status);
        let body = response.body.clone();
        self.write(move |conn, _| {
            let changed = conn
                .prepare_cached(
                    "UPDATE idempotency
                     SET state = 'completed', until = NULL, response_status = ?1, response_body = ?2
                     WHERE merchant_id = ?3 AND key = ?4",
                )
                .map_err(sql_error)?
                .execute(params![status, body, merchant, key])
                .map_err(sql_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_request(&self, id: CashoutRequestId) -> Result<Option<CashoutRequest>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| read_request(conn, &id)).await
    }

    async fn list_requests(
        &self,
        merchant_id: &MerchantId,
        query: &ListQuery,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(query.limit)?;
        let after = query.cursor.as_ref().map(parse_request_cursor).transpose()?;
        let merchant = merchant_id.to_string();
        let status = query.status.map(|s| s.as_str());
        let after = after.map(|id| id.to_string());
        self.read(move |conn| {
            // `?3 IS NULL OR …` keeps one cached statement for every combination.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM requests
                     WHERE merchant_id = ?1
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR id < ?3)
                     ORDER BY id DESC LIMIT ?4",
                )
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map(
                    params![merchant, status, after, i64::try_from(limit + 1).unwrap_or(101)],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            let mut items = bodies
                .iter()
                .map(|b| from_json::<CashoutRequest>(b, "cashout request"))
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|r| request_cursor(r.id()))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        check_change(change, false)?;
        let request = RequestRow::of(&change.request)?;
        let expected = version_i64(change.expected_version)?;
        let events = change.events.iter().map(EventRow::of).collect::<Result<Vec<_>, _>>()?;
        let reference = change
            .new_provider_reference
            .as_ref()
            .map(|(p, id)| (p.as_str(), id.to_string()));
        self.write(move |conn, _| {
            let tx = conn;
            let updated = tx
                .prepare_cached(
                    "UPDATE requests SET status = ?1, version = ?2, next_check_at = ?3, body = ?4
                     WHERE id = ?5 AND version = ?6",
                )
                .map_err(sql_error)?
                .execute(params![
                    request.status,
                    request.version,
                    request.next_check_at,
                    request.body,
                    request.id,
                    expected
                ])
                .map_err(sql_error)?;
            if updated == 0 {
                let exists = tx
                    .query_row("SELECT 1 FROM requests WHERE id = ?1", [&request.id], |_| Ok(()))
                    .optional()
                    .map_err(sql_error)?;
                return Err(match exists {
                    Some(()) => StoreError::Conflict {
                        expected: change_expected(expected),
                    },
                    None => StoreError::NotFound,
                });
            }
            insert_events(tx, &events)?;
            if let Some((provider, payout_id)) = reference {
                tx.prepare_cached(
                    "INSERT INTO provider_refs (provider, payout_id, request_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT (provider, payout_id) DO NOTHING",
                )
                .map_err(sql_error)?
                .execute(params![provider, payout_id, request.id])
                .map_err(sql_error)?;
                let owner: String = tx
                    .query_row(
                        "SELECT request_id FROM provider_refs WHERE provider = ?1 AND payout_id = ?2",
                        [provider, payout_id.as_str()],
                        |r| r.get(0),
                    )
                    .map_err(sql_error)?;
                if owner != request.id {
                    return Err(StoreError::invalid(format!(
                        "{provider} payout {payout_id} already belongs to request {owner}"
                    )));
                }
            }
            Ok(())
        })
        .await
    }

    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM events WHERE request_id = ?1 ORDER BY sequence")
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map([id], |r| r.get::<_, String>(0))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            bodies.iter().map(|b| from_json(b, "status event")).collect()
        })
        .await
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StatusEvent>, StoreError> {
        let request_id = id.cashout_request_id().to_string();
        let sequence = version_i64(id.sequence())?;
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM events WHERE request_id = ?1 AND sequence = ?2")
                .map_err(sql_error)?
                .query_row(params![request_id, sequence], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|b| from_json(&b, "status event"))
                .transpose()
        })
        .await
    }

    async fn unpublished_events(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<StatusEvent>, StoreError> {
        let before = to_ns(before)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM events WHERE published = 0 AND occurred_at < ?1
                     ORDER BY occurred_at, request_id, sequence LIMIT ?2",
                )
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map(params![before, limit], |r| r.get::<_, String>(0))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            bodies.iter().map(|b| from_json(b, "status event")).collect()
        })
        .await
    }

    async fn mark_published(&self, id: EventId) -> Result<(), StoreError> {
        let request_id = id.cashout_request_id().to_string();
        let sequence = version_i64(id.sequence())?;
        self.write(move |conn, _| {
            let found = conn
                .prepare_cached("UPDATE events SET published = 1 WHERE request_id = ?1 AND sequence = ?2")
                .map_err(sql_error)?
                .execute(params![request_id, sequence])
                .map_err(sql_error)?;
            if found == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn mark_published_batch(&self, ids: &[EventId]) -> Result<(), StoreError> {
        let keys = ids
            .iter()
            .map(|id| Ok((id.cashout_request_id().to_string(), version_i64(id.sequence())?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        self.write(move |conn, _| {
            let mut mark = conn
                .prepare_cached("UPDATE events SET published = 1 WHERE request_id = ?1 AND sequence = ?2")
                .map_err(sql_error)?;
            for (request_id, sequence) in keys {
                if mark.execute(params![request_id, sequence]).map_err(sql_error)? == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            Ok(())
        })
        .await
    }

    async fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> Result<Option<CashoutRequestId>, StoreError> {
        let payout_id = payout_id.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT request_id FROM provider_refs WHERE provider = ?1 AND payout_id = ?2")
                .map_err(sql_error)?
                .query_row([provider.as_str(), payout_id.as_str()], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|id| id.parse().map_err(|e| StoreError::corrupt("provider reference", e)))
                .transpose()
        })
        .await
    }

    async fn due_requests(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<DueRequest>, StoreError> {
        let now = to_ns(now)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, next_check_at FROM requests
                     WHERE next_check_at IS NOT NULL AND next_check_at <= ?1
                     ORDER BY next_check_at, id LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![now, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            rows.into_iter()
                .map(|(id, at)| {
                    Ok(DueRequest {
                        id: id.parse().map_err(|e| StoreError::corrupt("request id", e))?,
                        next_check_at: from_ns(at)?,
                    })
                })
                .collect()
        })
        .await
    }
}

fn change_expected(expected: i64) -> u64 {
    u64::try_from(expected).unwrap_or_default()
}

impl WebhookStore for SqliteStore {
    async fn put_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let merchant = endpoint.merchant_id.to_string();
        let id = endpoint.id.to_string();
        let created_at = to_ns(endpoint.created_at)?;
        let body = to_json(endpoint, "webhook endpoint")?;
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO endpoints (merchant_id, id, created_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (merchant_id, id) DO UPDATE SET created_at = ?3, body = ?4",
            )
            .map_err(sql_error)?
            .execute(params![merchant, id, created_at, body])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let merchant = merchant_id.to_string();
        let id = id.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .query_row([merchant, id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|b| from_json(&b, "webhook endpoint"))
                .transpose()
        })
        .await
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let merchant = merchant_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM endpoints WHERE merchant_id = ?1 ORDER BY created_at, id")
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map([merchant], |r| r.get::<_, String>(0))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            bodies.iter().map(|b| from_json(b, "webhook endpoint")).collect()
        })
        .await
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        let merchant = merchant_id.to_string();
        let id = id.to_string();
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .execute([merchant, id])
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        let event_id = attempt.event_id.to_string();
        let endpoint_id = attempt.endpoint_id.to_string();
        let merchant = attempt.merchant_id.to_string();
        let number = i64::from(attempt.attempt);
        let attempted_at = to_ns(attempt.attempted_at)?;
        let body = to_json(attempt, "delivery attempt")?;
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO attempts (event_id, endpoint_id, attempt, merchant_id, attempted_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (event_id, endpoint_id, attempt)
                 DO UPDATE SET merchant_id = ?4, attempted_at = ?5, body = ?6",
            )
            .map_err(sql_error)?
            .execute(params![event_id, endpoint_id, number, merchant, attempted_at, body])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(AttemptPosition::from_cursor).transpose()?;
        let merchant = merchant_id.to_string();
        let endpoint = endpoint_id.to_string();
        let (at, event, number) = match &after {
            Some(p) => (
                Some(p.attempted_at_ns),
                Some(p.event_id.to_string()),
                Some(i64::from(p.attempt)),
            ),
            None => (None, None, None),
        };
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM attempts
                     WHERE merchant_id = ?1 AND endpoint_id = ?2
                       AND (?3 IS NULL OR (attempted_at, event_id, attempt) < (?3, ?4, ?5))
                     ORDER BY attempted_at DESC, event_id DESC, attempt DESC LIMIT ?6",
                )
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map(
                    params![
                        merchant,
                        endpoint,
                        at,
                        event,
                        number,
                        i64::try_from(limit + 1).unwrap_or(101)
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            let mut items = bodies
                .iter()
                .map(|b| from_json::<DeliveryAttempt>(b, "delivery attempt"))
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                match items.last() {
                    Some(a) => Some(
                        AttemptPosition {
                            attempted_at_ns: to_ns(a.attempted_at)?,
                            event_id: a.event_id,
                            attempt: a.attempt,
                        }
                        .cursor(),
                    ),
                    None => None,
                }
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let event = event_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM attempts WHERE event_id = ?1
                     ORDER BY attempted_at, endpoint_id, attempt",
                )
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map([event], |r| r.get::<_, String>(0))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            bodies.iter().map(|b| from_json(b, "delivery attempt")).collect()
        })
        .await
    }
}

impl ApiKeyStore for SqliteStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let hash = record.hash.as_str().to_owned();
        let body = to_json(record, "API key")?;
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO api_keys (hash, body) VALUES (?1, ?2)
                 ON CONFLICT (hash) DO UPDATE SET body = ?2",
            )
            .map_err(sql_error)?
            .execute([hash, body])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM api_keys WHERE hash = ?1")
                .map_err(sql_error)?
                .query_row([hash], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|b| from_json(&b, "API key"))
                .transpose()
        })
        .await
    }
}
