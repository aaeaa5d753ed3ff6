//! The Lambda footprint: what each of the five functions costs as a Lambda, measured on the
//! release `bootstrap` that cargo-lambda builds (`make lambdas`), run as Lambda runs it — a
//! process that asks a Runtime API for its next event, here a minimal one served by the bench
//! itself — against DynamoDB Local and moto.
//!
//! | figure | how | target |
//! |---|---|---|
//! | bootstrap size | `target/lambda/<bin>/bootstrap` | ≤ 8 MiB |
//! | start to ready | from spawning the process to its first `GET …/invocation/next`, p50 and max of [`STARTS`] starts after a first one (reported apart: it may read the binary from disk) | ≤ 30 ms |
//! | peak RSS under load | `VmHWM` of one process after [`INVOCATIONS`] invocations of real-shaped events | ≤ 32 MiB |
//!
//! The load is the shape of `events/` (the samples `cargo lambda invoke` uses): the API creates a
//! webhook endpoint and then one new cashout per invocation (a fresh `Idempotency-Key` each); the
//! provider-webhooks function verifies and queues the sample D24 and Cascad notifications; the
//! dispatcher takes batches of 10 dispatch tasks of the created requests (each sent to the
//! in-process provider simulator once, then redeliveries); the poller takes batches of 10 on-demand
//! polls and provider-event hints of the dispatched requests, and every 25th invocation the
//! scheduled sweep; the callbacks function takes batches of 5 publish tasks and 5 deliveries to a
//! local receiver. Batches of 10 are the template's `BatchSize`, run concurrently by the function.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::{get, post};
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId};
use cashout_core::ports::{Task, TaskEnvelope};
use cashout_core::provider::ProviderName;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::bench::{BenchError, fail};
use crate::receiver::{Mode, Receiver};
use crate::stats::{Latencies, LatencySummary, ms, round2};
use crate::workload::sim_provider;

/// Starts per function for the start-to-ready figure.
pub const STARTS: usize = 10;
/// Invocations of the one long-lived process per function for the peak RSS figure.
pub const INVOCATIONS: usize = 300;
/// Records per SQS invocation (the template's `BatchSize`).
pub const BATCH: usize = 10;
/// Largest bootstrap, MiB.
pub const TARGET_BOOTSTRAP_MIB: f64 = 8.0;
/// Slowest start to ready, ms.
pub const TARGET_READY_MS: f64 = 30.0;
/// Largest peak RSS, MiB.
pub const TARGET_RSS_MIB: f64 = 32.0;

/// How long a process may take to ask for its first event.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The functions' timeout in the template.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time budget of the load of the API and provider-webhooks (side by side), and of the
/// dispatcher and the poller (one after the other, beside callbacks, which has twice this):
/// the whole footprint run stays within about two minutes on a slow machine. A load cut short is
/// marked so.
const LOAD_BUDGET: Duration = Duration::from_secs(30);
/// The template's `MemorySize`.
const MEMORY_SIZE_MB: u32 = 256;
/// Every this many poller invocations is the scheduled sweep.
const SWEEP_EVERY: usize = 25;
/// The merchant key of the sample API events (`events/api/*.json`).
const SAMPLE_MERCHANT_KEY: &str = "sk_local_merchant";
/// Its merchant.
const SAMPLE_MERCHANT: &str = "merchant_local";
/// The operator key of the sample API events.
const SAMPLE_OPERATOR_KEY: &str = "sk_local_operator";

const API_CREATE: &str = include_str!("../../../events/api/create-cashout.json");
const API_ENDPOINT: &str = include_str!("../../../events/api/create-webhook-endpoint.json");
const D24_NOTIFICATION: &str = include_str!("../../../events/provider-webhooks/d24-notification.json");
const CASCAD_CALLBACK: &str = include_str!("../../../events/provider-webhooks/cascad-callback.json");
const SQS_DISPATCH: &str = include_str!("../../../events/dispatcher/sqs-dispatch.json");
const SQS_POLL: &str = include_str!("../../../events/poller/sqs-poll.json");
const SQS_PROVIDER_EVENT: &str = include_str!("../../../events/poller/sqs-provider-event.json");
const SCHEDULED_SWEEP: &str = include_str!("../../../events/poller/scheduled-sweep.json");
const SQS_DELIVER: &str = include_str!("../../../events/callbacks/sqs-deliver.json");

/// The five functions, as `make lambdas` names their binaries.
pub const FUNCTIONS: [&str; 5] = [
    "cashout-api",
    "cashout-provider-webhooks",
    "cashout-dispatcher",
    "cashout-poller",
    "cashout-callbacks",
];

/// One function's footprint.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionFootprint {
    /// The binary (`cashout-api`, …).
    pub function: String,
    /// Size of `target/lambda/<function>/bootstrap`.
    pub bootstrap_bytes: u64,
    /// The same in MiB (target ≤ 8).
    pub bootstrap_mib: f64,
    /// The first start, ms, not counted below: it may read the binary from disk (the page
    /// cache of a file not run for a while), which the kernel's DAMON reclaim on this kind of
    /// machine makes common. On Lambda the code's load is part of the cold start too, but it comes
    /// from Lambda's own cache, not from this disk.
    pub first_start_ms: f64,
    /// Starts measured after it.
    pub starts: usize,
    /// Spawn to first `GET /2018-06-01/runtime/invocation/next`, median, ms (target ≤ 30).
    pub ready_p50_ms: f64,
    /// The slowest start, ms.
    pub ready_max_ms: f64,
    /// Every measured start, ms, in order.
    pub ready_runs_ms: Vec<f64>,
    /// What the load was.
    pub load: String,
    /// Invocations of the long-lived process.
    pub invocations: u64,
    /// Whether the load stopped at its time budget before all its invocations.
    pub cut_short: bool,
    /// Invocations answered on `…/error` (the handler failed or the event did not parse).
    pub errors: u64,
    /// Invocations answered with an HTTP status ≥ 400, or with every record of the batch failed.
    pub rejected: u64,
    /// SQS records reported in `batchItemFailures`, all invocations together.
    pub failed_records: u64,
    /// The first error or rejection, for the reader.
    pub first_problem: Option<String>,
    /// Invocation round trips through the Runtime API.
    pub invocation: LatencySummary,
    /// `VmHWM` after the load, KiB.
    pub peak_rss_kib: u64,
    /// The same in MiB (target ≤ 32).
    pub peak_rss_mib: f64,
    /// Why the measurement does not count (every invocation failed), if so.
    pub failure: Option<String>,
}

/// The targets the figures are read against.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Targets {
    /// Largest bootstrap, MiB.
    pub bootstrap_mib: f64,
    /// Slowest start to ready, ms.
    pub ready_ms: f64,
    /// Largest peak RSS, MiB.
    pub peak_rss_mib: f64,
}

/// The footprint of every function.
#[derive(Debug, Clone, Serialize)]
pub struct FootprintFigure {
    /// Per function, in [`FUNCTIONS`] order.
    pub functions: Vec<FunctionFootprint>,
    /// The targets.
    pub targets: Targets,
    /// Records per SQS invocation.
    pub batch: usize,
}

impl FootprintFigure {
    /// The functions whose load measurement failed, with why.
    pub fn failures(&self) -> Vec<String> {
        self.functions
            .iter()
            .filter_map(|f| f.failure.as_ref().map(|why| format!("{}: {why}", f.function)))
            .collect()
    }
}

fn mib(bytes: u64) -> f64 {
    round2(bytes as f64 / (1024.0 * 1024.0))
}

/// Measures every function's bootstrap in `target_dir/lambda`: size, start to ready over
/// `starts` starts, and peak RSS over `invocations` invocations, against the emulators named by
/// `CASHOUT_TEST_DYNAMODB_URL` and `CASHOUT_TEST_SQS_URL`.
pub async fn footprint(target_dir: &Path, invocations: usize, starts: usize) -> Result<FootprintFigure, BenchError> {
    let bootstraps = bootstraps(target_dir)?;
    let env = Box::pin(Environment::start()).await?;
    let logs = tempfile::tempdir().map_err(fail)?;

    let mut functions = Vec::new();
    for (name, path) in &bootstraps {
        let bytes = std::fs::metadata(path).map_err(fail)?.len();
        let (mut ready, mut runs) = (Latencies::default(), Vec::new());
        let mut first = Duration::ZERO;
        for i in 0..=starts {
            let log = logs.path().join(format!("{name}-start-{i}.log"));
            let mut instance = Instance::spawn(name, path, &env.vars(name), &log).await?;
            let took = instance.wait_ready().await;
            instance.stop().await;
            let took = took?;
            if i == 0 {
                first = took;
            } else {
                runs.push(ms(took));
                ready.push(took);
            }
        }
        let ready = ready.summary();
        functions.push(FunctionFootprint {
            function: (*name).to_owned(),
            bootstrap_bytes: bytes,
            bootstrap_mib: mib(bytes),
            first_start_ms: ms(first),
            starts,
            ready_p50_ms: ready.p50_ms,
            ready_max_ms: ready.max_ms,
            ready_runs_ms: runs,
            load: String::new(),
            invocations: 0,
            cut_short: false,
            errors: 0,
            rejected: 0,
            failed_records: 0,
            first_problem: None,
            invocation: LatencySummary::default(),
            peak_rss_kib: 0,
            peak_rss_mib: 0.0,
            failure: None,
        });
    }

    // Under load: the API and provider-webhooks first (the API creates the requests the
    // others work on), then the dispatcher and callbacks, then the poller (the requests are at
    // the provider by then).
    let path = |name: &str| {
        bootstraps
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| BenchError(format!("no bootstrap for {name}")))
    };
    let run = |name: &'static str| {
        let (env, log) = (&env, logs.path().join(format!("{name}-load.log")));
        let path = path(name);
        async move {
            let mut instance = Instance::spawn(name, &path?, &env.vars(name), &log).await?;
            instance.wait_ready().await?;
            Ok::<_, BenchError>(instance)
        }
    };

    let budget = || Instant::now() + LOAD_BUDGET;
    let (api, hooks) = tokio::join!(
        async {
            let mut i = run("cashout-api").await?;
            let load = load_api(&mut i, &env, invocations, budget()).await;
            finish(i, load).await
        },
        async {
            let mut i = run("cashout-provider-webhooks").await?;
            let load = load_provider_webhooks(&mut i, invocations, budget()).await;
            finish(i, load).await
        }
    );
    let (
        api,
        Created {
            requests: created,
            endpoint,
        },
    ) = api?;
    let (hooks, _) = hooks?;
    if created.is_empty() {
        return Err(BenchError(format!(
            "the API created no cashout request ({}), so the queue consumers have nothing to work on",
            api.first_problem.clone().unwrap_or_default()
        )));
    }
    let (workers, callbacks) = tokio::join!(
        async {
            let budget = || Instant::now() + LOAD_BUDGET;
            let mut i = run("cashout-dispatcher").await?;
            let load = load_dispatcher(&mut i, &created, invocations, budget()).await;
            let (dispatcher, _) = finish(i, load).await?;
            let mut i = run("cashout-poller").await?;
            let load = load_poller(&mut i, &created, invocations, budget()).await;
            let (poller, _) = finish(i, load).await?;
            Ok::<_, BenchError>((dispatcher, poller))
        },
        async {
            let mut i = run("cashout-callbacks").await?;
            let load = load_callbacks(
                &mut i,
                &created,
                endpoint,
                invocations,
                Instant::now() + 2 * LOAD_BUDGET,
            )
            .await;
            finish(i, load).await
        }
    );
    let (dispatcher, poller) = workers?;
    let (callbacks, _) = callbacks?;

    for loaded in [api, hooks, dispatcher, callbacks, poller] {
        if let Some(f) = functions.iter_mut().find(|f| f.function == loaded.function) {
            f.load = loaded.load;
            f.invocations = loaded.invocations;
            f.cut_short = loaded.cut_short;
            f.errors = loaded.errors;
            f.rejected = loaded.rejected;
            f.failed_records = loaded.failed_records;
            f.first_problem = loaded.first_problem;
            f.invocation = loaded.latencies.summary();
            f.peak_rss_kib = loaded.peak_rss_kib;
            f.peak_rss_mib = round2(loaded.peak_rss_kib as f64 / 1024.0);
            f.failure = loaded.failure;
        }
    }
    env.stop().await;
    Ok(FootprintFigure {
        functions,
        targets: Targets {
            bootstrap_mib: TARGET_BOOTSTRAP_MIB,
            ready_ms: TARGET_READY_MS,
            peak_rss_mib: TARGET_RSS_MIB,
        },
        batch: BATCH,
    })
}

/// Every function's bootstrap, or why not.
fn bootstraps(target_dir: &Path) -> Result<Vec<(&'static str, PathBuf)>, BenchError> {
    let found: Vec<_> = FUNCTIONS
        .iter()
        .map(|name| (*name, target_dir.join("lambda").join(name).join("bootstrap")))
        .collect();
    let missing: Vec<_> = found
        .iter()
        .filter(|(_, p)| !p.is_file())
        .map(|(_, p)| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(BenchError(format!(
            "missing {}: build the Lambda bootstraps first with `make lambdas` (needs cargo-lambda on PATH, e.g. `pip install cargo-lambda`)",
            missing.join(", ")
        )))
    }
}

/// The emulators' resources, the provider simulator and a webhook receiver, and the functions'
/// environment pointing at them.
struct Environment {
    common: Vec<(String, String)>,
    sim: cashout_provider_sim::SimHandle,
    receiver: Receiver,
}

impl Environment {
    async fn start() -> Result<Environment, BenchError> {
        use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
        use cashout_core::ids::MerchantId;
        use cashout_core::ports::{ApiKeyStore, QueueName};
        use cashout_store::aws::queue_variable;

        let crate::bench::EmulatorStack {
            dynamodb_url: ddb_url,
            sqs_url,
            dynamodb,
            created,
            ..
        } = crate::bench::emulator_stack("footprint").await?;

        // The sample events' keys, as `cashout-local` registers them.
        let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
        let store = cashout_store::dynamo::DynamoStore::new(dynamodb, created.table_name.clone(), clock);
        let now = time::OffsetDateTime::now_utc();
        for (key, principal) in [
            (
                SAMPLE_MERCHANT_KEY,
                Principal::Merchant {
                    merchant_id: MerchantId::new(SAMPLE_MERCHANT).map_err(fail)?,
                },
            ),
            (SAMPLE_OPERATOR_KEY, Principal::Operator),
        ] {
            store
                .put_api_key(&ApiKeyRecord {
                    hash: ApiKey::new(key).hash(),
                    principal,
                    label: Some("footprint".into()),
                    created_at: now,
                })
                .await
                .map_err(fail)?;
        }

        let sim = cashout_provider_sim::start(
            cashout_provider_sim::SimConfig::default(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?,
        )
        .await
        .map_err(fail)?;
        let receiver = Receiver::start(Mode::Count, 7).await.map_err(fail)?;

        let mut common: Vec<(String, String)> = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL_DYNAMODB", ddb_url.as_str()),
            ("AWS_ENDPOINT_URL_SQS", sqs_url.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "footprint"),
            ("RUST_LOG", "info"),
            ("CASHOUT_TABLE", created.table_name.as_str()),
            // Nothing listens there: the D24 simulator's notifications are refused at once and
            // the poller's on-demand polls do the work.
            ("CASHOUT_NOTIFICATION_BASE_URL", "http://127.0.0.1:9"),
            ("CASHOUT_ALLOW_PRIVATE_WEBHOOKS", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        common.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), MEMORY_SIZE_MB.to_string()));
        for queue in QueueName::ALL {
            let url = created
                .queue_urls
                .url(queue)
                .ok_or_else(|| BenchError(format!("no {queue} queue was created")))?;
            common.push((queue_variable(queue).to_owned(), url.to_owned()));
        }
        common.push(("CASHOUT_PROVIDERS".into(), providers_json(&sim).to_string()));
        Ok(Environment { common, sim, receiver })
    }

    /// The environment of function `name`.
    fn vars(&self, name: &str) -> Vec<(String, String)> {
        let mut vars = self.common.clone();
        vars.push(("AWS_LAMBDA_FUNCTION_NAME".into(), name.to_owned()));
        vars.push(("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{name}")));
        vars
    }

    async fn stop(self) {
        self.sim.shutdown().await;
    }
}

/// `CASHOUT_PROVIDERS` for the simulator (the settings document of `infra/local.env`).
fn providers_json(sim: &cashout_provider_sim::SimHandle) -> Value {
    use cashout_providers::simulator;
    let d24 = |name: ProviderName, (login, pass, secret): (&str, &str, &str)| json!({ "base_url": sim.base_url(sim_provider(name)), "login": login, "pass": pass, "api_secret": secret });
    let (account, key, secret, public_key) = simulator::CASCAD;
    json!({
        "d24": d24(ProviderName::D24, simulator::D24),
        "onspot": d24(ProviderName::Onspot, simulator::ONSPOT),
        "tupay": d24(ProviderName::Tupay, simulator::TUPAY),
        "cascad": {
            "base_url": sim.base_url(sim_provider(ProviderName::Cascad)), "account_id": account, "api_key": key,
            "callback_secret": secret, "public_key": public_key,
            "services": ["test_usd", "test_eur", "test_gbp", "card", "bank_transfer_zar", "swift_jpy"],
        },
    })
}

/// What a function answered.
#[derive(Debug)]
enum Outcome {
    /// `POST …/response`.
    Response(Bytes),
    /// `POST …/error`.
    Error(Bytes),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

struct RuntimeState {
    arn: String,
    ready: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<String>>,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
}

/// A minimal Lambda Runtime API (`2018-06-01`) for one process: hands out the events sent to
/// it one at a time and collects the answers.
struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<RuntimeState>,
    events: mpsc::Sender<Invocation>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    async fn start(function: &str) -> Result<RuntimeApi, BenchError> {
        let (events, rx) = mpsc::channel(1);
        let state = Arc::new(RuntimeState {
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            ready: watch::Sender::new(None),
            init_error: watch::Sender::new(None),
            next: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the footprint runtime API stopped");
            }
        });
        Ok(RuntimeApi {
            addr,
            state,
            events,
            server,
        })
    }
}

async fn next_event(State(s): State<Arc<RuntimeState>>) -> Result<(HeaderMap, Vec<u8>), StatusCode> {
    s.ready.send_if_modified(|at| {
        if at.is_none() {
            *at = Some(Instant::now());
            true
        } else {
            false
        }
    });
    let invocation = s.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return Err(StatusCode::GONE);
    };
    let deadline = SystemTime::now()
        .checked_add(INVOKE_TIMEOUT)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_millis();
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        deadline / 1000,
        &uuid::Uuid::now_v7().simple().to_string()[..24],
        &uuid::Uuid::now_v7().simple().to_string()[..16],
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation.id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", s.arn.clone()),
        ("lambda-runtime-trace-id", trace),
        ("content-type", "application/json".to_owned()),
    ] {
        let value = HeaderValue::from_str(&value).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        headers.insert(HeaderName::from_static(name), value);
    }
    s.waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(invocation.id, invocation.reply);
    Ok((headers, invocation.event))
}

fn answer(s: &RuntimeState, id: &str, outcome: Outcome) -> StatusCode {
    let waiting = s.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    match waiting {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn response(State(s): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, Outcome::Response(body))
}

async fn error(State(s): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, Outcome::Error(body))
}

async fn init_error(State(s): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    s.init_error
        .send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

/// One bootstrap process with its Runtime API.
struct Instance {
    name: String,
    child: Child,
    spawned: Instant,
    api: RuntimeApi,
    log: PathBuf,
}

impl Instance {
    async fn spawn(
        name: &str,
        bootstrap: &Path,
        vars: &[(String, String)],
        log: &Path,
    ) -> Result<Instance, BenchError> {
        let api = RuntimeApi::start(name).await?;
        let out = std::fs::File::create(log).map_err(fail)?;
        let err = out.try_clone().map_err(fail)?;
        let mut command = tokio::process::Command::new(bootstrap);
        command
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .current_dir(bootstrap.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| BenchError(format!("starting {}: {e}", bootstrap.display())))?;
        Ok(Instance {
            name: name.to_owned(),
            child,
            spawned,
            api,
            log: log.to_owned(),
        })
    }

    /// The end of the process's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Spawn to the first `GET …/next`.
    async fn wait_ready(&mut self) -> Result<Duration, BenchError> {
        let mut ready = self.api.state.ready.subscribe();
        let mut init = self.api.state.init_error.subscribe();
        tokio::select! {
            at = ready.wait_for(Option::is_some) => {
                let at = at.map_err(fail)?.unwrap_or_else(Instant::now);
                Ok(at.duration_since(self.spawned))
            }
            e = init.wait_for(Option::is_some) => {
                let e = e.map_err(fail)?.clone().unwrap_or_default();
                Err(BenchError(format!("{} reported an init error: {e}", self.name)))
            }
            status = self.child.wait() => Err(BenchError(format!(
                "{} exited before asking for an event ({}): {}",
                self.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                self.log_tail()
            ))),
            () = tokio::time::sleep(READY_TIMEOUT) => Err(BenchError(format!(
                "{} did not ask for an event within {READY_TIMEOUT:?}: {}",
                self.name,
                self.log_tail()
            ))),
        }
    }

    /// One invocation: the event in, the answer out.
    async fn invoke(&mut self, event: &Value) -> Result<Outcome, BenchError> {
        let (reply, answered) = oneshot::channel();
        let invocation = Invocation {
            id: uuid::Uuid::now_v7().to_string(),
            event: serde_json::to_vec(event).map_err(fail)?,
            reply,
        };
        self.api
            .events
            .send(invocation)
            .await
            .map_err(|_| BenchError("the runtime API stopped".into()))?;
        tokio::select! {
            outcome = tokio::time::timeout(INVOKE_TIMEOUT, answered) => match outcome {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(_)) => Err(BenchError(format!("{}: the invocation was dropped", self.name))),
                Err(_) => Err(BenchError(format!(
                    "{}: no answer within {INVOKE_TIMEOUT:?}: {}",
                    self.name,
                    self.log_tail()
                ))),
            },
            status = self.child.wait() => Err(BenchError(format!(
                "{} exited during an invocation ({}): {}",
                self.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                self.log_tail()
            ))),
        }
    }

    /// `VmHWM` of the process, KiB.
    fn peak_rss_kib(&self) -> Result<u64, BenchError> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| BenchError(format!("{} has exited", self.name)))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(fail)?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError(format!("no VmHWM in /proc/{pid}/status")))
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What one process did under load.
#[derive(Debug, Default)]
struct Loaded {
    function: String,
    load: String,
    invocations: u64,
    errors: u64,
    rejected: u64,
    failed_records: u64,
    first_problem: Option<String>,
    latencies: Latencies,
    peak_rss_kib: u64,
    failure: Option<String>,
    deadline: Option<Instant>,
    cut_short: bool,
}

impl Loaded {
    fn new(function: &str, load: String, deadline: Instant) -> Loaded {
        Loaded {
            function: function.to_owned(),
            load,
            deadline: Some(deadline),
            ..Loaded::default()
        }
    }

    /// Whether the time budget is spent (then the load stops, marked cut short).
    fn out_of_time(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.cut_short = true;
        }
        self.cut_short
    }

    fn problem(&mut self, what: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            let mut text = what();
            if text.len() > 400 {
                let mut end = 400;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push('…');
            }
            self.first_problem = Some(text);
        }
    }

    /// Invokes `event` and counts the outcome; answers the parsed response when there is one.
    async fn invoke(&mut self, instance: &mut Instance, event: &Value) -> Result<Option<Value>, BenchError> {
        let t = Instant::now();
        let outcome = instance.invoke(event).await?;
        self.latencies.push(t.elapsed());
        self.invocations += 1;
        match outcome {
            Outcome::Error(body) => {
                self.errors += 1;
                self.problem(|| format!("error: {}", String::from_utf8_lossy(&body)));
                Ok(None)
            }
            Outcome::Response(body) => {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Some(status) = value.get("statusCode").and_then(Value::as_u64)
                    && status >= 400
                {
                    self.rejected += 1;
                    self.problem(|| format!("HTTP {status}: {}", value["body"].as_str().unwrap_or_default()));
                }
                if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array)
                    && !failures.is_empty()
                {
                    self.failed_records += failures.len() as u64;
                    let records = event["Records"].as_array().map_or(0, Vec::len);
                    if failures.len() >= records {
                        self.rejected += 1;
                    }
                    self.problem(|| format!("{} of {records} records failed", failures.len()));
                }
                Ok(Some(value))
            }
        }
    }
}

/// Reads the peak RSS, stops the process and decides whether the measurement counts.
async fn finish(
    instance: Instance,
    load: Result<(Loaded, Created), BenchError>,
) -> Result<(Loaded, Created), BenchError> {
    let peak = instance.peak_rss_kib();
    instance.stop().await;
    let (mut loaded, created) = load?;
    loaded.peak_rss_kib = peak?;
    if loaded.errors + loaded.rejected >= loaded.invocations {
        loaded.failure = Some(format!(
            "every one of {} invocations failed ({})",
            loaded.invocations,
            loaded.first_problem.clone().unwrap_or_default()
        ));
    }
    Ok((loaded, created))
}

fn sample(text: &str) -> Result<Value, BenchError> {
    serde_json::from_str(text).map_err(fail)
}

/// An SQS event of `bodies`, in the shape of the sample `template`.
fn sqs_event(template: &Value, bodies: &[String]) -> Value {
    let record = template["Records"][0].clone();
    let records: Vec<Value> = bodies
        .iter()
        .map(|body| {
            let mut r = record.clone();
            r["messageId"] = json!(uuid::Uuid::now_v7().to_string());
            r["body"] = json!(body);
            r["md5OfBody"] = json!("");
            r
        })
        .collect();
    json!({ "Records": records })
}

fn envelope(task: Task) -> String {
    TaskEnvelope::new(task, time::OffsetDateTime::now_utc(), Duration::ZERO).to_json()
}

/// The API's load: one webhook endpoint (to the local receiver), then one new cashout request
/// per invocation. Answers the created requests and the endpoint.
async fn load_api(
    instance: &mut Instance,
    env: &Environment,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        "1 POST /v1/webhook-endpoints, then POST /v1/cashout-requests with a new Idempotency-Key each".into(),
        deadline,
    );
    let mut created = Created::default();
    let mut endpoint = sample(API_ENDPOINT)?;
    endpoint["body"] = json!(json!({ "url": env.receiver.url("footprint"), "event_types": [] }).to_string());
    if let Some(answer) = loaded.invoke(instance, &endpoint).await? {
        created.endpoint = body_of(&answer)["id"].as_str().and_then(|id| id.parse().ok());
    }
    let template = sample(API_CREATE)?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    for i in 1..invocations {
        if loaded.out_of_time() {
            break;
        }
        let mut event = template.clone();
        event["headers"]["idempotency-key"] = json!(format!("footprint-{run}-{i}"));
        if let Some(answer) = loaded.invoke(instance, &event).await?
            && answer["statusCode"] == 201
            && let Some(id) = body_of(&answer)["id"].as_str().and_then(|id| id.parse().ok())
        {
            created.requests.push(id);
        }
    }
    Ok((loaded, created))
}

/// The JSON body of an API Gateway answer.
fn body_of(answer: &Value) -> Value {
    answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

/// What the API created.
#[derive(Debug, Default)]
struct Created {
    requests: Vec<CashoutRequestId>,
    endpoint: Option<EndpointId>,
}

/// Provider-webhooks: the sample D24 notification and Cascad callback, alternately.
async fn load_provider_webhooks(
    instance: &mut Instance,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        "POST /webhooks/d24 and /webhooks/cascad (the signed samples), alternately".into(),
        deadline,
    );
    let events = [sample(D24_NOTIFICATION)?, sample(CASCAD_CALLBACK)?];
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        loaded.invoke(instance, &events[i % 2]).await?;
    }
    Ok((loaded, Created::default()))
}

/// `n` request ids from position `at` of `ids`, round the circle.
fn ids_from(ids: &[CashoutRequestId], at: usize, n: usize) -> impl Iterator<Item = CashoutRequestId> + '_ {
    (0..n).filter_map(move |k| ids.get((at + k) % ids.len().max(1)).copied())
}

/// The dispatcher: batches of dispatch tasks of the created requests.
async fn load_dispatcher(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH} dispatch tasks of the {} created requests (each dispatched once, then redelivered)",
            ids.len()
        ),
        deadline,
    );
    let template = sample(SQS_DISPATCH)?;
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        let bodies: Vec<String> = ids_from(ids, i * BATCH, BATCH)
            .map(|id| envelope(Task::Dispatch { cashout_request_id: id }))
            .collect();
        loaded.invoke(instance, &sqs_event(&template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}

/// The poller: batches of on-demand polls and provider-event hints, and the scheduled sweep.
async fn load_poller(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH}: polls and D24 provider-event hints of the dispatched requests; every {SWEEP_EVERY}th invocation the scheduled sweep"
        ),
        deadline,
    );
    let (poll, hint, sweep) = (sample(SQS_POLL)?, sample(SQS_PROVIDER_EVENT)?, sample(SCHEDULED_SWEEP)?);
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        if i % SWEEP_EVERY == SWEEP_EVERY - 1 {
            loaded.invoke(instance, &sweep).await?;
            continue;
        }
        let (template, bodies): (&Value, Vec<String>) = if i % 2 == 0 {
            (
                &poll,
                ids_from(ids, i * BATCH, BATCH)
                    .map(|id| {
                        envelope(Task::Poll {
                            cashout_request_id: id,
                            due_at: None,
                        })
                    })
                    .collect(),
            )
        } else {
            (
                &hint,
                ids_from(ids, i * BATCH, BATCH)
                    .map(|id| {
                        envelope(Task::ProviderEvent {
                            provider: ProviderName::D24,
                            reference: Some(id),
                            payout_id: None,
                            payout: None,
                        })
                    })
                    .collect(),
            )
        };
        loaded.invoke(instance, &sqs_event(template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}

/// Callbacks: batches of publish tasks (event 1 of a request: created) and deliveries (event 2:
/// `APPROVED`) to the endpoint the API registered.
async fn load_callbacks(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    endpoint: Option<EndpointId>,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let endpoint = endpoint.ok_or_else(|| BenchError("the API registered no webhook endpoint".into()))?;
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH}: publish tasks and signed deliveries to a local receiver, for the {} created requests",
            ids.len()
        ),
        deadline,
    );
    let template = sample(SQS_DELIVER)?;
    let half = BATCH / 2;
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        let mut bodies = Vec::with_capacity(BATCH);
        for id in ids_from(ids, i * half, half) {
            bodies.push(envelope(Task::PublishEvent {
                event_id: EventId::new(id, 1),
            }));
            bodies.push(envelope(Task::Deliver {
                event_id: EventId::new(id, 2),
                endpoint_id: endpoint,
                attempt: 1,
            }));
        }
        loaded.invoke(instance, &sqs_event(&template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}
