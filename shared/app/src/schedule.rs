//! When a request is looked at next, and the follow-up work of a committed change.
//!
//! Every request that can move without a person has a `next_check_at`: the poller's sweep finds
//! it there if the queue loses its task. A status change sets it from the new status
//! ([`App::scheduled`]); what can happen at once is also queued ([`App::follow_up`]): a dispatch
//! for an `APPROVED` request, the next poll of one at the provider when it is due within the
//! queue's longest delay (later ones are left to the sweep).
//!
//! Time arithmetic here never panics: delays are bounded ([`later`], [`bounded_wait`]).

use std::time::Duration;

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::ports::{MAX_TASK_DELAY, Store, Task, TaskQueue};
use cashout_core::status::CashoutStatus;
use time::OffsetDateTime;

use crate::App;

/// `now + delay`, never panicking (the delay is capped, see [`cashout_core::ports::after`]).
pub(crate) fn later(now: OffsetDateTime, delay: Duration) -> OffsetDateTime {
    cashout_core::ports::after(now, delay)
}

/// A signed time difference as a wait: negative is zero, and at most `max`.
pub(crate) fn bounded_wait(difference: time::Duration, max: Duration) -> Duration {
    Duration::try_from(difference).unwrap_or(Duration::ZERO).min(max)
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// When the sweep should next look at a request, given its status.
    pub(crate) fn next_check_for(&self, request: &CashoutRequest, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let poll = &self.config.poll;
        match request.status() {
            CashoutStatus::Requested => Some(later(now, self.config.review_grace)),
            CashoutStatus::Approved => Some(later(now, self.config.dispatch_grace)),
            CashoutStatus::PendingPayment => Some(later(now, poll.next_delay(request.checks_since_change()))),
            CashoutStatus::Paid => {
                let paid_at = request.payment_date().unwrap_or(now);
                (now < later(paid_at, poll.paid_watch_window)).then(|| later(now, poll.paid_watch_interval))
            }
            CashoutStatus::UnderReview
            | CashoutStatus::PaymentProcessorError
            | CashoutStatus::Rejected
            | CashoutStatus::Cancelled => None,
        }
    }

    /// A change with the next check its new status calls for.
    pub(crate) fn scheduled(&self, change: Change, now: OffsetDateTime) -> Change {
        let next = self.next_check_for(&change.request, now);
        change.with_next_check(next)
    }

    /// Follow-up work after a committed status change: dispatch an approved request, schedule the
    /// next poll of one at the provider.
    pub(crate) async fn follow_up(&self, request: &CashoutRequest) {
        self.remember_paid_beneficiary(request).await;
        match request.status() {
            CashoutStatus::Approved => {
                self.enqueue_after_commit(
                    Task::Dispatch {
                        cashout_request_id: request.id(),
                    },
                    Duration::ZERO,
                )
                .await;
            }
            CashoutStatus::PendingPayment | CashoutStatus::Paid => {
                if let Some(due) = request.next_check_at() {
                    let delay = bounded_wait(due - self.now(), Duration::MAX);
                    if delay > MAX_TASK_DELAY {
                        // Not queued (the reversal watch's daily checks would take a hop every 15
                        // minutes): the sweep finds it by `next_check_at` and sends it when due.
                        tracing::debug!(cashout_request_id = %request.id(), %due, "check left to the sweep");
                        return;
                    }
                    self.enqueue_after_commit(
                        Task::Poll {
                            cashout_request_id: request.id(),
                            due_at: Some(due),
                        },
                        delay,
                    )
                    .await;
                }
            }
            CashoutStatus::Requested
            | CashoutStatus::UnderReview
            | CashoutStatus::Rejected
            | CashoutStatus::Cancelled
            | CashoutStatus::PaymentProcessorError => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_never_negative_and_never_beyond_their_bound() {
        let max = Duration::from_secs(300);
        assert_eq!(bounded_wait(time::Duration::seconds(-5), max), Duration::ZERO);
        assert_eq!(bounded_wait(time::Duration::seconds(5), max), Duration::from_secs(5));
        assert_eq!(bounded_wait(time::Duration::MAX, max), max);
        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        assert!(later(now, Duration::from_secs(u64::MAX)) > now);
    }
}
