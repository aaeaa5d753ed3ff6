//! The request store on SQLite: requests, their events and the outbox, idempotency records,
//! provider references and due checks. A creation's steps are in [`super::creation`].

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::InvoiceClaim;
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    CashoutStore, ChangedQuery, CreateOutcome, DueRequest, IdempotencyRecord, IdempotencyState, ListQuery, Page,
    StoreError, StoredResponse,
};
use cashout_core::provider::ProviderName;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::creation::{claim_invoices, insert_new_request, live_idempotency, purge_expired_idempotency};
use super::rows::{EventRow, IdempotencyRow, RequestRow, insert_events, json_bodies, version_i64};
use super::{SqliteStore, sql_error};
use crate::codec::{
    changed_cursor, changed_page_size, from_json, from_ns, page_size, parse_changed_cursor, parse_request_cursor,
    request_cursor, to_ns,
};
use cashout_core::ports::check_change;

fn read_request(conn: &Connection, id: &str) -> Result<Option<CashoutRequest>, StoreError> {
    conn.prepare_cached("SELECT body FROM requests WHERE id = ?1")
        .map_err(sql_error)?
        .query_row([id], |r| r.get::<_, String>(0))
        .optional()
        .map_err(sql_error)?
        .map(|body| from_json(&body, "cashout request"))
        .transpose()
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
        let record = IdempotencyRow::of(idempotency)?;
        let request = RequestRow::of(&change.request)?;
        let events = change.events.iter().map(EventRow::of).collect::<Result<Vec<_>, _>>()?;
        let keys = change.request.invoice_keys();
        let claimed_at = to_ns(change.request.updated_at())?;
        let released = released.to_vec();
        self.write(move |tx, shared| {
            let now = to_ns(shared.clock.now())?;
            if let Some(existing) = live_idempotency(tx, &record.merchant_id, &record.key, now)? {
                return Ok(CreateOutcome::Existing(existing));
            }
            // Checked before anything is written (an outcome, not an error, commits).
            if let Some(held) = claim_invoices(tx, &keys, &request.id, claimed_at, &released)? {
                return Ok(CreateOutcome::InvoiceHeld(held));
            }
            insert_new_request(tx, &request)?;
            insert_events(tx, &events)?;
            record.insert(tx)?;
            purge_expired_idempotency(tx, now)?;
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
                    "UPDATE requests SET status = ?1, version = ?2, next_check_at = ?3, body = ?4,
                         request_date = ?7, work_list = ?8, attention = ?9
                     WHERE id = ?5 AND version = ?6",
                )
                .map_err(sql_error)?
                .execute(params![
                    request.status,
                    request.version,
                    request.next_check_at,
                    request.body,
                    request.id,
                    expected,
                    request.request_date,
                    request.work_list,
                    request.attention
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
            json_bodies(
                conn,
                "SELECT body FROM events WHERE request_id = ?1 ORDER BY sequence",
                [id],
                "status event",
            )
        })
        .await
    }

    async fn list_merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &cashout_core::ports::EventQuery,
    ) -> Result<Page<StatusEvent>, StoreError> {
        use crate::events::{EventPosition, event_page};
        let (limit, after) = event_page(query)?;
        let merchant = merchant_id.to_string();
        let request = query.cashout_request_id.map(|id| id.to_string());
        let since = query.since.map(to_ns).transpose()?;
        let until = query.until.map(to_ns).transpose()?;
        let types = (!query.types.is_empty()).then(|| {
            format!(
                ",{},",
                query.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
            )
        });
        let (after_at, after_request, after_sequence) = match &after {
            Some(p) => (
                Some(p.occurred_at_ns),
                Some(p.request.to_string()),
                Some(i64::try_from(p.sequence).unwrap_or(i64::MAX)),
            ),
            None => (None, None, None),
        };
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut items: Vec<StatusEvent> = self
            .read(move |conn| {
                json_bodies(
                    conn,
                    "SELECT body FROM events
                     WHERE merchant_id = ?1
                       AND (?2 IS NULL OR request_id = ?2)
                       AND (?3 IS NULL OR occurred_at >= ?3)
                       AND (?4 IS NULL OR occurred_at < ?4)
                       AND (?5 IS NULL OR instr(?5, ',' || event_type || ',') > 0)
                       AND (?6 IS NULL OR (occurred_at, request_id, sequence) < (?6, ?7, ?8))
                     ORDER BY occurred_at DESC, request_id DESC, sequence DESC LIMIT ?9",
                    params![
                        merchant,
                        request,
                        since,
                        until,
                        types,
                        after_at,
                        after_request,
                        after_sequence,
                        fetch
                    ],
                    "status event",
                )
            })
            .await?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(EventPosition::of).transpose()?.map(|p| p.cursor())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
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
            json_bodies(
                conn,
                "SELECT body FROM events WHERE published = 0 AND occurred_at < ?1
                     ORDER BY occurred_at, request_id, sequence LIMIT ?2",
                params![before, limit],
                "status event",
            )
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

    async fn list_changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = changed_page_size(query.limit)?;
        let after = query.cursor.as_ref().map(parse_changed_cursor).transpose()?;
        let from = to_ns(query.from)?;
        let to = to_ns(query.to)?;
        let merchant = query.merchant_id.as_ref().map(ToString::to_string);
        self.read(move |conn| changed_page(conn, from, to, merchant.as_deref(), limit, after))
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

/// Events a page of changed requests reads at most per request it may hold: a page stops there
/// (with a cursor) even if it found fewer requests, so that a page reads a bounded number of
/// events however many of them belong to requests listed before or to other merchants.
const CHANGED_SCAN_PER_ITEM: usize = 8;

/// The events in `[from, to)` after the cursor's position, in `events_by_time` order (no sort);
/// for each, whether it is its request's first event in the range (the events primary key
/// answers), and the request's body when that request is listed.
const CHANGED_SQL: &str = "
SELECT e.occurred_at, e.request_id,
       CASE WHEN (?3 IS NULL OR r.merchant_id = ?3)
             AND NOT EXISTS (SELECT 1 FROM events p
                             WHERE p.request_id = e.request_id AND p.sequence < e.sequence
                               AND p.occurred_at >= ?1 AND p.occurred_at < ?2)
            THEN r.body END
FROM events e JOIN requests r ON r.id = e.request_id
WHERE e.occurred_at >= ?1 AND e.occurred_at < ?2
  AND (e.occurred_at, e.request_id) > (?4, ?5)
ORDER BY e.occurred_at, e.request_id, e.sequence";

/// One page of the requests that changed in `[from, to)`: each listed at its first event in the
/// range, ordered by (that event's time, request id). Reads at most
/// `limit × CHANGED_SCAN_PER_ITEM` events.
fn changed_page(
    conn: &Connection,
    from: i64,
    to: i64,
    merchant: Option<&str>,
    limit: usize,
    after: Option<(i64, CashoutRequestId)>,
) -> Result<Page<CashoutRequest>, StoreError> {
    let (after_ns, after_id) = match after {
        Some((ns, id)) => (ns, id.to_string()),
        // Before every position: every stored time is at least `from`, ids are never empty.
        None => (i64::MIN, String::new()),
    };
    let budget = limit.saturating_mul(CHANGED_SCAN_PER_ITEM);
    let mut stmt = conn.prepare_cached(CHANGED_SQL).map_err(sql_error)?;
    let mut rows = stmt
        .query(params![from, to, merchant, after_ns, after_id])
        .map_err(sql_error)?;
    let mut items = Vec::new();
    let mut scanned = 0;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let at: i64 = row.get(0).map_err(sql_error)?;
        let id: String = row.get(1).map_err(sql_error)?;
        let body: Option<String> = row.get(2).map_err(sql_error)?;
        if let Some(body) = body {
            items.push(from_json::<CashoutRequest>(&body, "cashout request")?);
        }
        scanned += 1;
        if items.len() == limit || scanned == budget {
            // More may follow: the next page starts after this position.
            let next_cursor = if rows.next().map_err(sql_error)?.is_some() {
                let id = id.parse().map_err(|e| StoreError::corrupt("event request id", e))?;
                Some(changed_cursor(at, id))
            } else {
                None
            };
            return Ok(Page { items, next_cursor });
        }
    }
    Ok(Page {
        items,
        next_cursor: None,
    })
}

fn change_expected(expected: i64) -> u64 {
    u64::try_from(expected).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::CHANGED_SQL;
    use crate::sqlite::schema::{V1, V2, V3, V4};

    /// The changed listing walks `events_by_time` in its order (no sort of the range, whatever
    /// its size) and answers "first in the range?" from the events primary key.
    #[test]
    fn the_changed_listing_walks_the_time_index_without_sorting() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("{V1} {V2} {V3} {V4}")).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {CHANGED_SQL}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params![0, 10, "m", 0, "x"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("INDEX events_by_time"), "{plan}");
        assert!(
            plan.contains("USING PRIMARY KEY (request_id=? AND sequence<?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
