//! The one-off migration of a table written before the `by-day` index: every status event
//! without `day_pk`/`day_sk` gets them, so that statements and reconciliations see periods from
//! before the upgrade. Idempotent and resumable (an event that has them is left alone; a crash
//! leaves the rest for the next run). `cashout-admin backfill-day-index --table T` runs it.

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

impl DynamoStore {
    /// Gives every status event without a `by-day` entry its `day_pk`/`day_sk` (one conditional
    /// `UpdateItem` each, `attribute_not_exists(day_pk)`), scanning the table once, `page` items
    /// a `Scan` call. `progress` is told after each page.
    pub async fn backfill_day_index(
        &self,
        page: u32,
        mut progress: impl FnMut(&BackfillReport),
    ) -> Result<BackfillReport, StoreError> {
        let mut report = BackfillReport::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&*self.table)
                .filter_expression(format!("begins_with({SK}, :evt) AND attribute_not_exists({DAY_PK})"))
                .projection_expression(format!("{PK}, {SK}, {BODY}"))
                .set_expression_attribute_values(Some(values([(":evt", s(EVENT_SK_PREFIX))])))
                .limit(i32::try_from(page.clamp(1, 1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error("scan for events without a by-day entry", e))?;
            self.meter.read(out.consumed_capacity());
            report.pages += 1;
            for item in out.items() {
                report.found += 1;
                let event = event_from_item(item)?;
                if self.give_day_entry(&event).await? {
                    report.updated += 1;
                }
            }
            progress(&report);
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(report),
            }
        }
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
}
