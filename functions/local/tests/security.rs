//! Security, against the running `cashout-local` (and, for what happens on the wire, its webhook
//! sender in-process): signed deliveries that refuse tampering, stale and future timestamps and
//! replays under another id; provider notifications that refuse forgeries and whose replays change
//! nothing; endpoint URLs into private networks refused in every spelling, names that resolve to
//! private addresses never connected to, redirects never followed; no merchant reaching another's
//! data on any route of the OpenAPI document; no full account number or secret in any log line or
//! response.
//!
//! The runner, the client, the receiver and the request bodies are the system-test harness's
//! (`cashout-system`). Each test is one attack scenario read top to bottom (every forgery of a
//! delivery, every route of the document, every spelling of a private address); hence functions
//! longer than the house's 80 lines, and one file, this test binary, for them all.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cashout_app::sender::HttpWebhookSender;
use cashout_core::ports::{OutgoingWebhook, QueueName, SendErrorKind, SystemClock, WebhookSender};
use cashout_core::provider::ProviderName;
use cashout_core::signing::{ProviderSecret, VerifyError, WebhookSecret, WebhookVerifier, cascad_signature};
use cashout_provider_sim::{SimConfig, SimHandle};
use cashout_store::QueueInspect;
use cashout_store::sqlite::SqliteStore;
use cashout_system::client::Api;
use cashout_system::receiver::{Delivery, Mode, Receiver};
use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use cashout_system::workload::{Trigger, account, body};
use serde_json::{Value, json};
use time::OffsetDateTime;

const A: (&str, &str) = ("merchant_sec_a", "sk_sec_merchant_a_4f9d2c");
const B: (&str, &str) = ("merchant_sec_b", "sk_sec_merchant_b_7e1a0b");
const OPERATOR: &str = "sk_sec_operator_91c3e5";

/// A runner on its own data, with merchants A and B registered, and simulators outside it.
struct System {
    runner: Option<Runner>,
    api: Api,
    sim: SimHandle,
    dir: tempfile::TempDir,
}

impl System {
    async fn start(extra_args: &[&str], rust_log: &str) -> System {
        Self::start_with_env(extra_args, rust_log, Vec::new()).await
    }

    /// [`System::start`] with more environment variables for the runner.
    async fn start_with_env(extra_args: &[&str], rust_log: &str, env: Vec<(String, String)>) -> System {
        let dir = tempfile::tempdir().unwrap();
        let sim = cashout_provider_sim::start(
            SimConfig {
                time_scale: 20,
                ..SimConfig::default()
            },
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
        .await
        .unwrap();
        let spec = RunnerSpec {
            binary: env!("CARGO_BIN_EXE_cashout-local").into(),
            data_dir: dir.path().join("data"),
            listen: free_addr().unwrap(),
            simulators: Simulators::External { url: sim.url() },
            backend: Backend::Embedded,
            operator_key: OPERATOR.into(),
            rust_log: rust_log.into(),
            log_dir: Some(dir.path().to_path_buf()),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            env,
        };
        // B's key is registered by a first start; keys persist in the store.
        spec.start(B.0, B.1, 0).unwrap().terminate().unwrap();
        let runner = spec.start(A.0, A.1, 1).unwrap();
        let api = Api::new(&runner.base);
        System {
            runner: Some(runner),
            api,
            sim,
            dir,
        }
    }

    async fn create(&self, key: &str, idem: &str, body: &Value) -> Value {
        let (code, r) = self.api.create(key, idem, body).await;
        assert_eq!(code, 201, "{r}");
        r
    }

    /// Waits until a request has `status` (30 s at most).
    async fn wait_status(&self, key: &str, id: &str, status: &str) -> Value {
        self.api
            .wait_for_status(id, key, status, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn events(&self, key: &str, id: &str) -> Vec<Value> {
        let (code, r) = self.api.get(&format!("/v1/cashout-requests/{id}/events"), key).await;
        assert_eq!(code, 200, "{r}");
        r["data"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until every provider notification the runner queued has been handled (30 s at
    /// most): its `provider_events` queue, read from the runner's store file, holds nothing (each
    /// task ran and was acknowledged) and dead-lettered nothing. A notification answered 200 was
    /// queued before the answer, so this is a positive signal that its check has run.
    async fn notifications_handled(&self) {
        let file = self.dir.path().join("data").join(SqliteStore::FILE_NAME);
        let store = SqliteStore::open(&file, Arc::new(SystemClock)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let depth = store.depth(QueueName::ProviderEvents).await.unwrap();
            if depth.total() == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "provider notifications still queued after 30 s: {depth:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dead = store.dead_letters(QueueName::ProviderEvents, 10).await.unwrap();
        assert!(dead.is_empty(), "notification tasks that kept failing: {dead:?}");
    }

    /// Stops the runner (SIGTERM) and the simulators; the directory keeps the runner's logs.
    async fn stop(self) -> tempfile::TempDir {
        let System { runner, sim, dir, .. } = self;
        if let Some(r) = runner {
            r.terminate().unwrap();
        }
        sim.shutdown().await;
        dir
    }
}

/// Every line the runner logged (both starts).
fn logs(dir: &std::path::Path) -> String {
    ["runner-0.log", "runner-1.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `receiver` has `n` accepted deliveries for request `id` (30 s at most).
async fn accepted_for(receiver: &Receiver, id: &str, n: usize) -> Vec<Delivery> {
    let of_id = |log: &[Delivery]| -> Vec<Delivery> {
        log.iter()
            .filter(|d| d.accepted() && d.body["cashout_request_id"] == id)
            .cloned()
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    match receiver
        .wait_for(deadline, |log| Some(of_id(log)).filter(|got| got.len() >= n))
        .await
    {
        Some(got) => got,
        None => panic!("{} of {n} deliveries for {id}", receiver.with_log(of_id).len()),
    }
}

fn headers(id: &str, ts: &str, signature: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", ts.parse().unwrap());
    h.insert("webhook-signature", signature.parse().unwrap());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_refuse_tampering_stale_and_future_timestamps_and_replays_under_other_ids() {
    let system = System::start(&[], "warn").await;
    // Half the first attempts are refused, so that retries of one event show up.
    let receiver = Receiver::start(Mode::Verify { fail_percent: 50 }, 3).await.unwrap();
    let (ep, secret) = system
        .api
        .register_endpoint(A.1, &receiver.url("a"), &[])
        .await
        .unwrap();
    receiver.set_secret("a", &secret);
    let created = system
        .create(
            A.1,
            "sig-1",
            &body(ProviderName::D24, &account(1, Trigger::Success), "100.00"),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    system.wait_status(A.1, &id, "PAID").await;
    let events = system.events(A.1, &id).await;
    let delivered = accepted_for(&receiver, &id, events.len()).await;
    let all = receiver.log();
    assert!(
        all.iter().all(|d| d.verified),
        "every delivery verifies with the official library"
    );

    // One id per event, stable across retries: the same bytes under the same id.
    let event_ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let delivered_ids: BTreeSet<&str> = delivered.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(event_ids, delivered_ids);
    for d in all.iter().filter(|d| d.body["cashout_request_id"] == id.as_str()) {
        let first = all.iter().find(|x| x.webhook_id == d.webhook_id).unwrap();
        assert_eq!(d.raw, first.raw, "a retry of {} carries the same body", d.webhook_id);
    }
    assert!(
        all.iter().any(|d| !d.accepted()),
        "some first attempts were refused and retried"
    );

    let verifier = WebhookVerifier::new(WebhookSecret::parse(&secret).unwrap());
    let d = &delivered[0];
    let other = delivered.iter().find(|x| x.webhook_id != d.webhook_id).unwrap();
    let ts = d.timestamp.to_string();
    let at = OffsetDateTime::from_unix_timestamp(d.timestamp).unwrap();
    let genuine = headers(&d.webhook_id, &ts, &d.signature);
    assert_eq!(verifier.verify(&genuine, &d.raw, at), Ok(()));

    // Tampering: the body, the signature, the signed timestamp, another key.
    let mut body_tampered = d.raw.to_vec();
    let pos = body_tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    body_tampered[pos] = if body_tampered[pos] == b'9' {
        b'8'
    } else {
        body_tampered[pos] + 1
    };
    assert_eq!(
        verifier.verify(&genuine, &body_tampered, at),
        Err(VerifyError::InvalidSignature)
    );
    let mut sig = d.signature.clone().into_bytes();
    let last = sig.len() - 2;
    sig[last] = if sig[last] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).unwrap();
    assert_eq!(
        verifier.verify(&headers(&d.webhook_id, &ts, &sig), &d.raw, at),
        Err(VerifyError::InvalidSignature)
    );
    let earlier = (d.timestamp - 10).to_string();
    assert_eq!(
        verifier.verify(&headers(&d.webhook_id, &earlier, &d.signature), &d.raw, at),
        Err(VerifyError::InvalidSignature),
        "the timestamp is signed"
    );
    let stranger = WebhookVerifier::new(WebhookSecret::from_key_bytes(&[9u8; 32]));
    assert_eq!(
        stranger.verify(&genuine, &d.raw, at),
        Err(VerifyError::InvalidSignature)
    );
    let official = standardwebhooks::Webhook::new(&secret).unwrap();
    assert!(official.verify(&body_tampered, &genuine).is_err());

    // Stale and future timestamps, at the ±5 min tolerance.
    assert_eq!(
        verifier.verify(&genuine, &d.raw, at + time::Duration::seconds(301)),
        Err(VerifyError::TimestampTooOld)
    );
    assert_eq!(
        verifier.verify(&genuine, &d.raw, at - time::Duration::seconds(301)),
        Err(VerifyError::TimestampInFuture)
    );
    assert_eq!(
        verifier.verify(&genuine, &d.raw, at + time::Duration::seconds(300)),
        Ok(())
    );

    // Replays under another id: this body and signature as the other event, and the other
    // event's body under this id and signature.
    assert_eq!(
        verifier.verify(&headers(&other.webhook_id, &ts, &d.signature), &d.raw, at),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        verifier.verify(&genuine, &other.raw, at),
        Err(VerifyError::InvalidSignature)
    );

    // Rotation: during the grace period every delivery carries both signatures.
    let (code, rotated) = system
        .api
        .post(&format!("/v1/webhook-endpoints/{ep}/rotate-secret"), A.1, None)
        .await;
    assert_eq!(code, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let second = system
        .create(
            A.1,
            "sig-2",
            &body(ProviderName::D24, &account(2, Trigger::Success), "100.00"),
        )
        .await;
    let second_id = second["id"].as_str().unwrap();
    let d2 = accepted_for(&receiver, second_id, 1).await.remove(0);
    let h2 = headers(&d2.webhook_id, &d2.timestamp.to_string(), &d2.signature);
    let at2 = OffsetDateTime::from_unix_timestamp(d2.timestamp).unwrap();
    assert_eq!(d2.signature.split(' ').count(), 2, "{}", d2.signature);
    for s in [&secret, &new_secret] {
        assert_eq!(
            WebhookVerifier::new(WebhookSecret::parse(s).unwrap()).verify(&h2, &d2.raw, at2),
            Ok(())
        );
    }
    let _ = system.stop().await;
}

/// A Cascad callback for `reference` with `status`, signed with `secret`.
fn cascad_callback(reference: &str, payout_id: &str, status: &str) -> String {
    json!({"data": {"type": "payout-invoices", "id": payout_id, "attributes": {
        "status": status, "resolution": "ok", "amount": 1050, "payout_amount": 1050, "currency": "USD",
        "reference_id": reference, "test_mode": true, "created": 1_795_449_600, "updated": 1_795_449_660,
        "processed": 1_795_449_660, "fields": {"account": "*****4567"}}}})
    .to_string()
}

/// Opens a portal link minted with `key` (201 asserted) and reads `pages` in its session: each
/// page's status and HTML.
async fn portal_as(api: &Api, key: &str, pages: &[(String, u16)]) -> Vec<(u16, String)> {
    let (code, link) = api
        .call(reqwest::Method::POST, "/v1/portal-sessions", key, None, None)
        .await;
    assert_eq!(code, 201, "POST /v1/portal-sessions: {link}");
    let url = link["url"].as_str().unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let entered = browser.get(url).send().await.unwrap();
    assert_eq!(entered.status().as_u16(), 303, "opening the portal link");
    let cookie = entered.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut seen = Vec::new();
    for (path, _) in pages {
        let answer = browser
            .get(format!("{}{path}", api.base()))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let code = answer.status().as_u16();
        seen.push((code, answer.text().await.unwrap()));
    }
    seen
}

async fn post_notification(base: &str, provider: &str, content_type: &str, signature: Option<&str>, body: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/webhooks/{provider}"))
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("x-signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_notifications_refuse_forgeries_and_replays_change_nothing() {
    let system = System::start(&[], "warn").await;
    let base = system.api.base().to_owned();
    let cascad = system
        .create(
            A.1,
            "cb-1",
            &body(ProviderName::Cascad, &account(3, Trigger::Success), "1000.00"),
        )
        .await;
    let id = cascad["id"].as_str().unwrap().to_owned();
    let paid = system.wait_status(A.1, &id, "PAID").await;
    let payout_id = paid["provider_reference"].as_str().unwrap().to_owned();
    let events_before = system.events(A.1, &id).await.len();
    let secret = ProviderSecret::new(cashout_providers::simulator::CASCAD.2);

    let json = "application/vnd.api+json";
    let processed = cascad_callback(&id, &payout_id, "processed");
    let good = cascad_signature(&secret, processed.as_bytes());
    assert_eq!(
        post_notification(&base, "cascad", json, None, &processed).await,
        400,
        "unsigned"
    );
    let forged = cascad_signature(&ProviderSecret::new("guessed"), processed.as_bytes());
    assert_eq!(
        post_notification(&base, "cascad", json, Some(&forged), &processed).await,
        400,
        "forged"
    );
    let failed = processed.replace("processed", "process_failed");
    assert_eq!(
        post_notification(&base, "cascad", json, Some(&good), &failed).await,
        400,
        "a body changed after signing"
    );
    // A genuine but stale callback ("processing") and replays of the genuine "processed" one:
    // accepted (the provider must stop retrying) and nothing moves.
    let stale = cascad_callback(&id, &payout_id, "processing");
    let stale_sig = cascad_signature(&secret, stale.as_bytes());
    assert_eq!(
        post_notification(&base, "cascad", json, Some(&stale_sig), &stale).await,
        200
    );
    for _ in 0..3 {
        assert_eq!(
            post_notification(&base, "cascad", json, Some(&good), &processed).await,
            200
        );
    }
    // D24 notifications carry no status: a forged one only makes cashout ask D24.
    let d24 = system
        .create(
            A.1,
            "cb-2",
            &body(ProviderName::D24, &account(4, Trigger::Success), "100.00"),
        )
        .await;
    let d24_id = d24["id"].as_str().unwrap().to_owned();
    system.wait_status(A.1, &d24_id, "PAID").await;
    let d24_events = system.events(A.1, &d24_id).await.len();
    let form = "application/x-www-form-urlencoded";
    for forged in [
        format!("external_id={d24_id}&cashout_id=1&control=00&date=2026-11-23+10%3A00%3A00"),
        format!("external_id={id}&cashout_id={payout_id}"),
        "external_id=01a20934-c515-72c7-b804-000000000000".to_owned(),
    ] {
        assert_eq!(
            post_notification(&base, "d24", form, None, &forged).await,
            200,
            "{forged}"
        );
    }
    for garbage in ["", "%%%", "external_id=not-a-uuid"] {
        assert_eq!(
            post_notification(&base, "d24", form, None, garbage).await,
            400,
            "{garbage:?}"
        );
    }
    assert_eq!(post_notification(&base, "paypal", form, None, "x=1").await, 404);

    // Once the checks the notifications queued have run, nothing has moved.
    system.notifications_handled().await;
    let after = system.wait_status(A.1, &id, "PAID").await;
    assert_eq!(
        after["version"], paid["version"],
        "a stale or replayed callback changes nothing"
    );
    assert_eq!(system.events(A.1, &id).await.len(), events_before);
    assert_eq!(system.events(A.1, &d24_id).await.len(), d24_events);
    system.wait_status(A.1, &d24_id, "PAID").await;
    assert!(system.sim.ledger().double_payouts().is_empty());
    let _ = system.stop().await;
}

/// Spellings of private, loopback and link-local destinations.
const PRIVATE_URLS: &[&str] = &[
    "https://127.0.0.1/hook",
    "https://127.1/hook",
    "https://2130706433/hook",
    "https://0x7f000001/hook",
    "https://0x7f.0.0.1/hook",
    "https://0177.0.0.1/hook",
    "https://017700000001/hook",
    "https://0.0.0.0/hook",
    "https://0/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.0.1/hook",
    "https://100.64.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/latest/meta-data/",
    "https://0xa9fea9fe/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:7f00:1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",
    "https://[2002:a9fe:a9fe::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://[fc00::1]/hook",
    "https://localhost/hook",
    "https://LOCALHOST/hook",
    "https://api.localhost/hook",
    "http://example.com/hook",
    "https://user:pass@example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
];

/// Where [`private_hostname`] may be given explicitly.
const PRIVATE_HOST_VAR: &str = "CASHOUT_TEST_PRIVATE_HOST";

/// A host name that resolves, offline, only to non-public addresses and that registration cannot
/// judge by its spelling (unlike `localhost`): `CASHOUT_TEST_PRIVATE_HOST` if set, else this
/// machine's own name (containers and most hosts map it to a loopback or private address in
/// `/etc/hosts`). When there is no such name, the test that asked fails and says how to provide
/// one: the checks that need it are never skipped.
fn private_hostname() -> String {
    let name = match std::env::var(PRIVATE_HOST_VAR) {
        Ok(name) => name,
        Err(_) => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_else(|e| {
                panic!("cannot read this machine's host name ({e}); set {PRIVATE_HOST_VAR} to a name that resolves only to private addresses")
            })
            .trim()
            .to_owned(),
    };
    let addrs: Vec<IpAddr> = (name.as_str(), 443)
        .to_socket_addrs()
        .unwrap_or_else(|e| {
            panic!("`{name}` does not resolve ({e}); map it in /etc/hosts (`127.0.0.1 {name}`) or set {PRIVATE_HOST_VAR} to a name that resolves only to private addresses")
        })
        .map(|a| a.ip())
        .collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|ip| !cashout_core::webhook::is_public_ip(*ip)),
        "`{name}` resolves to {addrs:?}, not only to private addresses; map it in /etc/hosts \
         (`127.0.0.1 {name}`) or set {PRIVATE_HOST_VAR} to a name that does"
    );
    name
}

/// A TCP listener that counts connections.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_urls_into_private_networks_are_refused_in_every_spelling() {
    let host = private_hostname();
    let system = System::start(&["--forbid-private-webhooks"], "warn").await;
    for url in PRIVATE_URLS {
        let (code, p) = system
            .api
            .post("/v1/webhook-endpoints", A.1, Some(&json!({ "url": url })))
            .await;
        assert_eq!(
            (code, p["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{url} must be refused: {p}"
        );
    }
    for url in ["https://example.com/hooks/cashout", "https://93.184.216.34/hook"] {
        let (code, p) = system
            .api
            .post("/v1/webhook-endpoints", A.1, Some(&json!({ "url": url })))
            .await;
        assert_eq!(code, 201, "{url}: {p}");
    }

    // A name cannot be judged at registration; at delivery it resolves to a private address and
    // no connection is made.
    let (port, connections) = counting_listener().await;
    let url = format!("https://{host}:{port}/hook");
    let (ep, _) = system.api.register_endpoint(A.1, &url, &[]).await.unwrap();
    system
        .create(
            A.1,
            "ssrf-1",
            &body(ProviderName::D24, &account(5, Trigger::Success), "100.00"),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let attempts = loop {
        let (_, page) = system
            .api
            .get(&format!("/v1/webhook-endpoints/{ep}/attempts"), A.1)
            .await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= 2 {
            break data;
        }
        assert!(Instant::now() < deadline, "no attempts recorded: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(attempts.iter().all(|a| a["outcome"] != "delivered"), "{attempts:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "{host} was connected to");
    let _ = system.stop().await;
}

/// Answers every request with `status` and `Location: location`.
async fn redirector(status: u16, location: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::LOCATION, location)],
                "moved",
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn the_sender_never_connects_to_private_names_and_never_follows_redirects() {
    let (port, connections) = counting_listener().await;
    let strict = HttpWebhookSender::new(false).unwrap();
    let names = ["localhost".to_owned(), private_hostname()];
    let mut urls: Vec<String> = names.iter().map(|n| format!("http://{n}:{port}/hook")).collect();
    for literal in [
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "0",
    ] {
        urls.push(format!("http://{literal}:{port}/hook"));
    }
    for url in &urls {
        let sent = strict
            .send(&OutgoingWebhook {
                url: url.clone(),
                headers: vec![],
                body: "{}".into(),
            })
            .await;
        let err = sent.expect_err(url);
        assert_eq!(err.kind, SendErrorKind::ForbiddenDestination, "{url}: {err:?}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a private destination was connected to"
    );

    // Redirects (even to an allowed destination) are answered, never followed.
    let (canary, canary_hits) = counting_listener().await;
    let relaxed = HttpWebhookSender::new(true).unwrap();
    for (status, location) in [
        (302, format!("http://127.0.0.1:{canary}/")),
        (307, format!("http://127.0.0.1:{canary}/")),
        (308, "http://169.254.169.254/latest/meta-data/".to_owned()),
    ] {
        let port = redirector(status, location).await;
        let response = relaxed
            .send(&OutgoingWebhook {
                url: format!("http://127.0.0.1:{port}/hook"),
                headers: vec![],
                body: "{}".into(),
            })
            .await
            .unwrap();
        assert_eq!(response.status, status);
    }
    assert_eq!(canary_hits.load(Ordering::SeqCst), 0, "a redirect was followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirecting_endpoints_count_as_failed_deliveries_and_are_not_followed() {
    let system = System::start(&[], "warn").await;
    let (canary, canary_hits) = counting_listener().await;
    let port = redirector(307, format!("http://127.0.0.1:{canary}/")).await;
    let (ep, _) = system
        .api
        .register_endpoint(A.1, &format!("http://127.0.0.1:{port}/hook"), &[])
        .await
        .unwrap();
    system
        .create(
            A.1,
            "redir-1",
            &body(ProviderName::D24, &account(6, Trigger::Success), "100.00"),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = system
            .api
            .get(&format!("/v1/webhook-endpoints/{ep}/attempts"), A.1)
            .await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= 3 {
            assert!(
                data.iter().all(|a| a["outcome"] == "failed" && a["status_code"] == 307),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(canary_hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    let _ = system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_merchant_reaches_another_merchants_data_on_any_route() {
    let system = System::start(&[], "warn").await;
    let api = &system.api;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 0 }, 1).await.unwrap();
    let (ep, secret) = api.register_endpoint(A.1, &receiver.url("a"), &[]).await.unwrap();
    receiver.set_secret("a", &secret);
    let under_review = system
        .create(
            A.1,
            "shared-key",
            &body(ProviderName::D24, &account(7, Trigger::Success), "20000.00"),
        )
        .await;
    let a_id = under_review["id"].as_str().unwrap().to_owned();
    assert_eq!(under_review["status"], "UNDER_REVIEW");
    let events = system.events(A.1, &a_id).await;
    let event_id = events[0]["id"].as_str().unwrap().to_owned();
    let invoice = "INV-1";
    let unknown = "0190a2b4-5e6f-7000-8000-000000000099";
    // Routing rules are the operators' alone: any merchant gets 403, whatever the id.
    let rule = "rr_0190a2b45e6f70008000000000000001";

    // Every route of the document, with what B gets when it names A's things. Operator routes
    // answer 403 to any merchant whatever the id, so they reveal nothing either.
    let cases: Vec<(&str, &str, String, u16)> = vec![
        (
            "get",
            "/v1/cashout-requests/{id}",
            format!("/v1/cashout-requests/{a_id}"),
            404,
        ),
        (
            "get",
            "/v1/cashout-requests/{id}/events",
            format!("/v1/cashout-requests/{a_id}/events"),
            404,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/cancel",
            format!("/v1/cashout-requests/{a_id}/cancel"),
            404,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/approve",
            format!("/v1/cashout-requests/{a_id}/approve"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/reject",
            format!("/v1/cashout-requests/{a_id}/reject"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/retry",
            format!("/v1/cashout-requests/{a_id}/retry"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/resolve-attention",
            format!("/v1/cashout-requests/{a_id}/resolve-attention"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/hold",
            format!("/v1/cashout-requests/{a_id}/hold"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/release",
            format!("/v1/cashout-requests/{a_id}/release"),
            403,
        ),
        (
            "post",
            "/v1/cashout-requests/{id}/invoices/{invoice_id}/exclude",
            format!("/v1/cashout-requests/{a_id}/invoices/{invoice}/exclude"),
            403,
        ),
        (
            "get",
            "/v1/webhook-endpoints/{id}",
            format!("/v1/webhook-endpoints/{ep}"),
            404,
        ),
        (
            "delete",
            "/v1/webhook-endpoints/{id}",
            format!("/v1/webhook-endpoints/{ep}"),
            404,
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/rotate-secret",
            format!("/v1/webhook-endpoints/{ep}/rotate-secret"),
            404,
        ),
        (
            "get",
            "/v1/webhook-endpoints/{id}/attempts",
            format!("/v1/webhook-endpoints/{ep}/attempts"),
            404,
        ),
        (
            "patch",
            "/v1/webhook-endpoints/{id}",
            format!("/v1/webhook-endpoints/{ep}"),
            404,
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/test",
            format!("/v1/webhook-endpoints/{ep}/test"),
            404,
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/recover",
            format!("/v1/webhook-endpoints/{ep}/recover"),
            404,
        ),
        (
            "post",
            "/v1/events/{event_id}/redeliver",
            format!("/v1/events/{event_id}/redeliver"),
            404,
        ),
        ("get", "/v1/routing-rules", "/v1/routing-rules".to_owned(), 403),
        ("post", "/v1/routing-rules", "/v1/routing-rules".to_owned(), 403),
        (
            "get",
            "/v1/routing-rules/{id}",
            format!("/v1/routing-rules/{rule}"),
            403,
        ),
        (
            "put",
            "/v1/routing-rules/{id}",
            format!("/v1/routing-rules/{rule}"),
            403,
        ),
        (
            "delete",
            "/v1/routing-rules/{id}",
            format!("/v1/routing-rules/{rule}"),
            403,
        ),
        ("get", "/v1/providers/health", "/v1/providers/health".to_owned(), 403),
        (
            "post",
            "/v1/cashout-requests/bulk-approve",
            "/v1/cashout-requests/bulk-approve".to_owned(),
            403,
        ),
        ("get", "/v1/operators", "/v1/operators".to_owned(), 403),
        ("post", "/v1/operators", "/v1/operators".to_owned(), 403),
        (
            "post",
            "/v1/operators/{name}/keys",
            "/v1/operators/local/keys".to_owned(),
            403,
        ),
        (
            "post",
            "/v1/operators/{name}/revoke",
            "/v1/operators/local/revoke".to_owned(),
            403,
        ),
        ("get", "/v1/approval-policies", "/v1/approval-policies".to_owned(), 403),
        (
            "get",
            "/v1/approval-policies/{scope}",
            "/v1/approval-policies/merchant_sec_a".to_owned(),
            403,
        ),
        (
            "put",
            "/v1/approval-policies/{scope}",
            "/v1/approval-policies/merchant_sec_a".to_owned(),
            403,
        ),
        (
            "delete",
            "/v1/approval-policies/{scope}",
            "/v1/approval-policies/default".to_owned(),
            403,
        ),
        ("post", "/v1/reconciliations", "/v1/reconciliations".to_owned(), 403),
        (
            "get",
            "/v1/reconciliations/{id}",
            "/v1/reconciliations/recon_0190a2b45e6f70008000000000000001".to_owned(),
            403,
        ),
    ];
    // Routes checked below by listing (no id in the path), or not merchant data at all.
    let by_listing = [
        ("get", "/v1/cashout-requests"),
        ("post", "/v1/cashout-requests"),
        ("get", "/v1/webhook-endpoints"),
        ("post", "/v1/webhook-endpoints"),
        ("get", "/v1/events"),
        ("get", "/v1/payout-methods"),
        ("get", "/v1/statements"),
        ("post", "/webhooks/{provider}"),
        // A link minted by B opens B's portal: checked below, page by page.
        ("post", "/v1/portal-sessions"),
    ];
    let (code, doc) = api.get("/v1/openapi.json", B.1).await;
    assert_eq!(code, 200);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .chain(by_listing.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())))
        .collect();
    assert_eq!(documented, covered, "every documented route has a cross-merchant case");

    let reject = json!({"reason": "no"});
    let patch = json!({"disabled": true, "url": "https://b.example.com/"});
    let recover = json!({"since": (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339).unwrap()});
    for (method, template, path, expected) in &cases {
        let body = if template.ends_with("/reject") {
            Some(&reject)
        } else if template.ends_with("/recover") {
            Some(&recover)
        } else if *method == "patch" {
            Some(&patch)
        } else {
            None
        };
        let method = method.to_uppercase().parse::<reqwest::Method>().unwrap();
        let (code, answer) = api.call(method.clone(), path, B.1, body, None).await;
        assert_eq!(code, *expected, "{method} {path} as another merchant: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains(&a_id) && !text.contains(&ep),
            "{path} leaked A's data: {text}"
        );
        // The same answer for an id that does not exist: no existence oracle.
        let missing = path
            .replace(&a_id, unknown)
            .replace(&ep, "ep_0190a2b45e6f70008000000000000099");
        let missing = missing.replace(&event_id, "evt_0190a2b45e6f70008000000000000099_0000000001");
        let (code, _) = api.call(method.clone(), &missing, B.1, body, None).await;
        assert_eq!(code, *expected, "{method} {missing} (unknown id)");
        // And nobody without a key.
        let (code, _) = api.call(method, path, "", body, None).await;
        assert_eq!(code, 401, "{path} without a key");
    }

    // Listings hold only the caller's own; naming another merchant is refused.
    let (code, _) = api.get("/v1/cashout-requests?merchant_id=merchant_sec_a", B.1).await;
    assert_eq!(code, 403, "a merchant naming another merchant's listing");
    let today = OffsetDateTime::now_utc().date();
    let (code, _) = api
        .get(
            &format!("/v1/statements?from={today}&to={today}&merchant_id=merchant_sec_a"),
            B.1,
        )
        .await;
    assert_eq!(code, 403, "a merchant naming another merchant's statement");
    for path in [
        "/v1/cashout-requests",
        "/v1/cashout-requests?status=UNDER_REVIEW",
        "/v1/cashout-requests?merchant_id=merchant_sec_a",
        "/v1/webhook-endpoints",
        "/v1/events",
        format!("/v1/events?cashout_request_id={a_id}").as_str(),
        format!("/v1/statements?from={today}&to={today}").as_str(),
        format!("/v1/statements?from={today}&to={today}&limit=100").as_str(),
    ] {
        let (code, answer) = api.get(path, B.1).await;
        let text = answer.to_string();
        assert!(
            !text.contains(&a_id) && !text.contains(&ep),
            "{path} as B ({code}) shows A's data: {text}"
        );
    }
    // B's portal link opens B's portal only: A's endpoint and request are not listed, and
    // naming them is "not found", as in the API.
    let pages = [
        ("/portal".to_owned(), 200),
        ("/portal/requests".to_owned(), 200),
        (format!("/portal/endpoints/{ep}"), 404),
        (format!("/portal/requests/{a_id}"), 404),
    ];
    for ((path, expected), (code, text)) in pages.iter().zip(portal_as(api, B.1, &pages).await) {
        assert_eq!(code, *expected, "{path} in B's portal");
        assert!(
            !text.contains(&a_id) && !text.contains(&ep),
            "{path} in B's portal shows A's data"
        );
    }

    // Idempotency keys are per merchant: B's create with A's key is B's own request.
    let b_own = system
        .create(
            B.1,
            "shared-key",
            &body(ProviderName::D24, &account(8, Trigger::Success), "20000.00"),
        )
        .await;
    assert_ne!(b_own["id"], under_review["id"]);

    // A's things are intact: the request, the endpoint, its secret.
    let (code, still) = api.get(&format!("/v1/cashout-requests/{a_id}"), A.1).await;
    assert_eq!((code, &still["status"]), (200, &json!("UNDER_REVIEW")));
    let (code, _) = api.get(&format!("/v1/webhook-endpoints/{ep}"), A.1).await;
    assert_eq!(code, 200);
    let fresh = system
        .create(
            A.1,
            "after",
            &body(ProviderName::D24, &account(9, Trigger::Success), "100.00"),
        )
        .await;
    let delivered = accepted_for(&receiver, fresh["id"].as_str().unwrap(), 1).await;
    assert!(delivered[0].verified, "A's secret was not rotated by B");
    // The operator sees A's request (the positive control of the 404s above).
    let (code, _) = api.get(&format!("/v1/cashout-requests/{a_id}"), OPERATOR).await;
    assert_eq!(code, 200);
    let _ = system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_never_go_through_a_proxy_named_in_the_environment() {
    // A proxy resolves names itself, past the private-address check: the delivery client must
    // not use one. This one records the target of every request it gets and hangs up.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let targets = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut socket, _)) = proxy.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 512];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push(line);
            });
        }
    });
    let env = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), proxy_url.clone()))
    .collect();
    let system = System::start_with_env(&[], "warn", env).await;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 0 }, 5).await.unwrap();
    let (_, secret) = system
        .api
        .register_endpoint(A.1, &receiver.url("a"), &[])
        .await
        .unwrap();
    receiver.set_secret("a", &secret);
    let created = system
        .create(
            A.1,
            "proxy-1",
            &body(ProviderName::D24, &account(1, Trigger::Success), "100.00"),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    // `created` and `APPROVED` need no provider: they reach the receiver directly.
    accepted_for(&receiver, id, 2).await;
    let receiver_host = receiver.url("a").split('/').nth(2).unwrap().to_owned();
    let through_proxy: Vec<String> = targets
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(&receiver_host))
        .cloned()
        .collect();
    assert!(
        through_proxy.is_empty(),
        "deliveries went through the proxy: {through_proxy:?}"
    );
    system.stop().await;
}

#[tokio::test]
async fn no_full_account_number_or_secret_in_logs_or_responses() {
    // Everything cashout logs, at its most verbose.
    let system = System::start(
        &[],
        "trace,hyper=debug,hyper_util=debug,h2=info,rustls=info,reqwest=debug,tower=debug,mio=info",
    )
    .await;
    let api = &system.api;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 30 }, 5).await.unwrap();
    let (ep, secret) = api.register_endpoint(A.1, &receiver.url("a"), &[]).await.unwrap();
    receiver.set_secret("a", &secret);
    let mut responses: Vec<Value> = Vec::new();

    // One request per provider, each with its own long account number; a Cascad card payout;
    // plus a rejected one.
    let accounts = [
        (ProviderName::D24, "000987654321", "PAID"),
        (ProviderName::Onspot, "000876543267", "PAID"),
        (ProviderName::Tupay, "00212345678901234567", "PAID"),
        (ProviderName::Cascad, "765432109876", "PAID"),
        (ProviderName::Cascad, "5123817234060000", "PAID"),
        (ProviderName::D24, "000555444313", "REJECTED"),
    ];
    let mut ids = Vec::new();
    for (i, (provider, acct, _)) in accounts.iter().enumerate() {
        let mut request = body(*provider, acct, "1000.00");
        if *provider == ProviderName::Cascad && acct.len() == 16 {
            // A card payout: the card number is as secret as an account number.
            request["payout_method"] = json!("card");
            request["beneficiary"] = json!({"name": "John", "last_name": "Wick", "card_number": acct});
        }
        let r = system.create(A.1, &format!("pii-{i}"), &request).await;
        ids.push(r["id"].as_str().unwrap().to_owned());
        responses.push(r);
    }
    for (id, (_, _, status)) in ids.iter().zip(&accounts) {
        responses.push(system.wait_status(A.1, id, status).await);
        let (_, events) = api.get(&format!("/v1/cashout-requests/{id}/events"), A.1).await;
        responses.push(events);
    }
    // A body that puts the account where it does not belong (a number): refused.
    let mut wrong = body(ProviderName::D24, "x", "1000.00");
    wrong["beneficiary"]["bank_account"] = json!(987_650_001_234_567_u64);
    let (code, problem) = api.create(A.1, "pii-wrong", &wrong).await;
    assert_eq!(code, 422, "{problem}");
    responses.push(problem);
    for path in [
        "/v1/cashout-requests?limit=100".to_owned(),
        "/v1/webhook-endpoints".to_owned(),
        format!("/v1/webhook-endpoints/{ep}"),
        format!("/v1/webhook-endpoints/{ep}/attempts?limit=100"),
    ] {
        let (code, r) = api.get(&path, A.1).await;
        assert_eq!(code, 200, "{path}: {r}");
        responses.push(r);
    }
    for id in &ids {
        accepted_for(&receiver, id, 3).await;
    }
    let dir = system.stop().await;
    let logs = logs(dir.path());
    assert!(logs.lines().count() > 100, "the runner logged at trace level");
    let mut secrets: Vec<String> = vec![
        secret.clone(),
        A.1.into(),
        B.1.into(),
        OPERATOR.into(),
        "d24_pass".into(),
        "d24_secret".into(),
        "onspot_pass".into(),
        "onspot_secret".into(),
        "tupay_pass".into(),
        "tupay_secret".into(),
        "sk_test_sim_api_key".into(),
        "cascad_callback_secret".into(),
    ];
    secrets.push(secret[6..].to_owned()); // the key without its prefix
    let mut all_accounts: Vec<String> = accounts.iter().map(|(_, a, _)| (*a).to_owned()).collect();
    all_accounts.push("987650001234567".into());
    // The beneficiaries' tax ids (the workload's CPF and DNI) are masked like account numbers.
    all_accounts.push("12345678909".into());
    all_accounts.push("12345678".into());
    let whsec = regex::Regex::new(r"whsec_[A-Za-z0-9+/=]{16,}").unwrap();
    let bearer = regex::Regex::new(r"(?i)bearer\s+[A-Za-z0-9_]{8,}").unwrap();
    let digits = |text: &str, acct: &str| text.split(|c: char| !c.is_ascii_digit()).any(|run| run == acct);

    let mut leaks = Vec::new();
    for (n, line) in logs.lines().enumerate() {
        for s in &secrets {
            if line.contains(s.as_str()) {
                leaks.push(format!("log line {}: a secret: {line}", n + 1));
            }
        }
        if whsec.is_match(line) || bearer.is_match(line) {
            leaks.push(format!("log line {}: a credential: {line}", n + 1));
        }
        for a in &all_accounts {
            if digits(line, a) {
                leaks.push(format!("log line {}: account {a}: {line}", n + 1));
            }
        }
    }
    let mut texts: Vec<String> = responses.iter().map(Value::to_string).collect();
    texts.extend(
        receiver
            .log()
            .iter()
            .map(|d| String::from_utf8_lossy(&d.raw).into_owned()),
    );
    for text in &texts {
        if whsec.is_match(text) || secrets.iter().any(|s| text.contains(s.as_str())) {
            leaks.push(format!("a response holds a secret: {text}"));
        }
        for a in &all_accounts {
            if digits(text, a) {
                leaks.push(format!("a response holds account {a}: {text}"));
            }
        }
    }
    // At rest: the database's files (its key file aside) hold no signing secret (issue 14).
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "key") {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            if text.contains("whsec_") || text.contains(&secret[6..]) {
                leaks.push(format!("{} holds a webhook secret", path.display()));
            }
        }
    }
    let unique: HashSet<&String> = leaks.iter().collect();
    assert!(
        unique.is_empty(),
        "{} leaks, e.g.:\n{}",
        unique.len(),
        leaks.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
