//! One provider down while the others work, for failover tests: the configuration refusal
//! (`config_error`), faults that last a while (`for_ms`, on the simulator's clock, moved by hand
//! here: no test sleeps for an outage to end), and `error_before` on one provider only.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cashout_provider_sim::{
    D24Credentials, FaultConfig, Faults, ManualClock, Provider, SimConfig, SimHandle, defaults,
};
use hmac::Mac;
use serde_json::{Value, json};
use time::OffsetDateTime;

async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cashout_provider_sim::start(config, listener).await.unwrap()
}

/// A simulator on a clock that moves only when [`advance`] moves it.
async fn start_on_manual_clock(faults: Faults) -> (Arc<ManualClock>, SimHandle) {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
    ));
    let sim = start(SimConfig {
        clock: clock.clone(),
        tick: Duration::from_millis(5),
        faults,
        ..SimConfig::default()
    })
    .await;
    (clock, sim)
}

fn advance(clock: &ManualClock, ms: i64) {
    clock.advance(time::Duration::milliseconds(ms));
}

/// `Payload-Signature`, computed here with the HMAC crate directly (not the simulator's code).
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Posts `body` to a D24-family profile, signed with its default secret: status and JSON body
/// (`Null` for a gateway's plain text).
async fn post(sim: &SimHandle, p: Provider, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url(p)))
        .header("content-type", "application/json")
        .header(
            "payload-signature",
            signature(&D24Credentials::default_for(p).secret, &bytes),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn with_credentials(p: Provider, mut body: Value) -> Value {
    let c = D24Credentials::default_for(p);
    body["login"] = json!(c.login);
    body["pass"] = json!(c.pass);
    body
}

async fn create(sim: &SimHandle, p: Provider, external_id: &str) -> (u16, Value) {
    let body = with_credentials(
        p,
        json!({
            "external_id": external_id, "country": "BR", "currency": "BRL", "amount": 100.5,
            "document_id": "12345678909", "beneficiary_name": "Ana", "bank_account": "0001",
            "notification_url": "http://127.0.0.1:9/hook"
        }),
    );
    post(sim, p, "/v3/cashout", &body).await
}

async fn status_by_reference(sim: &SimHandle, p: Provider, external_id: &str) -> (u16, Value) {
    let body = with_credentials(p, json!({"external_id": external_id}));
    post(sim, p, "/v3/cashout/status", &body).await
}

/// `PUT /_sim/faults/{provider}`, as a failover test sets an outage.
async fn put_faults(sim: &SimHandle, provider: &str, body: Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/_sim/faults/{provider}", sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn get_faults(sim: &SimHandle) -> Value {
    let r = reqwest::get(format!("{}/_sim/faults", sim.url())).await.unwrap();
    r.json().await.unwrap()
}

fn unregistered_ip() -> (u16, Value) {
    (401, json!({"code": 402, "message": "Unregistered IP"}))
}

fn is_5xx(status: u16) -> bool {
    [500, 502, 503].contains(&status)
}

#[tokio::test]
async fn config_error_on_d24_answers_unregistered_ip_and_creates_nothing() {
    let sim = start(SimConfig::default()).await;
    put_faults(&sim, "d24", json!({"config_error": 100})).await;
    assert_eq!(create(&sim, Provider::D24, "cfg-1").await, unregistered_ip());
    assert_eq!(
        status_by_reference(&sim, Provider::D24, "cfg-1").await,
        unregistered_ip(),
        "without creates_only, lookups are refused too"
    );
    let ledger = sim.ledger();
    assert!(ledger.payouts.is_empty(), "{:?}", ledger.payouts);
    assert_eq!(
        (ledger.references[0].create_attempts, ledger.references[0].payouts),
        (1, 0)
    );
}

#[tokio::test]
async fn config_error_with_creates_only_refuses_creates_while_lookups_answer() {
    let sim = start(SimConfig::default()).await;
    assert_eq!(create(&sim, Provider::Onspot, "before").await.0, 200);
    put_faults(&sim, "onspot", json!({"config_error": 100, "creates_only": true})).await;
    assert_eq!(create(&sim, Provider::Onspot, "during").await, unregistered_ip());
    let (status, found) = status_by_reference(&sim, Provider::Onspot, "before").await;
    assert_eq!((status, &found["cashout_status"]), (200, &json!(0)), "{found}");
    let (status, _) = status_by_reference(&sim, Provider::Onspot, "during").await;
    assert_eq!(status, 412, "the lookup answers: cashout not found");
    assert_eq!(sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn config_error_on_cascad_is_a_403_and_creates_nothing_while_lookups_answer() {
    let sim = start(SimConfig::default()).await;
    put_faults(&sim, "cascad", json!({"config_error": 100, "creates_only": true})).await;
    let client = reqwest::Client::new();
    let url = format!("{}/payout-invoices", sim.base_url(Provider::Cascad));
    let doc = json!({"data": {"type": "payout-invoice", "attributes": {
        "reference_id": "cfg-c", "service": "test_usd", "currency": "USD", "amount": 10.25,
        "fields": {"card_number": "5123817234060000"}}}});
    let r = client
        .post(&url)
        .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": [{"status": "Forbidden", "code": "403", "title": "forbidden",
            "detail": "The commerce account has no access to this operation."}]})
    );
    let r = client
        .get(format!("{url}?filter[reference_id]=cfg-c"))
        .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["data"], json!([]));
    assert!(sim.ledger().payouts.is_empty());
}

#[tokio::test]
async fn faults_for_a_time_run_out_on_the_simulator_clock() {
    let (clock, sim) = start_on_manual_clock(Faults::default()).await;
    put_faults(&sim, "d24", json!({"error_before": 100, "for_ms": 5000})).await;
    assert!(is_5xx(create(&sim, Provider::D24, "t-1").await.0));
    advance(&clock, 4_999);
    assert!(is_5xx(create(&sim, Provider::D24, "t-2").await.0));
    let during = get_faults(&sim).await;
    assert_eq!(
        (&during["d24"]["error_before"], &during["d24"]["for_ms"]),
        (&json!(100), &json!(5000))
    );
    advance(&clock, 1);
    assert_eq!(create(&sim, Provider::D24, "t-3").await.0, 200);
    let after = get_faults(&sim).await;
    assert_eq!(after["d24"], serde_json::to_value(FaultConfig::default()).unwrap());
    assert_eq!(sim.faults(), Faults::default());
}

#[tokio::test]
async fn faults_set_at_start_with_for_ms_count_from_the_start() {
    let down = FaultConfig {
        config_error: 100,
        for_ms: 1_000,
        ..FaultConfig::default()
    };
    let (clock, sim) = start_on_manual_clock(Faults {
        tupay: down,
        ..Faults::default()
    })
    .await;
    let tupay_create = |external_id: &'static str| {
        let body = with_credentials(
            Provider::Tupay,
            json!({
                "external_id": external_id, "country": "PE", "currency": "PEN", "amount": 10,
                "document_id": "12345678", "document_type": "DNI", "beneficiary_name": "Ana",
                "bank_account": "00212345678901234567", "account_type": "C",
                "notification_url": "http://127.0.0.1:9/hook"
            }),
        );
        let sim = &sim;
        async move { post(sim, Provider::Tupay, "/v3/cashout", &body).await }
    };
    assert_eq!(tupay_create("s-1").await, unregistered_ip());
    advance(&clock, 1_000);
    let (status, created) = tupay_create("s-2").await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn error_before_on_d24_leaves_onspot_working() {
    let sim = start(SimConfig::default()).await;
    put_faults(&sim, "d24", json!({"error_before": 100})).await;
    let faults = get_faults(&sim).await;
    assert_eq!(
        (&faults["d24"]["error_before"], &faults["d24"]["for_ms"]),
        (&json!(100), &json!(0))
    );
    assert_eq!(faults["onspot"], serde_json::to_value(FaultConfig::default()).unwrap());
    for i in 0..5 {
        let (status, _) = create(&sim, Provider::D24, &format!("down-{i}")).await;
        assert!(is_5xx(status), "d24 create answered {status}");
    }
    assert!(is_5xx(status_by_reference(&sim, Provider::D24, "down-0").await.0));
    let (status, created) = create(&sim, Provider::Onspot, "up").await;
    assert_eq!(status, 200, "{created}");
    let payouts = sim.ledger().payouts;
    assert_eq!(payouts.len(), 1);
    assert_eq!(payouts[0].provider, Provider::Onspot);
}
