//! Issue 15 end to end: the simulators diverge behind cashout's back (no notification, no
//! callback), and a reconciliation run through the real `cashout-local` reports exactly the
//! requests that differ, each with the right kind, flags them, and applies what the status path
//! would apply (a reversal we missed, a final status we lag behind); nothing else.
//!
//! The runner uses the production schedule, so that its own polls (60 s after a payout is
//! accepted, then minutes apart) do not find the divergences first, and a lag threshold of 1 s.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cashout_core::provider::ProviderName;
use cashout_system::client::Api;
use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use cashout_system::workload::{Trigger, account, body};
use serde_json::{Value, json};
use time::OffsetDateTime;

const MERCHANT_KEY: &str = "sk_reconcile_merchant";
const OPERATOR_KEY: &str = "sk_reconcile_operator";

fn start(dir: &Path) -> (Runner, Api) {
    let spec = RunnerSpec {
        binary: env!("CARGO_BIN_EXE_cashout-local").into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        simulators: Simulators::InRunner {
            listen: free_addr().unwrap(),
        },
        backend: Backend::Embedded,
        operator_key: OPERATOR_KEY.into(),
        rust_log: std::env::var("RECONCILE_LOG").unwrap_or_else(|_| "warn".into()),
        log_dir: std::env::var_os("RECONCILE_LOG_DIR").map(Into::into),
        extra_args: vec!["--schedule".into(), "production".into()],
        env: vec![
            ("CASHOUT_RECONCILE_LAG_SECS".into(), "1".into()),
            ("CASHOUT_RECONCILE_DAILY_AT".into(), "off".into()),
            ("CASHOUT_RECONCILE_CALLS_PER_SECOND".into(), "0".into()),
        ],
    };
    let runner = spec
        .start("m_reconcile", MERCHANT_KEY, 0)
        .unwrap_or_else(|e| panic!("{e}"));
    let api = Api::new(&runner.base);
    (runner, api)
}

/// Creates a request and waits until it has `status`; returns its id.
async fn paid_through(api: &Api, n: u64, provider: ProviderName, trigger: Trigger, status: &str) -> String {
    let (code, created) = api
        .create(
            MERCHANT_KEY,
            &format!("rc-{n}"),
            &body(provider, &account(n, trigger), "100.00"),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    api.wait_for_status(&id, MERCHANT_KEY, status, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{provider} request {id} never reached {status}: {e}"));
    id
}

async fn ledger(runner: &Runner) -> Value {
    runner.sim_ledger().await.unwrap()
}

/// The simulator's payout id for `reference` at `provider`.
fn payout_id(ledger: &Value, provider: &str, reference: &str) -> String {
    ledger["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == provider && p["reference"] == reference)
        .unwrap_or_else(|| panic!("no {provider} payout for {reference}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sim(runner: &Runner, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}/_sim{path}", runner.sim));
    if let Some(b) = body {
        request = request.json(&b);
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let answer: Value = res.json().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_reports_every_kind_of_divergence_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, api) = start(dir.path());
    use ProviderName::{Cascad, D24};
    use Trigger::{OnHold, Success};

    let reversed = paid_through(&api, 1, D24, Success, "PAID").await;
    let ok_paid = paid_through(&api, 2, D24, Success, "PAID").await;
    let lost = paid_through(&api, 3, D24, OnHold, "PENDING_PAYMENT").await;
    let lagging = paid_through(&api, 4, D24, OnHold, "PENDING_PAYMENT").await;
    let ok_pending = paid_through(&api, 5, D24, OnHold, "PENDING_PAYMENT").await;
    let amount = paid_through(&api, 6, Cascad, Success, "PAID").await;
    let currency = paid_through(&api, 7, Cascad, Success, "PAID").await;
    let ok_cascad = paid_through(&api, 8, Cascad, Success, "PAID").await;
    let stranger = uuid::Uuid::now_v7().hyphenated().to_string();

    let l = ledger(&runner).await;
    use reqwest::Method;
    let put = |provider: &str, id: String, change: Value| {
        let path = format!("/payouts/{provider}/{id}");
        let runner = &runner;
        async move { sim(runner, Method::PUT, &path, Some(change)).await }
    };
    put(
        "d24",
        payout_id(&l, "d24", &reversed),
        json!({"status": "REJECTED", "rejection_code": 826}),
    )
    .await;
    sim(
        &runner,
        Method::DELETE,
        &format!("/payouts/d24/{}", payout_id(&l, "d24", &lost)),
        None,
    )
    .await;
    put("d24", payout_id(&l, "d24", &lagging), json!({"status": "COMPLETED"})).await;
    put("cascad", payout_id(&l, "cascad", &amount), json!({"amount": "999.00"})).await;
    put("cascad", payout_id(&l, "cascad", &currency), json!({"currency": "EUR"})).await;
    sim(
        &runner,
        Method::POST,
        "/payouts/cascad",
        Some(json!({"reference": stranger, "amount": "10.00", "currency": "USD", "status": "processed"})),
    )
    .await;
    // Past the 1 s lag threshold.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let today = OffsetDateTime::now_utc().date();
    let (from, to) = (today.previous_day().unwrap(), today.next_day().unwrap());
    let (code, started) = api
        .post(
            "/v1/reconciliations",
            OPERATOR_KEY,
            Some(&json!({"from": from.to_string(), "to": to.to_string()})),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["status"], "running");
    let path = format!("/v1/reconciliations/{}", started["id"].as_str().unwrap());
    let run = api
        .get_until(&path, OPERATOR_KEY, Duration::from_secs(60), |(code, r)| {
            (*code == 200 && r["status"] != "running").then(|| r.clone())
        })
        .await
        .unwrap_or_else(|(code, r)| panic!("the run did not end: {code} {r}"));
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["requests_checked"], 8, "{run}");
    assert_eq!(run["lookups_failed"], 0, "{run}");

    let found: BTreeSet<(String, String)> = run["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let who = d["cashout_request_id"]
                .as_str()
                .map_or_else(|| d["reference"].as_str().unwrap().to_owned(), str::to_owned);
            (who, d["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        (reversed.clone(), "status_mismatch"),
        (lost.clone(), "missing_at_provider"),
        (lagging.clone(), "status_lag"),
        (amount.clone(), "amount_mismatch"),
        (currency.clone(), "currency_mismatch"),
        (stranger.clone(), "unknown_provider_payout"),
    ]
    .into_iter()
    .map(|(a, b)| (a, b.to_owned()))
    .collect();
    assert_eq!(found, want, "{run:#}");
    assert_eq!(run["difference_count"], 6);

    // Both sides are in each difference.
    let diff = |who: &str| {
        run["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["cashout_request_id"] == who || d["reference"] == who)
            .unwrap()
            .clone()
    };
    let d = diff(&amount);
    assert_eq!(d["theirs"]["amount"], "999", "{d}: as the provider says it");
    assert_eq!(d["ours"]["amount"], "330.00", "{d}");
    assert_eq!(diff(&reversed)["applied"], true);
    assert_eq!(diff(&lagging)["applied"], true);
    assert_eq!(diff(&stranger)["ours"], Value::Null);

    // Flagged, and changed only through the status path (with its event).
    for id in [&reversed, &lost, &lagging, &amount, &currency] {
        let (_, r) = api.get(&format!("/v1/cashout-requests/{id}"), OPERATOR_KEY).await;
        assert_eq!(r["needs_attention"], true, "{r}");
        assert!(
            r["attention"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["reason"]["kind"] == "reconciliation_difference"),
            "{r}"
        );
    }
    for id in [&ok_paid, &ok_pending, &ok_cascad] {
        let (_, r) = api.get(&format!("/v1/cashout-requests/{id}"), OPERATOR_KEY).await;
        assert_eq!(r["needs_attention"], false, "{id} was not flagged: {r}");
    }
    let status = |r: &Value| r["status"].as_str().unwrap().to_owned();
    let (_, r) = api.get(&format!("/v1/cashout-requests/{reversed}"), OPERATOR_KEY).await;
    assert_eq!(status(&r), "REJECTED");
    assert_eq!(r["status_reason"]["kind"], "provider_reversed", "{r}");
    let (_, r) = api.get(&format!("/v1/cashout-requests/{lagging}"), OPERATOR_KEY).await;
    assert_eq!(status(&r), "PAID");
    let (_, r) = api.get(&format!("/v1/cashout-requests/{lost}"), OPERATOR_KEY).await;
    assert_eq!(
        status(&r),
        "PENDING_PAYMENT",
        "a lost payout is for a person, not for the reconciler"
    );
    let (_, events) = api
        .get(&format!("/v1/cashout-requests/{reversed}/events"), OPERATOR_KEY)
        .await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["data"]["status"], "REJECTED", "{last}");

    // A merchant cannot read it.
    let (code, _) = api.get(&path, MERCHANT_KEY).await;
    assert_eq!(code, 403);
}
