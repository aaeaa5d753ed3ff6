//! The exactly-once property: for any mix of injected faults, the dispatcher's
//! create-with-lookup loop leaves exactly one payout per reference in the simulator's ledger —
//! including runs where the simulated provider stops enforcing unique references, so that the
//! lookup before every re-send is the only defence against lost answers (see [`faults`] for why
//! timeouts are then left out).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cashout_core::ports::{PayoutOrder, PayoutProvider, ProviderErrorKind};
use cashout_core::provider::ProviderName;
use cashout_provider_sim::{FaultConfig, Faults, SimConfig};
use cashout_providers::{HttpConfig, Providers, ProvidersConfig};
use proptest::prelude::*;

/// The rule of the port: create; after an ambiguous answer, look the payout up by reference
/// before any new create; adopt what the lookup finds.
async fn create_with_lookup(providers: &Providers, order: &PayoutOrder) -> usize {
    let mut must_look_up = false;
    for attempt in 1..=200 {
        if must_look_up {
            match providers.find_payout(order.provider, order.reference).await {
                Ok(Some(_)) => return attempt,
                Ok(None) => must_look_up = false,
                // The lookup itself failed: nothing is known yet, so look again.
                Err(e) => {
                    assert!(matches!(e.kind, ProviderErrorKind::Retryable { .. }), "lookup: {e}");
                    continue;
                }
            }
        }
        match providers.create_payout(order).await {
            Ok(_) => return attempt,
            Err(e) => match e.kind {
                ProviderErrorKind::Ambiguous => must_look_up = true,
                ProviderErrorKind::Retryable { .. } => {}
                other => panic!("create failed with {other:?}: {e}"),
            },
        }
    }
    panic!("no payout after 200 attempts");
}

/// Short timeouts when timeouts are injected; a generous one otherwise, so that a request
/// slowed by a loaded machine is never mistaken for a lost one.
fn http(request_timeout: Duration) -> HttpConfig {
    HttpConfig {
        request_timeout,
        read_retries: 1,
        retry_backoff: Duration::from_millis(1),
        max_retry_backoff: Duration::from_millis(5),
        ..HttpConfig::default()
    }
}

/// Faults, and whether the provider enforces unique references.
///
/// Timeouts are injected only while it does: a create that times out may still be in flight,
/// and when it lands after the lookup said "nothing", only the provider's uniqueness (D24 511,
/// Cascad 409, then adoption) prevents the second payout — no client can. Without uniqueness,
/// the faults are those that lose an answer after the provider acted (5xx after, dropped
/// connections) or act on nothing (throttling, 5xx before).
fn faults() -> impl Strategy<Value = FaultConfig> {
    (0u8..=20, 0u8..=30, 0u8..=30, 0u8..=15, 0u8..=20, any::<bool>()).prop_map(
        |(rate_limit, error_before, error_after, timeout, drop, unique)| FaultConfig {
            rate_limit,
            error_before,
            error_after,
            timeout: if unique { timeout } else { 0 },
            drop,
            hang_ms: 400,
            accept_duplicate_references: !unique,
            ..FaultConfig::default()
        },
    )
}

fn provider() -> impl Strategy<Value = ProviderName> {
    prop_oneof![
        Just(ProviderName::D24),
        Just(ProviderName::Onspot),
        Just(ProviderName::Tupay),
        Just(ProviderName::Cascad),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_fault_mix_leaves_exactly_one_payout_per_reference(
        faults in faults(),
        provider in provider(),
        seed in any::<u64>(),
        payouts in 1usize..=4,
    ) {
        runtime().block_on(async {
            let sim = common::start_sim(SimConfig {
                seed,
                faults: Faults::all(faults.clone()),
                ..SimConfig::default()
            })
            .await;
            let mut config = ProvidersConfig::for_simulator(&sim.url());
            config.http = http(if faults.timeout > 0 {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(10)
            });
            let providers = Providers::new(config).unwrap();
            let mut references = Vec::new();
            for _ in 0..payouts {
                let order = common::order(provider, "1234567890", "http://127.0.0.1:9/hook");
                create_with_lookup(&providers, &order).await;
                references.push(order.reference);
            }
            let ledger = sim.ledger();
            for r in &references {
                let n = ledger.payouts_for(provider, &r.to_string()).len();
                assert_eq!(n, 1, "{provider} {r}: {n} payouts under {faults:?}");
            }
            assert!(ledger.double_payouts().is_empty());
            assert_eq!(ledger.payouts.len(), payouts);
            sim.shutdown().await;
        });
    }
}

/// The property can fail: retrying a create after an ambiguous answer without looking up
/// first makes a double payout at a provider that does not enforce unique references, and
/// the ledger shows it.
#[tokio::test]
async fn retrying_without_a_lookup_makes_a_double_payout_the_ledger_shows() {
    let sim = common::start_sim(SimConfig {
        faults: Faults::all(FaultConfig {
            error_after: 100,
            accept_duplicate_references: true,
            ..FaultConfig::default()
        }),
        ..SimConfig::default()
    })
    .await;
    let mut config = ProvidersConfig::for_simulator(&sim.url());
    config.http = http(Duration::from_secs(10));
    let providers = Providers::new(config).unwrap();
    let order = common::order(ProviderName::D24, "1234567890", "http://127.0.0.1:9/hook");
    for _ in 0..2 {
        let e = providers.create_payout(&order).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Ambiguous);
    }
    let ledger = sim.ledger();
    let doubles = ledger.double_payouts();
    assert_eq!(doubles.len(), 1);
    assert_eq!((doubles[0].create_attempts, doubles[0].payouts), (2, 2));
}
