//! What every store backend must do.

use std::collections::HashSet;

use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
use cashout_core::cashout::CashoutRequest;
use cashout_core::claim::InvoiceClaim;
use cashout_core::event::{EventPayload, StatusEvent};
use cashout_core::ids::{EventId, ProviderPayoutId};
use cashout_core::ports::{
    CreateOutcome, Cursor, IdempotencyRecord, IdempotencyState, ListQuery, Store, StoreError, StoredResponse,
};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::review::ReviewPolicy;
use cashout_core::status::CashoutStatus;
use time::Duration;

use super::StoreEnv;
use super::fixtures::{Fixtures, key, merchant};

fn fx<S>(env: &StoreEnv<S>) -> Fixtures {
    Fixtures::new(env.clock.clone())
}

async fn create<S: Store>(store: &S, fx: &Fixtures, change: &cashout_core::cashout::Change) {
    let idem = fx.idempotency(change, &format!("k-{}", change.request.id()), "h");
    assert_eq!(
        store.create_request(change, &idem, &[]).await.unwrap(),
        CreateOutcome::Created
    );
}

async fn load<S: Store>(store: &S, id: cashout_core::ids::CashoutRequestId) -> CashoutRequest {
    store.get_request(id).await.unwrap().expect("the request exists")
}

fn pending(payout_id: &str) -> ProviderPayout {
    ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new(payout_id).unwrap(),
        reference: None,
        state: PayoutState::Pending,
        provider_status: "PENDING".into(),
        updated_at: None,
    }
}

pub async fn created_requests_read_back_with_their_first_event<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let change = fx.create(&merchant("clinic"), 2);
    let idem = fx.idempotency(&change, "key-1", "hash-1");
    let out = env.store.create_request(&change, &idem, &[]).await.unwrap();
    assert_eq!(out, CreateOutcome::Created);
    assert_eq!(load(&env.store, change.request.id()).await, change.request);
    assert_eq!(env.store.list_events(change.request.id()).await.unwrap(), change.events);
    let first = change.events[0].id;
    assert_eq!(
        env.store.get_event(first).await.unwrap().as_ref(),
        Some(&change.events[0])
    );
    let missing = fx.request_id();
    assert_eq!(env.store.get_request(missing).await.unwrap(), None);
    assert!(env.store.list_events(missing).await.unwrap().is_empty());
    assert_eq!(env.store.get_event(EventId::new(missing, 1)).await.unwrap(), None);
}

pub async fn a_live_key_with_the_same_body_returns_the_first_record_and_writes_nothing<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let first = fx.create(&m, 1);
    let first_idem = fx.idempotency(&first, "same", "hash-a");
    env.store.create_request(&first, &first_idem, &[]).await.unwrap();

    env.clock.advance(Duration::hours(23));
    let second = fx.create(&m, 1);
    let second_idem = fx.idempotency(&second, "same", "hash-a");
    let out = env.store.create_request(&second, &second_idem, &[]).await.unwrap();
    assert_eq!(out, CreateOutcome::Existing(first_idem.clone()));
    assert_eq!(env.store.get_request(second.request.id()).await.unwrap(), None);
    assert!(env.store.list_events(second.request.id()).await.unwrap().is_empty());

    // Keys are per merchant: another merchant's identical key is another record.
    let other = fx.create(&merchant("pharmacy"), 1);
    let other_idem = fx.idempotency(&other, "same", "hash-a");
    assert_eq!(
        env.store.create_request(&other, &other_idem, &[]).await.unwrap(),
        CreateOutcome::Created
    );
}

pub async fn a_live_key_with_another_body_returns_the_first_record_with_its_hash<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let first = fx.create(&m, 1);
    env.store
        .create_request(&first, &fx.idempotency(&first, "k", "hash-a"), &[])
        .await
        .unwrap();
    let second = fx.create(&m, 3);
    let out = env
        .store
        .create_request(&second, &fx.idempotency(&second, "k", "hash-b"), &[])
        .await
        .unwrap();
    let CreateOutcome::Existing(record) = out else {
        panic!("a live key must not create twice: {out:?}")
    };
    assert_eq!(record.body_hash, "hash-a");
    assert_eq!(record.cashout_request_id, first.request.id());
    assert_eq!(env.store.get_request(second.request.id()).await.unwrap(), None);
}

pub async fn sixty_four_concurrent_creates_with_one_key_write_one_request_and_one_event<S: Store + Clone + 'static>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let changes: Vec<_> = (0..64).map(|_| fx.create(&m, 1)).collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = changes
        .iter()
        .map(|c| {
            let (store, c, idem, barrier) = (
                env.store.clone(),
                c.clone(),
                fx.idempotency(c, "one-key", "h"),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_request(&c, &idem, &[]).await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut existing = HashSet::new();
    for (task, change) in futures::future::join_all(tasks).await.into_iter().zip(&changes) {
        match task.unwrap().unwrap() {
            CreateOutcome::Created => created.push(change.request.id()),
            CreateOutcome::Existing(r) => {
                existing.insert(r.cashout_request_id);
            }
            CreateOutcome::InvoiceHeld(claim) => panic!("no invoice was shared: {claim:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one creation wins");
    assert_eq!(existing, HashSet::from([created[0]]), "the others see the winner");
    let page = env
        .store
        .list_requests(
            &m,
            &ListQuery {
                status: None,
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id(), created[0]);
    assert_eq!(env.store.list_events(created[0]).await.unwrap().len(), 1);
    let outbox = env
        .store
        .unpublished_events(fx.now() + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1, "one event in the outbox");
}

pub async fn an_expired_idempotency_record_counts_as_absent_and_is_replaced<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let first = fx.create(&m, 1);
    let first_idem = fx.idempotency(&first, "k", "h1");
    env.store.create_request(&first, &first_idem, &[]).await.unwrap();

    // One nanosecond before expiry it is live; at expiry it counts as absent.
    env.clock.set(first_idem.expires_at - Duration::nanoseconds(1));
    let early = fx.create(&m, 1);
    assert!(matches!(
        env.store
            .create_request(&early, &fx.idempotency(&early, "k", "h2"), &[])
            .await
            .unwrap(),
        CreateOutcome::Existing(_)
    ));
    env.clock.set(first_idem.expires_at);
    let second = fx.create(&m, 1);
    let second_idem = fx.idempotency(&second, "k", "h2");
    assert_eq!(
        env.store.create_request(&second, &second_idem, &[]).await.unwrap(),
        CreateOutcome::Created
    );
    // The new record is the one now answered.
    let third = fx.create(&m, 1);
    assert_eq!(
        env.store
            .create_request(&third, &fx.idempotency(&third, "k", "h3"), &[])
            .await
            .unwrap(),
        CreateOutcome::Existing(second_idem)
    );
    // The first request itself is kept: only the key's record expired.
    assert!(env.store.get_request(first.request.id()).await.unwrap().is_some());
}

pub async fn a_lapsed_claim_is_reclaimed_once_and_completion_is_replayed<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let change = fx.create(&m, 1);
    let idem = fx.idempotency(&change, "k", "h");
    env.store.create_request(&change, &idem, &[]).await.unwrap();

    env.clock
        .advance(IdempotencyRecord::IN_PROGRESS_EXPIRY + Duration::seconds(1));
    let new_until = fx.now() + IdempotencyRecord::IN_PROGRESS_EXPIRY;
    assert!(env.store.reclaim_idempotency(&idem, new_until).await.unwrap());
    // A second taker with the same (now stale) observation loses.
    assert!(!env.store.reclaim_idempotency(&idem, new_until).await.unwrap());

    let retry = fx.create(&m, 1);
    let CreateOutcome::Existing(now_held) = env
        .store
        .create_request(&retry, &fx.idempotency(&retry, "k", "h"), &[])
        .await
        .unwrap()
    else {
        panic!("the key is live")
    };
    assert_eq!(now_held.state, IdempotencyState::InProgress { until: new_until });

    let response = StoredResponse {
        status: 201,
        body: r#"{"id":"x"}"#.into(),
    };
    env.store.complete_idempotency(&m, &key("k"), &response).await.unwrap();
    let again = fx.create(&m, 1);
    let CreateOutcome::Existing(done) = env
        .store
        .create_request(&again, &fx.idempotency(&again, "k", "h"), &[])
        .await
        .unwrap()
    else {
        panic!("the key is live")
    };
    assert_eq!(done.state, IdempotencyState::Completed { response });
    assert_eq!(done.cashout_request_id, change.request.id());
    assert_eq!(done.expires_at, idem.expires_at, "completion keeps the TTL");
    // Completed records cannot be reclaimed.
    assert!(!env.store.reclaim_idempotency(&now_held, new_until).await.unwrap());
    assert!(!env.store.reclaim_idempotency(&done, new_until).await.unwrap());
}

pub async fn completing_an_unknown_idempotency_record_is_not_found<S: Store>(env: StoreEnv<S>) {
    let response = StoredResponse {
        status: 201,
        body: "{}".into(),
    };
    let err = env
        .store
        .complete_idempotency(&merchant("clinic"), &key("nope"), &response)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn a_change_is_written_only_at_the_expected_version<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let change = fx.create(&merchant("clinic"), 1);
    create(&env.store, &fx, &change).await;
    let v1 = change.request;
    env.clock.advance(Duration::seconds(1));
    let approve = v1.approve(fx.now()).unwrap();
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
            0 => v1.approve(fx.now()).unwrap(),
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
    let approve = change.request.approve(fx.now()).unwrap();
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
    let review = a.request.review(&ReviewPolicy::default(), t_review).unwrap();
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
            let approve = c.request.approve(fx.now()).unwrap();
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
        let approve = c.request.approve(fx.now()).unwrap();
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
    let approve = change.request.approve(fx.now()).unwrap();
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

pub async fn endpoints_are_created_replaced_listed_and_deleted_per_merchant<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let (a, b) = (merchant("clinic"), merchant("pharmacy"));
    let e1 = fx.endpoint(&a, "https://one.example/hook");
    env.clock.advance(Duration::seconds(1));
    let e2 = fx.endpoint(&a, "https://two.example/hook");
    let eb = fx.endpoint(&b, "https://b.example/hook");
    for e in [&e2, &e1, &eb] {
        env.store.put_endpoint(e).await.unwrap();
    }
    assert_eq!(env.store.get_endpoint(&a, e1.id).await.unwrap().as_ref(), Some(&e1));
    assert_eq!(
        env.store.get_endpoint(&b, e1.id).await.unwrap(),
        None,
        "another merchant's"
    );
    assert_eq!(env.store.list_endpoints(&a).await.unwrap(), [e1.clone(), e2.clone()]);

    let rotated = e1.rotate(cashout_core::signing::WebhookSecret::from_key_bytes(&[9; 32]), fx.now());
    env.store.put_endpoint(&rotated).await.unwrap();
    assert_eq!(
        env.store.get_endpoint(&a, e1.id).await.unwrap().as_ref(),
        Some(&rotated)
    );

    assert!(!env.store.delete_endpoint(&b, e1.id).await.unwrap());
    assert!(env.store.delete_endpoint(&a, e1.id).await.unwrap());
    assert!(!env.store.delete_endpoint(&a, e1.id).await.unwrap());
    assert_eq!(env.store.list_endpoints(&a).await.unwrap(), [e2]);
    assert_eq!(env.store.list_endpoints(&b).await.unwrap(), [eb]);
}

pub async fn delivery_attempts_are_listed_per_endpoint_newest_first_and_per_event<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let ep = fx.endpoint(&m, "https://one.example/hook");
    let other = fx.endpoint(&m, "https://two.example/hook");
    let req = fx.request_id();
    let (ev1, ev2) = (EventId::new(req, 1), EventId::new(req, 2));
    let mut made = Vec::new();
    for (ev, n) in [(ev1, 1), (ev2, 1), (ev1, 2), (ev2, 2), (ev1, 3)] {
        let a = fx.attempt(&ep, ev, n);
        env.store.record_attempt(&a).await.unwrap();
        made.push(a);
        env.clock.advance(Duration::seconds(5));
    }
    let to_other = fx.attempt(&other, ev1, 1);
    env.store.record_attempt(&to_other).await.unwrap();
    env.store.record_attempt(&made[4]).await.unwrap(); // recording twice keeps one

    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = env.store.list_attempts(&m, ep.id, 2, cursor.as_ref()).await.unwrap();
        listed.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<_> = made.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let strangers = env
        .store
        .list_attempts(&merchant("pharmacy"), ep.id, 10, None)
        .await
        .unwrap();
    assert!(
        strangers.items.is_empty(),
        "only the endpoint's merchant sees its attempts"
    );

    let of_ev1 = env.store.list_event_attempts(ev1).await.unwrap();
    assert_eq!(of_ev1, [made[0].clone(), made[2].clone(), made[4].clone(), to_other]);
}

pub async fn api_keys_are_found_by_hash<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let key = ApiKey::new("sk_test_clinic");
    let record = ApiKeyRecord {
        hash: key.hash(),
        principal: Principal::Merchant {
            merchant_id: merchant("clinic"),
        },
        label: Some("tests".into()),
        created_at: fx.now(),
    };
    env.store.put_api_key(&record).await.unwrap();
    env.store.put_api_key(&record).await.unwrap();
    assert_eq!(env.store.get_api_key(&key.hash()).await.unwrap(), Some(record));
    assert_eq!(
        env.store.get_api_key(&ApiKey::new("sk_other").hash()).await.unwrap(),
        None
    );
}

async fn try_create<S: Store>(
    store: &S,
    fx: &Fixtures,
    change: &cashout_core::cashout::Change,
    released: &[InvoiceClaim],
) -> CreateOutcome {
    let idem = fx.idempotency(change, &format!("k-{}", change.request.id()), "h");
    store.create_request(change, &idem, released).await.unwrap()
}

fn held(outcome: CreateOutcome) -> InvoiceClaim {
    match outcome {
        CreateOutcome::InvoiceHeld(claim) => claim,
        other => panic!("expected the invoice to be held, got {other:?}"),
    }
}

pub async fn an_invoice_claimed_by_one_request_is_refused_to_another_and_nothing_is_written<S: Store>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let a = fx.create_invoices(&m, &[("11222333000181", "INV-1"), ("11222333000181", "INV-2")]);
    create(&env.store, &fx, &a).await;
    let b = fx.create_invoices(&m, &[("11222333000181", "INV-3"), ("11222333000181", "INV-2")]);
    let claim = held(try_create(&env.store, &fx, &b, &[]).await);
    assert_eq!(claim.holder, a.request.id());
    assert_eq!(claim.key.invoice_id.as_str(), "INV-2");
    assert_eq!(claim.key.payer_tax_id, "11222333000181");
    assert_eq!(
        env.store.get_request(b.request.id()).await.unwrap(),
        None,
        "the refused request is not written"
    );
    assert!(env.store.list_events(b.request.id()).await.unwrap().is_empty());
    // The refused create claimed nothing: its other invoice is free.
    create(&env.store, &fx, &fx.create_invoices(&m, &[("11222333000181", "INV-3")])).await;
    // The same invoice id from another payer, or at another merchant, is another invoice.
    create(&env.store, &fx, &fx.create_invoices(&m, &[("99888777000166", "INV-2")])).await;
    create(
        &env.store,
        &fx,
        &fx.create_invoices(&merchant("other"), &[("11222333000181", "INV-2")]),
    )
    .await;
}

pub async fn a_claim_is_taken_over_only_while_it_is_still_the_released_one<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let a = fx.create_invoices(&m, &[("1", "INV-1")]);
    create(&env.store, &fx, &a).await;
    let b = fx.create_invoices(&m, &[("1", "INV-1")]);
    let a_claim = held(try_create(&env.store, &fx, &b, &[]).await);
    assert_eq!(
        try_create(&env.store, &fx, &b, std::slice::from_ref(&a_claim)).await,
        CreateOutcome::Created
    );
    // Another writer who also saw A's claim released comes too late: B holds it now.
    let c = fx.create_invoices(&m, &[("1", "INV-1")]);
    let now_held = held(try_create(&env.store, &fx, &c, &[a_claim]).await);
    assert_eq!(now_held.holder, b.request.id());
    assert_eq!(env.store.get_request(c.request.id()).await.unwrap(), None);
}

pub async fn sixty_four_concurrent_creates_of_one_invoice_have_one_winner<S: Store + Clone + 'static>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let changes: Vec<_> = (0..64)
        .map(|i| fx.create_invoices(&m, &[("1", &format!("OWN-{i}")), ("1", "SHARED")]))
        .collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = changes
        .iter()
        .map(|c| {
            let (store, c, idem, barrier) = (
                env.store.clone(),
                c.clone(),
                fx.idempotency(c, &format!("k-{}", c.request.id()), "h"),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_request(&c, &idem, &[]).await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut holders = HashSet::new();
    for (task, change) in futures::future::join_all(tasks).await.into_iter().zip(&changes) {
        match task.unwrap().unwrap() {
            CreateOutcome::Created => created.push(change.request.id()),
            CreateOutcome::InvoiceHeld(claim) => {
                holders.insert(claim.holder);
            }
            CreateOutcome::Existing(r) => panic!("no key was shared: {r:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one request advances the invoice");
    assert_eq!(holders, HashSet::from([created[0]]), "the others are told who holds it");
    for change in &changes {
        let stored = env.store.get_request(change.request.id()).await.unwrap();
        assert_eq!(stored.is_some(), change.request.id() == created[0]);
    }
}

pub async fn five_hundred_invoices_are_claimed_all_or_nothing<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let n = cashout_core::input::MAX_INVOICES;
    let ids: Vec<String> = (0..n).map(|i| format!("INV-{i:04}")).collect();
    let first: Vec<(&str, &str)> = ids.iter().map(|i| ("1", i.as_str())).collect();
    let a = fx.create_invoices(&m, &first);
    create(&env.store, &fx, &a).await;
    // A replay of A's key is answered from its record, not refused for A's own claims.
    let replay = fx.create_invoices(&m, &first);
    let a_key = format!("k-{}", a.request.id());
    let out = env
        .store
        .create_request(&replay, &fx.idempotency(&replay, &a_key, "h"), &[])
        .await
        .unwrap();
    assert!(
        matches!(out, CreateOutcome::Existing(ref r) if r.cashout_request_id == a.request.id()),
        "{out:?}"
    );
    // B shares only A's last invoice: refused, and none of its other claims stays behind.
    let mut second: Vec<(&str, &str)> = ids[..n - 1].iter().map(|i| ("2", i.as_str())).collect();
    second.push(("1", ids[n - 1].as_str()));
    let b = fx.create_invoices(&m, &second);
    assert_eq!(held(try_create(&env.store, &fx, &b, &[]).await).holder, a.request.id());
    let c = fx.create_invoices(&m, &second[..n - 1]);
    create(&env.store, &fx, &c).await;
}

pub async fn a_reviewed_creation_is_one_write_with_both_events_and_a_completed_record<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let created = fx.create(&m, 1);
    let review = created.request.review(&ReviewPolicy::default(), fx.now()).unwrap();
    let both = created.clone().then(review).unwrap();
    let response = StoredResponse {
        status: 201,
        body: "{\"status\":\"APPROVED\"}".into(),
    };
    let record = IdempotencyRecord::completed(
        m.clone(),
        key("reviewed"),
        "hash-r".into(),
        both.request.id(),
        response.clone(),
        fx.now(),
    );
    assert_eq!(
        env.store.create_request(&both, &record, &[]).await.unwrap(),
        CreateOutcome::Created
    );
    let stored = load(&env.store, both.request.id()).await;
    assert_eq!((stored.status(), stored.version()), (CashoutStatus::Approved, 1));
    let events = env.store.list_events(both.request.id()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    // A replay finds the answer at once.
    let again = fx.create(&m, 1);
    let replay = fx.idempotency(&again, "reviewed", "hash-r");
    match env.store.create_request(&again, &replay, &[]).await.unwrap() {
        CreateOutcome::Existing(found) => {
            assert_eq!(found.state, IdempotencyState::Completed { response });
            assert_eq!(found.cashout_request_id, both.request.id());
        }
        other => panic!("expected the first record, got {other:?}"),
    }
    // Both events are in the outbox, and leave it together.
    let unpublished = env
        .store
        .unpublished_events(fx.now() + Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(unpublished.len(), 2);
    let ids: Vec<EventId> = unpublished.iter().map(|e| e.id).collect();
    env.store.mark_published_batch(&ids).await.unwrap();
    env.store.mark_published_batch(&ids).await.unwrap(); // idempotent
    assert!(
        env.store
            .unpublished_events(fx.now() + Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
