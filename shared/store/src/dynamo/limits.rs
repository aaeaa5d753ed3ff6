//! Rate-limit buckets in the table, shared by every instance of the API: one item per bucket,
//! `pk = RL#{key}`, `sk = RL`, holding its TAT ([`cashout_core::limit`]) in Unix nanoseconds and
//! a `ttl` a minute past the latest TAT it can hold (a full bucket is the same as none, so
//! DynamoDB may delete it whenever it likes).
//!
//! A take is at most two conditional `UpdateItem`s and never a read:
//! 1. `SET tat = now + interval` if the bucket is full (no TAT, or one at or before now): an
//!    allowed call of a caller below its rate costs this one write.
//! 2. Otherwise the failed condition hands back the item (`ALL_OLD`): if GCRA refuses from that
//!    TAT, the call is refused, for that one (failed) write. If not, `SET tat = tat + interval`
//!    if `now < tat <= now + tolerance - interval`: the increment is relative, so concurrent
//!    takes all succeed while tokens last, and a failed condition means the bucket ran empty
//!    meanwhile: refused, again with the TAT handed back.
//!
//! An SDK retry of an update whose answer was lost may take a second token: the error is on the
//! caller's side of the limit, never on the table's.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use cashout_core::limit::{Decision, LimitKey, RateLimit, Step, unix_ns};
use cashout_core::ports::{RateLimitStore, StoreError};
use time::OffsetDateTime;

use super::DynamoStore;
use super::items::{Item, TTL, get_n, key, n};
use super::table::{TOTAL, values};

/// The attribute holding a bucket's TAT.
const TAT: &str = "tat";
/// How long past its latest possible TAT a bucket item is kept (in seconds).
const KEPT_AFTER_S: i64 = 60;
/// Rounds of the two steps when the item vanishes between them (a TTL deletion).
const ROUNDS: u32 = 3;

fn bucket_key(limit_key: &LimitKey) -> Item {
    key(format!("RL#{}", limit_key.storage_key()), "RL")
}

/// Epoch seconds a minute after `tat_ns`, rounded up.
fn ttl_after(tat_ns: i64) -> i64 {
    tat_ns.div_euclid(1_000_000_000) + 1 + KEPT_AFTER_S
}

impl RateLimitStore for DynamoStore {
    async fn take_token(&self, key: &LimitKey, now: OffsetDateTime, limit: RateLimit) -> Result<Decision, StoreError> {
        let now_ns = unix_ns(now);
        let interval = limit.interval_ns();
        for _ in 0..ROUNDS {
            let full = self
                .client
                .update_item()
                .set_key(Some(bucket_key(key)))
                .update_expression("SET #tat = :next, #ttl = :ttl")
                .condition_expression("attribute_not_exists(#tat) OR #tat <= :now")
                .expression_attribute_names("#tat", TAT)
                .expression_attribute_names("#ttl", TTL)
                .set_expression_attribute_values(Some(values([
                    (":next", n(now_ns.saturating_add(interval))),
                    (":now", n(now_ns)),
                    (":ttl", n(ttl_after(now_ns.saturating_add(interval)))),
                ])));
            let Some(current) = self.update_or_current("take a rate-limit token", full).await? else {
                return Ok(Decision::Allowed);
            };
            let Some(tat) = current.map(|item| get_n::<i64>(&item, TAT)).transpose()? else {
                continue; // deleted between the condition and now: full again
            };
            if let Step::Limited { retry_after } = limit.step(Some(tat), now_ns) {
                return Ok(Decision::Limited { retry_after });
            }
            let below = self
                .client
                .update_item()
                .set_key(Some(bucket_key(key)))
                .update_expression("SET #tat = #tat + :interval, #ttl = :ttl")
                .condition_expression("#tat > :now AND #tat <= :last")
                .expression_attribute_names("#tat", TAT)
                .expression_attribute_names("#ttl", TTL)
                .set_expression_attribute_values(Some(values([
                    (":interval", n(interval)),
                    (":now", n(now_ns)),
                    (
                        ":last",
                        n(now_ns.saturating_add(limit.tolerance_ns()).saturating_sub(interval)),
                    ),
                    (":ttl", n(ttl_after(now_ns.saturating_add(limit.tolerance_ns())))),
                ])));
            match self.update_or_current("take a rate-limit token", below).await? {
                None => return Ok(Decision::Allowed),
                Some(Some(item)) => {
                    let tat = get_n::<i64>(&item, TAT)?;
                    return Ok(match limit.step(Some(tat), now_ns) {
                        Step::Limited { retry_after } => Decision::Limited { retry_after },
                        // Refilled past `now` meanwhile cannot happen (a TAT only grows); refuse
                        // for one interval rather than write a third time.
                        Step::Allowed { .. } => Decision::Limited {
                            retry_after: std::time::Duration::from_nanos(interval.unsigned_abs()),
                        },
                    });
                }
                Some(None) => {} // deleted meanwhile: start again
            }
        }
        Ok(Decision::Limited {
            retry_after: std::time::Duration::from_nanos(interval.unsigned_abs()),
        })
    }
}

impl DynamoStore {
    /// Sends a conditional update: `None` when written, `Some(item)` when the condition failed,
    /// with the item as it stands (`None` if there is none).
    async fn update_or_current(
        &self,
        what: &str,
        update: UpdateItemFluentBuilder,
    ) -> Result<Option<Option<Item>>, StoreError> {
        let sent = update
            .table_name(&*self.table)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(None)
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    self.meter.failed_write();
                    Ok(Some(c.item.clone()))
                }
                _ => Err(super::sdk_error(what, e)),
            },
        }
    }
}
