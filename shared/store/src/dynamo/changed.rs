//! The requests that changed in a time range, on DynamoDB, through the `by-day` index: every
//! status event has an entry in partition `DAY#{utc day}#{shard}` sorted by
//! `{merchant}#{request id}#{sequence:010}`, so a request's events of one day are together.
//!
//! A listing walks the range's days in order, each day's shards in order, and a request is listed
//! on the day of its first event in the range only: a request created in the range (its
//! `request_date`, the `created` event, at or after `from`) on its creation day; an older one on
//! the day of its first event in the range, read from its events. So each request is listed once
//! without remembering the ones already listed, and a page reads a bounded amount: at most
//! [`MAX_QUERIES`] index queries and [`SCAN_PER_ITEM`] entries per request it may hold, then the
//! bodies (`BatchGetItem`, consistent) and, for requests created before the range, their events.
//!
//! The cursor is the position after a request within a day's shard: `{yyyy-mm-dd}.{shard}.`
//! followed by `{merchant}#{request id}` (or nothing: the shard's start).

use std::collections::HashMap;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, MerchantId};
use cashout_core::ports::{CashoutStore, ChangedQuery, Cursor, Page, StoreError};
use time::{Date, Duration};

use super::items::*;
use super::table::{TOTAL, values};
use super::{DynamoStore, sdk_error};
use crate::codec::{changed_page_size, parse_request_cursor};

/// Index queries a page makes at most (a month of empty days is 31 × 4).
const MAX_QUERIES: usize = 128;
/// Index entries a page reads at most, per request it may hold.
const SCAN_PER_ITEM: usize = 8;
/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;

/// Where a listing stands: in a day's shard, after a request (or at the shard's start).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    day: Date,
    shard: u8,
    after: Option<(MerchantId, CashoutRequestId)>,
}

impl Position {
    fn cursor(&self) -> Cursor {
        let after = self
            .after
            .as_ref()
            .map(|(m, id)| format!("{m}#{id}"))
            .unwrap_or_default();
        Cursor(format!("{}.{}.{after}", day_text(self.day), self.shard))
    }

    fn parse(cursor: &Cursor) -> Result<Self, StoreError> {
        let malformed = || StoreError::invalid("malformed cursor");
        let mut parts = cursor.0.splitn(3, '.');
        let (Some(day), Some(shard), Some(after)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let day = Date::parse(day, &format).map_err(|_| malformed())?;
        let shard: u8 = match shard.as_bytes() {
            [b] if b.is_ascii_digit() && b - b'0' < SHARDS => b - b'0',
            _ => return Err(malformed()),
        };
        let after = if after.is_empty() {
            None
        } else {
            let (merchant, id) = after.split_once('#').ok_or_else(malformed)?;
            let merchant = MerchantId::new(merchant).map_err(|_| malformed())?;
            Some((merchant, parse_request_cursor(&Cursor(id.to_owned()))?))
        };
        let position = Position { day, shard, after };
        if position.cursor() != *cursor {
            return Err(malformed());
        }
        Ok(position)
    }

    /// The next shard, or the next day's first.
    fn next_partition(&mut self) {
        self.after = None;
        if self.shard + 1 < SHARDS {
            self.shard += 1;
        } else {
            self.shard = 0;
            self.day = self.day.next_day().unwrap_or(Date::MAX);
        }
    }
}

impl DynamoStore {
    pub(super) async fn changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = changed_page_size(query.limit)?;
        let cursor = query.cursor.as_ref().map(Position::parse).transpose()?;
        let empty = Page {
            items: Vec::new(),
            next_cursor: None,
        };
        if query.to <= query.from {
            return Ok(empty);
        }
        let first_day = utc_day(query.from);
        let last_day = utc_day(query.to - Duration::nanoseconds(1));
        let start = Position {
            day: first_day,
            shard: 0,
            after: None,
        };
        let cursor_merchant = cursor.as_ref().and_then(|p| p.after.as_ref()).map(|(m, _)| m);
        if let (Some(m), Some(after)) = (query.merchant_id.as_ref(), cursor_merchant)
            && m != after
        {
            return Err(StoreError::invalid("the cursor is of another merchant's listing"));
        }
        let mut pos = match cursor {
            Some(p) if p.day >= first_day => p,
            _ => start,
        };
        let budget = limit.saturating_mul(SCAN_PER_ITEM);
        let (mut queries, mut scanned) = (0, 0);
        let mut items = Vec::new();
        loop {
            if pos.day > last_day {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() == limit || queries == MAX_QUERIES || scanned >= budget {
                return Ok(Page {
                    items,
                    next_cursor: Some(pos.cursor()),
                });
            }
            let want = (budget - scanned).min(1000);
            let (groups, read, more) = self.day_entries(&pos, query.merchant_id.as_ref(), want).await?;
            queries += 1;
            scanned += read;
            for chunk in groups.chunks(BATCH_GET_KEYS) {
                let bodies = self.bodies(chunk).await?;
                for (merchant, id) in chunk {
                    if let Some(request) = bodies.get(id)
                        && self.first_changed_on(request, pos.day, query).await?
                    {
                        items.push(request.clone());
                    }
                    pos.after = Some((merchant.clone(), *id));
                    if items.len() == limit {
                        break;
                    }
                }
                if items.len() == limit {
                    break;
                }
            }
            // Every request the query read is decided and the partition holds no more: on to
            // the next one.
            let all_decided = pos.after.as_ref().map(|(_, id)| id) == groups.last().map(|(_, id)| id);
            if !more && (groups.is_empty() || all_decided) {
                pos.next_partition();
            }
        }
    }

    /// One `Query` of the position's day and shard, after its request: the requests whose
    /// entries it read, in order, each once; how many entries it read; whether the partition
    /// holds more.
    async fn day_entries(
        &self,
        pos: &Position,
        merchant: Option<&MerchantId>,
        limit: usize,
    ) -> Result<(Vec<(MerchantId, CashoutRequestId)>, usize, bool), StoreError> {
        // After a request: past every sequence of it (`~` follows the digits).
        let after = pos.after.as_ref().map(|(m, id)| format!("{m}#{id}#~"));
        let mut vals = values([(":pk", s(day_pk(pos.day, pos.shard)))]);
        let condition = match (merchant, after) {
            (Some(m), after) => {
                vals.insert(":low".into(), s(after.unwrap_or_else(|| format!("{m}#"))));
                vals.insert(":high".into(), s(format!("{m}#~")));
                format!("{DAY_PK} = :pk AND {DAY_SK} BETWEEN :low AND :high")
            }
            (None, Some(after)) => {
                vals.insert(":after".into(), s(after));
                format!("{DAY_PK} = :pk AND {DAY_SK} > :after")
            }
            (None, None) => format!("{DAY_PK} = :pk"),
        };
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(BY_DAY)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(vals))
            .limit(i32::try_from(limit).unwrap_or(1000))
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("list changed requests", e))?;
        self.meter.read(out.consumed_capacity());
        let entries = out.items.unwrap_or_default();
        let mut groups: Vec<(MerchantId, CashoutRequestId)> = Vec::new();
        for entry in &entries {
            let sk = get_s(entry, DAY_SK)?;
            let corrupt = || StoreError::Corrupt {
                message: format!("by-day entry {sk}"),
                source: None,
            };
            let mut parts = sk.split('#');
            let (Some(m), Some(id)) = (parts.next(), parts.next()) else {
                return Err(corrupt());
            };
            let id: CashoutRequestId = id.parse().map_err(|_| corrupt())?;
            if groups.last().is_none_or(|(_, last)| *last != id) {
                groups.push((MerchantId::new(m).map_err(|_| corrupt())?, id));
            }
        }
        Ok((groups, entries.len(), out.last_evaluated_key.is_some()))
    }

    /// The requests' bodies, consistently, by id (missing ones left out).
    async fn bodies(
        &self,
        groups: &[(MerchantId, CashoutRequestId)],
    ) -> Result<HashMap<CashoutRequestId, CashoutRequest>, StoreError> {
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = groups.iter().map(|(_, id)| key(request_pk(*id), REQUEST_SK)).collect();
        self.batch_get("read changed requests", keys)
            .await?
            .iter()
            .map(|item| request_from_item(item).map(|r| (r.id(), r)))
            .collect()
    }

    /// Whether `request`'s first event in the query's range occurred on `day`: its creation if it
    /// was created in the range, else the first of its events in the range.
    async fn first_changed_on(
        &self,
        request: &CashoutRequest,
        day: Date,
        query: &ChangedQuery,
    ) -> Result<bool, StoreError> {
        if query.merchant_id.as_ref().is_some_and(|m| m != request.merchant_id()) {
            return Ok(false);
        }
        let created = request.request_date();
        if created >= query.from {
            return Ok(created < query.to && utc_day(created) == day);
        }
        let events = self.list_events(request.id()).await?;
        Ok(events
            .iter()
            .find(|e| e.occurred_at >= query.from && e.occurred_at < query.to)
            .is_some_and(|e| utc_day(e.occurred_at) == day))
    }
}
