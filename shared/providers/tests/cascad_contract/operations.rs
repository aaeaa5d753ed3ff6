//! Authentication, lookups and cancel, the test-mode outcomes, callbacks, the invoice list,
//! services and the pre-request.

use super::*;

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

/// After a failover the request's reference carries its attempt (`<id>.2`): Cascad takes it as
/// `reference_id`, and a lookup by the first attempt's reference finds nothing.
#[tokio::test]
async fn an_attempt_reference_is_its_own_reference_id() {
    let env = Env::start().await;
    let mut o = order(CASCAD, "1234567890", &env.receiver.url);
    let first = o.reference;
    o.reference = cashout_core::ids::PayoutReference::new(first.request_id(), 2).unwrap();
    let created = env.providers.create_payout(&o).await.unwrap();
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap().unwrap();
    assert_eq!(found.payout_id, created.payout_id);
    assert_eq!(found.reference, Some(o.reference));
    assert_eq!(env.providers.find_payout(CASCAD, first).await.unwrap(), None);
}
