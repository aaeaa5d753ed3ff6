//! D24 adapter tests: wire types against the documented samples (fixtures copied from seeds 001
//! and 002) and error classification.

use cashout_core::ids::PayoutReference;
use cashout_core::ports::{InboundNotification, ProviderNotification};
use cashout_core::provider::PayoutState;

use super::transformers::{CreateCashoutResponse, StatusRequest};
use super::*;

#[test]
fn http_statuses_without_a_code_are_classified() {
    assert_eq!(by_http_status(StatusCode::BAD_REQUEST), ProviderErrorKind::Declined);
    assert_eq!(
        by_http_status(StatusCode::UNAUTHORIZED),
        ProviderErrorKind::Configuration
    );
    assert_eq!(by_http_status(StatusCode::FORBIDDEN), ProviderErrorKind::Configuration);
    assert_eq!(
        by_http_status(StatusCode::PAYMENT_REQUIRED),
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        by_http_status(StatusCode::METHOD_NOT_ALLOWED),
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        by_http_status(StatusCode::UNPROCESSABLE_ENTITY),
        ProviderErrorKind::Declined
    );
}

#[test]
fn placeholder_ids_are_not_cashout_ids() {
    let real = ProviderPayoutId::new("8405147").unwrap();
    let placeholder = ProviderPayoutId::new("ext:0190a2b4-0000-7000-8000-000000000001").unwrap();
    assert_eq!(known_cashout_id(&real), Some("8405147"));
    assert_eq!(known_cashout_id(&placeholder), None);
    assert_eq!(wire_id("11954"), CashoutId::Number(11954));
}

/// The seed's status request example, byte for byte, from our wire type.
#[test]
fn status_request_serialises_like_the_docs_example() {
    let r = StatusRequest {
        login: "cashout_login",
        pass: "cashout_pass",
        cashout_id: Some(wire_id("11954")),
        external_id: None,
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"login":"cashout_login","pass":"cashout_pass","cashout_id":11954}"#
    );
}

use crate::config::ProvidersConfig;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../fixtures/d24/", $name))
    };
}

fn client(name: ProviderName) -> D24Client {
    let config = ProvidersConfig::for_simulator("http://127.0.0.1:9");
    let transport = Arc::new(crate::http::ReqwestTransport::new(&config.http).unwrap());
    let http = Arc::new(Http::new(&config.http, transport));
    let c = match name {
        ProviderName::Tupay => config.tupay,
        ProviderName::Onspot => config.onspot,
        _ => config.d24,
    };
    D24Client::new(name, c.unwrap(), http).unwrap()
}

fn ok(body: &str) -> Reply {
    Reply {
        status: StatusCode::OK,
        retry_after: None,
        body: body.as_bytes().to_vec(),
    }
}

fn reference() -> PayoutReference {
    "0190a2b4-5e6f-7000-8000-000000000001".parse().unwrap()
}

#[test]
fn the_status_samples_map_to_payout_states() {
    let c = client(ProviderName::Onspot);
    let p = c
        .read_status(&ok(fixture!("status_completed.json")), Some("11954"), reference())
        .unwrap();
    assert_eq!(
        p.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
    assert_eq!(p.payout_id.as_str(), "11954");
    let p = c
        .read_status(&ok(fixture!("status_rejected_808.json")), Some("11954"), reference())
        .unwrap();
    assert_eq!(
        p.state,
        PayoutState::Rejected {
            code: Some("808".into()),
            reason: Some("ERROR_OTHER".into())
        }
    );
    assert_eq!(p.provider_status, "REJECTED 808 ERROR_OTHER");
    let p = c
        .read_status(&ok(fixture!("status_rejected_test.json")), None, reference())
        .unwrap();
    assert_eq!(
        p.state,
        PayoutState::Rejected {
            code: Some("0".into()),
            reason: Some("Test".into())
        }
    );
    assert_eq!(p.payout_id.as_str(), format!("ext:{}", reference()));
}

#[test]
fn on_hold_is_unknown_on_tupay_and_pending_elsewhere() {
    let body = r#"{"cashout_status": 5, "cashout_status_description": "On hold"}"#;
    let tupay = client(ProviderName::Tupay)
        .read_status(&ok(body), Some("1"), reference())
        .unwrap();
    assert_eq!(tupay.state, PayoutState::Unknown);
    let d24 = client(ProviderName::D24)
        .read_status(&ok(body), Some("1"), reference())
        .unwrap();
    assert_eq!(d24.state, PayoutState::Pending);
    assert_eq!(d24.provider_status, "ON_HOLD");
}

#[test]
fn the_status_request_sample_is_what_we_send() {
    let sample: serde_json::Value = serde_json::from_str(fixture!("status_request.json")).unwrap();
    let ours = serde_json::to_value(StatusRequest {
        login: "cashout_login",
        pass: "cashout_pass",
        cashout_id: Some(wire_id("11954")),
        external_id: None,
    })
    .unwrap();
    assert_eq!(ours, sample);
}

#[test]
fn the_create_answer_reads_an_id_given_as_a_string() {
    let r: CreateCashoutResponse = serde_json::from_str(fixture!("create_response.json")).unwrap();
    assert_eq!(r.cashout_id.text(), "8405147");
    let r: CreateCashoutResponse = serde_json::from_str(r#"{"cashout_id": 8405147}"#).unwrap();
    assert_eq!(r.cashout_id.text(), "8405147");
}

#[test]
fn a_notification_is_only_a_hint_with_both_ids() {
    let c = client(ProviderName::D24);
    let n = c
        .parse_notification(&InboundNotification {
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: fixture!("notification.form").trim().as_bytes().to_vec(),
        })
        .unwrap();
    assert_eq!(
        n,
        ProviderNotification::Hint {
            reference: Some(reference()),
            payout_id: Some(ProviderPayoutId::new("8405147").unwrap()),
        }
    );
    let empty = c.parse_notification(&InboundNotification {
        headers: vec![],
        body: b"date=2026-11-23".to_vec(),
    });
    assert_eq!(empty.unwrap_err().kind, ProviderErrorKind::Protocol);
}

#[test]
fn error_bodies_are_classified_by_code_then_by_http_status() {
    let c = client(ProviderName::D24);
    let fail = |call, status: u16, body: &str| {
        c.failure(
            call,
            &Reply {
                status: StatusCode::from_u16(status).unwrap(),
                retry_after: None,
                body: body.as_bytes().to_vec(),
            },
        )
    };
    let declined = fail(Call::Create, 400, r#"{"code":300,"message":"Invalid params"}"#);
    assert_eq!(declined.kind, ProviderErrorKind::Declined);
    assert_eq!(declined.code.as_deref(), Some("300"));
    assert_eq!(
        fail(Call::Create, 401, r#"{"code":401,"message":"Invalid credentials"}"#).kind,
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        fail(Call::Create, 400, r#"{"code":"402","message":"IP"}"#).kind,
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        fail(
            Call::Create,
            400,
            r#"{"code":514,"message":"Insufficient funds","reason":"x"}"#
        )
        .kind,
        ProviderErrorKind::Configuration
    );
    assert_eq!(
        fail(Call::Other, 412, r#"{"code":509,"message":"Cashout not found"}"#).kind,
        ProviderErrorKind::NotFound
    );
    assert_eq!(
        fail(Call::Other, 412, r#"{"code":702,"message":"Could not cancel"}"#).kind,
        ProviderErrorKind::InvalidState
    );
    assert!(matches!(
        fail(
            Call::Create,
            400,
            r#"{"code":537,"message":"Could not make the cashout"}"#
        )
        .kind,
        ProviderErrorKind::Retryable { .. }
    ));
    // A 5xx after a create is ambiguous whatever its body says; on a read it is retryable.
    assert_eq!(
        fail(Call::Create, 500, r#"{"code":537}"#).kind,
        ProviderErrorKind::Ambiguous
    );
    assert_eq!(
        fail(Call::Create, 502, "Bad Gateway").kind,
        ProviderErrorKind::Ambiguous
    );
    assert!(matches!(
        fail(Call::Other, 503, "").kind,
        ProviderErrorKind::Retryable { .. }
    ));
    assert_eq!(fail(Call::Create, 403, "").kind, ProviderErrorKind::Configuration);
    assert_eq!(fail(Call::Create, 405, "").kind, ProviderErrorKind::Configuration);
    assert_eq!(fail(Call::Create, 422, "").kind, ProviderErrorKind::Declined);
}
