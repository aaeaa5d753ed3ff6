//! Contract tests of the Cascad adapter against the simulator.

#![allow(clippy::unwrap_used)]

mod common;

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

#[tokio::test]
async fn a_payout_is_created_processed_then_goes_processing_and_processed() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    assert!(p.payout_id.as_str().starts_with("cpoi_"));
    assert_eq!(p.payout_id.as_str().len(), 21);
    assert_eq!(
        (p.state.clone(), p.provider_status.as_str()),
        (PayoutState::Pending, "created")
    );
    assert_eq!(p.reference, Some(o.reference));
    let status = || env.providers.payout_status(CASCAD, &p.payout_id, o.reference);
    env.advance(ms(500));
    assert_eq!(status().await.unwrap().provider_status, "processing");
    env.advance(ms(1000));
    let done = status().await.unwrap();
    let PayoutState::Paid { paid_at, amount } = done.state else {
        panic!("expected paid, got {done:?}");
    };
    assert_eq!(
        amount,
        Some("1234.5".parse().unwrap()),
        "processed_amount, read exactly"
    );
    assert_eq!(
        paid_at,
        Some(common::start_time() + time::Duration::milliseconds(1500)).map(|t| t.replace_nanosecond(0).unwrap())
    );
    let ledger = env.sim.ledger();
    assert_eq!(ledger.payouts[0].account.as_deref(), Some("******7890"));
    assert_eq!(
        ledger.payouts[0].amount, "1234.5",
        "the exact amount, as a JSON number without trailing zeros"
    );
}

#[tokio::test]
async fn a_payout_paid_short_reports_the_processed_amount() {
    let env = Env::start().await;
    let s = pay(&env, &order(CASCAD, "1234567844", &env.receiver.url)).await;
    assert!(
        matches!(s.state, PayoutState::Paid { amount: Some(a), .. } if a == "1222.15".parse().unwrap()),
        "1 % below 1234.50, rounded down: {s:?}"
    );
}

#[tokio::test]
async fn auto_process_needs_no_process_call() {
    let env = Env::with(|_| {}, |c| c.cascad.as_mut().unwrap().options.auto_process = Some(true)).await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(ms(1500));
    let s = env
        .providers
        .payout_status(CASCAD, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
}

#[tokio::test]
async fn an_account_ending_in_13_fails_processing() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567813", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(ms(1000));
    let s = env
        .providers
        .payout_status(CASCAD, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        (s.state.clone(), s.provider_status.as_str()),
        (PayoutState::Pending, "process_error (bank_error)")
    );
    env.advance(ms(1000));
    let s = env
        .providers
        .payout_status(CASCAD, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert!(matches!(s.state, PayoutState::Rejected { .. }), "{s:?}");
    assert_eq!(s.provider_status, "process_failed (declined)");
}

#[tokio::test]
async fn an_account_ending_in_30_is_declined_with_the_field_named() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567830", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ProviderErrorKind::Declined, Some("422")));
    assert!(e.message.contains("fields.account"), "{}", e.message);
    assert!(env.sim.ledger().payouts.is_empty());
}

#[tokio::test]
async fn a_beneficiary_that_breaks_its_service_s_rules_is_never_sent() {
    let env = Env::start().await;
    let o = order(CASCAD, "12345678901234567", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(
        e.kind,
        ProviderErrorKind::Configuration,
        "16+ digits break ^\\d{{1,15}}$"
    );
    assert!(e.message.contains("beneficiary.bank_account"), "{}", e.message);
    let mut chf = order(CASCAD, "1234567890", &env.receiver.url);
    chf.currency = Currency::CHF;
    chf.amount = Amount::parse("100", Currency::CHF).unwrap();
    chf.service = None;
    let e = env.providers.create_payout(&chf).await.unwrap_err();
    assert_eq!(
        e.kind,
        ProviderErrorKind::Configuration,
        "no service for CHF is configured"
    );
    let ledger = env.sim.ledger();
    assert!(
        ledger.references.is_empty() && ledger.payouts.is_empty(),
        "nothing reached Cascad: {ledger:?}"
    );
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

#[tokio::test]
async fn a_card_payout_is_created_processed_and_paid() {
    let env = Env::start().await;
    let o = card_order(&env.receiver.url);
    pay(&env, &o).await;
    let ledger = env.sim.ledger();
    let at_cascad = ledger.payouts_for(common::sim(CASCAD), &o.reference.to_string());
    assert_eq!(at_cascad.len(), 1);
    assert_eq!(at_cascad[0].account.as_deref(), Some("512381******0000"));
    assert_eq!(
        (at_cascad[0].amount.as_str(), at_cascad[0].currency.as_deref()),
        ("10", Some("USD"))
    );
}

#[tokio::test]
async fn a_bank_transfer_payout_is_created_processed_and_paid() {
    let env = Env::start().await;
    let o = zar_order(&env.receiver.url);
    pay(&env, &o).await;
    let ledger = env.sim.ledger();
    let at_cascad = ledger.payouts_for(common::sim(CASCAD), &o.reference.to_string());
    assert_eq!(at_cascad.len(), 1);
    assert_eq!(
        at_cascad[0].account.as_deref(),
        Some("620012*4567"),
        "masked by the simulator"
    );
    assert_eq!(at_cascad[0].currency.as_deref(), Some("ZAR"));
}

#[tokio::test]
async fn the_simulators_services_refuse_what_our_checks_would_have_refused() {
    // The same rules read twice: the adapter's configured services and the simulator's tables,
    // each from seed 003. With our checks bypassed (a service configured without its rules),
    // the simulator refuses the data, naming Cascad's field.
    let env = Env::with(
        |_| {},
        |c| {
            let loose = cashout_core::routing::CascadService::new(
                "bank_transfer_zar",
                Currency::ZAR,
                Some(cashout_core::routing::PayoutMethodKind::BankTransfer),
                vec![],
            )
            .unwrap();
            c.cascad.as_mut().unwrap().services = cashout_core::routing::CascadServices::new(vec![loose]).unwrap();
        },
    )
    .await;
    let mut o = zar_order(&env.receiver.url);
    o.beneficiary.bank_branch = None;
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ProviderErrorKind::Declined, Some("422")));
    assert!(e.message.contains("fields.beneficiary_name"), "{}", e.message);
}

#[tokio::test]
async fn the_configured_services_agree_with_the_simulators_prerequest() {
    let env = Env::start().await;
    let differences = env.providers.cascad().unwrap().service_differences().await.unwrap();
    assert_eq!(differences, Vec::<String>::new());
    // A stricter rule than Cascad's is reported.
    let env = Env::with(
        |_| {},
        |c| {
            let strict = cashout_core::routing::CascadService::new(
                "card",
                Currency::USD,
                Some(cashout_core::routing::PayoutMethodKind::Card),
                vec![
                    cashout_core::routing::ServiceField::new(
                        "card_number",
                        cashout_core::routing::BeneficiaryField::CardNumber,
                        true,
                        Some(r"^5\d{15}$"),
                    )
                    .unwrap(),
                ],
            )
            .unwrap();
            c.cascad.as_mut().unwrap().services = cashout_core::routing::CascadServices::new(vec![strict]).unwrap();
        },
    )
    .await;
    let differences = env.providers.cascad().unwrap().service_differences().await.unwrap();
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(differences[0].contains("card_number"), "{differences:?}");
}

#[tokio::test]
async fn a_second_create_with_the_same_reference_adopts_the_existing_invoice() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let first = env.providers.create_payout(&o).await.unwrap();
    let second = env.providers.create_payout(&o).await.unwrap();
    assert_eq!(first.payout_id, second.payout_id);
    let ledger = env.sim.ledger();
    let r = ledger.reference(common::sim(CASCAD), &o.reference.to_string()).unwrap();
    assert_eq!((r.create_attempts, r.payouts), (2, 1));
}

#[tokio::test]
async fn a_lost_create_answer_is_ambiguous_and_the_lookup_processes_the_invoice() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_after: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Ambiguous);
    env.sim.set_faults(common::sim(CASCAD), FaultConfig::default());
    // The invoice exists but was never processed: the lookup adopts it and processes it.
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap().unwrap();
    assert_eq!(found.reference, Some(o.reference));
    env.advance(ms(1500));
    let s = env
        .providers
        .payout_status(CASCAD, &found.payout_id, o.reference)
        .await
        .unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
    assert_eq!(env.sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn timeouts_and_dropped_connections_on_create_are_ambiguous() {
    for fault in [
        FaultConfig {
            timeout: 100,
            hang_ms: 3_000,
            ..FaultConfig::default()
        },
        FaultConfig {
            drop: 100,
            ..FaultConfig::default()
        },
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    ] {
        let env = Env::start().await;
        env.sim.set_faults(common::sim(CASCAD), fault.clone());
        let o = order(CASCAD, "1234567890", &env.receiver.url);
        let e = env.providers.create_payout(&o).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Ambiguous, "{fault:?}");
    }
}

#[tokio::test]
async fn an_invoice_left_created_is_processed_by_the_next_status_check() {
    let env = Env::start().await;
    let reference = common::new_reference();
    // Created straight at the provider, as if our process call had been lost.
    let (account, key, _, _) = cashout_providers::simulator::CASCAD;
    let body = format!(
        r#"{{"data":{{"type":"payout-invoice","attributes":{{"reference_id":"{reference}","service":"test_usd","currency":"USD","amount":12.5,"fields":{{"account":"1234567890"}}}}}}}}"#
    );
    let created = reqwest::Client::new()
        .post(format!("{}/cascad/payout-invoices", env.sim.url()))
        .basic_auth(account, Some(key))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let id: serde_json::Value = created.json().await.unwrap();
    let id = ProviderPayoutId::new(id["data"]["id"].as_str().unwrap()).unwrap();
    env.advance(ms(1500));
    let s = env.providers.payout_status(CASCAD, &id, reference).await.unwrap();
    assert_eq!(s.provider_status, "created", "nothing happens without a process call");
    env.advance(ms(1500));
    let s = env.providers.payout_status(CASCAD, &id, reference).await.unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
}

#[tokio::test]
async fn wrong_basic_auth_is_a_configuration_error() {
    let env = Env::start().await;
    let mut c = ProvidersConfig::for_simulator(&env.sim.url());
    c.http = common::test_http();
    c.cascad.as_mut().unwrap().api_key = "sk_test_wrong".to_owned().into();
    let providers = Providers::new(c).unwrap();
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let e = providers.create_payout(&o).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ProviderErrorKind::Configuration, Some("401"))
    );
    let e = providers.find_payout(CASCAD, o.reference).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
}

#[tokio::test]
async fn unknown_invoices_are_not_found_and_cancel_is_refused() {
    let env = Env::start().await;
    let reference = common::new_reference();
    assert_eq!(env.providers.find_payout(CASCAD, reference).await.unwrap(), None);
    let id = ProviderPayoutId::new("cpoi_DoesNotExist0000").unwrap();
    let e = env.providers.payout_status(CASCAD, &id, reference).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::NotFound);
    let e = env.providers.cancel_payout(CASCAD, &id, reference).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::InvalidState);
}

#[tokio::test]
async fn test_mode_fields_choose_the_final_status_including_unknown_ones() {
    let env = Env::start().await;
    for (status, expect_unknown) in [("terminated", false), ("refunded", true)] {
        let mut o = order(CASCAD, "1234567890", &env.receiver.url);
        o.beneficiary
            .extra_fields
            .insert("test_details_payout_status".into(), status.into());
        let p = env.providers.create_payout(&o).await.unwrap();
        env.advance(ms(1500));
        let s = env
            .providers
            .payout_status(CASCAD, &p.payout_id, o.reference)
            .await
            .unwrap();
        assert_eq!(s.provider_status, status);
        assert_eq!(s.state == PayoutState::Unknown, expect_unknown, "{s:?}");
        if !expect_unknown {
            assert!(matches!(s.state, PayoutState::Rejected { .. }));
        }
    }
}

#[tokio::test]
async fn callbacks_carry_the_invoice_and_a_valid_signature() {
    let env = Env::start().await;
    env.receiver.fail_first(1);
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(ms(500));
    // Refused once, and the simulator has scheduled the retry (the receiver's count alone
    // comes before the simulator reads the refusal: advancing then would push the retry a
    // minute past the advanced clock).
    common::wait_until(|| {
        env.sim
            .ledger()
            .deliveries
            .iter()
            .any(|d| d.attempts >= 1 && d.next_attempt_at.is_some())
    })
    .await;
    // Retried a minute later.
    env.advance(Duration::from_secs(60));
    let got = env.receiver.wait_for(2).await;
    let statuses: Vec<_> = got
        .iter()
        .map(|n| match env.providers.parse_notification(CASCAD, n).unwrap() {
            ProviderNotification::Status(s) => {
                assert_eq!(s.payout_id, p.payout_id);
                s.provider_status
            }
            other => panic!("expected a status, got {other:?}"),
        })
        .collect();
    assert!(statuses.contains(&"processing".to_owned()), "{statuses:?}");
    assert!(statuses.contains(&"processed".to_owned()), "{statuses:?}");
    let mut forged = got[0].clone();
    forged.body = String::from_utf8(forged.body)
        .unwrap()
        .replace("processing", "processed")
        .into_bytes();
    let e = env.providers.parse_notification(CASCAD, &forged).unwrap_err();
    assert_eq!(e.code.as_deref(), Some("signature"));
    let unsigned = InboundNotification {
        headers: vec![],
        body: got[0].body.clone(),
    };
    assert!(env.providers.parse_notification(CASCAD, &unsigned).is_err());
}

#[tokio::test]
async fn the_list_pages_with_its_cursor() {
    let env = Env::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let o = order(CASCAD, "1234567890", &env.receiver.url);
        ids.push(env.providers.create_payout(&o).await.unwrap().payout_id);
    }
    let cascad = env.providers.cascad().unwrap();
    let first = cascad.list(None, 2).await.unwrap();
    assert_eq!(first.payouts.len(), 2);
    assert_eq!(first.payouts[0].payout_id, ids[2], "newest first");
    let cursor = first.next.clone().unwrap();
    let second = cascad.list(Some(&cursor), 2).await.unwrap();
    assert_eq!(second.payouts.len(), 1);
    assert_eq!(second.payouts[0].payout_id, ids[0]);
    assert_eq!(second.next, None);
}

#[tokio::test]
async fn services_and_the_prerequest_describe_what_can_be_paid() {
    let env = Env::start().await;
    let cascad = env.providers.cascad().unwrap();
    let services = cascad.payout_services().await.unwrap();
    let codes: Vec<_> = services.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "test_usd",
            "test_eur",
            "test_gbp",
            "card",
            "swift_jpy",
            "bank_transfer_zar"
        ]
    );
    let one = cascad.payout_service(&services[0].id).await.unwrap();
    assert_eq!(one, services[0]);
    let q = PayoutMethodQuery {
        country: "US".parse().unwrap(),
        currency: Currency::USD,
        amount: Some(Amount::parse("10.00", Currency::USD).unwrap()),
    };
    let methods = env.providers.payout_methods(CASCAD, &q).await.unwrap();
    let offered: Vec<_> = methods.iter().map(|m| (m.service.as_deref(), m.method)).collect();
    use cashout_core::routing::PayoutMethodKind;
    assert_eq!(
        offered,
        [
            (Some("test_usd"), Some(PayoutMethodKind::Test)),
            (Some("card"), Some(PayoutMethodKind::Card))
        ]
    );
    assert_eq!(methods[0].amount_min.as_deref(), Some("0.01"));
    let account = methods[0]
        .fields
        .iter()
        .find(|f| f.key == "beneficiary.bank_account")
        .unwrap();
    assert!(account.required);
    assert_eq!(account.regexp.as_deref(), Some(r"^\d{1,15}$"));
    let card = &methods[1].fields[0];
    assert_eq!(
        (card.key.as_str(), card.required, card.regexp.as_deref()),
        ("beneficiary.card_number", true, Some(r"^\d{16}$"))
    );
    let zar = env
        .providers
        .payout_methods(
            CASCAD,
            &PayoutMethodQuery {
                country: "ZA".parse().unwrap(),
                currency: Currency::ZAR,
                amount: None,
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = zar[0].fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "beneficiary.name",
            "beneficiary.bank_account",
            "beneficiary.bank_branch"
        ]
    );
    let none = env
        .providers
        .payout_methods(
            CASCAD,
            &PayoutMethodQuery {
                currency: Currency::CHF,
                ..q
            },
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn throttled_reads_are_retried_until_they_pass() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    env.providers.create_payout(&o).await.unwrap();
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    );
    let e = env.providers.find_payout(CASCAD, o.reference).await.unwrap_err();
    assert!(matches!(e.kind, ProviderErrorKind::Retryable { .. }), "{e}");
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_before: 50,
            ..FaultConfig::default()
        },
    );
    // With half the reads failing and two retries, a few lookups are enough.
    let mut found = None;
    for _ in 0..20 {
        if let Ok(Some(p)) = env.providers.find_payout(CASCAD, o.reference).await {
            found = Some(p);
            break;
        }
    }
    assert!(found.is_some());
}

// Seed 003's directives table, one test per row the adapter once got wrong (issue 11).

#[tokio::test]
async fn a_400_on_create_is_not_final_the_reference_is_looked_up_and_the_invoice_adopted() {
    let env = Env::start().await;
    // The invoice is made, then Cascad answers 400: "Request the transaction status".
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            bad_request_after: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let result = env.providers.create_payout(&o).await;
    env.sim.set_faults(common::sim(CASCAD), FaultConfig::default());
    // Whatever the create answered, it must not be a refusal while Cascad holds the invoice.
    if let Err(e) = &result {
        assert_ne!(e.kind, ProviderErrorKind::Declined, "{e:?}");
    }
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap();
    let found = found.expect("the 400 create made an invoice");
    if let Ok(p) = result {
        assert_eq!(p.payout_id, found.payout_id);
    }
    assert_eq!(env.sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn a_404_on_the_reference_lookup_means_no_invoice_and_the_create_goes_ahead() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            not_found_on_empty_filter: true,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    assert_eq!(env.providers.find_payout(CASCAD, o.reference).await.unwrap(), None);
    let p = env.providers.create_payout(&o).await.unwrap();
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap().unwrap();
    assert_eq!(found.payout_id, p.payout_id);
}

#[tokio::test]
async fn processed_with_a_resolution_other_than_ok_is_not_paid() {
    let env = Env::start().await;
    // Account ending in 08: the simulator's unclear outcome, `processed` with a non-ok resolution.
    let o = order(CASCAD, "1234567808", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let mut last = None;
    for _ in 0..20 {
        env.advance(ms(1000));
        let s = env
            .providers
            .payout_status(CASCAD, &p.payout_id, o.reference)
            .await
            .unwrap();
        if s.provider_status.starts_with("processed") {
            last = Some(s);
            break;
        }
    }
    let s = last.expect("the invoice reaches processed");
    assert_ne!(
        s.provider_status, "processed",
        "the simulator gives a resolution other than ok"
    );
    assert!(matches!(s.state, PayoutState::NeedsAttention { .. }), "{s:?}");
}

/// A proxy in front of the simulator's Cascad API that records each call (`POST /payout-invoices/…/process`,
/// `GET /payout-invoices/…`) and answers the first `process` with a 502, either before the
/// simulator sees it (nothing processed) or after (processed, answer lost).
#[derive(Clone)]
struct Recorder {
    upstream: String,
    calls: Arc<Mutex<Vec<String>>>,
    fail_process: Arc<Mutex<Option<bool>>>,
}

async fn record(
    axum::extract::State(r): axum::extract::State<Recorder>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path().trim_start_matches("/cascad").to_owned();
    let call = format!("{method} {path}");
    r.calls.lock().unwrap().push(call);
    let fail = if path.ends_with("/process") {
        r.fail_process.lock().unwrap().take()
    } else {
        None
    };
    if fail == Some(false) {
        return (axum::http::StatusCode::BAD_GATEWAY, "upstream down").into_response();
    }
    let mut forward = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{}", r.upstream, uri.path_and_query().map_or("", |p| p.as_str())),
    );
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = forward.body(body.to_vec()).send().await.unwrap();
    if fail == Some(true) {
        return (axum::http::StatusCode::BAD_GATEWAY, "answer lost").into_response();
    }
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    (status, answer.bytes().await.unwrap().to_vec()).into_response()
}

/// Seed 003: after a 5xx, "request the transaction status" before the operation is repeated.
/// A `process` answered 502 is followed by a read of the invoice, and a second `process` comes
/// only after a read shows the invoice still `created`; when the failed call did process it, no
/// second `process` is ever sent.
#[tokio::test]
async fn a_5xx_on_process_is_followed_by_a_lookup_before_any_retried_process() {
    for processed_before_failing in [false, true] {
        let env = Env::start().await;
        let recorder = Recorder {
            upstream: env.sim.url(),
            calls: Arc::default(),
            fail_process: Arc::new(Mutex::new(Some(processed_before_failing))),
        };
        let app = axum::Router::new().fallback(record).with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut pc = ProvidersConfig::for_simulator(&env.sim.url());
        pc.http = common::test_http();
        pc.cascad.as_mut().unwrap().base_url = format!("{proxy}/cascad");
        let providers = Providers::new(pc).unwrap();

        let o = order(CASCAD, "1234567890", &env.receiver.url);
        let created = providers.create_payout(&o).await.unwrap();
        let id = created.payout_id.clone();
        let after_create = recorder.calls.lock().unwrap().clone();
        let process = format!("POST /payout-invoices/{id}/process");
        let read = format!("GET /payout-invoices/{id}");
        let at = after_create
            .iter()
            .position(|c| *c == process)
            .expect("one process call");
        assert_eq!(
            &after_create[at + 1..],
            std::slice::from_ref(&read),
            "the failed process is followed by a read and nothing else ({processed_before_failing}): {after_create:?}"
        );
        // Later status checks until the payout ends: a second process only when a read showed
        // the invoice still `created`.
        for _ in 0..3 {
            env.advance(ms(1000));
            providers.payout_status(CASCAD, &id, o.reference).await.unwrap();
        }
        let last = providers.payout_status(CASCAD, &id, o.reference).await.unwrap();
        assert!(matches!(last.state, PayoutState::Paid { .. }), "{last:?}");
        let calls = recorder.calls.lock().unwrap().clone();
        let processes: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == process)
            .map(|(i, _)| i)
            .collect();
        if processed_before_failing {
            assert_eq!(processes.len(), 1, "processed already: never again: {calls:?}");
        } else {
            assert_eq!(
                processes.len(),
                2,
                "processed once it was seen still created: {calls:?}"
            );
            assert!(
                calls[processes[0] + 1..processes[1]].contains(&read),
                "a read between the two process calls: {calls:?}"
            );
        }
        assert_eq!(env.sim.ledger().payouts.len(), 1);
    }
}
