//! Routing rules and provider health: conditional on their versions, at most `MAX_RULES` rules.

use std::future::Future;

use cashout_core::health::CallOutcome;
use cashout_core::ports::{Store, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::routing::RoutingRule;
use cashout_core::routing::rules::{MAX_DESCRIPTION, MAX_LISTED, MAX_RULES, MAX_WEIGHT, RuleProvider};
use time::Duration;

use super::fx;
use crate::conformance::StoreEnv;
use crate::conformance::fixtures::merchant;

/// Every rule stored, by id (the port lists them in no given order).
async fn rules<S: Store>(store: &S) -> Vec<RoutingRule> {
    let mut all = store.list_routing_rules().await.unwrap();
    all.sort_by_key(|r| r.id);
    all
}

/// Runs one write per input at once (a barrier releases them together); their outcomes in
/// input order.
async fn race<S, T, F, Fut>(store: &S, inputs: Vec<T>, write: F) -> Vec<Result<(), StoreError>>
where
    S: Store + Clone + 'static,
    T: Send + 'static,
    F: Fn(S, T) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
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

/// The index of the one write that won; every other lost with `loser`'s error.
fn one_winner(outcomes: &[Result<(), StoreError>], what: &str, loser: fn(&StoreError) -> bool) -> usize {
    let winners: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{what}: exactly one writer wins: {outcomes:?}");
    for e in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(loser(e), "{what}: a lost race is {e:?}");
    }
    winners[0]
}

pub async fn routing_rules_are_created_read_listed_replaced_and_deleted<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    assert!(env.store.list_routing_rules().await.unwrap().is_empty());
    let clinic = fx.rule(Some(&merchant("clinic")), 1);
    let default = fx.rule(None, 10);
    assert_eq!(env.store.get_routing_rule(clinic.id).await.unwrap(), None);
    for r in [&default, &clinic] {
        env.store.put_routing_rule(r, 0).await.unwrap();
    }
    assert_eq!(
        env.store.get_routing_rule(clinic.id).await.unwrap().as_ref(),
        Some(&clinic)
    );
    assert_eq!(rules(&env.store).await, [clinic.clone(), default.clone()]);

    env.clock.advance(Duration::minutes(5));
    let replaced = fx.reprioritised(&clinic, 3);
    env.store.put_routing_rule(&replaced, 1).await.unwrap();
    assert_eq!(
        env.store.get_routing_rule(clinic.id).await.unwrap().as_ref(),
        Some(&replaced)
    );
    assert_eq!(rules(&env.store).await, [replaced.clone(), default.clone()]);

    assert!(env.store.delete_routing_rule(default.id).await.unwrap());
    assert!(
        !env.store.delete_routing_rule(default.id).await.unwrap(),
        "already deleted"
    );
    assert_eq!(env.store.get_routing_rule(default.id).await.unwrap(), None);
    assert_eq!(rules(&env.store).await, [replaced]);
    // A deleted rule's id is free again.
    env.store.put_routing_rule(&default, 0).await.unwrap();
    assert_eq!(rules(&env.store).await.len(), 2);
}

pub async fn a_duplicate_create_or_a_stale_replace_of_a_rule_is_a_conflict_and_writes_nothing<S: Store>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let v1 = fx.rule(Some(&merchant("clinic")), 1);
    env.store.put_routing_rule(&v1, 0).await.unwrap();
    let mut again = fx.reprioritised(&v1, 9);
    again.version = 1;
    let err = env.store.put_routing_rule(&again, 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 0 }),
        "a duplicate create: {err:?}"
    );
    assert_eq!(env.store.get_routing_rule(v1.id).await.unwrap().as_ref(), Some(&v1));

    let v2 = fx.reprioritised(&v1, 2);
    env.store.put_routing_rule(&v2, 1).await.unwrap();
    let stale = fx.reprioritised(&v1, 7);
    let err = env.store.put_routing_rule(&stale, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 1 }),
        "a stale replace: {err:?}"
    );
    assert_eq!(env.store.get_routing_rule(v1.id).await.unwrap().as_ref(), Some(&v2));

    let missing = fx.reprioritised(&fx.rule(None, 1), 4);
    let err = env.store.put_routing_rule(&missing, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 1 }),
        "a replace of nothing: {err:?}"
    );
    assert_eq!(env.store.get_routing_rule(missing.id).await.unwrap(), None);

    // A write must carry the version after the one it expects, or a later writer from the same
    // version would overwrite it unseen.
    let unchanged_version = fx.reprioritised(&v1, 5);
    let err = env.store.put_routing_rule(&unchanged_version, 2).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(rules(&env.store).await, [v2]);
}

pub async fn the_rule_after_the_five_hundredth_is_invalid_even_when_creations_race_for_the_last_place<
    S: Store + Clone + 'static,
>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let mut stored = Vec::with_capacity(MAX_RULES);
    for i in 0..MAX_RULES {
        let r = fx.rule(None, u32::try_from(i).unwrap());
        env.store.put_routing_rule(&r, 0).await.unwrap();
        stored.push(r);
    }
    let err = env.store.put_routing_rule(&fx.rule(None, 0), 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { .. }),
        "rule {}: {err:?}",
        MAX_RULES + 1
    );
    let err = env.store.put_routing_rule(&stored[7], 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 0 }),
        "a duplicate at the limit is still a conflict: {err:?}"
    );
    assert_eq!(rules(&env.store).await.len(), MAX_RULES);
    // At the limit a rule can still be replaced.
    let replaced = fx.reprioritised(&stored[3], 1000);
    env.store.put_routing_rule(&replaced, 1).await.unwrap();

    assert!(env.store.delete_routing_rule(stored[0].id).await.unwrap());
    let contenders: Vec<RoutingRule> = (0..8).map(|i| fx.rule(None, i)).collect();
    let outcomes = race(&env.store, contenders.clone(), |store: S, r: RoutingRule| async move {
        store.put_routing_rule(&r, 0).await
    })
    .await;
    let won = one_winner(&outcomes, "creations for the last place", |e| {
        matches!(e, StoreError::Invalid { .. })
    });
    let all = rules(&env.store).await;
    assert_eq!(all.len(), MAX_RULES);
    assert!(all.contains(&contenders[won]) && all.contains(&replaced));
}

pub async fn the_largest_valid_rule_is_stored_whole_and_an_oversized_one_is_invalid<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    let mut largest = fx.rule(Some(&merchant(&"m".repeat(64))), u32::MAX);
    let spec = &mut largest.spec;
    spec.description = Some("€".repeat(MAX_DESCRIPTION));
    spec.conditions.countries = vec![spec.conditions.countries[0]; MAX_LISTED];
    spec.conditions.currencies = vec![spec.conditions.currencies[0]; MAX_LISTED];
    spec.conditions.payout_methods = vec![spec.conditions.payout_methods[0]; MAX_LISTED];
    spec.providers = ProviderName::ALL
        .into_iter()
        .map(|provider| RuleProvider {
            provider,
            weight: Some(MAX_WEIGHT),
        })
        .collect();
    spec.check().unwrap();
    env.store.put_routing_rule(&largest, 0).await.unwrap();
    assert_eq!(
        env.store.get_routing_rule(largest.id).await.unwrap().as_ref(),
        Some(&largest)
    );

    // The store does not run the spec's checks; it still bounds what it keeps.
    let mut oversized = fx.rule(None, 1);
    oversized.spec.description = Some("x".repeat(20_000));
    let err = env.store.put_routing_rule(&oversized, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(rules(&env.store).await, [largest]);
}

pub async fn provider_health_is_written_only_at_its_expected_version<S: Store>(env: StoreEnv<S>) {
    let fx = fx(&env);
    assert_eq!(env.store.get_provider_health(ProviderName::D24).await.unwrap(), None);
    assert!(env.store.list_provider_health().await.unwrap().is_empty());

    let d24 = fx.health(ProviderName::D24);
    env.store.put_provider_health(&d24, 0).await.unwrap();
    let err = env.store.put_provider_health(&d24, 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 0 }),
        "a second first write: {err:?}"
    );

    env.clock.advance(Duration::seconds(2));
    let failed = fx.recorded(&d24, CallOutcome::Timeout);
    env.store.put_provider_health(&failed, 1).await.unwrap();
    let stale = fx.recorded(&d24, CallOutcome::Success);
    let err = env.store.put_provider_health(&stale, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 1 }),
        "a stale write: {err:?}"
    );
    assert_eq!(
        env.store.get_provider_health(ProviderName::D24).await.unwrap().as_ref(),
        Some(&failed)
    );

    let mut never_stored = fx.health(ProviderName::Tupay);
    never_stored.version = 4;
    let err = env.store.put_provider_health(&never_stored, 3).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 3 }),
        "nothing at version 3: {err:?}"
    );
    let err = env.store.put_provider_health(&failed, 2).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "version 2 again: {err:?}");

    let onspot = fx.health(ProviderName::Onspot);
    env.store.put_provider_health(&onspot, 0).await.unwrap();
    let mut all = env.store.list_provider_health().await.unwrap();
    all.sort_by_key(|h| h.provider);
    assert_eq!(all, [failed, onspot]);
}

pub async fn concurrent_writers_of_one_rule_or_one_health_from_one_version_have_one_winner<
    S: Store + Clone + 'static,
>(
    env: StoreEnv<S>,
) {
    let fx = fx(&env);
    let first = fx.rule(Some(&merchant("clinic")), 1);
    let creations: Vec<RoutingRule> = (0..8)
        .map(|i| RoutingRule {
            spec: fx.reprioritised(&first, i).spec,
            ..first.clone()
        })
        .collect();
    let outcomes = race(&env.store, creations.clone(), |store: S, r: RoutingRule| async move {
        store.put_routing_rule(&r, 0).await
    })
    .await;
    let won = one_winner(&outcomes, "rule creations", |e| {
        matches!(e, StoreError::Conflict { expected: 0 })
    });
    assert_eq!(rules(&env.store).await, [creations[won].clone()]);

    let v1 = creations[won].clone();
    let replacements: Vec<RoutingRule> = (0..8).map(|i| fx.reprioritised(&v1, 100 + i)).collect();
    let outcomes = race(
        &env.store,
        replacements.clone(),
        |store: S, r: RoutingRule| async move { store.put_routing_rule(&r, 1).await },
    )
    .await;
    let won = one_winner(&outcomes, "rule replacements", |e| {
        matches!(e, StoreError::Conflict { expected: 1 })
    });
    assert_eq!(
        env.store.get_routing_rule(v1.id).await.unwrap().as_ref(),
        Some(&replacements[won])
    );

    let fresh = fx.health(ProviderName::Cascad);
    let firsts: Vec<_> = [
        CallOutcome::Success,
        CallOutcome::Decline,
        CallOutcome::Error,
        CallOutcome::Timeout,
    ]
    .into_iter()
    .map(|o| {
        let mut h = fx.recorded(&fresh, o);
        h.version = 1;
        h
    })
    .collect();
    let outcomes = race(&env.store, firsts.clone(), |store: S, h| async move {
        store.put_provider_health(&h, 0).await
    })
    .await;
    let won = one_winner(&outcomes, "first health writes", |e| {
        matches!(e, StoreError::Conflict { expected: 0 })
    });
    let stored = firsts[won].clone();
    assert_eq!(
        env.store
            .get_provider_health(ProviderName::Cascad)
            .await
            .unwrap()
            .as_ref(),
        Some(&stored)
    );

    let nexts: Vec<_> = [
        CallOutcome::Success,
        CallOutcome::Error,
        CallOutcome::Timeout,
        CallOutcome::Decline,
    ]
    .into_iter()
    .map(|o| fx.recorded(&stored, o))
    .collect();
    let outcomes = race(&env.store, nexts.clone(), |store: S, h| async move {
        store.put_provider_health(&h, 1).await
    })
    .await;
    let won = one_winner(&outcomes, "health updates", |e| {
        matches!(e, StoreError::Conflict { expected: 1 })
    });
    assert_eq!(
        env.store
            .get_provider_health(ProviderName::Cascad)
            .await
            .unwrap()
            .as_ref(),
        Some(&nexts[won])
    );
}
