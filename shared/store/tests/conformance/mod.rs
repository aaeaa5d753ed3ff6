//! The conformance suite: one set of behaviours every store and queue backend must show,
//! written once and instantiated per backend by [`store_suite!`] and [`queue_suite!`].
//!
//! Store checks run on a [`ManualClock`] on every backend (the adapters take their time from the
//! injected clock). Queue checks on a real service (moto) run on real time: they wait for a
//! condition by polling with a bounded deadline, never by sleeping and then asserting.

#![allow(dead_code)]

pub mod fixtures;
pub mod queue;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cashout_core::ports::ManualClock;

/// A store under test, with the clock its adapter reads.
pub struct StoreEnv<S> {
    pub store: S,
    pub clock: Arc<ManualClock>,
    /// The directory an embedded store lives in, removed when the test ends.
    pub dir: Option<tempfile::TempDir>,
}

/// How time moves for a queue under test.
pub enum QueueTime {
    /// The adapter reads this clock: moving it is enough.
    Manual(Arc<ManualClock>),
    /// The service keeps real time: wait for it.
    Real,
}

/// A queue under test.
pub struct QueueEnv<Q> {
    pub queue: Q,
    pub time: QueueTime,
    /// The directory an embedded queue lives in, removed when the test ends.
    pub dir: Option<tempfile::TempDir>,
}

impl<Q> QueueEnv<Q> {
    /// Lets `by` pass: moves a manual clock; on real time the caller's `eventually` waits.
    pub fn advance(&self, by: Duration) {
        if let QueueTime::Manual(clock) = &self.time {
            clock.advance(time::Duration::try_from(by).unwrap());
        }
    }

    pub fn is_real_time(&self) -> bool {
        matches!(self.time, QueueTime::Real)
    }
}

/// Polls `probe` until it yields `Some`, for at most `deadline`; panics with `what` after.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "{what}: not true after {deadline:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Declares one `#[tokio::test]` per store behaviour, each on a fresh store from `$make`
/// (an async fn returning a [`StoreEnv`]).
#[macro_export]
macro_rules! store_suite {
    ($make:path) => {
        $crate::store_suite!(@tests $make;
            created_requests_read_back_with_their_first_event,
            a_live_key_with_the_same_body_returns_the_first_record_and_writes_nothing,
            a_live_key_with_another_body_returns_the_first_record_with_its_hash,
            sixty_four_concurrent_creates_with_one_key_write_one_request_and_one_event,
            an_expired_idempotency_record_counts_as_absent_and_is_replaced,
            a_lapsed_claim_is_reclaimed_once_and_completion_is_replayed,
            completing_an_unknown_idempotency_record_is_not_found,
            a_change_is_written_only_at_the_expected_version,
            sixty_four_concurrent_transitions_from_one_version_have_one_winner,
            a_change_to_a_missing_request_is_not_found,
            events_keep_their_sequence_and_leave_the_outbox_when_published,
            listings_page_newest_first_with_cursors_and_filter_by_status,
            a_malformed_cursor_or_page_size_is_invalid,
            due_requests_are_those_whose_check_is_due_earliest_first,
            a_provider_reference_finds_its_request_and_cannot_be_taken_by_another,
            a_request_of_five_hundred_invoices_is_stored_and_changed_whole,
            endpoints_are_created_replaced_listed_and_deleted_per_merchant,
            thirty_concurrent_endpoint_creations_at_a_cap_of_twenty_store_twenty_and_refuse_ten,
            an_endpoint_is_replaced_only_at_its_expected_version,
            delivery_attempts_are_listed_per_endpoint_newest_first_and_per_event,
            a_merchants_events_are_listed_newest_first_filtered_and_paged,
            an_attempt_number_is_claimed_once_and_a_dead_senders_claim_is_taken_over,
            api_keys_are_found_by_hash,
            an_invoice_claimed_by_one_request_is_refused_to_another_and_nothing_is_written,
            a_claim_is_taken_over_only_while_it_is_still_the_released_one,
            sixty_four_concurrent_creates_of_one_invoice_have_one_winner,
            five_hundred_invoices_are_claimed_all_or_nothing,
            a_reviewed_creation_is_one_write_with_both_events_and_a_completed_record,
            routing_rules_are_created_read_listed_replaced_and_deleted,
            a_duplicate_create_or_a_stale_replace_of_a_rule_is_a_conflict_and_writes_nothing,
            the_rule_after_the_five_hundredth_is_invalid_even_when_creations_race_for_the_last_place,
            the_largest_valid_rule_is_stored_whole_and_an_oversized_one_is_invalid,
            provider_health_is_written_only_at_its_expected_version,
            concurrent_writers_of_one_rule_or_one_health_from_one_version_have_one_winner,
            changed_requests_are_listed_once_each_at_their_first_event_in_the_range,
            a_statement_of_many_requests_pages_through_each_exactly_once,
            a_changed_listing_refuses_a_malformed_cursor_or_page_size,
            reconciliations_are_written_at_their_expected_version,
            differences_are_recorded_once_per_key_and_listed_in_key_order,
            operators_are_created_and_replaced_only_at_their_expected_version,
            policies_are_created_replaced_listed_and_deleted_per_scope,
            day_usage_counts_every_currency_and_sums_each_currency_apart,
            twenty_concurrent_day_usage_additions_return_each_count_once,
            beneficiaries_are_unknown_until_remembered_per_merchant,
            sessions_round_trip_are_written_once_and_deleted_idempotently,
            work_lists_hold_their_requests_across_merchants_oldest_first,
            a_work_list_of_many_requests_pages_through_each_once,
            a_work_or_dead_letter_listing_refuses_a_malformed_cursor_or_page_size,
            dead_letters_are_the_given_up_attempts_of_every_merchant_newest_first,
            a_bucket_allows_its_burst_then_refills_at_its_rate,
            each_merchant_and_operator_has_a_bucket_of_its_own,
            sixty_four_concurrent_takes_from_a_bucket_of_ten_allow_exactly_ten,
        );
    };
    (@tests $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let env = $make().await;
                conformance::store::$name(env).await;
            }
        )+
    };
}

/// Declares one `#[tokio::test]` per queue behaviour, each on fresh queues from `$make`
/// (an async fn returning a [`QueueEnv`]).
#[macro_export]
macro_rules! queue_suite {
    ($make:path) => {
        $crate::queue_suite!(@tests $make;
            a_sent_task_is_received_once_and_gone_when_acknowledged,
            tasks_travel_on_their_own_queue_and_receive_takes_at_most_max,
            a_delayed_task_is_invisible_until_its_time,
            a_received_task_is_hidden_for_its_visibility_timeout_then_redelivered,
            a_released_task_comes_back_after_its_delay_with_its_receive_count,
            a_task_received_too_often_goes_to_the_dead_letter_queue,
            a_batch_is_sent_to_each_task_s_queue_and_acknowledged_together,
        );
    };
    (@tests $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let env = $make().await;
                conformance::queue::$name(env).await;
            }
        )+
    };
}
