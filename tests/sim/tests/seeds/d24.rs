//! The D24 family (seeds 001 and 002): the status examples replayed byte for byte on each
//! profile, and the hold, cancel and reversal rules the seeds state.

use std::sync::Arc;

use cashout_provider_sim::{D24Credentials, ManualClock, Provider, SimConfig, SimHandle};
use serde_json::{Value, json};

use super::{Answer, assert_bytes, clocked, payload_signature, seed_request, send, start};

const SEED_001_REQUEST: &str = include_str!("../fixtures/seed001_status_request.txt");
const SEED_001_COMPLETED: &str = include_str!("../fixtures/seed001_status_completed.json");
const SEED_001_REJECTED: &str = include_str!("../fixtures/seed001_status_rejected.json");
const SEED_002_REQUEST: &str = include_str!("../fixtures/seed002_status_request.txt");
const SEED_002_COMPLETED: &str = include_str!("../fixtures/seed002_status_completed.json");
const SEED_002_REJECTED: &str = include_str!("../fixtures/seed002_status_rejected.json");

/// The API Signature secret of the replays. The seeds' own `Payload-Signature` was made with a
/// secret they do not give.
const SECRET: &str = "seed_api_signature";

/// The seeds' example credentials (`cashout_login` / `cashout_pass`) for every D24 profile, and
/// ids that start at the example's `cashout_id` 11954.
fn seed_d24_config(unix: i64) -> (Arc<ManualClock>, SimConfig) {
    let (clock, config) = clocked(unix);
    let creds = || D24Credentials {
        login: "cashout_login".into(),
        pass: "cashout_pass".into(),
        secret: SECRET.into(),
    };
    (
        clock,
        SimConfig {
            d24: creds(),
            onspot: creds(),
            tupay: creds(),
            d24_first_cashout_id: 11954,
            ..config
        },
    )
}

async fn d24_post(sim: &SimHandle, p: Provider, method: &str, path: &str, body: &[u8], signature: &str) -> Answer {
    send(
        reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", sim.base_url(p)))
            .header("Content-Type", "application/json")
            .header("Payload-Signature", signature)
            .body(body.to_vec()),
    )
    .await
}

/// A signed JSON call with the seeds' credentials.
async fn d24_call(sim: &SimHandle, p: Provider, method: &str, path: &str, body: &Value) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap();
    d24_post(sim, p, method, path, &bytes, &payload_signature(SECRET, &bytes)).await
}

fn d24_create_body(p: Provider, external_id: &str, account: &str, extra: Value) -> Value {
    let mut body = match p {
        Provider::Tupay => json!({
            "login": "cashout_login", "pass": "cashout_pass", "external_id": external_id,
            "country": "PE", "currency": "PEN", "amount": 150, "document_id": "12345678",
            "document_type": "DNI", "beneficiary_name": "Ana", "bank_account": account,
            "account_type": "S", "notification_url": "http://127.0.0.1:9/hook"
        }),
        Provider::D24 | Provider::Onspot | Provider::Cascad => json!({
            "login": "cashout_login", "pass": "cashout_pass", "external_id": external_id,
            "country": "BR", "currency": "BRL", "amount": 150.25, "document_id": "12345678909",
            "beneficiary_name": "Ana", "bank_account": account,
            "notification_url": "http://127.0.0.1:9/hook"
        }),
    };
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn d24_status(sim: &SimHandle, p: Provider, query: Value) -> Answer {
    let mut body = json!({"login": "cashout_login", "pass": "cashout_pass"});
    for (k, v) in query.as_object().unwrap() {
        body[k] = v.clone();
    }
    d24_call(sim, p, "POST", "/v3/cashout/status", &body).await
}

/// Replays a seed's status example on `profile`: the request bytes as printed, the answers
/// expected as printed.
async fn replay_status_examples(p: Provider, request: &str, completed: &str, rejected: &str) {
    let (clock, config) = seed_d24_config(1_795_000_000);
    let sim = start(config).await;
    let seed = seed_request(request);
    let header = |name: &str| {
        seed.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(header("Content-Type"), "application/json");

    // The request exactly as printed, its signature included: that signature was made with a
    // secret the seed does not give, so it is refused like any foreign signature.
    let as_printed = d24_post(
        &sim,
        p,
        "POST",
        "/v3/cashout/status",
        seed.body.as_bytes(),
        &header("Payload-Signature"),
    )
    .await;
    assert_eq!(
        (as_printed.status, as_printed.json()["code"].as_i64()),
        (401, Some(302))
    );

    // Cashout 11954 completes; 11955 (account …08) is rejected with 808 ERROR_OTHER.
    let created = d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "seed-completed", "0001234567", json!({})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.text, "{\n    \"cashout_id\": \"11954\"\n}");
    let rejected_id = d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "seed-rejected", "0001234508", json!({})),
    )
    .await;
    assert_eq!(rejected_id.json()["cashout_id"], "11955");
    clock.advance(time::Duration::seconds(2));

    // The same bytes, signed with the configured secret: the seed's answer, byte for byte.
    let signed = d24_post(
        &sim,
        p,
        "POST",
        "/v3/cashout/status",
        seed.body.as_bytes(),
        &payload_signature(SECRET, seed.body.as_bytes()),
    )
    .await;
    assert_eq!(signed.status, 200);
    assert_bytes(&signed.text, completed, &format!("{p}: completed status answer"));
    let answer = d24_status(&sim, p, json!({"cashout_id": 11955})).await;
    assert_bytes(&answer.text, rejected, &format!("{p}: rejected status answer"));
    // By external_id: "You can opt to send this field or cashout_id" (seed 001 line 108).
    let by_reference = d24_status(&sim, p, json!({"external_id": "seed-rejected"})).await;
    assert_eq!(by_reference.text, answer.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn seed_001_status_examples_replay_byte_for_byte_on_d24_and_onspot() {
    for p in [Provider::D24, Provider::Onspot] {
        replay_status_examples(p, SEED_001_REQUEST, SEED_001_COMPLETED, SEED_001_REJECTED).await;
    }
}

#[tokio::test]
async fn seed_002_status_examples_replay_byte_for_byte_on_tupay() {
    replay_status_examples(Provider::Tupay, SEED_002_REQUEST, SEED_002_COMPLETED, SEED_002_REJECTED).await;
}

#[tokio::test]
async fn on_hold_true_creates_the_cashout_on_hold_until_released_and_it_can_still_be_cancelled() {
    let (clock, config) = seed_d24_config(1_795_000_000);
    let sim = start(config).await;
    let p = Provider::D24;
    let held = d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "held", "0001234567", json!({"on_hold": true})),
    )
    .await;
    assert_eq!(held.status, 200);
    clock.advance(time::Duration::seconds(60));
    let s = d24_status(&sim, p, json!({"cashout_id": 11954})).await;
    assert_eq!(
        s.json(),
        json!({"cashout_status": 5, "cashout_status_description": "On hold"}),
        "seed 001: created ON_HOLD with on_hold: true, and it stays there"
    );
    // Release (PENDING), hold again, then cancel while ON_HOLD ("It can still be CANCELLED").
    let set =
        |status: &str| json!({"login": "cashout_login", "pass": "cashout_pass", "cashout_id": 11954, "status": status});
    let released = d24_call(&sim, p, "PUT", "/v3/cashout/status", &set("PENDING")).await;
    assert_eq!(released.json()["cashout_status"], 0);
    let again = d24_call(&sim, p, "PUT", "/v3/cashout/status", &set("PENDING")).await;
    assert_eq!((again.status, again.json()["code"].as_i64()), (412, Some(510)));
    assert_eq!(
        d24_call(&sim, p, "PUT", "/v3/cashout/status", &set("ON_HOLD"))
            .await
            .json()["cashout_status"],
        5
    );
    let cancel = json!({"login": "cashout_login", "pass": "cashout_pass", "cashout_id": 11954, "external_id": "held"});
    let cancelled = d24_call(&sim, p, "DELETE", "/v3/cashout/cancel", &cancel).await;
    assert_eq!(
        cancelled.json(),
        json!({"cashout_status": 2, "cashout_status_description": "Canceled"})
    );
    // A cashout with the bank can no longer be cancelled (seed 001 item 5), nor held.
    d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "sent", "0001234567", json!({"on_hold": false})),
    )
    .await;
    clock.advance(time::Duration::seconds(1));
    let late = json!({"login": "cashout_login", "pass": "cashout_pass", "cashout_id": 11955, "external_id": "sent"});
    let refused = d24_call(&sim, p, "DELETE", "/v3/cashout/cancel", &late).await;
    assert_eq!((refused.status, refused.json()["code"].as_i64()), (412, Some(702)));
    let hold_late = json!({"login": "cashout_login", "pass": "cashout_pass", "cashout_id": 11955, "status": "ON_HOLD"});
    assert_eq!(
        d24_call(&sim, p, "PUT", "/v3/cashout/status", &hold_late).await.json()["code"],
        510
    );
}

#[tokio::test]
async fn tupay_has_no_on_hold_and_refuses_asking_for_it() {
    let (_, config) = seed_d24_config(1_795_000_000);
    let sim = start(config).await;
    let p = Provider::Tupay;
    let asked = d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "t-held", "00212345678901234567", json!({"on_hold": true})),
    )
    .await;
    assert_eq!((asked.status, asked.json()["code"].as_i64()), (412, Some(300)));
    assert!(sim.ledger().payouts.is_empty(), "nothing was created");
    // …55 is no hold on Tupay, and on_hold: false asks for nothing.
    let created = d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "t-55", "00212345678901234555", json!({"on_hold": false})),
    )
    .await;
    assert_eq!(created.status, 200);
    let s = d24_status(&sim, p, json!({"external_id": "t-55"})).await;
    assert_eq!(s.json()["cashout_status"], 0);
    let hold = json!({"login": "cashout_login", "pass": "cashout_pass", "cashout_id": 11954, "status": "ON_HOLD"});
    assert_eq!(
        d24_call(&sim, p, "PUT", "/v3/cashout/status", &hold).await.json()["code"],
        300
    );
}

#[tokio::test]
async fn a_completed_cashout_can_become_rejected_826_days_later() {
    let (clock, config) = seed_d24_config(1_795_000_000);
    let sim = start(config).await;
    let p = Provider::Onspot;
    d24_call(
        &sim,
        p,
        "POST",
        "/v3/cashout",
        &d24_create_body(p, "reversed", "0001234526", json!({})),
    )
    .await;
    clock.advance(time::Duration::seconds(2));
    let paid = d24_status(&sim, p, json!({"cashout_id": 11954})).await;
    assert_bytes(&paid.text, SEED_001_COMPLETED, "COMPLETED");
    clock.advance(time::Duration::seconds(10));
    let reversed = d24_status(&sim, p, json!({"cashout_id": 11954})).await;
    assert_eq!(
        reversed.json(),
        json!({"cashout_status": 3, "cashout_status_description": "Rejected",
               "rejection_code": 826, "rejection_reason": "WITHDRAWAL_REVERSED"})
    );
    let ledger = sim.ledger();
    let history: Vec<&str> = ledger.payouts[0].history.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(history, ["DELIVERED", "COMPLETED", "REJECTED 826"]);
}
