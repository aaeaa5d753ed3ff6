//! Divergences on demand: `PUT /_sim/payouts/{provider}/{payout_id}` changes a payout behind the
//! client's back and `POST /_sim/payouts/{provider}` makes one the client never asked for, both
//! without a notification or callback; the same through `SimHandle`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cashout_provider_sim::{
    ControlError, FaultConfig, ManualClock, NewPayout, PayoutChange, Provider, SimConfig, SimHandle, defaults,
};
use hmac::Mac;
use serde_json::{Value, json};
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

async fn start() -> (Arc<ManualClock>, SimHandle) {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = SimConfig {
        clock: clock.clone(),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (clock, cashout_provider_sim::start(config, listener).await.unwrap())
}

fn advance(clock: &ManualClock, ms: i64) {
    clock.advance(time::Duration::milliseconds(ms));
}

/// A D24 call, signed here with the HMAC crate directly.
async fn d24(sim: &SimHandle, provider: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let secret = match provider {
        "tupay" => defaults::TUPAY_SECRET,
        "onspot" => defaults::ONSPOT_SECRET,
        _ => defaults::D24_SECRET,
    };
    let bytes = serde_json::to_vec(body).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&bytes);
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/{provider}{path}", sim.url()))
        .header("content-type", "application/json")
        .header("payload-signature", hex::encode(mac.finalize().into_bytes()))
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn d24_status_body(external_id: &str) -> Value {
    json!({"login": defaults::D24_LOGIN, "pass": defaults::D24_PASS, "external_id": external_id})
}

/// Creates a D24 cashout (success trigger) notifying a loopback URL nobody listens on.
async fn d24_cashout(sim: &SimHandle, external_id: &str) -> String {
    let body = json!({
        "login": defaults::D24_LOGIN, "pass": defaults::D24_PASS,
        "external_id": external_id, "country": "BR", "currency": "BRL", "amount": 100.5,
        "document_id": "12345678909", "beneficiary_name": "Ana", "bank_account": "0001",
        "notification_url": "http://127.0.0.1:9/hook"
    });
    let (s, created) = d24(sim, "d24", "POST", "/v3/cashout", &body).await;
    assert_eq!(s, 200, "{created}");
    created["cashout_id"].as_str().unwrap().to_owned()
}

async fn cascad_get(sim: &SimHandle, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/cascad{path_and_query}", sim.url()))
        .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a Cascad invoice (left `created`) and returns its id.
async fn cascad_invoice(sim: &SimHandle, reference: &str) -> String {
    let doc = json!({"data": {"type": "payout-invoice", "attributes": {
        "reference_id": reference, "service": "test_usd", "currency": "USD", "amount": 10.25,
        "callback_url": "http://127.0.0.1:9/callback",
        "fields": {"account": "5123817234060"}}}});
    let r = reqwest::Client::new()
        .post(format!("{}/cascad/payout-invoices", sim.url()))
        .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn control(sim: &SimHandle, method: &str, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/_sim{path}", sim.url()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn a_d24_status_changed_behind_the_clients_back_is_served_without_a_notification() {
    let (clock, sim) = start().await;
    let id = d24_cashout(&sim, "ext-1").await;
    let (s, changed) = control(
        &sim,
        "PUT",
        &format!("/payouts/d24/{id}"),
        r#"{"status": "REJECTED", "rejection_code": 826}"#,
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(
        (&changed["id"], &changed["status"], &changed["reference"]),
        (&json!(id), &json!("REJECTED 826"), &json!("ext-1"))
    );
    let (s, status) = d24(&sim, "d24", "POST", "/v3/cashout/status", &d24_status_body("ext-1")).await;
    assert_eq!(s, 200);
    assert_eq!(
        status,
        json!({"cashout_status": 3, "cashout_status_description": "Rejected",
               "rejection_code": 826, "rejection_reason": "WITHDRAWAL_REVERSED"})
    );
    // The planned lifecycle (DELIVERED at 1 s, COMPLETED at 3 s) no longer runs: it stays as set.
    advance(&clock, 5_000);
    let ledger = sim.ledger();
    let p = &ledger.payouts[0];
    assert_eq!(p.status, "REJECTED 826");
    assert_eq!(
        p.history.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["REJECTED 826"]
    );
    assert!(ledger.deliveries.is_empty(), "no notification: {:?}", ledger.deliveries);
    // The amount and currency change too; COMPLETED carries no rejection code.
    let (s, changed) = control(
        &sim,
        "PUT",
        &format!("/payouts/d24/{id}"),
        r#"{"status": "COMPLETED", "amount": 99.99, "currency": "USD"}"#,
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    let ledger = sim.ledger();
    let p = &ledger.payouts[0];
    assert_eq!(
        (p.status.as_str(), p.amount.as_str(), p.currency.as_deref()),
        ("COMPLETED", "99.99", Some("USD"))
    );
    assert_eq!(p.history.len(), 2);
    assert!(ledger.deliveries.is_empty());
    let (_, status) = d24(&sim, "d24", "POST", "/v3/cashout/status", &d24_status_body("ext-1")).await;
    assert_eq!(
        status,
        json!({"cashout_status": 1, "cashout_status_description": "Completed"})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_unknown_providers_and_payouts_are_404_unknown_statuses_400() {
    let (_clock, sim) = start().await;
    let id = d24_cashout(&sim, "ext-2").await;
    let put = |path: String, body: &'static str| {
        let sim = &sim;
        async move { control(sim, "PUT", &path, body).await.0 }
    };
    assert_eq!(put("/payouts/paypal/1".into(), r#"{"status": "COMPLETED"}"#).await, 404);
    assert_eq!(put("/payouts/d24/1".into(), r#"{"status": "COMPLETED"}"#).await, 404);
    // The payout is D24's, not Onspot's.
    assert_eq!(
        put(format!("/payouts/onspot/{id}"), r#"{"status": "COMPLETED"}"#).await,
        404
    );
    let d24_path = format!("/payouts/d24/{id}");
    for bad in [
        r#"{"status": "processed"}"#,
        r#"{"status": "completed"}"#,
        r#"{"status": "COMPLETED", "rejection_code": 826}"#,
        r#"{"status": "REJECTED", "rejection_code": 825}"#,
        r#"{"status": "REJECTED", "resolution": "ok"}"#,
        r#"{"amount": "-1"}"#,
        r#"{"amount": "ten"}"#,
        r#"{"currency": "usd"}"#,
        r#"{}"#,
        r#"{"stauts": "COMPLETED"}"#,
        "not json",
    ] {
        assert_eq!(put(d24_path.clone(), bad).await, 400, "{bad}");
    }
    // Nothing changed.
    assert_eq!(sim.ledger().payouts[0].status, "PENDING");
    assert!(sim.ledger().payouts[0].history.is_empty());
    // Tupay has no ON_HOLD; Cascad has no REJECTED.
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/tupay",
        r#"{"reference": "t-1", "amount": "5", "status": "ON_HOLD"}"#,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/cascad",
        r#"{"reference": "c-1", "amount": "5", "status": "REJECTED"}"#,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/paypal",
        r#"{"reference": "p-1", "amount": "5"}"#,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = control(&sim, "POST", "/payouts/d24", r#"{"reference": " ", "amount": "5"}"#).await;
    assert_eq!(s, 400);
    assert_eq!(sim.ledger().payouts.len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_cascad_invoice_changed_behind_the_clients_back_shows_its_new_amount_and_status() {
    let (clock, sim) = start().await;
    let id = cascad_invoice(&sim, "ref-c1").await;
    let (s, changed) = control(
        &sim,
        "PUT",
        &format!("/payouts/cascad/{id}"),
        r#"{"amount": "12.34", "currency": "EUR"}"#,
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["status"], "created");
    let (_, doc) = cascad_get(&sim, &format!("/payout-invoices/{id}")).await;
    let a = &doc["data"]["attributes"];
    assert_eq!((&a["amount"], &a["currency"]), (&json!(12.34), &json!("EUR")));
    advance(&clock, 1_000);
    let (s, _) = control(
        &sim,
        "PUT",
        &format!("/payouts/cascad/{id}"),
        r#"{"status": "processed"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let (_, doc) = cascad_get(&sim, "/payout-invoices?filter[reference_id]=ref-c1").await;
    let a = &doc["data"][0]["attributes"];
    assert_eq!((&a["status"], &a["resolution"]), (&json!("processed"), &json!("ok")));
    assert_eq!(a["processed"], json!(t0().unix_timestamp() + 1));
    assert_eq!(a["updated"], json!(t0().unix_timestamp() + 1));
    assert_eq!(a["processed_amount"], json!(12.34));
    let (s, _) = control(
        &sim,
        "PUT",
        &format!("/payouts/cascad/{id}"),
        r#"{"status": "terminated", "resolution": "declined"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let ledger = sim.ledger();
    assert_eq!(ledger.payouts[0].status, "terminated");
    assert_eq!(
        ledger.payouts[0]
            .history
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["created", "processed", "terminated"]
    );
    // The invoice has a callback_url, yet no callback was queued.
    assert!(ledger.deliveries.is_empty(), "{:?}", ledger.deliveries);
    for bad in [
        r#"{"status": "COMPLETED"}"#,
        r#"{"status": "refunded"}"#,
        r#"{"status": "processed", "rejection_code": 808}"#,
        r#"{"resolution": "Not OK"}"#,
    ] {
        let (s, _) = control(&sim, "PUT", &format!("/payouts/cascad/{id}"), bad).await;
        assert_eq!(s, 400, "{bad}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_cascad_invoice_nobody_asked_for_is_listed_and_found_by_its_reference() {
    let (clock, sim) = start().await;
    cascad_invoice(&sim, "ours-1").await;
    advance(&clock, 1_000);
    let (s, made) = control(
        &sim,
        "POST",
        "/payouts/cascad",
        r#"{"reference": "theirs-1", "amount": "10.00", "currency": "USD", "status": "processed"}"#,
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cpoi_") && id.len() == 21, "{id}");
    assert_eq!(
        (&made["reference"], &made["status"], &made["amount"], &made["currency"]),
        (&json!("theirs-1"), &json!("processed"), &json!("10.00"), &json!("USD"))
    );
    // Newest first: it heads the list.
    let (_, list) = cascad_get(&sim, "/payout-invoices?page[size]=10").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["id"], json!(id));
    let a = &list["data"][0]["attributes"];
    assert_eq!(
        (&a["reference_id"], &a["amount"], &a["status"], &a["created"]),
        (
            &json!("theirs-1"),
            &json!(10),
            &json!("processed"),
            &json!(t0().unix_timestamp() + 1)
        )
    );
    let (_, found) = cascad_get(&sim, "/payout-invoices?filter[reference_id]=theirs-1").await;
    assert_eq!(found["data"][0]["id"], json!(id));
    // The provider holds the reference now: a second one is refused, as a create would be.
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/cascad",
        r#"{"reference": "theirs-1", "amount": "1"}"#,
    )
    .await;
    assert_eq!(s, 409);
    let ledger = sim.ledger();
    let r = ledger.reference(Provider::Cascad, "theirs-1").unwrap();
    assert_eq!((r.create_attempts, r.payouts), (0, 1), "nobody asked the API for it");
    assert!(ledger.deliveries.is_empty());
    // It has no lifecycle.
    advance(&clock, 48 * 3600 * 1000);
    assert_eq!(sim.ledger().payouts[1].status, "processed");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_d24_cashout_nobody_asked_for_answers_the_status_call() {
    let (_clock, sim) = start().await;
    let (s, made) = control(
        &sim,
        "POST",
        "/payouts/d24",
        r#"{"reference": "theirs-d24", "amount": 50, "currency": "BRL", "status": "COMPLETED"}"#,
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["id"], "8400001");
    let (s, status) = d24(
        &sim,
        "d24",
        "POST",
        "/v3/cashout/status",
        &d24_status_body("theirs-d24"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(status["cashout_status"], 1);
    // Its id is taken: the next create gets the next one.
    assert_eq!(d24_cashout(&sim, "ours-d24").await, "8400002");
    // Default status PENDING; a reference already held is 409.
    let (s, made) = control(
        &sim,
        "POST",
        "/payouts/tupay",
        r#"{"reference": "t-2", "amount": "5.5"}"#,
    )
    .await;
    assert_eq!((s, &made["status"]), (201, &json!("PENDING")));
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/tupay",
        r#"{"reference": "t-2", "amount": "5.5"}"#,
    )
    .await;
    assert_eq!(s, 409);
    // Unless the provider stops enforcing unique references.
    sim.set_faults(
        Provider::Tupay,
        FaultConfig {
            accept_duplicate_references: true,
            ..FaultConfig::default()
        },
    );
    let (s, _) = control(
        &sim,
        "POST",
        "/payouts/tupay",
        r#"{"reference": "t-2", "amount": "5.5"}"#,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(sim.ledger().double_payouts().len(), 1);
    assert!(sim.ledger().deliveries.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_handle_changes_and_adds_payouts_in_process() {
    let (_clock, sim) = start().await;
    let made = sim
        .add_payout(
            Provider::Cascad,
            &NewPayout {
                reference: "theirs-h".into(),
                amount: "7.50".into(),
                ..NewPayout::default()
            },
        )
        .unwrap();
    assert_eq!(
        (made.status.as_str(), made.currency.as_deref(), made.amount.as_str()),
        ("created", Some("USD"), "7.50")
    );
    let changed = sim
        .change_payout(
            Provider::Cascad,
            &made.id,
            &PayoutChange {
                status: Some("process_failed".into()),
                resolution: Some("declined".into()),
                ..PayoutChange::default()
            },
        )
        .unwrap();
    assert_eq!(changed.status, "process_failed");
    let (_, doc) = cascad_get(&sim, &format!("/payout-invoices/{}", made.id)).await;
    assert_eq!(doc["data"]["attributes"]["resolution"], "declined");
    assert!(matches!(
        sim.change_payout(Provider::D24, &made.id, &PayoutChange::default()),
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        sim.change_payout(Provider::Cascad, &made.id, &PayoutChange::default()),
        Err(ControlError::Invalid(_))
    ));
    let held = sim
        .add_payout(
            Provider::Onspot,
            &NewPayout {
                reference: "theirs-o".into(),
                amount: "1".into(),
                status: Some("REJECTED".into()),
                rejection_code: Some(808),
                ..NewPayout::default()
            },
        )
        .unwrap();
    assert_eq!(held.status, "REJECTED 808");
    assert!(sim.ledger().deliveries.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_payout_is_gone_from_lookups_listings_and_the_ledger() {
    let (_clock, sim) = start().await;
    let id = d24_cashout(&sim, "ref-lost").await;
    let kept = d24_cashout(&sim, "ref-kept").await;
    let r = reqwest::Client::new()
        .delete(format!("{}/_sim/payouts/d24/{id}", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, answer) = d24(&sim, "d24", "POST", "/v3/cashout/status", &d24_status_body("ref-lost")).await;
    assert_ne!(s, 200, "the provider no longer holds it: {answer}");
    let (s, _) = d24(&sim, "d24", "POST", "/v3/cashout/status", &d24_status_body("ref-kept")).await;
    assert_eq!(s, 200, "the other one is untouched");
    let ledger = sim.ledger();
    assert!(ledger.payouts.iter().all(|p| p.id != id));
    assert!(ledger.payouts.iter().any(|p| p.id == kept));
    assert!(
        matches!(sim.lose_payout(Provider::D24, &id), Err(ControlError::NotFound(_))),
        "once"
    );
    let r = reqwest::Client::new()
        .delete(format!("{}/_sim/payouts/d24/nope", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
