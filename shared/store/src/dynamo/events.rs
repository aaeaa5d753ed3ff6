//! A merchant's events across its requests, and the claim of a delivery attempt number, on
//! DynamoDB. Events are in the `by-owner` index under `M#{merchant}#EVT`, sorted by
//! `{occurred_at ns:020}#{request id}#{sequence:010}` (no new index attribute: `gsi1pk`/`gsi1sk`
//! were free on event items). Events written before this listing existed have no entry until
//! rewritten; a request's own events are read from its partition.

use cashout_core::event::StatusEvent;
use cashout_core::ids::MerchantId;
use cashout_core::ports::{CashoutStore, EventQuery, Page, StoreError};
use cashout_core::webhook::DeliveryAttempt;
use time::OffsetDateTime;

use super::items::*;
use super::table::{TOTAL, Written, values};
use super::{DynamoStore, sdk_error};
use crate::codec::to_ns;
use crate::events::{EventPosition, event_matches, event_page};

/// Index pages a listing reads at most before answering a short page with a cursor (filters
/// may drop what it reads).
const MAX_QUERIES: usize = 8;

/// The attribute of a claim (`Sending`): when it was made, for taking over a dead sender's.
const CLAIMED_AT: &str = "claim_at";

impl DynamoStore {
    pub(super) async fn merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &EventQuery,
    ) -> Result<Page<StatusEvent>, StoreError> {
        let (limit, after) = event_page(query)?;
        if let Some(request) = query.cashout_request_id {
            // One request: its own partition, at most a few dozen events.
            let mut items: Vec<(EventPosition, StatusEvent)> = self
                .list_events(request)
                .await?
                .into_iter()
                .filter(|e| event_matches(merchant_id, query, e))
                .map(|e| Ok((EventPosition::of(&e)?, e)))
                .collect::<Result<_, StoreError>>()?;
            items.retain(|(p, _)| after.as_ref().is_none_or(|a| p < a));
            items.sort_by(|a, b| b.0.cmp(&a.0));
            let next_cursor = (items.len() > limit).then(|| items[limit - 1].0.cursor());
            items.truncate(limit);
            return Ok(Page {
                items: items.into_iter().map(|(_, e)| e).collect(),
                next_cursor,
            });
        }
        let lowest = query.since.map(to_ns).transpose()?.map(|ns| format!("{ns:020}"));
        let until = query.until.map(to_ns).transpose()?.map(|ns| format!("{ns:020}"));
        let mut upper = match (after.map(|p| p.sort_key()), until) {
            (Some(a), Some(u)) => Some(a.min(u)),
            (a, u) => a.or(u),
        };
        let mut found: Vec<StatusEvent> = Vec::new();
        let mut last_read: Option<String> = None;
        for _ in 0..MAX_QUERIES {
            let mut condition = format!("{GSI1PK} = :pk");
            let mut vals = values([(":pk", s(merchant_events_pk(merchant_id)))]);
            if let Some(u) = &upper {
                condition.push_str(&format!(" AND {GSI1SK} < :hi"));
                vals.insert(":hi".into(), s(u.clone()));
            }
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(BY_OWNER)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(vals))
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1).unwrap_or(100))
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error("list a merchant's events", e))?;
            self.meter.read(out.consumed_capacity());
            let keys = out.items.unwrap_or_default();
            let exhausted = out.last_evaluated_key.is_none();
            let mut wanted = Vec::new();
            let mut past_range = false;
            for k in &keys {
                let sort = get_s(k, GSI1SK)?.to_owned();
                if lowest.as_ref().is_some_and(|low| sort < *low) {
                    past_range = true;
                    break;
                }
                wanted.push(key(get_s(k, PK)?.to_owned(), get_s(k, SK)?));
                last_read = Some(sort);
            }
            let mut read: Vec<StatusEvent> = self
                .batch_get("read listed events", wanted)
                .await?
                .iter()
                .map(event_from_item)
                .collect::<Result<_, _>>()?;
            read.retain(|e| event_matches(merchant_id, query, e));
            read.sort_by_key(|e| std::cmp::Reverse(EventPosition::of(e).map(|p| p.sort_key()).unwrap_or_default()));
            found.extend(read);
            if found.len() > limit {
                found.truncate(limit);
                let cursor = found.last().map(EventPosition::of).transpose()?.map(|p| p.cursor());
                return Ok(Page {
                    items: found,
                    next_cursor: cursor,
                });
            }
            if past_range || exhausted || keys.is_empty() {
                return Ok(Page {
                    items: found,
                    next_cursor: None,
                });
            }
            upper = last_read.clone();
        }
        // Filters dropped most of what was read: a short page, continuing after the last read.
        let next_cursor = match last_read {
            Some(sort) => Some(position_of_sort_key(&sort)?.cursor()),
            None => None,
        };
        Ok(Page {
            items: found,
            next_cursor,
        })
    }

    pub(super) async fn claim(
        &self,
        attempt: &DeliveryAttempt,
        stale_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = attempt_item(attempt)?;
        item.insert(CLAIMED_AT.into(), n(to_ns(attempt.attempted_at)?));
        let written = self
            .put_if(
                "claim a delivery attempt",
                item,
                &format!("attribute_not_exists({PK}) OR {CLAIMED_AT} < :stale"),
                Some(values([(":stale", n(to_ns(stale_before)?))])),
            )
            .await?;
        Ok(matches!(written, Written::Yes))
    }
}

/// The position a `by-owner` sort key of an event names.
fn position_of_sort_key(sort: &str) -> Result<EventPosition, StoreError> {
    EventPosition::from_cursor(&cashout_core::ports::Cursor(sort.replace('#', ".")))
}
