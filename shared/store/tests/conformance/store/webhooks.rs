//! Webhook endpoints, delivery attempts and API keys.

use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
use cashout_core::ids::EventId;
use cashout_core::ports::Store;
use time::Duration;

use super::fx;
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::merchant;

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
