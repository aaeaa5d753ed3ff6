//! The chaos run: cashout requests through the local runner (`cashout-local`, a separate process)
//! while everything around it misbehaves, then every invariant checked against the ground truth.
//!
//! What misbehaves:
//! - the provider simulators (in this process, so that their ledger outlives every kill): 10 %
//!   5xx before the operation, 5 % 5xx after it (the lost response), 10 % timeouts (half of them
//!   after the operation), 5 % 429, 20 % duplicated and 20 % reordered notifications, and the
//!   test triggers: bank rejections, reversals after payment, declined creates, payouts on hold;
//! - the merchant's receiver refuses 30 % of deliveries (500/503);
//! - the runner is killed with SIGKILL and restarted on the same data, mid-run;
//! - the merchant retries every create whose answer it did not get (same key, same body), sends
//!   some creates twice, cancels some requests right after creating them, and an operator approves
//!   or leaves requests waiting for review.
//!
//! What is checked, once everything has settled (or the time bound has passed):
//! - no reference has more than one payout at any provider, every payout belongs to one of our
//!   requests and carries its amount;
//! - every request is in the status the provider's truth implies, or legitimately waiting (and
//!   why);
//! - every status event reached every subscribed endpoint at least once, signatures verified with
//!   the official library, sequences without gaps per request, nothing to an endpoint not
//!   subscribed, nothing to another merchant's endpoint;
//! - no request moved backwards (versions observed never decrease; every transition in the audit
//!   trail is in the status table); the audit trail is complete;
//! - one request per idempotency key, whatever the crashes and retries;
//! - no full account number, API key or webhook secret in the runner's logs.

// Progress lines go to stderr: this is the body of a command-line harness.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cashout_core::provider::ProviderName;
use cashout_provider_sim::{FaultConfig, Faults, Ledger, SimConfig, SimHandle};
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::client::Api;
use crate::receiver::{Delivery, Mode, Receiver};
use crate::runner::{Backend, Runner, RunnerSpec, free_addr};
use crate::workload::{PROVIDERS, Trigger, account, body, sim_provider};

/// The two merchants and their keys.
const MERCHANT_A: (&str, &str) = ("merchant_chaos_a", "sk_chaos_merchant_a");
const MERCHANT_B: (&str, &str) = ("merchant_chaos_b", "sk_chaos_merchant_b");
const OPERATOR_KEY: &str = "sk_chaos_operator";

/// A chaos run's settings.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The `cashout-local` binary.
    pub runner: PathBuf,
    /// Store and queues of the runner.
    pub backend: Backend,
    /// Cashout requests to create.
    pub requests: usize,
    /// `kill -9` + restarts of the runner (spread over the creates; the last one after them,
    /// while the work is in flight).
    pub kills: usize,
    /// Concurrent merchant clients.
    pub clients: usize,
    /// Seed of the plan, the simulators and the receiver.
    pub seed: u64,
    /// Simulator time scale (lifecycles, notification retries).
    pub time_scale: u32,
    /// Share of deliveries the receiver refuses.
    pub receiver_fail_percent: u8,
    /// Time allowed, after the last create, for everything to settle.
    pub settle_timeout: Duration,
    /// Where the runner's data and logs go (kept for inspection).
    pub work_dir: PathBuf,
    /// `RUST_LOG` of the runner.
    pub rust_log: String,
    /// Print progress to stderr.
    pub verbose: bool,
}

/// What one planned request does.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    n: usize,
    merchant_b: bool,
    provider: ProviderName,
    trigger: Trigger,
    account: String,
    /// Above the auto-approval limit: waits for review.
    review: Option<Review>,
    /// The merchant cancels right after the create.
    cancel_soon: bool,
    /// The merchant sends the create twice.
    duplicate: bool,
    key: String,
    #[serde(skip)]
    body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Review {
    Approve,
    MerchantCancels,
    Leave,
}

/// What happened to one request, from the merchant's side.
#[derive(Debug, Clone, Default)]
struct Outcome {
    id: Option<String>,
    create_calls: u32,
    /// Every (version, status) a GET returned, in order.
    observed: Vec<(u64, String)>,
    cancel_answer: Option<u16>,
    redelivered: u32,
}

/// The figures and verdict of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// `embedded` or `aws`.
    pub backend: String,
    /// Requests created.
    pub requests: usize,
    /// Runner kills (SIGKILL) and restarts.
    pub kills: usize,
    /// Runner start-to-ready after each restart, ms.
    pub restart_ready_ms: Vec<u64>,
    /// Create calls the merchant had to repeat (no answer: the runner was down, or 5xx/409).
    pub create_retries: u64,
    /// Why creates were repeated.
    pub create_retry_reasons: BTreeMap<String, u64>,
    /// Creates sent twice on purpose, each answered with the first request.
    pub duplicate_creates: usize,
    /// Final statuses.
    pub statuses: BTreeMap<String, usize>,
    /// Requests legitimately waiting, by reason.
    pub waiting: BTreeMap<String, usize>,
    /// Payouts at the providers, by provider and status.
    pub payouts: BTreeMap<String, usize>,
    /// Create requests the providers received (faulted ones included), and the most for one
    /// reference.
    pub provider_create_attempts: u64,
    /// The most create requests one reference received.
    pub max_create_attempts_per_reference: u32,
    /// References with more than one payout.
    pub double_payouts: usize,
    /// Provider notifications/callbacks the simulators queued (duplicates included).
    pub provider_notifications: usize,
    /// Status events in the audit trails.
    pub events: usize,
    /// Deliveries the receiver got, refused and accepted.
    pub deliveries_received: usize,
    /// Refused by the receiver on purpose.
    pub deliveries_refused: usize,
    /// Accepted deliveries of an event already accepted at that endpoint (at least once).
    pub duplicate_deliveries: usize,
    /// Events replayed with `POST /v1/events/{id}/redeliver` after their retries ran out.
    pub replayed_events: usize,
    /// Seconds from the first create to the last create answered.
    pub create_phase_s: f64,
    /// Seconds from the last create to everything settled.
    pub settle_s: f64,
    /// Whether everything settled within the bound.
    pub settled: bool,
    /// Every invariant broken (empty: the run passed).
    pub violations: Vec<String>,
}

fn plan(config: &ChaosConfig) -> Vec<Plan> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    (0..config.requests)
        .map(|n| {
            let provider = PROVIDERS[n % PROVIDERS.len()];
            let roll = rng.random_range(0..100u32);
            let (trigger, review) = match roll {
                0..=51 => (Trigger::Success, None),
                52..=63 => (Trigger::BankRejects, None),
                64..=77 => (Trigger::Reversal, None),
                78..=83 => (Trigger::Declined, None),
                84..=88 => (Trigger::OnHold, None),
                89..=92 => (Trigger::Success, Some(Review::Approve)),
                93..=95 => (Trigger::Success, Some(Review::MerchantCancels)),
                _ => (Trigger::Success, Some(Review::Leave)),
            };
            let account = account(config.seed.wrapping_mul(1_000_000) + n as u64, trigger);
            let amount = if review.is_some() { "20000.00" } else { "1000.00" };
            let merchant_b = rng.random_range(0..100u32) < 20;
            Plan {
                n,
                merchant_b,
                provider,
                trigger,
                review,
                cancel_soon: review.is_none() && rng.random_range(0..100u32) < 4,
                duplicate: rng.random_range(0..100u32) < 8,
                key: format!("chaos-{}-{n}", config.seed),
                body: body(provider, &account, amount),
                account,
            }
        })
        .collect()
}

struct Shared {
    api: Api,
    plans: Vec<Plan>,
    outcomes: Vec<Mutex<Outcome>>,
    created: AtomicUsize,
    create_retries: AtomicU64,
    retry_codes: std::sync::Mutex<BTreeMap<String, u64>>,
    violations: std::sync::Mutex<Vec<String>>,
    verbose: bool,
}

impl Shared {
    fn violation(&self, v: String) {
        if self.verbose {
            eprintln!("chaos: VIOLATION {v}");
        }
        self.violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(v);
    }

    fn key(&self, p: &Plan) -> &'static str {
        if p.merchant_b { MERCHANT_B.1 } else { MERCHANT_A.1 }
    }
}

/// A merchant's retry: transport failures (the runner is down), 5xx and "in progress" are
/// retried with the same key and body until answered, for at most `budget`.
async fn create_until_answered(shared: &Shared, p: &Plan, budget: Duration) -> Option<Value> {
    let deadline = Instant::now() + budget;
    let mut wait = Duration::from_millis(100);
    loop {
        let (code, r) = shared.api.create(shared.key(p), &p.key, &p.body).await;
        shared.outcomes[p.n].lock().await.create_calls += 1;
        match code {
            201 => return Some(r),
            0 | 409 | 500..=599 => {}
            _ => {
                shared.violation(format!("request #{} create answered {code}: {r}", p.n));
                return None;
            }
        }
        shared.create_retries.fetch_add(1, Ordering::Relaxed);
        let why = match code {
            0 => "no answer (runner down)".to_owned(),
            _ => format!("{code} {}", r["code"].as_str().unwrap_or_default()),
        };
        *shared
            .retry_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(why)
            .or_insert(0) += 1;
        if Instant::now() > deadline {
            shared.violation(format!("request #{} create unanswered after {budget:?}", p.n));
            return None;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// A merchant's cancel: retried while the answer is "try later" (dispatch in progress, 5xx, no
/// answer); any final answer is recorded.
async fn cancel_until_answered(shared: &Shared, p: &Plan, id: &str, budget: Duration) -> u16 {
    let deadline = Instant::now() + budget;
    loop {
        let (code, r) = shared
            .api
            .post(&format!("/v1/cashout-requests/{id}/cancel"), shared.key(p), None)
            .await;
        let retry = match code {
            0 | 500..=599 => true,
            409 => matches!(
                r["code"].as_str(),
                Some("dispatch_in_progress" | "concurrent_update" | "idempotency_in_progress")
            ),
            _ => false,
        };
        if !retry || Instant::now() > deadline {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn client_loop(shared: Arc<Shared>, next: Arc<AtomicUsize>) {
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some(p) = shared.plans.get(n) else { return };
        let Some(created) = create_until_answered(&shared, p, Duration::from_secs(180)).await else {
            shared.created.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        shared.outcomes[n].lock().await.id = Some(id.clone());
        if p.duplicate
            && let Some(again) = create_until_answered(&shared, p, Duration::from_secs(180)).await
            && again["id"] != created["id"]
        {
            shared.violation(format!(
                "request #{} sent twice with key {}: two requests {} and {}",
                p.n, p.key, created["id"], again["id"]
            ));
        }
        if p.cancel_soon || p.review == Some(Review::MerchantCancels) {
            let code = cancel_until_answered(&shared, p, &id, Duration::from_secs(120)).await;
            shared.outcomes[n].lock().await.cancel_answer = Some(code);
        }
        shared.created.fetch_add(1, Ordering::Relaxed);
    }
}

/// Joins the client tasks that have ended; one that panicked (or was cancelled) fails the run,
/// since its request and the rest of its share were never played.
async fn reap_finished(clients: &mut Vec<tokio::task::JoinHandle<()>>) -> Result<(), String> {
    let mut i = 0;
    while i < clients.len() {
        if clients[i].is_finished() {
            client_ended(clients.swap_remove(i).await)?;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// How a client task ended: `Err` (the run fails) unless it played its share to the end.
fn client_ended(joined: Result<(), tokio::task::JoinError>) -> Result<(), String> {
    match joined {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("a client task panicked, its requests unplayed: {message}"))
        }
        Err(e) => Err(format!("a client task did not finish, its requests unplayed: {e}")),
    }
}

/// The transitions of the status table (`docs/architecture.md`), written here independently of
/// the product's own table.
fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("REQUESTED", "APPROVED" | "UNDER_REVIEW" | "REJECTED" | "CANCELLED")
            | ("UNDER_REVIEW", "APPROVED" | "REJECTED" | "CANCELLED")
            | (
                "APPROVED",
                "PENDING_PAYMENT" | "REJECTED" | "PAYMENT_PROCESSOR_ERROR" | "CANCELLED"
            )
            | (
                "PENDING_PAYMENT",
                "PAID" | "REJECTED" | "CANCELLED" | "PAYMENT_PROCESSOR_ERROR"
            )
            | ("PAYMENT_PROCESSOR_ERROR", "APPROVED" | "REJECTED" | "CANCELLED")
            | ("PAID", "REJECTED")
    )
}

/// What the provider's truth implies for a request, or why it may legitimately wait.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// This status, for good.
    Final(&'static str),
    /// This status until something outside cashout happens (the reason says what).
    Waiting(&'static str, &'static str),
    /// Not settled yet (the provider is still working, or a reversal is due).
    Moving,
}

fn provider_truth(provider: ProviderName, status: &str) -> Expect {
    let family_d24 = provider != ProviderName::Cascad;
    let head = status.split_whitespace().next().unwrap_or_default();
    match (family_d24, head) {
        (true, "COMPLETED") | (false, "processed") => Expect::Final("PAID"),
        (true, "REJECTED") | (false, "process_failed" | "expired" | "terminated") => Expect::Final("REJECTED"),
        (true, "CANCELLED") => Expect::Final("CANCELLED"),
        (true, "ON_HOLD") => Expect::Waiting("PENDING_PAYMENT", "on hold at the provider until released"),
        _ => Expect::Moving,
    }
}

/// The expected status of one request, from the ledger and what the merchant did.
fn expect(p: &Plan, payouts: &[&cashout_provider_sim::LedgerPayout], actual: &str) -> Expect {
    match payouts {
        [payout] => {
            let truth = provider_truth(p.provider, &payout.status);
            // A D24-family reversal comes after COMPLETED: not final until it has happened.
            if p.trigger == Trigger::Reversal && p.provider != ProviderName::Cascad && truth == Expect::Final("PAID") {
                return Expect::Moving;
            }
            truth
        }
        [] => match actual {
            // Nothing at any provider: only outcomes that pay nothing are possible.
            "REJECTED" if p.trigger == Trigger::Declined => Expect::Final("REJECTED"),
            "CANCELLED" if p.cancel_soon || p.review == Some(Review::MerchantCancels) => Expect::Final("CANCELLED"),
            "UNDER_REVIEW" if p.review == Some(Review::Leave) => {
                Expect::Waiting("UNDER_REVIEW", "above the auto-approval limit, left for an operator")
            }
            "PAYMENT_PROCESSOR_ERROR" => Expect::Waiting(
                "PAYMENT_PROCESSOR_ERROR",
                "the provider refused it for a configuration reason; an operator decides",
            ),
            _ => Expect::Moving,
        },
        _ => Expect::Moving,
    }
}

struct Snapshot {
    request: Value,
    events: Vec<Value>,
}

/// The endpoints of the run: (name, merchant is B, event types it receives; empty = all).
const ENDPOINTS: [(&str, bool, &[&str]); 3] = [
    ("a-all", false, &[]),
    ("a-status", false, &["cashout_request.status_update"]),
    ("b-all", true, &[]),
];

fn subscribed(endpoint: &(&str, bool, &[&str]), merchant_b: bool, event_type: &str) -> bool {
    endpoint.1 == merchant_b && (endpoint.2.is_empty() || endpoint.2.contains(&event_type))
}

/// Runs the chaos and returns its report (violations included); `Err` when it could not run.
pub async fn run(config: ChaosConfig) -> Result<ChaosReport, String> {
    let log = |msg: String| {
        if config.verbose {
            eprintln!("chaos[{}]: {msg}", config.backend.name());
        }
    };
    std::fs::create_dir_all(&config.work_dir).map_err(|e| e.to_string())?;

    // The providers, outside the runner: their ledger is the ground truth across kills.
    let faults = FaultConfig {
        error_before: 10,
        error_after: 5,
        timeout: 10,
        rate_limit: 5,
        hang_ms: 1500,
        notify_duplicate: 20,
        notify_reorder: 20,
        ..FaultConfig::default()
    };
    let sim: SimHandle = cashout_provider_sim::start(
        SimConfig {
            seed: config.seed,
            time_scale: config.time_scale,
            faults: Faults::all(faults),
            ..SimConfig::default()
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let receiver = Receiver::start(
        Mode::Verify {
            fail_percent: config.receiver_fail_percent,
        },
        config.seed,
    )
    .await
    .map_err(|e| e.to_string())?;

    let spec = RunnerSpec {
        binary: config.runner.clone(),
        data_dir: config.work_dir.join("data"),
        listen: free_addr().map_err(|e| e.to_string())?,
        sim_url: sim.url(),
        backend: config.backend.clone(),
        operator_key: OPERATOR_KEY.into(),
        rust_log: config.rust_log.clone(),
        log_dir: config.work_dir.clone(),
        extra_args: Vec::new(),
    };
    // Merchant B's key is registered by a first start (keys persist in the store), then every
    // start is merchant A's.
    let first = spec.start(MERCHANT_B.0, MERCHANT_B.1, 0)?;
    let api = Api::new(&first.base);
    let mut secrets = HashMap::new();
    for ep in ENDPOINTS.iter().filter(|e| e.1) {
        let (_, secret) = api.register_endpoint(MERCHANT_B.1, &receiver.url(ep.0), ep.2).await?;
        secrets.insert(ep.0, secret);
    }
    first.terminate()?;
    let runner = spec.start(MERCHANT_A.0, MERCHANT_A.1, 1)?;
    let mut logs = vec![spec.log_dir.join("runner-0.log"), runner.log.clone()];
    for ep in ENDPOINTS.iter().filter(|e| !e.1) {
        let (_, secret) = api.register_endpoint(MERCHANT_A.1, &receiver.url(ep.0), ep.2).await?;
        secrets.insert(ep.0, secret);
    }
    for (name, secret) in &secrets {
        receiver.set_secret(name, secret);
    }
    log(format!(
        "runner on {} ({}), simulators on {}, receiver refusing {} %",
        runner.base,
        config.backend.name(),
        sim.url(),
        config.receiver_fail_percent
    ));

    let plans = plan(&config);
    let shared = Arc::new(Shared {
        api: api.clone(),
        outcomes: plans.iter().map(|_| Mutex::new(Outcome::default())).collect(),
        plans,
        created: AtomicUsize::new(0),
        create_retries: AtomicU64::new(0),
        retry_codes: std::sync::Mutex::new(BTreeMap::new()),
        violations: std::sync::Mutex::new(Vec::new()),
        verbose: config.verbose,
    });

    // Creates, with the kills spread over them.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients: Vec<_> = (0..config.clients)
        .map(|_| tokio::spawn(client_loop(shared.clone(), next.clone())))
        .collect();
    let mut runner = Some(runner);
    let mut restart_ready_ms = Vec::new();
    let mut generation = 2;
    let mut kill = |runner: &mut Option<Runner>, logs: &mut Vec<PathBuf>| -> Result<(), String> {
        if let Some(r) = runner.take() {
            r.kill9();
        }
        let r = spec.start(MERCHANT_A.0, MERCHANT_A.1, generation)?;
        generation += 1;
        restart_ready_ms.push(r.ready_after.as_millis() as u64);
        logs.push(r.log.clone());
        *runner = Some(r);
        Ok(())
    };
    let kills_during_creates = config.kills.saturating_sub(1);
    for k in 1..=kills_during_creates {
        let at = config.requests * k / (kills_during_creates + 1);
        while shared.created.load(Ordering::Relaxed) < at {
            // A client that died leaves its request uncounted: fail now rather than wait forever.
            if let Err(e) = reap_finished(&mut clients).await {
                clients.iter().for_each(tokio::task::JoinHandle::abort);
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log(format!("kill -9 at {at} requests"));
        kill(&mut runner, &mut logs)?;
    }
    while !clients.is_empty() {
        if let Err(e) = client_ended(clients.remove(0).await) {
            clients.iter().for_each(tokio::task::JoinHandle::abort);
            return Err(e);
        }
    }
    let create_phase = started.elapsed();
    log(format!("{} requests created in {create_phase:?}", config.requests));

    // The operator reviews; the last kill hits while the work is in flight.
    let operator = Api::new(api.base());
    for (p, o) in shared.plans.iter().zip(&shared.outcomes) {
        if p.review == Some(Review::Approve)
            && let Some(id) = o.lock().await.id.clone()
        {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (code, r) = operator
                    .post(&format!("/v1/cashout-requests/{id}/approve"), OPERATOR_KEY, None)
                    .await;
                if code == 200 {
                    break;
                }
                if !matches!(code, 0 | 409 | 500..=599) || Instant::now() > deadline {
                    shared.violation(format!("approving {id}: {code} {r}"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if config.kills > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        log("kill -9 with the work in flight".into());
        kill(&mut runner, &mut logs)?;
    }

    // Settle: poll until every request matches the truth and every event reached every
    // subscribed endpoint, replaying events whose retries ran out.
    let settle_started = Instant::now();
    let max_attempts = cashout_app::AppConfig::local().webhook_retries.max_attempts() as usize;
    let mut snapshots: HashMap<usize, Snapshot> = HashMap::new();
    let mut complete: HashSet<usize> = HashSet::new();
    let mut replayed: HashMap<String, Instant> = HashMap::new();
    let settled = loop {
        let ledger = sim.ledger();
        let log_now = receiver.log();
        let accepted = accepted_index(&log_now);
        let refused = refused_index(&log_now);
        let pending: Vec<usize> = (0..shared.plans.len()).filter(|n| !complete.contains(n)).collect();
        let fetched = fetch(&shared, &pending).await;
        for (n, snap) in fetched {
            let p = &shared.plans[n];
            let actual = snap.request["status"].as_str().unwrap_or_default().to_owned();
            let id = snap.request["id"].as_str().unwrap_or_default().to_owned();
            let payouts = ledger.payouts_for(sim_provider(p.provider), &id);
            let status_ok = match expect(p, &payouts, &actual) {
                Expect::Final(s) | Expect::Waiting(s, _) => s == actual,
                Expect::Moving => false,
            };
            let mut delivered = true;
            for e in &snap.events {
                let event_id = e["id"].as_str().unwrap_or_default();
                let event_type = e["type"].as_str().unwrap_or_default();
                for ep in ENDPOINTS.iter().filter(|ep| subscribed(ep, p.merchant_b, event_type)) {
                    if accepted.contains(&(ep.0.to_owned(), event_id.to_owned())) {
                        continue;
                    }
                    delivered = false;
                    // Every retry refused: the delivery is dead-lettered; replay it as a
                    // merchant would, once per refusal after the last replay.
                    let refusals = refused.get(&(ep.0.to_owned(), event_id.to_owned()));
                    let exhausted = refusals.is_some_and(|r| r.len() >= max_attempts);
                    let since_replay = match (refusals, replayed.get(event_id)) {
                        (Some(r), Some(at)) => r.iter().any(|t| t > at),
                        (_, None) => true,
                        (None, Some(_)) => false,
                    };
                    if exhausted && since_replay {
                        let (code, _) = shared
                            .api
                            .post(&format!("/v1/events/{event_id}/redeliver"), shared.key(p), None)
                            .await;
                        if code == 202 {
                            replayed.insert(event_id.to_owned(), Instant::now());
                            shared.outcomes[n].lock().await.redelivered += 1;
                            log(format!("event {event_id} dead-lettered at {}; replayed", ep.0));
                        }
                    }
                }
            }
            if status_ok && delivered {
                complete.insert(n);
            }
            snapshots.insert(n, snap);
        }
        if complete.len() == shared.plans.len() {
            break true;
        }
        if settle_started.elapsed() > config.settle_timeout {
            break false;
        }
        log(format!(
            "{} of {} requests settled and delivered",
            complete.len(),
            shared.plans.len()
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let settle = settle_started.elapsed();
    log(format!("settled: {settled} after {settle:?}; checking"));

    // Final pass: a fresh look at everything, then every invariant.
    let all: Vec<usize> = (0..shared.plans.len()).collect();
    let fresh = fetch(&shared, &all).await;
    for (n, snap) in fresh {
        snapshots.insert(n, snap);
    }
    let ledger = sim.ledger();
    let deliveries = receiver.log();
    let mut report = check(&shared, &snapshots, &ledger, &deliveries, &config).await;
    report.violations.extend(
        shared
            .violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..),
    );
    report.violations.extend(scan_logs(&logs, &shared.plans, &secrets));
    if !settled {
        let stuck: Vec<String> = (0..shared.plans.len())
            .filter(|n| !complete.contains(n))
            .take(20)
            .map(|n| {
                let s = snapshots.get(&n);
                format!(
                    "#{n} {:?}/{:?} {} ({})",
                    shared.plans[n].provider,
                    shared.plans[n].trigger,
                    s.map(|s| s.request["id"].to_string()).unwrap_or_default(),
                    s.map(|s| s.request["status"].to_string()).unwrap_or_default()
                )
            })
            .collect();
        report.violations.push(format!(
            "not settled after {:?}: {} requests, e.g. {}",
            config.settle_timeout,
            shared.plans.len() - complete.len(),
            stuck.join(", ")
        ));
    }
    report.kills = restart_ready_ms.len();
    report.restart_ready_ms = restart_ready_ms;
    report.create_retries = shared.create_retries.load(Ordering::Relaxed);
    report.create_retry_reasons = shared
        .retry_codes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report.create_phase_s = crate::stats::round2(create_phase.as_secs_f64());
    report.settle_s = crate::stats::round2(settle.as_secs_f64());
    report.settled = settled;
    report.replayed_events = replayed.len();
    if let Some(r) = runner.take() {
        let _ = r.terminate();
    }
    sim.shutdown().await;
    Ok(report)
}

/// Accepted (2xx, verified) deliveries: (endpoint, webhook id).
fn accepted_index(log: &[Delivery]) -> HashSet<(String, String)> {
    log.iter()
        .filter(|d| d.accepted() && d.verified)
        .map(|d| (d.endpoint.clone(), d.webhook_id.clone()))
        .collect()
}

/// Refused deliveries: (endpoint, webhook id) → when.
fn refused_index(log: &[Delivery]) -> HashMap<(String, String), Vec<Instant>> {
    let mut out: HashMap<(String, String), Vec<Instant>> = HashMap::new();
    for d in log.iter().filter(|d| !d.accepted()) {
        out.entry((d.endpoint.clone(), d.webhook_id.clone()))
            .or_default()
            .push(d.at);
    }
    out
}

/// GETs each request and its events (16 at a time); records what was observed.
async fn fetch(shared: &Arc<Shared>, which: &[usize]) -> Vec<(usize, Snapshot)> {
    let queue = Arc::new(std::sync::Mutex::new(which.to_vec()));
    let out = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (shared, queue, out) = (shared.clone(), queue.clone(), out.clone());
            tokio::spawn(async move {
                loop {
                    let Some(n) = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop() else {
                        return;
                    };
                    let p = &shared.plans[n];
                    let Some(id) = shared.outcomes[n].lock().await.id.clone() else {
                        continue;
                    };
                    let key = shared.key(p);
                    let request = get_until_answered(&shared.api, &format!("/v1/cashout-requests/{id}"), key).await;
                    let events =
                        get_until_answered(&shared.api, &format!("/v1/cashout-requests/{id}/events"), key).await;
                    {
                        let mut o = shared.outcomes[n].lock().await;
                        if let (Some(v), Some(s)) = (request["version"].as_u64(), request["status"].as_str()) {
                            o.observed.push((v, s.to_owned()));
                        }
                    }
                    let events = events["data"].as_array().cloned().unwrap_or_default();
                    out.lock().await.push((n, Snapshot { request, events }));
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    std::mem::take(&mut *out.lock().await)
}

async fn get_until_answered(api: &Api, path: &str, key: &str) -> Value {
    for _ in 0..600 {
        let (code, v) = api.get(path, key).await;
        if code == 200 {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Value::Null
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

/// Every invariant, on the final snapshots.
async fn check(
    shared: &Shared,
    snapshots: &HashMap<usize, Snapshot>,
    ledger: &Ledger,
    deliveries: &[Delivery],
    config: &ChaosConfig,
) -> ChaosReport {
    let mut v = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut waiting = BTreeMap::new();
    let mut our_ids: HashMap<String, usize> = HashMap::new();
    let mut events_total = 0;

    // The providers: one payout per reference, each ours, each with the request's amount.
    let double: Vec<_> = ledger.double_payouts();
    for d in &double {
        v.push(format!(
            "DOUBLE PAYOUT: {} reference {} has {} payouts",
            d.provider, d.reference, d.payouts
        ));
    }
    for (n, s) in snapshots {
        if let Some(id) = s.request["id"].as_str() {
            our_ids.insert(id.to_owned(), *n);
        }
    }
    let mut payouts = BTreeMap::new();
    for p in &ledger.payouts {
        *payouts
            .entry(format!(
                "{} {}",
                p.provider,
                p.status.split_whitespace().next().unwrap_or_default()
            ))
            .or_insert(0) += 1;
        match our_ids.get(&p.reference) {
            None => v.push(format!(
                "payout {} at {} for unknown reference {}",
                p.id, p.provider, p.reference
            )),
            Some(n) => {
                let requested = decimal(&snapshots[n].request["requested_amount"]);
                let paid = Decimal::from_str(&p.amount).ok();
                if requested.is_none() || requested != paid {
                    v.push(format!(
                        "payout {} for {} is {} at {}; the request asked {}",
                        p.id, p.reference, p.amount, p.provider, snapshots[n].request["requested_amount"]
                    ));
                }
                if sim_provider(shared.plans[*n].provider) != p.provider {
                    v.push(format!(
                        "payout for {} at {}, routed to {}",
                        p.reference, p.provider, shared.plans[*n].provider
                    ));
                }
            }
        }
    }

    // Every request: its status against the truth, its audit trail, what was observed.
    let accepted: Vec<&Delivery> = deliveries.iter().filter(|d| d.accepted()).collect();
    let mut by_request: HashMap<String, Vec<&Delivery>> = HashMap::new();
    for d in deliveries {
        if let Some(id) = d.body["cashout_request_id"].as_str() {
            by_request.entry(id.to_owned()).or_default().push(d);
        }
        if !d.verified {
            v.push(format!(
                "delivery {} at {} did not verify: {}",
                d.webhook_id,
                d.endpoint,
                d.verify_error.clone().unwrap_or_default()
            ));
        }
    }
    for (n, p) in shared.plans.iter().enumerate() {
        let Some(s) = snapshots.get(&n) else {
            if shared.outcomes[n].lock().await.id.is_some() {
                v.push(format!("request #{n} could not be read back"));
            }
            continue;
        };
        let id = s.request["id"].as_str().unwrap_or_default().to_owned();
        let actual = s.request["status"].as_str().unwrap_or_default().to_owned();
        *statuses.entry(actual.clone()).or_insert(0) += 1;
        let payouts_for = ledger.payouts_for(sim_provider(p.provider), &id);
        match expect(p, &payouts_for, &actual) {
            Expect::Final(e) if e == actual => {}
            Expect::Waiting(e, why) if e == actual => *waiting.entry(why.to_owned()).or_insert(0) += 1,
            other => v.push(format!(
                "request {id} (#{n}, {} {:?}{}) is {actual}; the provider's truth ({}) implies {other:?}",
                p.provider,
                p.trigger,
                if p.cancel_soon {
                    ", cancelled by the merchant"
                } else {
                    ""
                },
                payouts_for.first().map_or("no payout".to_owned(), |x| x.status.clone()),
            )),
        }
        // Money claims need money: PAID only with a paid payout at the provider.
        if actual == "PAID" && payouts_for.is_empty() {
            v.push(format!("request {id} is PAID but no provider holds a payout for it"));
        }

        // The audit trail: gapless, starts with REQUESTED, every transition in the table, ends
        // at the current status.
        let events = &s.events;
        events_total += events.len();
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["sequence"].as_u64()).collect();
        if seqs != (1..=events.len() as u64).collect::<Vec<_>>() {
            v.push(format!(
                "request {id}: audit trail sequences {seqs:?} are not 1..={}",
                events.len()
            ));
        }
        let mut status = None::<String>;
        for e in events {
            let data = &e["data"];
            match e["type"].as_str() {
                Some("cashout_request.created") => {
                    if status.is_some() || data["status"] != "REQUESTED" {
                        v.push(format!("request {id}: created event out of place: {e}"));
                    }
                    status = Some("REQUESTED".into());
                }
                Some("cashout_request.status_update") => {
                    let (from, to) = (
                        data["previous_status"].as_str().unwrap_or_default(),
                        data["status"].as_str().unwrap_or_default(),
                    );
                    if status.as_deref() != Some(from) {
                        v.push(format!(
                            "request {id}: event {} moves from {from}, the trail was at {status:?}",
                            e["sequence"]
                        ));
                    }
                    if !allowed(from, to) {
                        v.push(format!(
                            "request {id}: transition {from} → {to} is not in the status table"
                        ));
                    }
                    status = Some(to.to_owned());
                }
                _ => {}
            }
        }
        if status.as_deref() != Some(actual.as_str()) {
            v.push(format!(
                "request {id}: the trail ends at {status:?}, the request is {actual}"
            ));
        }

        // Nothing moved backwards as the merchant saw it.
        let o = shared.outcomes[n].lock().await;
        for w in o.observed.windows(2) {
            if w[1].0 < w[0].0 || (w[1].0 == w[0].0 && w[1].1 != w[0].1) {
                v.push(format!(
                    "request {id} went from version {} {} to {} {}",
                    w[0].0, w[0].1, w[1].0, w[1].1
                ));
            }
        }
        let trail: HashSet<String> = events
            .iter()
            .filter_map(|e| e["data"]["status"].as_str().map(str::to_owned))
            .collect();
        for (_, st) in &o.observed {
            if !trail.contains(st) {
                v.push(format!(
                    "request {id} was seen {st}, which its audit trail never recorded"
                ));
            }
        }
        drop(o);

        // Webhooks: every subscribed event at every subscribed endpoint, as recorded.
        let got = by_request.get(&id).cloned().unwrap_or_default();
        for ep in ENDPOINTS {
            let here: Vec<&&Delivery> = got.iter().filter(|d| d.endpoint == ep.0).collect();
            if ep.1 != p.merchant_b && !here.is_empty() {
                v.push(format!(
                    "LEAK: {} of request {id} reached another merchant's endpoint {}",
                    here.len(),
                    ep.0
                ));
                continue;
            }
            let mut expected_seqs = Vec::new();
            for e in events {
                let event_type = e["type"].as_str().unwrap_or_default();
                let event_id = e["id"].as_str().unwrap_or_default();
                let seq = e["sequence"].as_u64().unwrap_or_default();
                if !subscribed(&ep, p.merchant_b, event_type) {
                    if here.iter().any(|d| d.webhook_id == event_id) {
                        v.push(format!(
                            "{event_type} {event_id} delivered to {}, which does not subscribe to it",
                            ep.0
                        ));
                    }
                    continue;
                }
                expected_seqs.push(seq);
                let ok: Vec<&&&Delivery> = here
                    .iter()
                    .filter(|d| d.webhook_id == event_id && d.accepted())
                    .collect();
                match ok.first() {
                    None => v.push(format!(
                        "event {event_id} (#{seq} of {id}, {event_type}) never reached {}",
                        ep.0
                    )),
                    Some(d) => {
                        if d.body["sequence"].as_u64() != Some(seq) || d.body["status"] != e["data"]["status"] {
                            v.push(format!(
                                "delivery of {event_id} at {} differs from the audit trail: {}",
                                ep.0, d.body
                            ));
                        }
                    }
                }
            }
            let mut seqs: Vec<u64> = here
                .iter()
                .filter(|d| d.accepted())
                .filter_map(|d| d.body["sequence"].as_u64())
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            if ep.1 == p.merchant_b && seqs != expected_seqs {
                v.push(format!(
                    "request {id} at {}: sequences {seqs:?}, expected {expected_seqs:?}",
                    ep.0
                ));
            }
        }
    }

    // One request per idempotency key: each merchant's listing holds exactly its creates.
    for (merchant_b, (name, key)) in [(false, MERCHANT_A), (true, MERCHANT_B)] {
        let mut listed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/cashout-requests?limit=100&cursor={c}"),
                None => "/v1/cashout-requests?limit=100".to_owned(),
            };
            let page = get_until_answered(&shared.api, &path, key).await;
            listed += page["data"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let planned = shared.plans.iter().filter(|p| p.merchant_b == merchant_b).count();
        if listed != planned {
            v.push(format!("{name} holds {listed} requests for {planned} idempotency keys"));
        }
    }

    let mut seen = HashSet::new();
    let duplicate_deliveries = accepted
        .iter()
        .filter(|d| !seen.insert((d.endpoint.clone(), d.webhook_id.clone())))
        .count();
    ChaosReport {
        backend: config.backend.name().to_owned(),
        requests: shared.plans.len(),
        kills: 0,
        restart_ready_ms: Vec::new(),
        create_retries: 0,
        create_retry_reasons: BTreeMap::new(),
        duplicate_creates: shared.plans.iter().filter(|p| p.duplicate).count(),
        statuses,
        waiting,
        payouts,
        provider_create_attempts: ledger.references.iter().map(|r| u64::from(r.create_attempts)).sum(),
        max_create_attempts_per_reference: ledger.references.iter().map(|r| r.create_attempts).max().unwrap_or(0),
        double_payouts: double.len(),
        provider_notifications: ledger.deliveries.len(),
        events: events_total,
        deliveries_received: deliveries.len(),
        deliveries_refused: deliveries.iter().filter(|d| !d.accepted()).count(),
        duplicate_deliveries,
        replayed_events: 0,
        create_phase_s: 0.0,
        settle_s: 0.0,
        settled: false,
        violations: v,
    }
}

/// No full account number, API key or webhook secret in any log line of the runner.
fn scan_logs(logs: &[PathBuf], plans: &[Plan], secrets: &HashMap<&str, String>) -> Vec<String> {
    let mut secret_words: Vec<String> = vec![
        MERCHANT_A.1.to_owned(),
        MERCHANT_B.1.to_owned(),
        OPERATOR_KEY.to_owned(),
    ];
    secret_words.extend(secrets.values().cloned());
    let accounts: HashSet<&str> = plans.iter().map(|p| p.account.as_str()).collect();
    let mut v = Vec::new();
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            // The "listening" line prints the local keys on stdout, never in the log.
            let leaked_secret = secret_words.iter().any(|s| line.contains(s.as_str()));
            let leaked_account = line
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| accounts.contains(run));
            if leaked_secret || leaked_account {
                v.push(format!(
                    "{}:{}: a secret or a full account number in the log: {}",
                    path.display(),
                    i + 1,
                    line.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    v.truncate(20);
    v
}

impl ChaosReport {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_panics_fails_the_run_with_its_message() {
        let mut clients = vec![
            tokio::spawn(async {}),
            tokio::spawn(async { panic!("request #7: unexpected body") }),
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !clients.iter().all(tokio::task::JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the client tasks never ended");
            tokio::task::yield_now().await;
        }
        let e = reap_finished(&mut clients).await.unwrap_err();
        assert!(
            e.contains("panicked") && e.contains("request #7: unexpected body"),
            "{e}"
        );

        let cancelled = tokio::spawn(std::future::pending::<()>());
        cancelled.abort();
        let e = client_ended(cancelled.await).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert_eq!(client_ended(tokio::spawn(async {}).await), Ok(()));
    }
}
