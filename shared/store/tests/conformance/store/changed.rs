//! The requests that changed in a time range (each once, paged), and reconciliation runs with
//! their differences.

use std::collections::BTreeSet;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, MerchantId, ReconciliationId};
use cashout_core::ports::{ChangedQuery, Cursor, Store, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Difference, DifferenceKind, Period, Reconciliation, ReconciliationTrigger};
use time::{Duration, OffsetDateTime};

use super::{create, fx, load};
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::{merchant, t0};

/// Every page of a listing, followed to its end: the requests in listing order.
async fn list_all<S: Store>(
    store: &S,
    from: OffsetDateTime,
    to: OffsetDateTime,
    merchant_id: Option<&MerchantId>,
    limit: u32,
) -> Vec<CashoutRequest> {
    let mut query = ChangedQuery {
        from,
        to,
        merchant_id: merchant_id.cloned(),
        limit,
        cursor: None,
    };
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let page = store.list_changed_requests(&query).await.unwrap();
        assert!(page.items.len() <= limit as usize, "a page holds at most its limit");
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return all,
        }
    }
    panic!("the listing did not end");
}

/// The ids listed, checking that none is listed twice and that each is as stored now.
async fn listed<S: Store>(
    store: &S,
    from: OffsetDateTime,
    to: OffsetDateTime,
    merchant_id: Option<&MerchantId>,
    limit: u32,
) -> BTreeSet<CashoutRequestId> {
    let all = list_all(store, from, to, merchant_id, limit).await;
    let ids: BTreeSet<_> = all.iter().map(CashoutRequest::id).collect();
    assert_eq!(ids.len(), all.len(), "a request listed twice (limit {limit}): {all:?}");
    for r in &all {
        assert_eq!(r, &load(store, r.id()).await, "the request as it is now");
    }
    ids
}

/// A listing case: what it shows, its range, its merchant, the requests expected.
type Case<'a> = (
    &'a str,
    OffsetDateTime,
    OffsetDateTime,
    Option<&'a MerchantId>,
    BTreeSet<CashoutRequestId>,
);

fn hours(h: i64) -> OffsetDateTime {
    t0() + Duration::hours(h)
}

pub async fn changed_requests_are_listed_once_each_at_their_first_event_in_the_range<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let (m1, m2) = (merchant("clinic"), merchant("clinic-2"));
    let at = |h: i64| env.clock.set(hours(h));
    // A (m1) created at T0 (day 1, 12:00); B (m1) created T0+1h, approved T0+25h (day 2);
    // C (m1) created T0+2h, approved T0+26h; E (m2) created T0+3h; D (m2) created T0+27h
    // (day 2), approved T0+50h (day 3).
    at(0);
    let a = fx.create(&m1, 1);
    create(&env.store, &fx, &a).await;
    at(1);
    let b = fx.create(&m1, 1);
    create(&env.store, &fx, &b).await;
    at(2);
    let c = fx.create(&m1, 1);
    create(&env.store, &fx, &c).await;
    at(3);
    let e = fx.create(&m2, 1);
    create(&env.store, &fx, &e).await;
    at(25);
    env.store
        .apply_change(
            &b.request
                .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                .unwrap(),
        )
        .await
        .unwrap();
    at(26);
    env.store
        .apply_change(
            &c.request
                .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                .unwrap(),
        )
        .await
        .unwrap();
    at(27);
    let d = fx.create(&m2, 1);
    create(&env.store, &fx, &d).await;
    at(50);
    env.store
        .apply_change(
            &d.request
                .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                .unwrap(),
        )
        .await
        .unwrap();
    at(60);
    let [a, b, c, d, e] = [&a, &b, &c, &d, &e].map(|x| x.request.id());
    let set = |ids: &[CashoutRequestId]| ids.iter().copied().collect::<BTreeSet<_>>();

    let cases: Vec<Case<'_>> = vec![
        ("creations only", hours(0), hours(24), None, set(&[a, b, c, e])),
        (
            "changes only (B, C) and creation with a change (D)",
            hours(24),
            hours(72),
            None,
            set(&[b, c, d]),
        ),
        (
            "both, bounds inside days",
            hours(1) + Duration::minutes(30),
            hours(26) + Duration::minutes(30),
            None,
            set(&[b, c, e]),
        ),
        ("from is inclusive", hours(1), hours(25), None, set(&[b, c, e])),
        (
            "to is exclusive, and a change before from does not count",
            hours(25) + Duration::seconds(1),
            hours(26),
            None,
            set(&[]),
        ),
        ("neither", hours(73), hours(100), None, set(&[])),
        ("empty range", hours(10), hours(10), None, set(&[])),
        ("one merchant", hours(24), hours(72), Some(&m1), set(&[b, c])),
        ("the other merchant", hours(24), hours(72), Some(&m2), set(&[d])),
        ("one merchant, creations", hours(0), hours(24), Some(&m2), set(&[e])),
        ("everything", hours(-1), hours(1000), None, set(&[a, b, c, d, e])),
    ];
    for (what, from, to, m, expected) in cases {
        for limit in [1, 2, 1000] {
            let got = listed(&env.store, from, to, m, limit).await;
            assert_eq!(got, expected, "{what}, limit {limit}");
        }
    }
}

pub async fn a_statement_of_many_requests_pages_through_each_exactly_once<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    // 12 requests created on day 1, each approved on day 2: the listing of both days meets every
    // request twice and lists it once.
    let mut created = Vec::new();
    for i in 0..12 {
        env.clock.set(hours(i));
        let change = fx.create(&m, 1);
        create(&env.store, &fx, &change).await;
        created.push(change.request);
    }
    for (i, r) in created.iter().enumerate() {
        env.clock.set(hours(24 + i64::try_from(i).unwrap()));
        env.store
            .apply_change(
                &r.approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let all: BTreeSet<_> = created.iter().map(CashoutRequest::id).collect();
    for limit in [1, 2, 5, 1000] {
        assert_eq!(
            listed(&env.store, hours(0), hours(48), None, limit).await,
            all,
            "limit {limit}"
        );
        assert_eq!(
            listed(&env.store, hours(20), hours(48), Some(&m), limit).await,
            all,
            "changes, limit {limit}"
        );
        let first = list_all(&env.store, hours(0), hours(48), None, limit).await;
        let again = list_all(&env.store, hours(0), hours(48), None, limit).await;
        assert_eq!(
            first.iter().map(CashoutRequest::id).collect::<Vec<_>>(),
            again.iter().map(CashoutRequest::id).collect::<Vec<_>>(),
            "the order is stable"
        );
    }
}

pub async fn a_changed_listing_refuses_a_malformed_cursor_or_page_size<S: Store>(env: StoreEnv<S>) {
    let query = |limit: u32, cursor: Option<&str>| ChangedQuery {
        from: hours(0),
        to: hours(24),
        merchant_id: None,
        limit,
        cursor: cursor.map(|c| Cursor(c.to_owned())),
    };
    for q in [
        query(0, None),
        query(1001, None),
        query(10, Some("")),
        query(10, Some("garbage")),
        query(10, Some("!!.x.y")),
    ] {
        let err = env.store.list_changed_requests(&q).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{q:?}: {err:?}");
    }
    assert!(
        env.store
            .list_changed_requests(&query(1000, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn difference(reference: &str, kind: DifferenceKind, detail: &str) -> Difference {
    Difference {
        kind,
        cashout_request_id: None,
        provider: ProviderName::D24,
        reference: reference.to_owned(),
        ours: None,
        theirs: None,
        detail: detail.to_owned(),
        applied: false,
        found_at: t0(),
    }
}

pub async fn reconciliations_are_written_at_their_expected_version<S: Store>(env: StoreEnv<S>) {
    let day = t0().date();
    let id = ReconciliationId::from_uuid(uuid::Uuid::now_v7());
    let mut run = Reconciliation::start(
        id,
        Period::new(day, day).unwrap(),
        ReconciliationTrigger::Schedule,
        t0(),
    );
    assert_eq!(env.store.get_reconciliation(id).await.unwrap(), None);
    run.version = 1;
    env.store.put_reconciliation(&run, 0).await.unwrap();
    assert_eq!(env.store.get_reconciliation(id).await.unwrap().as_ref(), Some(&run));
    let err = env.store.put_reconciliation(&run, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 0 }), "{err:?}");

    let mut next = run.clone();
    next.requests_checked = 40;
    next.version = 2;
    env.store.put_reconciliation(&next, 1).await.unwrap();
    let mut stale = run.clone();
    stale.requests_checked = 7;
    stale.version = 2;
    let err = env.store.put_reconciliation(&stale, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1 }), "{err:?}");
    let err = env.store.put_reconciliation(&next, 5).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { .. }),
        "a version that does not follow: {err:?}"
    );
    assert_eq!(env.store.get_reconciliation(id).await.unwrap().as_ref(), Some(&next));
}

pub async fn differences_are_recorded_once_per_key_and_listed_in_key_order<S: Store>(env: StoreEnv<S>) {
    let id = ReconciliationId::from_uuid(uuid::Uuid::now_v7());
    let other = ReconciliationId::from_uuid(uuid::Uuid::now_v7());
    let refs = ["r-05", "r-01", "r-09", "r-03", "r-07", "r-02", "r-08"];
    let found: Vec<Difference> = refs
        .iter()
        .map(|r| difference(r, DifferenceKind::MissingAtProvider, "first"))
        .collect();
    env.store.put_differences(id, &found[..4]).await.unwrap();
    // Again after a resumed worker: the first four replaced (same keys), three new, and one
    // more kind for a reference already there.
    let mut again: Vec<Difference> = found
        .iter()
        .map(|d| Difference {
            detail: "again".into(),
            ..d.clone()
        })
        .collect();
    again.push(difference("r-01", DifferenceKind::AmountMismatch, "again"));
    env.store.put_differences(id, &again).await.unwrap();
    env.store
        .put_differences(other, &[difference("r-04", DifferenceKind::StatusLag, "elsewhere")])
        .await
        .unwrap();

    let mut expected = again.clone();
    expected.sort_by_key(Difference::key);
    for limit in [1, 2, 100] {
        let mut all = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = env.store.list_differences(id, limit, cursor.as_ref()).await.unwrap();
            assert!(page.items.len() <= limit as usize);
            all.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(all, expected, "limit {limit}");
    }

    let too_many: Vec<Difference> = (0..26)
        .map(|i| difference(&format!("x-{i:02}"), DifferenceKind::StatusMismatch, "x"))
        .collect();
    let err = env.store.put_differences(id, &too_many).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    env.store.put_differences(id, &too_many[..25]).await.unwrap();
    for bad in ["", "garbage", "nope|r-01|missing_at_provider", "d24|r-01|nope"] {
        let err = env
            .store
            .list_differences(id, 10, Some(&Cursor(bad.to_owned())))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{bad}: {err:?}");
    }
    for limit in [0, 101] {
        let err = env.store.list_differences(id, limit, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{limit}: {err:?}");
    }
}
