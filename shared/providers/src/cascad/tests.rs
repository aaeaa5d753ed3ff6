//! Wire-type tests against the documented samples (fixtures copied from seed 003) and the
//! error classification.

use std::sync::Arc;

use cashout_core::ports::{InboundNotification, PayoutOrder, ProviderErrorKind, ProviderNotification};
use cashout_core::provider::PayoutState;
use cashout_core::signing::{ProviderSecret, cascad_signature};
use reqwest::StatusCode;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::mapping::service_of;
use super::methods::{field_differences, offered_services};
use super::transformers::*;
use super::*;
use crate::config::ProvidersConfig;
use crate::http::Reply;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../fixtures/cascad/", $name))
    };
}

fn client() -> CascadClient {
    let config = ProvidersConfig::for_simulator("http://127.0.0.1:9");
    let transport = Arc::new(crate::http::ReqwestTransport::new(&config.http).unwrap());
    let http = Arc::new(Http::new(&config.http, transport));
    CascadClient::new(config.cascad.unwrap(), http).unwrap()
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        retry_after: None,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn the_created_invoice_sample_reads_as_a_pending_payout() {
    let doc: InvoiceDoc = serde_json::from_str(fixture!("invoice_created.json")).unwrap();
    let p = CascadClient::to_payout(&doc.data).unwrap();
    assert_eq!(p.payout_id.as_str(), "cpoi_VdHYVxq4RsLEebAQ");
    assert_eq!(p.state, PayoutState::Pending);
    assert_eq!(p.provider_status, "created");
    assert_eq!(p.reference.unwrap().to_string(), "ada8c01f-f5d4-4037-88f1-d222ee6497ad");
    assert_eq!(p.updated_at.unwrap().unix_timestamp(), 1_597_835_735);
}

#[test]
fn the_processed_invoice_sample_reads_as_paid_when_processed() {
    let doc: InvoiceDoc = serde_json::from_str(fixture!("invoice_private.json")).unwrap();
    let p = CascadClient::to_payout(&doc.data).unwrap();
    assert_eq!(
        p.state,
        PayoutState::Paid {
            paid_at: Some(OffsetDateTime::from_unix_timestamp(1_597_835_933).unwrap()),
            amount: Some(rust_decimal::Decimal::TEN),
        },
        "seed 003's sample: processed 1597835933, processed_amount 10"
    );
    let doc: InvoiceDoc = serde_json::from_str(fixture!("invoice_process_response.json")).unwrap();
    assert_eq!(doc.data.attributes.status, "created");
}

#[test]
fn the_list_sample_reads_with_its_cursors() {
    let doc: InvoiceListDoc = serde_json::from_str(fixture!("invoice_list.json")).unwrap();
    assert_eq!(doc.data.len(), 2);
    let meta = doc.meta.unwrap();
    assert_eq!(meta.after.as_deref(), Some("cpoi_S1zoJnT8x4iZ4oPr"));
    let states: Vec<_> = doc
        .data
        .iter()
        .map(|r| CascadClient::to_payout(r).unwrap().provider_status)
        .collect();
    assert_eq!(states, ["created", "processed"]);
}

#[test]
fn the_services_samples_read_with_exact_limits() {
    let doc: ServiceListDoc = serde_json::from_str(fixture!("payout_services.json")).unwrap();
    assert_eq!(doc.meta.unwrap().pages, Some(9));
    let services: Vec<PayoutService> = doc.data.into_iter().map(service_of).collect();
    assert_eq!(services[1].code, "bank_transfer_zar");
    assert_eq!(services[1].amount_min.as_deref(), Some("0.01"));
    assert_eq!(services[1].amount_max.as_deref(), Some("1000000"));
    let one: ServiceDoc = serde_json::from_str(fixture!("payout_service.json")).unwrap();
    assert_eq!(service_of(one.data).code, "swift_jpy");
}

#[test]
fn the_prerequest_sample_yields_its_one_service_and_skips_the_rest() {
    let doc: PrerequestDoc = serde_json::from_str(fixture!("prerequest_response.json")).unwrap();
    let offered = offered_services(&doc);
    assert_eq!(offered.len(), 1, "`methods` and `account` are not services");
    let m = &offered["test_usd"];
    assert_eq!(m.amount_min.unwrap().0.to_string(), "0.01");
    assert_eq!(m.amount_max.unwrap().0.to_string(), "9999999");
    let keys: Vec<_> = m.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "account",
            "test_details_success_rate",
            "test_details_payout_status",
            "test_details_payout_resolution"
        ]
    );
    assert!(m.fields[0].required);
    // The seed's regexps, escaped twice, are the configured ones once unescaped.
    let test_usd = crate::config::CascadConfig::test_services();
    assert_eq!(
        field_differences(test_usd.get("test_usd").unwrap(), m),
        Vec::<String>::new()
    );
    let request: serde_json::Value = serde_json::from_str(fixture!("prerequest_request.json")).unwrap();
    let ours = serde_json::to_value(PrerequestBody {
        currency: "USD",
        amount: RawValue::from_string("10".into()).unwrap(),
        public_key: "pk_live_NM6Rpg6A29zNlSQHiCsprOJyT9WXuFa76WcwwBB69cS",
    })
    .unwrap();
    assert_eq!(ours, request);
}

/// `text` without the whitespace between its JSON tokens (strings kept as they are).
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                (false, _) => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The order of seed 003's create example (lines 328–361): John Wick's card, 10 USD, the
/// merchant's metadata, the customer's reference.
fn seed_order() -> PayoutOrder {
    use cashout_core::money::{Amount, Currency};
    use cashout_core::party::{Beneficiary, CardNumber};
    PayoutOrder {
        provider: ProviderName::Cascad,
        reference: "a5c22bfb-04c1-4dbf-8b46-9753bf1f6570".parse().unwrap(),
        country: "US".parse().unwrap(),
        currency: Currency::USD,
        amount: Amount::parse("10.00", Currency::USD).unwrap(),
        beneficiary: Beneficiary {
            name: "John".into(),
            last_name: Some("Wick".into()),
            document_type: None,
            document_id: None,
            email: Some("somename@domain.com".into()),
            phone: None,
            bank_code: None,
            bank_branch: None,
            bank_account: None,
            card_number: Some(CardNumber::new("5123817234060000")),
            account_type: None,
            address: None,
            city: None,
            postal_code: None,
            birthdate: None,
            reference_id: Some("1203515".into()),
            extra_fields: Default::default(),
        },
        description: String::new(),
        notification_url: Some("https://webhook.site/1192f6ef-71c9-4b80-b43b-133d8fe14677".into()),
        hold: false,
        service: Some("card".into()),
        metadata: serde_json::json!({"key": "value"}).as_object().unwrap().clone(),
    }
}

fn seed_client() -> CascadClient {
    let mut config = ProvidersConfig::for_simulator("http://127.0.0.1:9");
    let transport = Arc::new(crate::http::ReqwestTransport::new(&config.http).unwrap());
    let http = Arc::new(Http::new(&config.http, transport));
    let mut cascad = config.cascad.take().unwrap();
    // The options seed 003's example sends, as an account that agreed them would configure.
    cascad.options = crate::config::CascadOptions {
        split_mode: Some(false),
        parallel_mode: Some(false),
        allow_partially: Some(false),
        auto_process: Some(false),
    };
    cascad.test_mode = Some(true);
    CascadClient::new(cascad, http).unwrap()
}

#[test]
fn our_create_request_is_seed_003s_example_byte_for_byte() {
    let c = seed_client();
    let order = seed_order();
    let service = c.service_for(&order).unwrap();
    let ours = serde_json::to_string(&c.invoice_doc(&order, service).unwrap()).unwrap();
    // The seed's example, its whitespace aside, less the customer's own metadata (cashout keeps
    // none about a beneficiary: lines 351–354).
    let seed = compact(fixture!("invoice_create_request.json"));
    let seed = seed.replace(r#","metadata":{"key1":"value1","key2":"value2"}}"#, "}");
    assert_eq!(ours, seed);
}

#[test]
fn options_test_mode_customer_and_metadata_are_sent_only_when_configured_or_given() {
    let c = client();
    let mut order = seed_order();
    order.beneficiary.reference_id = None;
    order.metadata.clear();
    let service = c.service_for(&order).unwrap();
    let doc = serde_json::to_value(c.invoice_doc(&order, service).unwrap()).unwrap();
    let mut keys: Vec<&str> = doc["data"]["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "amount",
            "callback_url",
            "currency",
            "fields",
            "reference_id",
            "service"
        ],
        "{doc}"
    );
    assert_eq!(doc["data"]["attributes"]["amount"], serde_json::json!(10));
    order.amount = cashout_core::money::Amount::parse("10.10", order.currency).unwrap();
    let text = serde_json::to_string(&c.invoice_doc(&order, service).unwrap()).unwrap();
    assert!(
        text.contains(r#""amount":10.1,"#),
        "exact, from the decimal text: {text}"
    );
}

#[test]
fn a_beneficiary_that_no_longer_matches_its_service_is_not_sent() {
    let c = client();
    let mut order = seed_order();
    order.beneficiary.card_number = Some(cashout_core::party::CardNumber::new("512381723406000"));
    let e = c.service_for(&order).unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
    assert!(e.message.contains("beneficiary.card_number"), "{}", e.message);
    assert!(!e.message.contains("512381723406000"), "{}", e.message);
    order.service = Some("sepa_eur".into());
    assert_eq!(
        c.service_for(&order).unwrap_err().kind,
        ProviderErrorKind::Configuration
    );
    // Made before services were recorded: the one service of the currency, if there is one.
    order.service = None;
    assert!(c.service_for(&order).is_err(), "USD has card and test_usd");
    order.currency = cashout_core::money::Currency::EUR;
    order.amount = cashout_core::money::Amount::parse("10", order.currency).unwrap();
    order.beneficiary.bank_account = Some(cashout_core::party::AccountNumber::new("123456"));
    assert_eq!(c.service_for(&order).unwrap().id(), "test_eur");
}

#[test]
fn documented_error_bodies_are_read_and_classified() {
    let kind = |call, status, body: &str| CascadClient::failure(call, &reply(status, body)).kind;
    assert_eq!(
        kind(Call::Create, 401, fixture!("error_401.json")),
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        kind(Call::Other, 404, fixture!("error_404.json")),
        ProviderErrorKind::NotFound
    );
    assert_eq!(
        kind(Call::Create, 405, fixture!("error_405.json")),
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        kind(Call::Create, 422, fixture!("error_fields.json")),
        ProviderErrorKind::Declined
    );
    assert_eq!(kind(Call::Create, 403, "{}"), ProviderErrorKind::Configuration);
    assert_eq!(kind(Call::Create, 400, "{}"), ProviderErrorKind::Declined);
    assert_eq!(
        kind(Call::Create, 500, fixture!("error_500.json")),
        ProviderErrorKind::Ambiguous
    );
    assert!(matches!(
        kind(Call::Other, 503, "<html>"),
        ProviderErrorKind::Retryable { .. }
    ));
    let e = CascadClient::failure(Call::Create, &reply(422, fixture!("error_fields.json")));
    assert!(
        e.message.contains("amount: This value should be greater than 0."),
        "{}",
        e.message
    );
    let e = CascadClient::failure(Call::Create, &reply(500, fixture!("error_500.json")));
    assert!(e.message.contains("Internal server error."), "{}", e.message);
}

fn signed(body: &str, secret: &str) -> InboundNotification {
    let sig = cascad_signature(&ProviderSecret::new(secret), body.as_bytes());
    InboundNotification {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-signature".into(), sig),
        ],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn a_sample_callback_with_a_good_signature_is_a_status() {
    let c = client();
    let body = fixture!("invoice_private.json");
    let n = c
        .parse_callback(&signed(body, crate::config::simulator::CASCAD.2))
        .unwrap();
    let ProviderNotification::Status(p) = n else {
        panic!("expected a status, got {n:?}");
    };
    assert!(matches!(p.state, PayoutState::Paid { .. }));
    assert_eq!(p.updated_at.unwrap().unix_timestamp(), 1_597_835_933);
}

#[test]
fn callbacks_with_a_bad_or_missing_signature_are_refused() {
    let c = client();
    let body = fixture!("invoice_private.json");
    let wrong = c.parse_callback(&signed(body, "not the secret")).unwrap_err();
    assert_eq!(wrong.kind, ProviderErrorKind::Protocol);
    assert_eq!(wrong.code.as_deref(), Some("signature"));
    let mut tampered = signed(body, crate::config::simulator::CASCAD.2);
    tampered.body = body.replace("processed", "process_failed").into_bytes();
    assert!(c.parse_callback(&tampered).is_err());
    let unsigned = InboundNotification {
        headers: vec![],
        body: body.as_bytes().to_vec(),
    };
    assert_eq!(
        c.parse_callback(&unsigned).unwrap_err().code.as_deref(),
        Some("signature")
    );
}

#[test]
fn an_unknown_status_in_a_verified_callback_changes_nothing() {
    let c = client();
    let body = fixture!("invoice_private.json").replace("\"processed\"", "\"refunded\"");
    let n = c
        .parse_callback(&signed(&body, crate::config::simulator::CASCAD.2))
        .unwrap();
    let ProviderNotification::Status(p) = n else {
        panic!("expected a status, got {n:?}");
    };
    assert_eq!(p.state, PayoutState::Unknown);
    assert_eq!(p.state.target_status(), None);
    assert_eq!(p.provider_status, "refunded");
}

#[test]
fn a_batched_callback_of_several_invoices_is_a_hint() {
    let c = client();
    let body = fixture!("invoice_list.json");
    let n = c
        .parse_callback(&signed(body, crate::config::simulator::CASCAD.2))
        .unwrap();
    assert!(
        matches!(n, ProviderNotification::Hint { payout_id: Some(_), .. }),
        "{n:?}"
    );
}
