//! Issue 12 end to end: failover between providers through the real `cashout-local` process and
//! its in-process simulators. A BR/BRL request without a named provider is routed by default to
//! [d24, onspot]; it moves to onspot only when D24 provably holds nothing (its circuit is open
//! and nothing unresolved was sent, or it refused the create for a configuration reason), never
//! after a create whose outcome is unknown. The simulators' ledger is the ground truth: D24's
//! reference is the request id, onspot's (the second attempt) is `<id>.2`.
//!
//! The runner's breaker keeps its defaults (5 failures in a row open it for 30 s): the tests set
//! no `CASHOUT_BREAKER_*` and need no other thresholds.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use cashout_system::client::Api;
use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use serde_json::{Value, json};

const MERCHANT_KEY: &str = "sk_failover_merchant";
const OPERATOR_KEY: &str = "sk_failover_operator";

/// The runner on `dir` (embedded store), merchant `merchant`, its own simulators on a free port.
fn start(dir: &Path, merchant: &str) -> (Runner, Api, String) {
    let spec = RunnerSpec {
        binary: env!("CARGO_BIN_EXE_cashout-local").into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        simulators: Simulators::InRunner {
            listen: free_addr().unwrap(),
        },
        backend: Backend::Embedded,
        operator_key: OPERATOR_KEY.into(),
        rust_log: std::env::var("FAILOVER_LOG").unwrap_or_else(|_| "warn".into()),
        log_dir: std::env::var_os("FAILOVER_LOG_DIR").map(Into::into),
        extra_args: Vec::new(),
        // Three failures in a row open a circuit: the outages below open it within seconds.
        env: vec![("CASHOUT_BREAKER_CONSECUTIVE_FAILURES".into(), "3".into())],
    };
    let key = format!("{MERCHANT_KEY}_{merchant}");
    let runner = spec.start(merchant, &key, 0).unwrap_or_else(|e| panic!("{e}"));
    let api = Api::new(&runner.base);
    (runner, api, key)
}

/// A BR/BRL request with a beneficiary both D24 and onspot pay, no provider named (so routed,
/// not pinned).
fn cashout() -> Value {
    json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@clinic.example",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                        "email": "ana@clinic.example", "bank_code": "001", "bank_branch": "1234",
                        "bank_account": "0001234567", "account_type": "C"},
        "invoices": [
            {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": "1000.00", "advance_percentage": "80"},
            {"invoice_id": "INV-2", "payer": {"tax_id": "99888777000166", "name": "Clinic Two"}, "amount": "500.00", "advance_percentage": "50"}
        ],
        "metadata": {"seller": "42"}
    })
}

/// Creates a request (201 and APPROVED) and returns its id.
async fn create(api: &Api, key: &str, idempotency_key: &str) -> String {
    let (code, created) = api.create(key, idempotency_key, &cashout()).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"], "APPROVED", "{created}");
    assert_eq!(created["routing"]["source"], "default", "{created}");
    assert_eq!(created["routing"]["providers"], json!(["d24", "onspot"]), "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn set_faults(runner: &Runner, provider: &str, faults: Value) {
    let res = reqwest::Client::new()
        .put(format!("{}/_sim/faults/{provider}", runner.sim))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap_or_default());
}

async fn clear_faults(runner: &Runner) {
    let res = reqwest::Client::new()
        .delete(format!("{}/_sim/faults", runner.sim))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
}

/// The ledger's entries under `section` for `provider` and `reference`.
fn at(ledger: &Value, section: &str, provider: &str, reference: &str) -> Vec<Value> {
    ledger[section]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["provider"] == provider && p["reference"] == reference)
        .cloned()
        .collect()
}

/// Every payout at any provider for request `id` (references `id` and `id.<n>`).
fn payouts_of(ledger: &Value, id: &str) -> Vec<Value> {
    let prefix = format!("{id}.");
    ledger["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["reference"]
                .as_str()
                .is_some_and(|r| r == id || r.starts_with(&prefix))
        })
        .cloned()
        .collect()
}

/// Whether D24 received any create for `reference` (an attempt answered with a fault counts).
fn d24_create_for(ledger: &Value, reference: &str) -> bool {
    at(ledger, "references", "d24", reference)
        .iter()
        .any(|r| r["create_attempts"].as_u64().unwrap_or(0) > 0)
        || !at(ledger, "payouts", "d24", reference).is_empty()
}

/// The health entry of `provider` in `GET /v1/providers/health`.
async fn health_of(api: &Api, provider: &str) -> Value {
    let (code, health) = api.get("/v1/providers/health", OPERATOR_KEY).await;
    assert_eq!(code, 200, "{health}");
    health["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["provider"] == provider)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_for(api: &Api, id: &str, key: &str, status: &str, within: Duration) -> Value {
    match api.wait_for_status(id, key, status, within).await {
        Ok(r) => r,
        Err(e) => {
            let (_, view) = api.get(&format!("/v1/cashout-requests/{id}"), key).await;
            let (_, health) = api.get("/v1/providers/health", OPERATOR_KEY).await;
            panic!("{e}\nrequest: {view}\nhealth: {health}")
        }
    }
}

/// D24 answers every call with a 5xx: its lookups fail before any create is sent, the breaker
/// opens after 5 failures in a row, and requests dispatched while it is open move to onspot
/// without a call to D24.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_over_to_onspot_once_the_d24_circuit_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, api, key) = start(dir.path(), "clinic_f");
    set_faults(&runner, "d24", json!({"error_before": 100})).await;

    let mut before = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = health_of(&api, "d24").await;
        if health["state"] == "open" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the d24 circuit did not open within 60 s after {} requests: {health}",
            before.len()
        );
        if before.len() < 30 {
            before.push(create(&api, &key, &format!("before-{}", before.len())).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!before.is_empty(), "the circuit was closed before any request");

    let mut after = Vec::new();
    for i in 0..3 {
        after.push(create(&api, &key, &format!("after-{i}")).await);
    }
    for id in &after {
        let paid = wait_for(&api, id, &key, "PAID", Duration::from_secs(30)).await;
        assert_eq!(paid["provider"], "onspot", "{paid}");
        let attempts = paid["provider_attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{paid}");
        assert_eq!(
            (&attempts[0]["provider"], &attempts[0]["reference"]),
            (&json!("d24"), &json!(id)),
            "{paid}"
        );
        assert_eq!(attempts[0]["failover"]["kind"], "circuit_open", "{paid}");
        assert!(attempts[0]["ended_at"].is_string(), "{paid}");
        assert_eq!(
            (&attempts[1]["provider"], &attempts[1]["reference"]),
            (&json!("onspot"), &json!(format!("{id}.2"))),
            "{paid}"
        );
        assert!(attempts[1]["failover"].is_null(), "{paid}");
    }
    // Those created while the circuit was closed leave D24 too (their lookups failed before
    // any create); their waits may span a half-open probe.
    for id in &before {
        let paid = wait_for(&api, id, &key, "PAID", Duration::from_secs(120)).await;
        assert_eq!(paid["provider"], "onspot", "{paid}");
    }

    let ledger = runner.sim_ledger().await.unwrap();
    for id in &after {
        assert!(!d24_create_for(&ledger, id), "no create reached D24 for {id}: {ledger}");
        let onspot = at(&ledger, "payouts", "onspot", &format!("{id}.2"));
        assert_eq!(onspot.len(), 1, "one onspot payout for {id}: {ledger}");
        assert_eq!(onspot[0]["status"], "COMPLETED", "{ledger}");
    }
    for id in before.iter().chain(&after) {
        assert_eq!(
            payouts_of(&ledger, id).len(),
            1,
            "exactly one payout for {id}: {ledger}"
        );
    }
    let doubles: Vec<_> = ledger["references"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["payouts"].as_u64().unwrap_or(0) > 1)
        .collect();
    assert!(doubles.is_empty(), "double payouts: {doubles:?}");
}

/// D24 refuses creates for a configuration reason (401 code 402, unregistered IP) and holds
/// nothing: the request moves to onspot at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_fails_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, api, key) = start(dir.path(), "clinic_g");
    set_faults(&runner, "d24", json!({"config_error": 100, "creates_only": true})).await;

    let id = create(&api, &key, "config-1").await;
    let paid = wait_for(&api, &id, &key, "PAID", Duration::from_secs(30)).await;
    assert_eq!(paid["provider"], "onspot", "{paid}");
    assert_eq!(paid["paid_amount"], "1050.00", "{paid}");
    let attempts = paid["provider_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{paid}");
    assert_eq!(attempts[0]["provider"], "d24", "{paid}");
    assert_eq!(attempts[0]["failover"]["kind"], "refused", "{paid}");
    assert_eq!(
        (&attempts[1]["provider"], &attempts[1]["reference"]),
        (&json!("onspot"), &json!(format!("{id}.2"))),
        "{paid}"
    );

    let ledger = runner.sim_ledger().await.unwrap();
    assert!(
        at(&ledger, "payouts", "d24", &id).is_empty(),
        "D24 refused, so holds nothing: {ledger}"
    );
    assert_eq!(
        at(&ledger, "payouts", "onspot", &format!("{id}.2")).len(),
        1,
        "{ledger}"
    );
    assert_eq!(payouts_of(&ledger, &id).len(), 1, "paid once: {ledger}");
}

/// D24 carries out the create but its answer is lost and every lookup fails: the payout may be
/// there, so the request never leaves D24 (not even when the circuit opens); once D24 answers
/// again it is found and paid there, once.
///
/// Dispatch looks the reference up before it creates, so `error_after` on every call from the
/// start would fail that lookup and no create would ever be sent. Hence two steps: creates only,
/// each answered 2 s late (the lookup before it works); as soon as the create has arrived (the
/// ledger counts it on arrival), every call fails, so the lookup that follows the lost answer
/// fails too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_create_never_fails_over_and_is_paid_once_d24_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, api, key) = start(dir.path(), "clinic_u");
    set_faults(
        &runner,
        "d24",
        json!({"error_after": 100, "creates_only": true, "latency_ms": 2000}),
    )
    .await;

    let id = create(&api, &key, "unknown-1").await;
    let onspot_ref = format!("{id}.2");
    // The create reaches D24: from now on every D24 call fails, the create's own answer too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ledger = runner.sim_ledger().await.unwrap();
        if d24_create_for(&ledger, &id) {
            break;
        }
        assert!(Instant::now() < deadline, "no create reached D24: {ledger}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    set_faults(&runner, "d24", json!({"error_after": 100})).await;
    // The create was carried out (a payout exists there) …
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ledger = runner.sim_ledger().await.unwrap();
        if !at(&ledger, "payouts", "d24", &id).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the create was not carried out: {ledger}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // … and the request stays there, approved, with nothing sent to onspot: for 8 s at least,
    // and until D24's failing calls have opened its circuit and 2 s more (an open circuit moves
    // on only requests with nothing unresolved at D24).
    let started = Instant::now();
    let mut opened_at: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(8) || opened_at.is_none_or(|at| at.elapsed() < Duration::from_secs(2))
    {
        if opened_at.is_none() && health_of(&api, "d24").await["state"] == "open" {
            opened_at = Some(Instant::now());
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the d24 circuit did not open within 60 s: {}",
            health_of(&api, "d24").await
        );
        let (code, view) = api.get(&format!("/v1/cashout-requests/{id}"), &key).await;
        assert_eq!(code, 200, "{view}");
        assert_eq!(
            (&view["status"], &view["provider"]),
            (&json!("APPROVED"), &json!("d24")),
            "{view}"
        );
        assert_eq!(view["provider_attempts"].as_array().map_or(0, Vec::len), 1, "{view}");
        let ledger = runner.sim_ledger().await.unwrap();
        assert!(
            at(&ledger, "references", "onspot", &onspot_ref).is_empty()
                && at(&ledger, "payouts", "onspot", &onspot_ref).is_empty(),
            "nothing may go to onspot: {ledger}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    clear_faults(&runner).await;
    let paid = wait_for(&api, &id, &key, "PAID", Duration::from_secs(90)).await;
    assert_eq!(paid["provider"], "d24", "{paid}");
    assert_eq!(paid["paid_amount"], "1050.00", "{paid}");
    let attempts = paid["provider_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{paid}");
    assert!(attempts[0]["failover"].is_null(), "{paid}");

    let ledger = runner.sim_ledger().await.unwrap();
    assert_eq!(at(&ledger, "payouts", "d24", &id).len(), 1, "{ledger}");
    assert!(at(&ledger, "payouts", "onspot", &onspot_ref).is_empty(), "{ledger}");
    assert_eq!(payouts_of(&ledger, &id).len(), 1, "paid once: {ledger}");
}
