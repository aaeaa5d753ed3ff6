//! Changes at the expected version, and what reads requests back: events and the outbox,
//! listings, due checks, provider references.

use cashout_core::event::{EventPayload, StatusEvent};
use cashout_core::ids::{EventId, ProviderPayoutId};
use cashout_core::ports::{Cursor, ListQuery, Store, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::review::{ApprovalPolicy, ReviewFacts};
use cashout_core::status::CashoutStatus;
use time::Duration;

use super::{create, fx, load, pending};
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::merchant;

pub async fn a_change_is_written_only_at_the_expected_version<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let change = fx.create(&merchant("clinic"), 1);
    create(&env.store, &fx, &change).await;
    let v1 = change.request;
    env.clock.advance(Duration::seconds(1));
    let approve = v1
        .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
        .unwrap();
    env.store.apply_change(&approve).await.unwrap();
    let v2 = load(&env.store, v1.id()).await;
    assert_eq!(v2, approve.request);
    assert_eq!(v2.version(), 2);

    // The same change again, and another change from v1: both lost races.
    for stale in [approve.clone(), v1.cancel(fx.now()).unwrap()] {
        let err = env.store.apply_change(&stale).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { expected: 1 }), "{err:?}");
    }
    assert_eq!(load(&env.store, v1.id()).await, v2, "nothing was overwritten");
    let seqs: Vec<_> = env
        .store
        .list_events(v1.id())
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, [1, 2]);

    // A bookkeeping change (no event) is conditional too.
    let claim = v2.begin_dispatch(fx.now(), time::Duration::minutes(5)).unwrap();
    assert!(claim.events.is_empty());
    env.store.apply_change(&claim).await.unwrap();
    let err = env.store.apply_change(&claim).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 2 }), "{err:?}");
    assert_eq!(load(&env.store, v1.id()).await.version(), 3);
}

pub async fn sixty_four_concurrent_transitions_from_one_version_have_one_winner<S: Store + Clone + 'static>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let change = fx.create(&merchant("clinic"), 1);
    create(&env.store, &fx, &change).await;
    let v1 = change.request;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let changes: Vec<_> = (0..64)
        .map(|i| match i % 3 {
            0 => v1
                .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                .unwrap(),
            1 => v1.cancel(fx.now()).unwrap(),
            _ => v1.reject(format!("operator {i}"), fx.now()).unwrap(),
        })
        .collect();
    let tasks: Vec<_> = changes
        .iter()
        .cloned()
        .map(|c| {
            let (store, barrier) = (env.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.apply_change(&c).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in futures::future::join_all(tasks).await.into_iter().enumerate() {
        match t.unwrap() {
            Ok(()) => winners.push(i),
            Err(StoreError::Conflict { expected: 1 }) => {}
            Err(e) => panic!("a lost race must be a conflict: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition wins");
    let stored = load(&env.store, v1.id()).await;
    assert_eq!(stored, changes[winners[0]].request);
    let events = env.store.list_events(v1.id()).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], changes[winners[0]].events[0]);
}

pub async fn a_change_to_a_missing_request_is_not_found<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let change = fx.create(&merchant("clinic"), 1);
    let approve = change
        .request
        .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
        .unwrap();
    let err = env.store.apply_change(&approve).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(env.store.list_events(change.request.id()).await.unwrap().is_empty());
}

pub async fn events_keep_their_sequence_and_leave_the_outbox_when_published<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let a = fx.create(&m, 2);
    create(&env.store, &fx, &a).await;
    env.clock.advance(Duration::seconds(1));
    let b = fx.create(&m, 1);
    create(&env.store, &fx, &b).await;
    env.clock.advance(Duration::seconds(1));
    let t_review = fx.now();
    let review = a
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t_review)
        .unwrap();
    env.store.apply_change(&review).await.unwrap();
    env.clock.advance(Duration::seconds(1));

    let events = env.store.list_events(a.request.id()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    assert!(matches!(
        events[1].payload,
        EventPayload::StatusUpdate {
            status: CashoutStatus::Approved,
            ..
        }
    ));

    // Oldest first, strictly before `before`.
    let ids = |v: Vec<StatusEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = ids(env.store.unpublished_events(fx.now(), 100).await.unwrap());
    assert_eq!(all, [a.events[0].id, b.events[0].id, review.events[0].id]);
    let before_review = ids(env.store.unpublished_events(t_review, 100).await.unwrap());
    assert_eq!(before_review, [a.events[0].id, b.events[0].id]);
    let first = ids(env.store.unpublished_events(fx.now(), 1).await.unwrap());
    assert_eq!(first, [a.events[0].id]);

    env.store.mark_published(a.events[0].id).await.unwrap();
    env.store.mark_published(a.events[0].id).await.unwrap(); // idempotent
    let rest = ids(env.store.unpublished_events(fx.now(), 100).await.unwrap());
    assert_eq!(rest, [b.events[0].id, review.events[0].id]);
    // Publishing does not change the event itself.
    assert_eq!(
        env.store.get_event(a.events[0].id).await.unwrap(),
        Some(a.events[0].clone())
    );

    let unknown = EventId::new(fx.request_id(), 1);
    assert!(matches!(
        env.store.mark_published(unknown).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn listings_page_newest_first_with_cursors_and_filter_by_status<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let (a, b) = (merchant("clinic"), merchant("pharmacy"));
    let mut mine = Vec::new();
    for i in 0..7 {
        let c = fx.create(&a, 1);
        create(&env.store, &fx, &c).await;
        if i % 3 == 0 {
            let approve = c
                .request
                .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                .unwrap();
            env.store.apply_change(&approve).await.unwrap();
        }
        mine.push(c.request.id());
        let other = fx.create(&b, 1);
        create(&env.store, &fx, &other).await;
        env.clock.advance(Duration::milliseconds(3));
    }
    mine.reverse(); // newest first

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let q = ListQuery {
            status: None,
            limit: 3,
            cursor: cursor.clone(),
        };
        let page = env.store.list_requests(&a, &q).await.unwrap();
        pages += 1;
        assert!(page.items.iter().all(|r| r.merchant_id() == &a));
        seen.extend(page.items.iter().map(|r| r.id()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, mine);
    assert_eq!(pages, 3, "3 + 3 + 1, and no empty last page");

    let approved: Vec<_> = mine
        .iter()
        .copied()
        .filter(|id| {
            // created at i = 0, 3, 6 → the 7th, 4th and 1st newest
            [mine[0], mine[3], mine[6]].contains(id)
        })
        .collect();
    let q = ListQuery {
        status: Some(CashoutStatus::Approved),
        limit: 2,
        cursor: None,
    };
    let p1 = env.store.list_requests(&a, &q).await.unwrap();
    let q2 = ListQuery {
        cursor: p1.next_cursor.clone(),
        ..q.clone()
    };
    let p2 = env.store.list_requests(&a, &q2).await.unwrap();
    let got: Vec<_> = p1.items.iter().chain(&p2.items).map(|r| r.id()).collect();
    assert_eq!(got, approved);
    assert!(p2.next_cursor.is_none());
    assert!(
        p1.items
            .iter()
            .chain(&p2.items)
            .all(|r| r.status() == CashoutStatus::Approved)
    );

    let requested = env
        .store
        .list_requests(
            &a,
            &ListQuery {
                status: Some(CashoutStatus::Requested),
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(requested.items.len(), 4);
    let none = env
        .store
        .list_requests(
            &a,
            &ListQuery {
                status: Some(CashoutStatus::Paid),
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
    let theirs = env
        .store
        .list_requests(
            &b,
            &ListQuery {
                status: None,
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 7);
}

pub async fn a_malformed_cursor_or_page_size_is_invalid<S: Store>(env: StoreEnv<S>) {
    let m = merchant("clinic");
    for cursor in ["", "not base64 !", "eyJ4IjoxfQ"] {
        let q = ListQuery {
            status: None,
            limit: 10,
            cursor: Some(Cursor(cursor.into())),
        };
        let err = env.store.list_requests(&m, &q).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{cursor}: {err:?}");
    }
    for limit in [0, 101] {
        let q = ListQuery {
            status: None,
            limit,
            cursor: None,
        };
        assert!(matches!(
            env.store.list_requests(&m, &q).await,
            Err(StoreError::Invalid { .. })
        ));
    }
    let fx = fx(&env);
    let ep = fx.endpoint_id();
    let err = env
        .store
        .list_attempts(&m, ep, 10, Some(&Cursor("garbage".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

pub async fn due_requests_are_those_whose_check_is_due_earliest_first<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let t = fx.now();
    let mut ids = Vec::new();
    for next in [Some(5), Some(1), None, Some(3)] {
        let c = fx.create(&m, 1);
        create(&env.store, &fx, &c).await;
        let resched = c.request.reschedule(next.map(|n| t + Duration::minutes(n)), t);
        env.store.apply_change(&resched).await.unwrap();
        ids.push(c.request.id());
    }
    let due = |at: time::OffsetDateTime, limit: usize| {
        let store = &env.store;
        async move {
            store
                .due_requests(at, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.id, d.next_check_at))
                .collect::<Vec<_>>()
        }
    };
    assert!(due(t, 10).await.is_empty());
    assert_eq!(
        due(t + Duration::minutes(1), 10).await,
        [(ids[1], t + Duration::minutes(1))]
    );
    assert_eq!(
        due(t + Duration::minutes(4), 10).await,
        [(ids[1], t + Duration::minutes(1)), (ids[3], t + Duration::minutes(3))]
    );
    assert_eq!(due(t + Duration::hours(1), 2).await.len(), 2);
    assert_eq!(due(t + Duration::hours(1), 10).await.len(), 3);

    // Moving the check later takes it out; a final request is never due.
    let r1 = load(&env.store, ids[1]).await;
    env.store
        .apply_change(&r1.record_check(Some(t + Duration::minutes(30)), t))
        .await
        .unwrap();
    let r3 = load(&env.store, ids[3]).await;
    env.store.apply_change(&r3.cancel(t).unwrap()).await.unwrap();
    assert_eq!(load(&env.store, ids[3]).await.next_check_at(), None);
    assert_eq!(
        due(t + Duration::minutes(10), 10).await,
        [(ids[0], t + Duration::minutes(5))]
    );
}

pub async fn a_provider_reference_finds_its_request_and_cannot_be_taken_by_another<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let mut dispatched = Vec::new();
    for _ in 0..2 {
        let c = fx.create(&m, 1);
        create(&env.store, &fx, &c).await;
        let approve = c
            .request
            .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
            .unwrap();
        env.store.apply_change(&approve).await.unwrap();
        let claim = approve
            .request
            .begin_dispatch(fx.now(), time::Duration::minutes(5))
            .unwrap();
        env.store.apply_change(&claim).await.unwrap();
        dispatched.push(claim.request);
    }
    let accepted = dispatched[0]
        .record_provider_payout(&pending("8405147"), fx.now())
        .unwrap();
    assert!(accepted.new_provider_reference.is_some());
    env.store.apply_change(&accepted).await.unwrap();
    let payout = ProviderPayoutId::new("8405147").unwrap();
    assert_eq!(
        env.store
            .find_by_provider_reference(ProviderName::D24, &payout)
            .await
            .unwrap(),
        Some(dispatched[0].id())
    );
    assert_eq!(
        env.store
            .find_by_provider_reference(ProviderName::Onspot, &payout)
            .await
            .unwrap(),
        None,
        "references are per provider"
    );

    // Another request claiming the same payout id: refused, and nothing of it written.
    let clash = dispatched[1]
        .record_provider_payout(&pending("8405147"), fx.now())
        .unwrap();
    let err = env.store.apply_change(&clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(load(&env.store, dispatched[1].id()).await, dispatched[1]);
    assert_eq!(env.store.list_events(dispatched[1].id()).await.unwrap().len(), 2);
    assert_eq!(
        env.store
            .find_by_provider_reference(ProviderName::D24, &payout)
            .await
            .unwrap(),
        Some(dispatched[0].id())
    );
}

pub async fn a_request_of_five_hundred_invoices_is_stored_and_changed_whole<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    // Every invoice at its longest ids and an ASCII payer name of 200 characters.
    let name = "N".repeat(200);
    let change = fx.create_with(&m, cashout_core::input::MAX_INVOICES, &name, 64);
    let size = serde_json::to_string(&change.request).unwrap().len();
    assert!(size > 150_000, "the fixture is at the size limit ({size} bytes)");
    create(&env.store, &fx, &change).await;
    assert_eq!(load(&env.store, change.request.id()).await, change.request);
    let approve = change
        .request
        .approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
        .unwrap();
    env.store.apply_change(&approve).await.unwrap();
    let stored = load(&env.store, change.request.id()).await;
    assert_eq!(stored, approve.request);
    assert_eq!(stored.invoices().len(), 500);
    let page = env
        .store
        .list_requests(
            &m,
            &ListQuery {
                status: None,
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items, [approve.request]);
}
