//! Operators, approval policies, day usage, known beneficiaries and sessions: versioned writes
//! conflict like routing rules, usage counts atomically, sessions are written once.

use std::collections::BTreeSet;

use cashout_core::auth::{
    ApiKeyHash, OperatorName, OperatorRecord, OperatorRole, Principal, SessionRecord, token_hash,
};
use cashout_core::money::Currency;
use cashout_core::ports::{DayUsageCount, Store, StoreError};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use crate::conformance::StoreEnv;
use crate::conformance::fixtures::{merchant, t0};

fn operator(name: &str, role: OperatorRole, version: u64) -> OperatorRecord {
    OperatorRecord {
        name: OperatorName::new(name).unwrap(),
        role,
        created_at: t0(),
        created_by: "cashout-admin".into(),
        revoked_at: None,
        version,
    }
}

fn policy(scope: PolicyScope, limit: i64, version: u64) -> ApprovalPolicy {
    let mut p = ApprovalPolicy::limit_only(scope, Decimal::from(limit));
    p.version = version;
    p.updated_at = t0();
    p
}

fn session(token: &str, expires_at: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        token_hash: token_hash(token),
        principal: Principal::admin("alice"),
        key_hash: ApiKeyHash::from_hex("ab12"),
        csrf_token: format!("csrf-{token}"),
        created_at: t0(),
        expires_at,
    }
}

fn is_conflict(r: Result<(), StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

pub async fn operators_are_created_and_replaced_only_at_their_expected_version<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let alice = operator("alice", OperatorRole::Admin, 1);
    s.put_operator(&alice, 0).await.unwrap();
    assert!(is_conflict(s.put_operator(&alice, 0).await), "a second creation");
    let mut revoked = alice.clone();
    revoked.revoked_at = Some(t0() + Duration::hours(1));
    revoked.version = 2;
    s.put_operator(&revoked, 1).await.unwrap();
    let mut stale = alice.clone();
    stale.role = OperatorRole::Reviewer;
    stale.version = 2;
    assert!(
        is_conflict(s.put_operator(&stale, 1).await),
        "a replace from a stale version"
    );
    let bob = operator("bob", OperatorRole::Reviewer, 1);
    let ghost = operator("bob", OperatorRole::Reviewer, 4);
    assert!(is_conflict(s.put_operator(&ghost, 3).await), "a replace of nothing");
    let skipped = operator("carol", OperatorRole::Reviewer, 5);
    assert!(matches!(
        s.put_operator(&skipped, 0).await,
        Err(StoreError::Invalid { .. })
    ));
    s.put_operator(&bob, 0).await.unwrap();
    assert_eq!(s.get_operator(&alice.name).await.unwrap(), Some(revoked.clone()));
    assert_eq!(s.get_operator(&skipped.name).await.unwrap(), None);
    assert_eq!(s.list_operators().await.unwrap(), [revoked, bob]);
}

pub async fn policies_are_created_replaced_listed_and_deleted_per_scope<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let m = merchant("clinic-1");
    let default = policy(PolicyScope::Default, 10_000, 1);
    let own = policy(PolicyScope::Merchant(m.clone()), 500, 1);
    s.put_policy(&default, 0).await.unwrap();
    s.put_policy(&own, 0).await.unwrap();
    assert!(is_conflict(s.put_policy(&own, 0).await), "a second creation");
    let raised = policy(PolicyScope::Merchant(m.clone()), 900, 2);
    s.put_policy(&raised, 1).await.unwrap();
    assert!(is_conflict(
        s.put_policy(&policy(PolicyScope::Merchant(m.clone()), 1, 2), 1).await
    ));
    assert_eq!(
        s.get_policy(&PolicyScope::Merchant(m.clone())).await.unwrap(),
        Some(raised.clone())
    );
    assert_eq!(
        s.get_policy(&PolicyScope::Default).await.unwrap(),
        Some(default.clone())
    );
    let mut listed = s.list_policies().await.unwrap();
    listed.sort_by_key(|p| p.scope.clone());
    assert_eq!(listed, [default.clone(), raised]);
    assert!(s.delete_policy(&PolicyScope::Merchant(m.clone())).await.unwrap());
    assert!(!s.delete_policy(&PolicyScope::Merchant(m.clone())).await.unwrap());
    assert_eq!(s.get_policy(&PolicyScope::Merchant(m.clone())).await.unwrap(), None);
    assert_eq!(s.list_policies().await.unwrap(), [default]);
    // Deleted, the scope starts again from nothing.
    s.put_policy(&own, 0).await.unwrap();
}

pub async fn day_usage_counts_every_currency_and_sums_each_currency_apart<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let (m, other) = (merchant("clinic-1"), merchant("clinic-2"));
    let day = t0().date();
    let usage = |count, amount_minor| DayUsageCount { count, amount_minor };
    assert_eq!(
        s.add_day_usage(&m, day, Currency::BRL, 10_000).await.unwrap(),
        usage(1, 10_000)
    );
    assert_eq!(
        s.add_day_usage(&m, day, Currency::USD, 250).await.unwrap(),
        usage(2, 250)
    );
    assert_eq!(
        s.add_day_usage(&m, day, Currency::BRL, 2_050).await.unwrap(),
        usage(3, 12_050)
    );
    assert_eq!(
        s.add_day_usage(&m, day.next_day().unwrap(), Currency::BRL, 5)
            .await
            .unwrap(),
        usage(1, 5)
    );
    assert_eq!(
        s.add_day_usage(&other, day, Currency::BRL, 7).await.unwrap(),
        usage(1, 7)
    );
    assert_eq!(s.add_day_usage(&m, day, Currency::USD, 0).await.unwrap(), usage(4, 250));
}

pub async fn twenty_concurrent_day_usage_additions_return_each_count_once<S: Store + Clone + 'static>(
    env: StoreEnv<S>,
) {
    let m = merchant("clinic-1");
    let day = t0().date();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, m) = (env.store.clone(), barrier.clone(), m.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.add_day_usage(&m, day, Currency::BRL, 100).await.unwrap()
            })
        })
        .collect();
    let totals: Vec<DayUsageCount> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    let counts: BTreeSet<u64> = totals.iter().map(|t| t.count).collect();
    assert_eq!(counts, (1..=20).collect::<BTreeSet<u64>>(), "{totals:?}");
    for t in &totals {
        assert_eq!(t.amount_minor, i64::try_from(t.count).unwrap() * 100, "{t:?}");
    }
}

pub async fn beneficiaries_are_unknown_until_remembered_per_merchant<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let (m, other) = (merchant("clinic-1"), merchant("clinic-2"));
    let fp = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert!(!s.beneficiary_known(&m, fp).await.unwrap());
    s.remember_beneficiary(&m, fp, t0()).await.unwrap();
    s.remember_beneficiary(&m, fp, t0() + Duration::hours(1)).await.unwrap();
    assert!(s.beneficiary_known(&m, fp).await.unwrap());
    assert!(!s.beneficiary_known(&other, fp).await.unwrap());
    assert!(!s.beneficiary_known(&m, &fp.replace('9', "8")).await.unwrap());
}

pub async fn sessions_round_trip_are_written_once_and_deleted_idempotently<S: Store>(env: StoreEnv<S>) {
    let s = &env.store;
    let live = session("one", t0() + Duration::hours(8));
    let expired = session("two", t0() - Duration::hours(1));
    s.put_session(&live).await.unwrap();
    s.put_session(&expired).await.unwrap();
    let mut again = live.clone();
    again.csrf_token = "another".into();
    assert!(
        is_conflict(s.put_session(&again).await),
        "a second session with one token"
    );
    assert_eq!(s.get_session(&live.token_hash).await.unwrap(), Some(live.clone()));
    // Expired sessions are still read back: the caller judges expiry.
    assert_eq!(s.get_session(&expired.token_hash).await.unwrap(), Some(expired.clone()));
    assert_eq!(s.get_session(&token_hash("three")).await.unwrap(), None);
    assert!(
        s.delete_session(&live.token_hash).await.unwrap(),
        "the first delete removes it"
    );
    assert!(
        !s.delete_session(&live.token_hash).await.unwrap(),
        "a second delete finds nothing to remove (single-use links rely on it)"
    );
    assert_eq!(s.get_session(&live.token_hash).await.unwrap(), None);
    assert_eq!(s.get_session(&expired.token_hash).await.unwrap(), Some(expired));
}
