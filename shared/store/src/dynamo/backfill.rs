//! The one-off migrations of a table written before an index: every status event without
//! `day_pk`/`day_sk` gets them (the `by-day` index), so that statements and reconciliations see
//! periods from before the upgrade; every request waiting for an operator or flagged gets its
//! work-list attributes (the `work` and `attention` indexes), so that the operators' lists show
//! requests that have not changed since the upgrade. Idempotent and resumable (an item that has
//! them is left alone; a crash leaves the rest for the next run). `cashout-admin
//! backfill-day-index --table T` runs the first. Also: every webhook endpoint whose signing
//! secrets were stored in clear before sealing gets them sealed (`cashout-admin seal-secrets`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::*;
use super::table::{TOTAL, values};
use super::{DynamoStore, sdk_error};
use cashout_core::ports::StoreError;

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Scan pages read.
    pub pages: u64,
    /// Event items found without a `by-day` entry.
    pub found: u64,
    /// Of those, the ones this run gave one (the others gained it meanwhile, or vanished).
    pub updated: u64,
}

/// One scan of a backfill: its filter, the attributes it reads, and what it says in errors.
struct Scan<'a> {
    what: &'static str,
    filter: String,
    projection: String,
    values: HashMap<String, AttributeValue>,
    consistent: bool,
    page: u32,
    progress: &'a mut dyn FnMut(&BackfillReport),
}

impl<'a> Scan<'a> {
    /// The status events that lack `attribute` (an index key an upgrade added), read whole.
    fn events_without(
        what: &'static str,
        attribute: &str,
        page: u32,
        progress: &'a mut dyn FnMut(&BackfillReport),
    ) -> Self {
        Scan {
            what,
            filter: format!("begins_with({SK}, :evt) AND attribute_not_exists({attribute})"),
            projection: format!("{PK}, {SK}, {BODY}"),
            values: values([(":evt", s(EVENT_SK_PREFIX))]),
            consistent: false,
            page,
            progress,
        }
    }
}

impl DynamoStore {
    /// Scans the table once, `scan.page` items a call, and gives each item to `each`: `None`
    /// when the item needs nothing, `Some(true)` when this run migrated it, `Some(false)` when
    /// it had been migrated meanwhile. `progress` is told after each page.
    async fn backfill(
        &self,
        scan: Scan<'_>,
        mut each: impl AsyncFnMut(&Item) -> Result<Option<bool>, StoreError>,
    ) -> Result<BackfillReport, StoreError> {
        let mut report = BackfillReport::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&*self.table)
                .filter_expression(&scan.filter)
                .projection_expression(&scan.projection)
                .consistent_read(scan.consistent)
                .set_expression_attribute_values(Some(scan.values.clone()))
                .limit(i32::try_from(scan.page.clamp(1, 1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error(scan.what, e))?;
            self.meter.read(out.consumed_capacity());
            report.pages += 1;
            for item in out.items() {
                if let Some(updated) = each(item).await? {
                    report.found += 1;
                    report.updated += u64::from(updated);
                }
            }
            (scan.progress)(&report);
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(report),
            }
        }
    }
}

impl DynamoStore {
    /// Gives every status event without a `by-day` entry its `day_pk`/`day_sk` (one conditional
    /// `UpdateItem` each, `attribute_not_exists(day_pk)`), scanning the table once, `page` items
    /// a `Scan` call. `progress` is told after each page.
    pub async fn backfill_day_index(
        &self,
        page: u32,
        mut progress: impl FnMut(&BackfillReport),
    ) -> Result<BackfillReport, StoreError> {
        let scan = Scan::events_without("scan for events without a by-day entry", DAY_PK, page, &mut progress);
        self.backfill(scan, async |item| {
            Ok(Some(self.give_day_entry(&event_from_item(item)?).await?))
        })
        .await
    }

    /// Gives every status event written before `GET /v1/events` its `by-owner` entry
    /// (`gsi1pk`/`gsi1sk`: the merchant's events by time), so that the listing sees events from
    /// before the upgrade: one conditional `UpdateItem` each (`attribute_not_exists(gsi1pk)`),
    /// scanning the table once, `page` items a call. Idempotent and resumable.
    pub async fn backfill_event_owner_index(
        &self,
        page: u32,
        mut progress: impl FnMut(&BackfillReport),
    ) -> Result<BackfillReport, StoreError> {
        let scan = Scan::events_without("scan for events without a by-owner entry", GSI1PK, page, &mut progress);
        self.backfill(scan, async |item| {
            let event = event_from_item(item)?;
            let update = self
                .client
                .update_item()
                .set_key(Some(event_key(event.id)?))
                .update_expression(format!("SET {GSI1PK} = :pk, {GSI1SK} = :sk"))
                .condition_expression(format!("attribute_exists({PK}) AND attribute_not_exists({GSI1PK})"))
                .set_expression_attribute_values(Some(values([
                    (":pk", s(merchant_events_pk(&event.merchant_id))),
                    (":sk", s(crate::events::EventPosition::of(&event)?.sort_key())),
                ])));
            Ok(Some(self.update_if("give an event its by-owner entry", update).await?))
        })
        .await
    }

    /// `true` if the event got its entry now; `false` if it already had one.
    async fn give_day_entry(&self, event: &cashout_core::event::StatusEvent) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .set_key(Some(event_key(event.id)?))
            .update_expression(format!("SET {DAY_PK} = :dpk, {DAY_SK} = :dsk"))
            .condition_expression(format!("attribute_exists({PK}) AND attribute_not_exists({DAY_PK})"))
            .set_expression_attribute_values(Some(values([
                (
                    ":dpk",
                    AttributeValue::S(day_pk(utc_day(event.occurred_at), shard(event.cashout_request_id))),
                ),
                (
                    ":dsk",
                    AttributeValue::S(day_sk(&event.merchant_id, event.cashout_request_id, event.sequence)),
                ),
            ])));
        self.update_if("give an event its by-day entry", update).await
    }

    /// Gives every request item that should be in a work list (under review, in processor error,
    /// flagged) and lacks its attributes `work_pk`/`work_sk` or `attn_pk`/`attn_sk`, scanning the
    /// request items once, `page` items a `Scan` call: one `UpdateItem` each, conditional on the
    /// version read (a request changed meanwhile got them from its change).
    pub async fn backfill_work_index(
        &self,
        page: u32,
        mut progress: impl FnMut(&BackfillReport),
    ) -> Result<BackfillReport, StoreError> {
        let scan = Scan {
            what: "scan for requests without their work-list entries",
            filter: format!("{SK} = :meta"),
            projection: format!(
                "{PK}, {SK}, {VERSION}, {BODY_ATTRIBUTES}, {WORK_PK}, {WORK_SK}, {ATTENTION_PK}, {ATTENTION_SK}"
            ),
            values: values([(":meta", s(REQUEST_SK))]),
            consistent: true,
            page,
            progress: &mut progress,
        };
        self.backfill(scan, async |item| {
            let request = request_from_item(item)?;
            let missing: HashMap<String, AttributeValue> = work_attributes(&request)?
                .into_iter()
                .filter(|(name, _)| !item.contains_key(name))
                .collect();
            if missing.is_empty() {
                return Ok(None);
            }
            Ok(Some(self.give_work_entries(&request, missing).await?))
        })
        .await
    }

    /// `true` if the request got its attributes now; `false` if it changed meanwhile.
    async fn give_work_entries(
        &self,
        request: &cashout_core::cashout::CashoutRequest,
        missing: HashMap<String, AttributeValue>,
    ) -> Result<bool, StoreError> {
        let mut names = HashMap::new();
        let mut vals = values([(":v", n(request.version()))]);
        let mut sets = Vec::new();
        for (i, (name, value)) in missing.into_iter().enumerate() {
            names.insert(format!("#a{i}"), name);
            vals.insert(format!(":a{i}"), value);
            sets.push(format!("#a{i} = :a{i}"));
        }
        let update = self
            .client
            .update_item()
            .set_key(Some(key(request_pk(request.id()), REQUEST_SK)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(format!("{VERSION} = :v"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(vals));
        self.update_if("give a request its work-list entries", update).await
    }

    /// Seals the signing secrets of every endpoint stored before sealing (a `whsec_` text in its
    /// body): each is read, opened as it is, and written back sealed on the condition that its
    /// version did not move (one conditional `PutItem` each; an endpoint changed meanwhile was
    /// sealed by that change). Scans the table once, `page` items a call. Idempotent.
    pub async fn seal_clear_secrets(
        &self,
        page: u32,
        mut progress: impl FnMut(&BackfillReport),
    ) -> Result<BackfillReport, StoreError> {
        use cashout_core::ports::WebhookStore as _;
        let scan = Scan {
            what: "scan for endpoints with secrets in clear",
            filter: format!("begins_with({PK}, :m) AND begins_with({SK}, :ep) AND contains({BODY}, :clear)"),
            projection: format!("{PK}, {SK}, {BODY}"),
            values: values([
                (":m", s("M#")),
                (":ep", s(ENDPOINT_SK_PREFIX)),
                (":clear", s("\"whsec_")),
            ]),
            consistent: false,
            page,
            progress: &mut progress,
        };
        self.backfill(scan, async |item| {
            let Some(AttributeValue::S(stored)) = item.get(BODY) else {
                return Ok(None);
            };
            let mut endpoint = crate::endpoints::read_endpoint(stored, self.sealer.as_ref()).await?;
            let expected = endpoint.version;
            endpoint.version += 1;
            match self.replace_endpoint(&endpoint, expected).await {
                Ok(()) => Ok(Some(true)),
                // Changed (and so sealed) or deleted meanwhile.
                Err(StoreError::Conflict { .. } | StoreError::NotFound) => Ok(Some(false)),
                Err(e) => Err(e),
            }
        })
        .await
    }
}
