//! The simulator's ledger is the oracle other tests trust for "no double payout" (the chaos run,
//! the security tests): it must show one when a client makes it. Retrying a create after an
//! ambiguous answer without looking up first, at a provider that does not enforce unique
//! references, makes a double payout, and the ledger shows it.
//!
//! (Exactly-once dispatch itself is tested on the real `App::dispatch`, in
//! `shared/app/tests/dispatch_exactly_once.rs`; how each adapter classifies a lost or failed
//! create is in the contract tests.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cashout_core::ports::{PayoutProvider, ProviderErrorKind};
use cashout_core::provider::ProviderName;
use cashout_provider_sim::{FaultConfig, Faults, SimConfig};
use cashout_providers::{HttpConfig, Providers, ProvidersConfig};

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
    config.http = HttpConfig {
        request_timeout: Duration::from_secs(10),
        read_retries: 1,
        retry_backoff: Duration::from_millis(1),
        max_retry_backoff: Duration::from_millis(5),
        ..HttpConfig::default()
    };
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
    sim.shutdown().await;
}
