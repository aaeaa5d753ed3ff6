//! Webhook endpoints, delivery attempts and API keys.

use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
use cashout_core::ids::EventId;
use std::future::Future;

use cashout_core::ports::{Store, StoreError};
use cashout_core::signing::WebhookSecret;
use cashout_core::webhook::{DisabledReason, EndpointCreated, WebhookEndpoint};
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
        assert_eq!(
            env.store.create_endpoint(e, ENDPOINT_CAP).await.unwrap(),
            EndpointCreated::Created
        );
    }
    let err = env.store.create_endpoint(&e1, ENDPOINT_CAP).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 0 }),
        "an id already stored: {err:?}"
    );
    assert_eq!(env.store.get_endpoint(&a, e1.id).await.unwrap().as_ref(), Some(&e1));
    assert_eq!(
        env.store.get_endpoint(&b, e1.id).await.unwrap(),
        None,
        "another merchant's"
    );
    assert_eq!(env.store.list_endpoints(&a).await.unwrap(), [e1.clone(), e2.clone()]);

    let rotated = e1.rotate(WebhookSecret::from_key_bytes(&[9; 32]), fx.now());
    env.store.replace_endpoint(&rotated, 1).await.unwrap();
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

/// The cap of the conformance cases (the app's is 20).
const ENDPOINT_CAP: usize = 20;

/// Runs `write` once per input, all released together.
async fn race<S, T, R, F, Fut>(store: &S, inputs: Vec<T>, write: F) -> Vec<Result<R, StoreError>>
where
    S: Store + Clone + 'static,
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(S, T) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<R, StoreError>> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(inputs.len()));
    let tasks: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                write(store, input).await
            })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect()
}

pub async fn thirty_concurrent_endpoint_creations_at_a_cap_of_twenty_store_twenty_and_refuse_ten<
    S: Store + Clone + 'static,
>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let (m, other) = (merchant("clinic"), merchant("pharmacy"));
    let theirs = fx.endpoint(&other, "https://other.example/hook");
    assert_eq!(
        env.store.create_endpoint(&theirs, ENDPOINT_CAP).await.unwrap(),
        EndpointCreated::Created
    );
    let contenders: Vec<WebhookEndpoint> = (0..30)
        .map(|i| fx.endpoint(&m, &format!("https://{i}.example/hook")))
        .collect();
    let outcomes = race(
        &env.store,
        contenders.clone(),
        |store: S, e: WebhookEndpoint| async move { store.create_endpoint(&e, ENDPOINT_CAP).await },
    )
    .await;
    let created: Vec<&WebhookEndpoint> = contenders
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Ok(EndpointCreated::Created)))
        .map(|(e, _)| e)
        .collect();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EndpointCreated::LimitReached)))
        .count();
    assert_eq!((created.len(), refused), (20, 10), "{outcomes:?}");
    let stored = env.store.list_endpoints(&m).await.unwrap();
    assert_eq!(stored.len(), ENDPOINT_CAP);
    assert!(
        created.iter().all(|e| stored.contains(e)),
        "the winners are the ones stored"
    );
    assert_eq!(
        env.store.list_endpoints(&other).await.unwrap(),
        [theirs],
        "another merchant's cap is its own"
    );

    let late = fx.endpoint(&m, "https://late.example/hook");
    assert_eq!(
        env.store.create_endpoint(&late, ENDPOINT_CAP).await.unwrap(),
        EndpointCreated::LimitReached
    );
    assert!(
        env.store.get_endpoint(&m, late.id).await.unwrap().is_none(),
        "nothing written"
    );
    assert!(env.store.delete_endpoint(&m, created[0].id).await.unwrap());
    assert!(
        !env.store.delete_endpoint(&m, created[0].id).await.unwrap(),
        "a second deletion frees nothing more"
    );
    assert_eq!(
        env.store.create_endpoint(&late, ENDPOINT_CAP).await.unwrap(),
        EndpointCreated::Created,
        "a deletion frees a place"
    );
    let later = fx.endpoint(&m, "https://later.example/hook");
    assert_eq!(
        env.store.create_endpoint(&later, ENDPOINT_CAP).await.unwrap(),
        EndpointCreated::LimitReached,
        "one place, taken"
    );
    assert_eq!(env.store.list_endpoints(&m).await.unwrap().len(), ENDPOINT_CAP);
}

pub async fn an_endpoint_is_replaced_only_at_its_expected_version<S: Store + Clone + 'static>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let m = merchant("clinic");
    let ep = fx.endpoint(&m, "https://one.example/hook");
    assert_eq!(
        env.store.create_endpoint(&ep, ENDPOINT_CAP).await.unwrap(),
        EndpointCreated::Created
    );
    let rotate = |from: &WebhookEndpoint, key: u8| from.rotate(WebhookSecret::from_key_bytes(&[key; 32]), fx.now());

    let first = rotate(&ep, 1);
    env.store.replace_endpoint(&first, 1).await.unwrap();
    let stale = rotate(&ep, 2);
    let err = env.store.replace_endpoint(&stale, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1 }), "{err:?}");
    assert_eq!(
        env.store.get_endpoint(&m, ep.id).await.unwrap().as_ref(),
        Some(&first),
        "nothing written"
    );
    let skipping = WebhookEndpoint {
        version: 5,
        ..rotate(&first, 3)
    };
    let err = env.store.replace_endpoint(&skipping, 2).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { .. }),
        "a version that does not follow the expected one: {err:?}"
    );
    let missing = fx
        .endpoint(&m, "https://missing.example/hook")
        .rotate(WebhookSecret::from_key_bytes(&[4; 32]), fx.now());
    let err = env.store.replace_endpoint(&missing, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let contenders = vec![rotate(&first, 5), first.disable(DisabledReason::Gone)];
    let outcomes = race(
        &env.store,
        contenders.clone(),
        |store: S, e: WebhookEndpoint| async move { store.replace_endpoint(&e, 2).await },
    )
    .await;
    let winners: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "two replacements from one version, one winner: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| matches!(e, StoreError::Conflict { expected: 2 })),
        "{outcomes:?}"
    );
    assert_eq!(
        env.store.get_endpoint(&m, ep.id).await.unwrap().as_ref(),
        Some(&contenders[winners[0]])
    );
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
