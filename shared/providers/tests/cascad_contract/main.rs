//! Contract tests of the Cascad adapter against the simulator: a payout's life (`payouts`), the
//! other operations (`operations`), lost answers, timeouts and seed 003's directives
//! (`faults`), and reconciliation's reads against divergences (`reconcile`).

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod operations;
mod payouts;
mod reconcile;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_core::ids::ProviderPayoutId;
use cashout_core::money::{Amount, Currency};
use cashout_core::ports::{
    InboundNotification, PayoutMethodQuery, PayoutProvider, ProviderErrorKind, ProviderNotification,
};
use cashout_core::provider::{PayoutState, ProviderName};
use cashout_provider_sim::FaultConfig;
use cashout_providers::{Providers, ProvidersConfig};
use common::{Env, order};

const CASCAD: ProviderName = ProviderName::Cascad;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A card payout as seed 003's create example makes one (lines 328–361): service `card`, the
/// 16-digit `card_number`.
fn card_order(receiver: &str) -> cashout_core::ports::PayoutOrder {
    let mut o = order(CASCAD, "", receiver);
    o.service = Some("card".into());
    o.amount = Amount::parse("10.00", Currency::USD).unwrap();
    o.beneficiary = cashout_core::party::Beneficiary {
        name: "John".into(),
        last_name: Some("Wick".into()),
        email: Some("somename@domain.com".into()),
        bank_account: None,
        card_number: Some(cashout_core::party::CardNumber::new("5123817234060000")),
        reference_id: Some("1203515".into()),
        ..common::beneficiary("")
    };
    o
}

/// A bank transfer in rand through `bank_transfer_zar` (seed 003's service list, lines
/// 204–231): the beneficiary's name, account number and branch code.
fn zar_order(receiver: &str) -> cashout_core::ports::PayoutOrder {
    let mut o = order(CASCAD, "62001234567", receiver);
    o.service = Some("bank_transfer_zar".into());
    o.country = "ZA".parse().unwrap();
    o.currency = Currency::ZAR;
    o.amount = Amount::parse("250.75", Currency::ZAR).unwrap();
    o.beneficiary.name = "Thabo".into();
    o.beneficiary.last_name = Some("Nkosi".into());
    o.beneficiary.bank_branch = Some("250655".into());
    o
}

/// Creates, processes and follows `o` to `processed`.
async fn pay(env: &Env, o: &cashout_core::ports::PayoutOrder) -> cashout_core::provider::ProviderPayout {
    let p = env.providers.create_payout(o).await.unwrap();
    assert_eq!(p.provider_status, "created");
    env.advance(ms(500));
    let s = env
        .providers
        .payout_status(CASCAD, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(s.provider_status, "processing");
    env.advance(ms(1000));
    let s = env
        .providers
        .payout_status(CASCAD, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
    s
}
