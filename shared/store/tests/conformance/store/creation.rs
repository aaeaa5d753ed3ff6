//! Creating requests: idempotency records, invoice claims, a reviewed creation.

use std::collections::HashSet;

use cashout_core::claim::InvoiceClaim;
use cashout_core::ids::EventId;
use cashout_core::ports::{
    CreateOutcome, IdempotencyRecord, IdempotencyState, ListQuery, Store, StoreError, StoredResponse,
};
use cashout_core::review::{ApprovalPolicy, ReviewFacts};
use cashout_core::status::CashoutStatus;
use time::Duration;

use super::{create, fx, load};
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::{Fixtures, key, merchant};

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
    let review = created
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, fx.now())
        .unwrap();
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
