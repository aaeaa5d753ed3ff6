//! The simulator on the wire, without the adapters: documented error codes and bodies, the
//! control endpoint, time scale, seeded reproducibility, notification faults, and durable state
//! across a restart.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_provider_sim::{FaultConfig, Faults, ManualClock, Provider, SimConfig, SimHandle, defaults};
use hmac::Mac;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `Payload-Signature`, computed here with the HMAC crate directly (not the simulator's code).
fn d24_payload_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A create answer's `cashout_id` (a string) as the number the other calls take (seed 001).
fn id_number(created: &Value) -> Value {
    json!(created["cashout_id"].as_str().unwrap().parse::<u64>().unwrap())
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cashout_provider_sim::start(config, listener).await.unwrap()
}

fn manual() -> (Arc<ManualClock>, SimConfig) {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = SimConfig {
        clock: clock.clone(),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    };
    (clock, config)
}

fn advance(clock: &ManualClock, ms: i64) {
    clock.advance(time::Duration::milliseconds(ms));
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Posts a D24 body signed with `secret` (the default D24 secret when `None`).
async fn d24(sim: &SimHandle, method: &str, path: &str, body: &Value, secret: Option<&str>) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = d24_payload_signature(secret.unwrap_or(defaults::D24_SECRET), &bytes);
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/d24{path}", sim.url()))
        .header("content-type", "application/json")
        .header("payload-signature", sig)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn create_body(external_id: &str, account: &str, notification_url: &str) -> Value {
    json!({
        "login": defaults::D24_LOGIN, "pass": defaults::D24_PASS,
        "external_id": external_id, "country": "BR", "currency": "BRL", "amount": 100.5,
        "document_id": "12345678909", "beneficiary_name": "Ana", "bank_account": account,
        "notification_url": notification_url
    })
}

fn creds() -> Value {
    json!({"login": defaults::D24_LOGIN, "pass": defaults::D24_PASS})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[tokio::test]
async fn d24_errors_use_the_documented_codes() {
    let sim = start(SimConfig::default()).await;
    let body = create_body("ref-1", "0001", "http://127.0.0.1:9/hook");
    let (s, e) = d24(&sim, "POST", "/v3/cashout", &body, Some("wrong secret")).await;
    assert_eq!((s, e["code"].as_i64()), (401, Some(302)));
    let bad_login = with(body.clone(), json!({"pass": "nope"}));
    let (s, e) = d24(&sim, "POST", "/v3/cashout", &bad_login, None).await;
    assert_eq!((s, e["code"].as_i64()), (401, Some(401)));
    let missing = with(body.clone(), json!({"document_id": null}));
    let (s, e) = d24(&sim, "POST", "/v3/cashout", &missing, None).await;
    assert_eq!(
        (s, e["code"].as_i64()),
        (412, Some(300)),
        "412: validation (the digest)"
    );
    assert!(e["message"].as_str().unwrap().contains("document_id"));
    let bad_country = with(body.clone(), json!({"country": "JP"}));
    assert_eq!(
        d24(&sim, "POST", "/v3/cashout", &bad_country, None).await.1["code"],
        518
    );
    let bad_currency = with(body.clone(), json!({"currency": "USD"}));
    assert_eq!(
        d24(&sim, "POST", "/v3/cashout", &bad_currency, None).await.1["code"],
        526
    );
    let (s, created) = d24(&sim, "POST", "/v3/cashout", &body, None).await;
    assert_eq!(s, 200);
    assert!(
        created["cashout_id"].is_string(),
        "the create answer gives the id as a string"
    );
    let (s, e) = d24(&sim, "POST", "/v3/cashout", &body, None).await;
    assert_eq!((s, e["code"].as_i64()), (412, Some(511)));
    // Cancel needs both ids.
    let cancel = with(creds(), json!({"cashout_id": id_number(&created)}));
    assert_eq!(
        d24(&sim, "DELETE", "/v3/cashout/cancel", &cancel, None).await.1["code"],
        300
    );
    let unknown = with(creds(), json!({"external_id": "nobody"}));
    let (s, e) = d24(&sim, "POST", "/v3/cashout/status", &unknown, None).await;
    assert_eq!((s, e["code"].as_i64()), (412, Some(509)));
    // A cashout_id is a number (seed 001), not a string of digits.
    let as_text = with(creds(), json!({"cashout_id": created["cashout_id"]}));
    let (s, e) = d24(&sim, "POST", "/v3/cashout/status", &as_text, None).await;
    assert_eq!((s, e["code"].as_i64()), (412, Some(300)));
    // Malformed JSON, correctly signed.
    let raw = b"{not json".to_vec();
    let sig = d24_payload_signature(defaults::D24_SECRET, &raw);
    let post = |content_type: Option<&'static str>| {
        let mut r = reqwest::Client::new()
            .post(format!("{}/d24/v3/cashout", sim.url()))
            .header("payload-signature", sig.clone())
            .body(raw.clone());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let r = post(Some("application/json")).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 502);
    // Seed 001: `Content-Type*` is required.
    let r = post(None).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 100);
    // Each profile has its own credentials.
    let (s, _) = d24(
        &sim,
        "POST",
        "/v3/cashout/status",
        &unknown,
        Some(defaults::ONSPOT_SECRET),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn cascad_errors_and_masking_follow_the_docs() {
    let sim = start(SimConfig::default()).await;
    let url = format!("{}/cascad/payout-invoices", sim.url());
    let client = reqwest::Client::new();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": [{"status": "Unauthorized", "code": "401"}]})
    );
    let doc = json!({"data": {"type": "payout-invoice", "attributes": {
        "reference_id": "r-1", "service": "test_usd", "currency": "USD", "amount": 10.25,
        "fields": {"card_number": "5123817234060000", "account": "5123817234060"}}}});
    let post = |body: &Value| {
        client
            .post(&url)
            .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
            .json(body)
            .send()
    };
    let r = post(&doc).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#""amount": 10.25,"#), "exact number token: {text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["data"]["attributes"]["fields"]["account"], "512381***4060");
    assert_eq!(created["data"]["attributes"]["status"], "created");
    assert_eq!(post(&doc).await.unwrap().status().as_u16(), 409);
    let mut zero = doc.clone();
    zero["data"]["attributes"]["reference_id"] = json!("r-2");
    zero["data"]["attributes"]["amount"] = json!(0);
    let r = post(&zero).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": {"amount": "This value should be greater than 0."}})
    );
}

#[tokio::test]
async fn the_control_endpoint_changes_faults_and_time_scale_and_shows_the_ledger() {
    let sim = start(SimConfig::default()).await;
    let client = reqwest::Client::new();
    let base = format!("{}/_sim", sim.url());
    let r = client
        .put(format!("{base}/faults/tupay"))
        .json(&json!({"error_after": 20, "notify_drop": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.faults().tupay.error_after, 20);
    assert_eq!(sim.faults().d24, FaultConfig::default());
    let r = client
        .put(format!("{base}/faults/all"))
        .json(&json!({"timeout": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.faults().cascad.timeout, 1);
    let r = client
        .put(format!("{base}/faults/nobody"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .put(format!("{base}/faults/d24"))
        .json(&json!({"explode": 1}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    client.delete(format!("{base}/faults")).send().await.unwrap();
    assert_eq!(sim.faults(), Faults::default());
    let r = client
        .put(format!("{base}/time-scale"))
        .json(&json!({"time_scale": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["time_scale"], 50);
    d24(
        &sim,
        "POST",
        "/v3/cashout",
        &create_body("ref-l", "0001", "http://127.0.0.1:9/h"),
        None,
    )
    .await;
    let ledger: Value = client
        .get(format!("{base}/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["payouts"][0]["reference"], "ref-l");
    assert_eq!(ledger["references"][0]["create_attempts"], 1);
    assert_eq!(ledger["references"][0]["payouts"], 1);
}

#[tokio::test]
async fn the_time_scale_speeds_the_lifecycle_up() {
    let (clock, config) = manual();
    let sim = start(SimConfig {
        time_scale: 100,
        ..config
    })
    .await;
    let (_, c) = d24(
        &sim,
        "POST",
        "/v3/cashout",
        &create_body("fast", "0001", "http://127.0.0.1:9/h"),
        None,
    )
    .await;
    advance(&clock, 20);
    let status = with(creds(), json!({"cashout_id": id_number(&c)}));
    let (_, s) = d24(&sim, "POST", "/v3/cashout/status", &status, None).await;
    assert_eq!(
        s,
        json!({"cashout_status": 1, "cashout_status_description": "Completed"})
    );
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_faults() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = start(SimConfig {
            seed,
            faults: Faults::all(FaultConfig {
                error_before: 30,
                rate_limit: 30,
                ..FaultConfig::default()
            }),
            ..SimConfig::default()
        })
        .await;
        let mut out = Vec::new();
        for i in 0..24 {
            let body = create_body(&format!("seeded-{i}"), "0001", "http://127.0.0.1:9/h");
            out.push(d24(&sim, "POST", "/v3/cashout", &body, None).await.0);
        }
        sim.shutdown().await;
        out
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s != 200), "{a:?}");
    assert_ne!(a, run(43).await);
}

/// A local receiver: counts posts and answers 200 (or 500 while `down`).
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn receiver(listener: tokio::net::TcpListener) -> Receiver {
    let r = Receiver::default();
    let bodies = r.bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

#[tokio::test]
async fn notification_faults_drop_and_duplicate_and_non_loopback_urls_are_refused() {
    let (clock, config) = manual();
    let sim = start(SimConfig {
        faults: Faults {
            d24: FaultConfig {
                notify_duplicate: 100,
                ..FaultConfig::default()
            },
            ..Faults::default()
        },
        ..config
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener).await;
    d24(&sim, "POST", "/v3/cashout", &create_body("dup", "0001", &hook), None).await;
    d24(
        &sim,
        "POST",
        "/v3/cashout",
        &create_body("far", "0001", "https://example.com/hook"),
        None,
    )
    .await;
    advance(&clock, 1000);
    wait_until(|| rx.bodies.lock().unwrap().len() >= 2).await;
    let bodies = rx.bodies.lock().unwrap().clone();
    assert_eq!(bodies[0], bodies[1], "the same notification twice");
    assert!(!bodies[0].contains("status="));
    wait_until(|| sim.ledger().deliveries.iter().any(|d| d.state == "refused")).await;
    let ledger = sim.ledger();
    let far = ledger.deliveries.iter().find(|d| d.reference == "far").unwrap();
    assert_eq!(far.state, "refused");
    assert_eq!(far.attempts, 0);
    sim.set_faults(
        Provider::D24,
        FaultConfig {
            notify_drop: 100,
            ..FaultConfig::default()
        },
    );
    d24(&sim, "POST", "/v3/cashout", &create_body("lost", "0001", &hook), None).await;
    advance(&clock, 1000);
    let ledger = sim.ledger();
    let lost: Vec<_> = ledger.deliveries.iter().filter(|d| d.reference == "lost").collect();
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].state.as_str(), lost[0].attempts), ("dropped", 0));
}

#[tokio::test]
async fn reordered_notifications_arrive_after_later_ones() {
    let (clock, config) = manual();
    let sim = start(SimConfig {
        seed: 1,
        faults: Faults::all(FaultConfig {
            notify_reorder: 50,
            ..FaultConfig::default()
        }),
        ..config
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener).await;
    for i in 0..8 {
        d24(
            &sim,
            "POST",
            "/v3/cashout",
            &create_body(&format!("o-{i}"), "0001", &hook),
            None,
        )
        .await;
    }
    advance(&clock, 2000);
    // Held-back notifications are due 3 s after their change, the others at once.
    let now = t0() + time::Duration::seconds(2);
    let ledger = sim.ledger();
    assert_eq!(ledger.deliveries.len(), 16);
    let held = ledger
        .deliveries
        .iter()
        .filter(|d| d.next_attempt_at.is_some_and(|at| at > now))
        .count();
    assert!(held > 0 && held < 16, "{held} of 16 held back");
    wait_until(|| rx.bodies.lock().unwrap().len() == 16 - held).await;
    advance(&clock, 3000);
    wait_until(|| rx.bodies.lock().unwrap().len() == 16).await;
}

#[tokio::test]
async fn a_restarted_simulator_resumes_lifecycles_and_resends_pending_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let config = || SimConfig {
        clock: clock.clone(),
        tick: Duration::from_millis(5),
        state_dir: Some(dir.path().to_owned()),
        ..SimConfig::default()
    };
    // The receiver is not up yet: its port is reserved, then freed.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let hook = format!("http://{addr}/hook");
    let sim = start(config()).await;
    let (_, c) = d24(
        &sim,
        "POST",
        "/v3/cashout",
        &create_body("durable", "0001", &hook),
        None,
    )
    .await;
    advance(&clock, 1000);
    wait_until(|| sim.ledger().deliveries.first().is_some_and(|d| d.attempts == 1)).await;
    sim.shutdown().await;

    // Down time: the payout's bank settles it meanwhile.
    advance(&clock, 5000);
    let rx = receiver(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    let sim = start(config()).await;
    let status = with(creds(), json!({"cashout_id": id_number(&c)}));
    let (_, s) = d24(&sim, "POST", "/v3/cashout/status", &status, None).await;
    assert_eq!(s["cashout_status"], 1, "COMPLETED after the restart");
    // The failed DELIVERED notification is retried a minute after its first attempt.
    advance(&clock, 60_000);
    wait_until(|| rx.bodies.lock().unwrap().len() >= 2).await;
    let ledger = sim.ledger();
    assert_eq!(ledger.payouts.len(), 1);
    assert_eq!(ledger.references[0].create_attempts, 1);
    let (s, e) = d24(
        &sim,
        "POST",
        "/v3/cashout",
        &create_body("durable", "0001", &hook),
        None,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_i64()),
        (412, Some(511)),
        "uniqueness survives the restart"
    );
}
