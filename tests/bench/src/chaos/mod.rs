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
//! - with an [`Outage`] ([`run_with`]; the `chaos` command's default), one provider (D24) goes
//!   fully down while the creates run: every call times out for a stretch (creates with an
//!   unknown outcome, half of them done), then every call fails with a 5xx, then it comes back.
//!   A quarter of the requests (BR/BRL) name no provider: routed at approval to [d24, onspot],
//!   they may fail over; the provider health (`GET /v1/providers/health`) is polled throughout
//!   and every circuit transition recorded;
//! - the merchant retries every create whose answer it did not get (same key, same body), sends
//!   some creates twice, cancels some requests right after creating them, and an operator approves
//!   or leaves requests waiting for review.
//!
//! What is checked, once everything has settled (or the time bound has passed):
//! - no reference has more than one payout at any provider, and no request has more than one
//!   payout over every provider and every attempt's reference (`<id>`, `<id>.<n>` after a
//!   failover); every payout belongs to one of our requests, under one of its provider attempts
//!   (never one it left), and carries its amount;
//! - a request that named its provider never fails over; a PAID request is paid by the provider
//!   of its last attempt, under that attempt's reference;
//! - every request is in the status the provider's truth implies, or legitimately waiting (and
//!   why);
//! - every status event reached every subscribed endpoint at least once, signatures verified with
//!   the official library, sequences without gaps per request, nothing to an endpoint not
//!   subscribed, nothing to another merchant's endpoint;
//! - no request moved backwards (versions observed never decrease; every transition in the audit
//!   trail is in the status table); the audit trail is complete;
//! - one request per idempotency key, whatever the crashes and retries;
//! - no full account number, API key or webhook secret in the runner's logs;
//! - the operator's statement of the run's days (`GET /v1/statements`) says, per currency, what
//!   the ledger says was paid and what was paid then reversed, and line by line per reference
//!   ([`statement`]).
//!
//! One module per step: [`plan`] (what each request does, from the seed), [`merchant`] (the
//! clients and the operator), [`settle`] (reading everything back until it has settled),
//! [`truth`] (what the providers' ledger implies) and [`check`] (the invariants).

// Progress lines go to stderr: this is the body of a command-line harness.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cashout_core::provider::ProviderName;
use cashout_provider_sim::{FaultConfig, Faults, SimConfig, SimHandle};
use cashout_system::client::Api;
use cashout_system::receiver::{Delivery, Mode, Receiver};
use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use cashout_system::stats::round2;
use cashout_system::workload::sim_provider;
use serde::Serialize;
use serde_json::{Value, json};

mod check;
mod merchant;
mod plan;
mod settle;
mod statement;
mod truth;

use check::{Verdict, check, duplicate_deliveries, scan_logs};
use merchant::{Shared, approve_reviews, client_ended, client_loop, reap_finished};
use plan::plan;
use settle::{Settled, settle};
pub use statement::{CurrencyFigures, StatementCheck};
use truth::ENDPOINTS;

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

/// A provider outage during the creates: the provider's every call times out for `timeouts`
/// (a hang of `hang`, then a 504; half of them after the operation), then fails with a 5xx for
/// `errors`, then it answers again with the run's usual faults. It starts once a quarter of the
/// requests have been played.
#[derive(Debug, Clone)]
pub struct Outage {
    pub provider: ProviderName,
    pub timeouts: Duration,
    pub errors: Duration,
    pub hang: Duration,
}

impl Default for Outage {
    /// D24, 10 s of timeouts (2 s hangs), then 15 s of 5xx.
    fn default() -> Self {
        Outage {
            provider: ProviderName::D24,
            timeouts: Duration::from_secs(10),
            errors: Duration::from_secs(15),
            hang: Duration::from_secs(2),
        }
    }
}

/// What the outage phase did and what the provider saw meanwhile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutageReport {
    pub provider: String,
    /// Seconds from the first create to the outage's start.
    pub started_at_s: f64,
    /// Requests played when it started.
    pub started_at_request: usize,
    /// Seconds of timeouts, then of 5xx.
    pub timeouts_s: f64,
    pub errors_s: f64,
    /// Create requests the provider received during the timeout stretch (each one's outcome
    /// unknown to the sender), and payouts created by them (timeouts after the operation).
    pub creates_during_timeouts: u64,
    pub payouts_created_during_timeouts: usize,
    /// Create requests the provider received (and refused with a 5xx) during the error stretch.
    pub creates_during_errors: u64,
}

/// One change of a provider's circuit, as `GET /v1/providers/health` showed it.
#[derive(Debug, Clone, Serialize)]
pub struct CircuitTransition {
    /// Seconds from the first create.
    pub at_s: f64,
    pub provider: String,
    pub from: String,
    pub to: String,
    /// `times_opened` after it.
    pub times_opened: u64,
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
    /// Requests with more than one payout over every provider and attempt reference.
    pub requests_paid_twice: usize,
    /// The most payouts one request has over every provider.
    pub max_payouts_per_request: usize,
    /// Requests that name no provider (routed at approval).
    pub routed_requests: usize,
    /// Requests that left at least one provider.
    pub failed_over: usize,
    /// Provider attempts left, by provider and `failover.kind`.
    pub failovers_by_reason: BTreeMap<String, usize>,
    /// Final statuses of the requests that failed over.
    pub failed_over_statuses: BTreeMap<String, usize>,
    /// Requests by routing (`pinned`, `routed`) and the provider of their last attempt.
    pub final_providers: BTreeMap<String, usize>,
    /// The outage phase, when there was one.
    pub outage: Option<OutageReport>,
    /// The operator's statement of the run's days against the providers' ledger, per currency
    /// and per reference.
    pub statement: Option<StatementCheck>,
    /// Every circuit transition seen polling the provider health (every 500 ms, from the first
    /// create to the end of the settling; a transition within one interval is missed, and
    /// nothing is seen while the runner is down).
    pub circuit_transitions: Vec<CircuitTransition>,
    /// Provider health reads answered / attempted.
    pub health_polls: (u64, u64),
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

impl ChaosReport {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

impl ChaosConfig {
    /// A progress line on stderr, when verbose.
    fn progress(&self, msg: impl Display) {
        if self.verbose {
            eprintln!("chaos[{}]: {msg}", self.backend.name());
        }
    }
}

/// Runs the chaos without a provider outage ([`run_with`]).
pub async fn run(config: ChaosConfig) -> Result<ChaosReport, String> {
    run_with(config, None).await
}

/// Runs the chaos, with `outage` during the creates when given, and returns its report
/// (violations included); `Err` when it could not run.
pub async fn run_with(config: ChaosConfig, outage: Option<Outage>) -> Result<ChaosReport, String> {
    std::fs::create_dir_all(&config.work_dir).map_err(|e| e.to_string())?;
    let World {
        sim,
        receiver,
        mut runners,
        api,
        secrets,
    } = start_world(&config).await?;
    let shared = Arc::new(Shared::new(api, plan(&config), config.verbose));

    // Creates, with the kills spread over them and the outage among them; the provider health
    // polled until the checks.
    let started = Instant::now();
    let first_day = time::OffsetDateTime::now_utc().date();
    let (stop_polling, health) = poll_health(shared.api.clone(), started);
    let (played, outage_report) = tokio::join!(
        play_creates(&shared, &config, &mut runners),
        outage_phase(&shared, &sim, &config, outage.as_ref(), started)
    );
    if let Err(e) = played {
        let _ = stop_polling.send(true);
        return Err(e);
    }
    let create_phase = started.elapsed();
    config.progress(format!("{} requests created in {create_phase:?}", config.requests));

    // The operator reviews; the last kill hits while the work is in flight.
    approve_reviews(&shared).await;
    if config.kills > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        config.progress("kill -9 with the work in flight");
        runners.restart()?;
    }

    let settled = settle(&shared, &sim, &receiver, &config).await;
    let _ = stop_polling.send(true);
    let (transitions, polls) = health.await.unwrap_or_default();
    let ledger = sim.ledger();
    let deliveries = receiver.log();
    let verdict = check(&shared, &settled.snapshots, &ledger, &deliveries).await;
    let statement = statement::check_statement(&shared.api, first_day, &ledger).await;
    let mut report = report(&config, &shared, verdict, &ledger, &deliveries);
    report.violations.extend(statement.violations());
    report.statement = Some(statement);
    report.violations.extend(
        shared
            .violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..),
    );
    report
        .violations
        .extend(scan_logs(&runners.logs, &shared.plans, &secrets));
    if !settled.settled {
        report
            .violations
            .push(not_settled(&shared, &settled, config.settle_timeout));
    }
    report.kills = runners.restart_ready_ms.len();
    report.restart_ready_ms = std::mem::take(&mut runners.restart_ready_ms);
    report.create_phase_s = round2(create_phase.as_secs_f64());
    report.settle_s = round2(settled.elapsed.as_secs_f64());
    report.settled = settled.settled;
    report.replayed_events = settled.replayed;
    report.outage = outage_report;
    report.circuit_transitions = transitions;
    report.health_polls = polls;
    runners.stop();
    sim.shutdown().await;
    Ok(report)
}

/// The simulators, the receiver, the runner and the merchants' endpoints, ready for the run.
struct World {
    /// The providers, outside the runner: their ledger is the ground truth across kills.
    sim: SimHandle,
    receiver: Receiver,
    runners: Runners,
    /// The merchants' client of the runner (its address is fixed across restarts).
    api: Api,
    /// Each endpoint's signing secret.
    secrets: HashMap<&'static str, String>,
}

/// Starts the faulty simulators, the refusing receiver and the runner; registers each merchant's
/// endpoints.
async fn start_world(config: &ChaosConfig) -> Result<World, String> {
    let sim = faulty_simulators(config).await?;
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
        simulators: Simulators::External { url: sim.url() },
        backend: config.backend.clone(),
        operator_key: OPERATOR_KEY.into(),
        rust_log: config.rust_log.clone(),
        log_dir: Some(config.work_dir.clone()),
        extra_args: Vec::new(),
        env: Vec::new(),
    };
    // Merchant B's key is registered by a first start (keys persist in the store), then every
    // start is merchant A's.
    let first = spec.start(MERCHANT_B.0, MERCHANT_B.1, 0)?;
    let api = Api::new(&first.base);
    let mut secrets = HashMap::new();
    register_endpoints(&api, &receiver, true, &mut secrets).await?;
    first.terminate()?;
    let runner = spec.start(MERCHANT_A.0, MERCHANT_A.1, 1)?;
    register_endpoints(&api, &receiver, false, &mut secrets).await?;
    for (name, secret) in &secrets {
        receiver.set_secret(name, secret);
    }
    config.progress(format!(
        "runner on {} ({}), simulators on {}, receiver refusing {} %",
        runner.base,
        config.backend.name(),
        sim.url(),
        config.receiver_fail_percent
    ));
    let mut logs = vec![config.work_dir.join("runner-0.log")];
    logs.extend(runner.log.clone());
    Ok(World {
        sim,
        receiver,
        runners: Runners {
            spec,
            current: Some(runner),
            generation: 2,
            restart_ready_ms: Vec::new(),
            logs,
        },
        api,
        secrets,
    })
}

/// The providers, outside the runner (their ledger is the ground truth across kills), failing
/// as the module doc says.
async fn faulty_simulators(config: &ChaosConfig) -> Result<SimHandle, String> {
    cashout_provider_sim::start(
        SimConfig {
            seed: config.seed,
            time_scale: config.time_scale,
            faults: Faults::all(usual_faults()),
            ..SimConfig::default()
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())
}

/// The faults every provider has throughout the run (outside an outage).
fn usual_faults() -> FaultConfig {
    FaultConfig {
        error_before: 10,
        error_after: 5,
        timeout: 10,
        rate_limit: 5,
        hang_ms: 1500,
        notify_duplicate: 20,
        notify_reorder: 20,
        ..FaultConfig::default()
    }
}

/// The outage, once a quarter of the requests have been played (or all of them): timeouts, then
/// 5xx, then the usual faults again. The ledger is read around each stretch to count the creates
/// the provider received during it.
async fn outage_phase(
    shared: &Shared,
    sim: &SimHandle,
    config: &ChaosConfig,
    outage: Option<&Outage>,
    started: Instant,
) -> Option<OutageReport> {
    let outage = outage?;
    let at = shared.plans.len() / 4;
    while shared.created.load(Ordering::Relaxed) < at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let provider = sim_provider(outage.provider);
    let creates_at = |ledger: &cashout_provider_sim::Ledger| -> (u64, usize) {
        (
            ledger
                .references
                .iter()
                .filter(|r| r.provider == provider)
                .map(|r| u64::from(r.create_attempts))
                .sum(),
            ledger.payouts.iter().filter(|p| p.provider == provider).count(),
        )
    };
    let mut report = OutageReport {
        provider: outage.provider.to_string(),
        started_at_s: round2(started.elapsed().as_secs_f64()),
        started_at_request: shared.created.load(Ordering::Relaxed),
        timeouts_s: outage.timeouts.as_secs_f64(),
        errors_s: outage.errors.as_secs_f64(),
        ..OutageReport::default()
    };
    let usual = usual_faults();
    let quiet = FaultConfig {
        error_before: 0,
        error_after: 0,
        timeout: 0,
        rate_limit: 0,
        ..usual.clone()
    };
    let before = creates_at(&sim.ledger());
    config.progress(format!(
        "OUTAGE of {}: every call times out for {:?}",
        outage.provider, outage.timeouts
    ));
    sim.set_faults(
        provider,
        FaultConfig {
            // Creates only: a lookup that times out ends the attempt before its create (dispatch
            // looks up first), so with lookups timing out too no create would ever be sent.
            timeout: 100,
            creates_only: true,
            hang_ms: u64::try_from(outage.hang.as_millis()).unwrap_or(u64::MAX),
            ..quiet.clone()
        },
    );
    tokio::time::sleep(outage.timeouts).await;
    config.progress(format!(
        "OUTAGE of {}: every call fails with a 5xx for {:?}",
        outage.provider, outage.errors
    ));
    sim.set_faults(
        provider,
        FaultConfig {
            error_before: 100,
            ..quiet
        },
    );
    // Creates that arrived during the timeouts are still hanging: wait them out before counting.
    tokio::time::sleep(outage.hang + Duration::from_millis(200)).await;
    let middle = creates_at(&sim.ledger());
    tokio::time::sleep(outage.errors.saturating_sub(outage.hang + Duration::from_millis(200))).await;
    let after = creates_at(&sim.ledger());
    sim.set_faults(provider, usual);
    config.progress(format!("OUTAGE of {} over: the usual faults again", outage.provider));
    report.creates_during_timeouts = middle.0 - before.0;
    report.payouts_created_during_timeouts = middle.1 - before.1;
    report.creates_during_errors = after.0 - middle.0;
    Some(report)
}

/// The circuit transitions seen, and the health reads answered / attempted.
type HealthLog = (Vec<CircuitTransition>, (u64, u64));

/// Polls `GET /v1/providers/health` every 500 ms until told to stop; returns every circuit
/// transition seen and the polls answered / attempted.
fn poll_health(api: Api, started: Instant) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<HealthLog>) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut states: HashMap<String, String> = HashMap::new();
        let mut transitions = Vec::new();
        let (mut answered, mut asked) = (0u64, 0u64);
        while !*stopped.borrow() {
            asked += 1;
            let (code, body) =
                tokio::time::timeout(Duration::from_secs(2), api.get("/v1/providers/health", OPERATOR_KEY))
                    .await
                    .unwrap_or((0, Value::Null));
            if code == 200 {
                answered += 1;
                for h in body["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    let provider = h["provider"].as_str().unwrap_or_default().to_owned();
                    let state = h["state"].as_str().unwrap_or_default().to_owned();
                    let from = states.insert(provider.clone(), state.clone());
                    // The first read is a starting state, not a transition (unless not closed).
                    let from = match from {
                        Some(f) if f == state => continue,
                        Some(f) => f,
                        None if state == "closed" => continue,
                        None => "closed".to_owned(),
                    };
                    transitions.push(CircuitTransition {
                        at_s: round2(started.elapsed().as_secs_f64()),
                        provider,
                        from,
                        to: state,
                        times_opened: h["times_opened"].as_u64().unwrap_or_default(),
                    });
                }
            }
            // A dropped sender (the run ended early) stops the polling too.
            if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(500), stopped.changed()).await {
                break;
            }
        }
        (transitions, (answered, asked))
    });
    (stop, task)
}

/// Registers the endpoints of merchant B (or A) at the receiver; keeps their secrets.
async fn register_endpoints(
    api: &Api,
    receiver: &Receiver,
    merchant_b: bool,
    secrets: &mut HashMap<&'static str, String>,
) -> Result<(), String> {
    let key = if merchant_b { MERCHANT_B.1 } else { MERCHANT_A.1 };
    for ep in ENDPOINTS.iter().filter(|e| e.1 == merchant_b) {
        let (_, secret) = api.register_endpoint(key, &receiver.url(ep.0), ep.2).await?;
        secrets.insert(ep.0, secret);
    }
    Ok(())
}

/// The runner across its restarts (always merchant A's start).
struct Runners {
    spec: RunnerSpec,
    current: Option<Runner>,
    /// Of the next start (its log is `runner-{generation}.log`).
    generation: usize,
    /// Start to ready of each restart, ms.
    restart_ready_ms: Vec<u64>,
    /// Every start's log.
    logs: Vec<PathBuf>,
}

impl Runners {
    /// `kill -9`, and a start on the same data and address.
    fn restart(&mut self) -> Result<(), String> {
        if let Some(r) = self.current.take() {
            r.kill9();
        }
        let r = self.spec.start(MERCHANT_A.0, MERCHANT_A.1, self.generation)?;
        self.generation += 1;
        self.restart_ready_ms.push(r.ready_after.as_millis() as u64);
        self.logs.extend(r.log.clone());
        self.current = Some(r);
        Ok(())
    }

    /// SIGTERM to the running one.
    fn stop(&mut self) {
        if let Some(r) = self.current.take() {
            let _ = r.terminate();
        }
    }
}

/// The merchants' clients play every planned request; all kills but the last are spread over
/// the creates. `Err` when a client task died (its requests were never played).
async fn play_creates(shared: &Arc<Shared>, config: &ChaosConfig, runners: &mut Runners) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients: Vec<_> = (0..config.clients)
        .map(|_| tokio::spawn(client_loop(shared.clone(), next.clone())))
        .collect();
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
        config.progress(format!("kill -9 at {at} requests"));
        runners.restart()?;
    }
    while !clients.is_empty() {
        if let Err(e) = client_ended(clients.remove(0).await) {
            clients.iter().for_each(tokio::task::JoinHandle::abort);
            return Err(e);
        }
    }
    Ok(())
}

/// The report's figures, from the checks, the ledger and the receiver's log (the run's timings
/// and kills are filled in by [`run`]).
fn report(
    config: &ChaosConfig,
    shared: &Shared,
    verdict: Verdict,
    ledger: &cashout_provider_sim::Ledger,
    deliveries: &[Delivery],
) -> ChaosReport {
    ChaosReport {
        backend: config.backend.name().to_owned(),
        requests: shared.plans.len(),
        kills: 0,
        restart_ready_ms: Vec::new(),
        create_retries: shared.create_retries.load(Ordering::Relaxed),
        create_retry_reasons: shared
            .retry_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        duplicate_creates: shared.plans.iter().filter(|p| p.duplicate).count(),
        statuses: verdict.statuses,
        waiting: verdict.waiting,
        payouts: verdict.payouts,
        provider_create_attempts: ledger.references.iter().map(|r| u64::from(r.create_attempts)).sum(),
        max_create_attempts_per_reference: ledger.references.iter().map(|r| r.create_attempts).max().unwrap_or(0),
        double_payouts: verdict.double_payouts,
        requests_paid_twice: verdict.requests_paid_twice,
        max_payouts_per_request: verdict.max_payouts_per_request,
        routed_requests: shared.plans.iter().filter(|p| !p.pinned).count(),
        failed_over: verdict.failed_over,
        failovers_by_reason: verdict.failovers_by_reason,
        failed_over_statuses: verdict.failed_over_statuses,
        final_providers: verdict.final_providers,
        outage: None,
        statement: None,
        circuit_transitions: Vec::new(),
        health_polls: (0, 0),
        provider_notifications: ledger.deliveries.len(),
        events: verdict.events,
        deliveries_received: deliveries.len(),
        deliveries_refused: deliveries.iter().filter(|d| !d.accepted()).count(),
        duplicate_deliveries: duplicate_deliveries(deliveries),
        replayed_events: 0,
        create_phase_s: 0.0,
        settle_s: 0.0,
        settled: false,
        violations: verdict.violations,
    }
}

/// The violation of a run that did not settle: how many requests, and the first 20 of them.
fn not_settled(shared: &Shared, settled: &Settled, limit: Duration) -> String {
    let stuck: Vec<String> = (0..shared.plans.len())
        .filter(|n| !settled.complete.contains(n))
        .take(20)
        .map(|n| {
            let s = settled.snapshots.get(&n);
            format!(
                "#{n} {:?}/{:?} {} ({})",
                shared.plans[n].provider,
                shared.plans[n].trigger,
                s.map(|s| s.request["id"].to_string()).unwrap_or_default(),
                s.map(|s| s.request["status"].to_string()).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "not settled after {limit:?}: {} requests, e.g. {}",
        shared.plans.len() - settled.complete.len(),
        stuck.join(", ")
    )
}
