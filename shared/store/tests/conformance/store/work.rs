//! The operators' work lists (under review, processor errors, flagged for attention) across
//! merchants, oldest request first, and the dead letters of webhook delivery, newest first.

use cashout_core::auth::OperatorName;
use cashout_core::cashout::{AttentionReason, CashoutRequest, Change, DispatchFailure};
use cashout_core::ids::{CashoutRequestId, EventId};
use cashout_core::ports::{Cursor, Page, Store, StoreError, WorkList};
use cashout_core::review::{ApprovalPolicy, PolicyScope, ReviewFacts};
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt};
use rust_decimal::Decimal;
use time::Duration;

use super::{create, fx, load};
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::{Fixtures, merchant};

/// Applies `change` and returns the request as stored.
async fn apply<S: Store>(store: &S, change: Change) -> CashoutRequest {
    store.apply_change(&change).await.unwrap();
    load(store, change.request.id()).await
}

/// A new request of `m`, created at the clock's time, then moved one minute on.
async fn requested<S: Store>(store: &S, fx: &Fixtures, m: &str) -> CashoutRequest {
    let change = fx.create(&merchant(m), 1);
    create(store, fx, &change).await;
    fx.clock.advance(Duration::minutes(1));
    change.request
}

/// Reviewed under a policy that asks a person for every amount: `UNDER_REVIEW`.
async fn under_review<S: Store>(store: &S, fx: &Fixtures, r: &CashoutRequest) -> CashoutRequest {
    let policy = ApprovalPolicy::limit_only(PolicyScope::Default, Decimal::ZERO);
    apply(
        store,
        r.review(&policy, &ReviewFacts::default(), None, fx.now()).unwrap(),
    )
    .await
}

/// Approved at once, then refused by the provider for want of funds: `PAYMENT_PROCESSOR_ERROR`.
async fn processor_error<S: Store>(store: &S, fx: &Fixtures, r: &CashoutRequest) -> CashoutRequest {
    let approved = apply(store, r.approve(&op(), None, fx.now()).unwrap()).await;
    let failure = DispatchFailure::ProcessorError {
        code: Some("NO_FUNDS".into()),
        message: "insufficient funds".into(),
    };
    apply(store, approved.record_dispatch_failure(failure, fx.now()).unwrap()).await
}

fn flag(fx: &Fixtures, r: &CashoutRequest) -> Change {
    let reason = AttentionReason::ProviderNeedsAttention {
        reason: "partly processed".into(),
    };
    r.flag_attention(reason, fx.now()).unwrap()
}

fn op() -> OperatorName {
    OperatorName::new("alice").unwrap()
}

/// Every request of a list, paged `limit` at a time, each page checked to hold at most `limit`.
async fn whole_list<S: Store>(store: &S, list: WorkList, limit: u32) -> Vec<CashoutRequestId> {
    let mut ids = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store.list_work(list, limit, cursor.as_ref()).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        ids.extend(page.items.iter().map(CashoutRequest::id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
}

pub async fn work_lists_hold_their_requests_across_merchants_oldest_first<S: Store>(env: StoreEnv<S>) {
    let (s, fx) = (&env.store, &super::fx(&env));
    let a = requested(s, fx, "clinic-1").await;
    let b = requested(s, fx, "clinic-2").await;
    let c = requested(s, fx, "clinic-1").await;
    let d = requested(s, fx, "clinic-3").await;
    let e = requested(s, fx, "clinic-2").await;
    let _untouched = requested(s, fx, "clinic-1").await;
    // Changed out of creation order: the list follows request_date, not the change.
    let e = under_review(s, fx, &e).await;
    let c = under_review(s, fx, &c).await;
    let a = under_review(s, fx, &a).await;
    let d = processor_error(s, fx, &d).await;
    let b = processor_error(s, fx, &b).await;
    let c = apply(s, flag(fx, &c)).await;
    let b = apply(s, flag(fx, &b)).await;

    let review = [a.id(), c.id(), e.id()];
    assert_eq!(whole_list(s, WorkList::Review, 100).await, review);
    assert_eq!(whole_list(s, WorkList::Review, 1).await, review);
    assert_eq!(whole_list(s, WorkList::ProcessorError, 100).await, [b.id(), d.id()]);
    assert_eq!(whole_list(s, WorkList::Attention, 1).await, [b.id(), c.id()]);
    let page = s.list_work(WorkList::Review, 2, None).await.unwrap();
    assert_eq!(page.items, [a.clone(), c.clone()], "the requests as they are now");
    assert!(page.next_cursor.is_some());

    // A request leaves a list with the change that ends its reason to be there.
    let a = apply(s, a.approve(&op(), None, fx.now()).unwrap()).await;
    assert_eq!(whole_list(s, WorkList::Review, 100).await, [c.id(), e.id()]);
    let _b = apply(s, b.retry(fx.now()).unwrap()).await;
    assert_eq!(whole_list(s, WorkList::ProcessorError, 100).await, [d.id()]);
    assert_eq!(
        whole_list(s, WorkList::Attention, 100).await,
        [b.id(), c.id()],
        "still flagged"
    );
    let c = apply(s, c.resolve_attention(fx.now()).unwrap()).await;
    assert_eq!(whole_list(s, WorkList::Attention, 100).await, [b.id()]);
    assert_eq!(
        whole_list(s, WorkList::Review, 100).await,
        [c.id(), e.id()],
        "still under review"
    );
    // And comes back with one that gives it one again.
    let _a = apply(s, flag(fx, &a)).await;
    assert_eq!(whole_list(s, WorkList::Attention, 100).await, [a.id(), b.id()]);
}

pub async fn a_work_list_of_many_requests_pages_through_each_once<S: Store>(env: StoreEnv<S>) {
    let (s, fx) = (&env.store, &fx(&env));
    let mut expected = Vec::new();
    for i in 0..23 {
        let r = requested(s, fx, &format!("clinic-{}", i % 4)).await;
        expected.push(under_review(s, fx, &r).await.id());
    }
    assert_eq!(whole_list(s, WorkList::Review, 5).await, expected);
    assert_eq!(whole_list(s, WorkList::Review, 23).await, expected);
    assert!(whole_list(s, WorkList::Attention, 7).await.is_empty());
}

pub async fn a_work_or_dead_letter_listing_refuses_a_malformed_cursor_or_page_size<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let invalid = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Invalid { .. }));
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    for bad in ["", "x", "12.nope", id.to_string().as_str(), "00000000000000000001"] {
        let c = Cursor(bad.to_owned());
        assert!(
            invalid(s.list_work(WorkList::Review, 10, Some(&c)).await.map(drop)),
            "{bad:?}"
        );
        assert!(invalid(s.list_dead_letters(10, Some(&c)).await.map(drop)), "{bad:?}");
    }
    for limit in [0, 101] {
        assert!(invalid(s.list_work(WorkList::Attention, limit, None).await.map(drop)));
        assert!(invalid(s.list_dead_letters(limit, None).await.map(drop)));
    }
    // A well-formed cursor naming nothing is a position.
    let far = Cursor(format!("99999999999999999999.{id}"));
    let page: Page<CashoutRequest> = s.list_work(WorkList::Review, 10, Some(&far)).await.unwrap();
    assert!(page.items.is_empty());
}

pub async fn dead_letters_are_the_given_up_attempts_of_every_merchant_newest_first<S: Store>(env: StoreEnv<S>) {
    let (s, fx) = (&env.store, &fx(&env));
    let one = fx.endpoint(&merchant("clinic-1"), "https://one.example/hook");
    let two = fx.endpoint(&merchant("clinic-2"), "https://two.example/hook");
    let event = |n| EventId::new(CashoutRequestId::from_uuid(uuid::Uuid::from_u128(7)), n);
    let attempt = |endpoint, e, n, outcome, next: bool| {
        let mut a: DeliveryAttempt = fx.attempt(endpoint, event(e), n);
        a.outcome = outcome;
        if !next {
            a.next_attempt_at = None;
        }
        fx.clock.advance(Duration::seconds(1));
        a
    };
    let attempts = [
        attempt(&one, 1, 1, AttemptOutcome::Failed, true),
        attempt(&one, 1, 2, AttemptOutcome::Exhausted, false),
        attempt(&two, 1, 1, AttemptOutcome::Delivered, false),
        attempt(&two, 2, 1, AttemptOutcome::Gone, false),
        attempt(&one, 3, 1, AttemptOutcome::Skipped, false),
        attempt(&two, 4, 1, AttemptOutcome::Failed, true),
        attempt(&one, 10, 8, AttemptOutcome::Exhausted, false),
    ];
    // Two given up at the same instant: ordered by event, endpoint, attempt.
    let mut tie_a = attempt(&one, 11, 1, AttemptOutcome::Exhausted, false);
    let mut tie_b = attempt(&two, 11, 1, AttemptOutcome::Exhausted, false);
    tie_a.attempted_at = attempts[6].attempted_at + Duration::hours(1);
    tie_b.attempted_at = tie_a.attempted_at;
    for a in attempts.iter().chain([&tie_a, &tie_b]) {
        s.record_attempt(a).await.unwrap();
    }
    // Recording one again changes nothing.
    s.record_attempt(&attempts[1]).await.unwrap();
    let (first_tie, second_tie) = if (tie_a.endpoint_id.to_string()) < tie_b.endpoint_id.to_string() {
        (&tie_b, &tie_a)
    } else {
        (&tie_a, &tie_b)
    };
    let expected = vec![
        first_tie.clone(),
        second_tie.clone(),
        attempts[6].clone(),
        attempts[4].clone(),
        attempts[3].clone(),
        attempts[1].clone(),
    ];
    assert_eq!(s.list_dead_letters(100, None).await.unwrap().items, expected);
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list_dead_letters(2, cursor.as_ref()).await.unwrap();
        assert!(page.items.len() <= 2);
        paged.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, expected);
}
