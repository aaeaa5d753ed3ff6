//! A payout's life on the simulator: created, processed, paid (or not), through each kind of
//! service, and what the services refuse.

use super::*;

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
