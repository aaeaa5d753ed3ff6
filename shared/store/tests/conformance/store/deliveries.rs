//! What webhook delivery needs beyond endpoints: a merchant's events across its requests
//! (newest first, filtered, paged) and the claim of an attempt number (one sender per number; a
//! dead sender's claim taken over after its lease).

use cashout_core::event::EventType;
use cashout_core::ids::EventId;
use cashout_core::ports::{EventQuery, Store};
use cashout_core::webhook::AttemptOutcome;
use time::Duration;

use super::{create, fx};
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::merchant;

fn query() -> EventQuery {
    EventQuery {
        types: vec![],
        cashout_request_id: None,
        since: None,
        until: None,
        limit: 100,
        cursor: None,
    }
}

pub async fn a_merchants_events_are_listed_newest_first_filtered_and_paged<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let mut made = Vec::new();
    let start = fx.now();
    for _ in 0..5 {
        let change = fx.create(&m, 1);
        create(&env.store, &fx, &change).await;
        made.push(change.request.id());
        env.clock.advance(Duration::seconds(10));
    }
    let stranger = fx.create(&merchant("pharmacy"), 1);
    create(&env.store, &fx, &stranger).await;

    let mut listed = Vec::new();
    let mut q = EventQuery { limit: 2, ..query() };
    loop {
        let page = env.store.list_merchant_events(&m, &q).await.unwrap();
        assert!(page.items.len() <= 2);
        listed.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<_> = made.iter().rev().map(|id| EventId::new(*id, 1)).collect();
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), newest_first);

    let window = EventQuery {
        since: Some(start + Duration::seconds(10)),
        until: Some(start + Duration::seconds(30)),
        ..query()
    };
    let in_window = env.store.list_merchant_events(&m, &window).await.unwrap();
    assert_eq!(
        in_window.items.iter().map(|e| e.cashout_request_id).collect::<Vec<_>>(),
        vec![made[2], made[1]],
        "since is inclusive, until exclusive"
    );
    let one = EventQuery {
        cashout_request_id: Some(made[3]),
        ..query()
    };
    let of_one = env.store.list_merchant_events(&m, &one).await.unwrap();
    assert_eq!(of_one.items.len(), 1);
    assert_eq!(of_one.items[0].cashout_request_id, made[3]);
    let foreign = EventQuery {
        cashout_request_id: Some(stranger.request.id()),
        ..query()
    };
    assert!(
        env.store
            .list_merchant_events(&m, &foreign)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let typed = EventQuery {
        types: vec![EventType::StatusUpdate],
        ..query()
    };
    assert!(
        env.store
            .list_merchant_events(&m, &typed)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let created = EventQuery {
        types: vec![EventType::Created],
        ..query()
    };
    assert_eq!(
        env.store.list_merchant_events(&m, &created).await.unwrap().items.len(),
        5
    );
    let bad = EventQuery {
        cursor: Some(cashout_core::ports::Cursor("nope".into())),
        ..query()
    };
    assert!(env.store.list_merchant_events(&m, &bad).await.is_err());
}

pub async fn an_attempt_number_is_claimed_once_and_a_dead_senders_claim_is_taken_over<S: Store + Clone + 'static>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let ep = fx.endpoint(&m, "https://one.example/hook");
    let ev = EventId::new(fx.request_id(), 1);
    let claim = |n: u32| {
        let mut a = fx.attempt(&ep, ev, n);
        a.outcome = AttemptOutcome::Sending;
        a.next_attempt_at = None;
        a
    };
    let lease_start = fx.now() - Duration::minutes(2);
    assert!(env.store.claim_attempt(&claim(1), lease_start).await.unwrap());
    assert!(!env.store.claim_attempt(&claim(1), lease_start).await.unwrap(), "held");
    let mut done = claim(1);
    done.outcome = AttemptOutcome::Delivered;
    env.store.record_attempt(&done).await.unwrap();
    let far = fx.now() + Duration::hours(1);
    assert!(
        !env.store.claim_attempt(&claim(1), far).await.unwrap(),
        "a recorded attempt is never claimed again"
    );
    assert_eq!(env.store.list_event_attempts(ev).await.unwrap(), vec![done]);

    // A claim whose sender died is taken over once its lease is over, by one caller only.
    assert!(env.store.claim_attempt(&claim(2), lease_start).await.unwrap());
    env.clock.advance(Duration::minutes(5));
    let stale_before = fx.now() - Duration::minutes(2);
    let mut racers = Vec::new();
    for _ in 0..16 {
        let store = env.store.clone();
        let mut a = claim(2);
        a.attempted_at = fx.now();
        racers.push(tokio::spawn(async move {
            store.claim_attempt(&a, stale_before).await.unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "one of sixteen takes the stale claim over");
}
