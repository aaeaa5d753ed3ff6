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
//!
//! The emulated Runtime API and the process are in [`runtime_api`], what the functions run
//! against in [`environment`], the loads in [`load`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cashout_system::stats::{Latencies, LatencySummary, ms, round2};
use serde::Serialize;

use crate::bench::{BenchError, fail};

mod environment;
mod load;
mod runtime_api;

use environment::Environment;
use load::{Created, Loaded, finish, load_api, load_callbacks, load_dispatcher, load_poller, load_provider_webhooks};
use runtime_api::Instance;

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
/// Time budget of the load of the API and provider-webhooks (side by side), and of the
/// dispatcher and the poller (one after the other, beside callbacks, which has twice this):
/// the whole footprint run stays within about two minutes on a slow machine. A load cut short is
/// marked so.
const LOAD_BUDGET: Duration = Duration::from_secs(30);

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
    let bootstraps = Bootstraps::find(target_dir)?;
    let env = Box::pin(Environment::start()).await?;
    let logs = tempfile::tempdir().map_err(fail)?;
    let launcher = Launcher {
        bootstraps: &bootstraps,
        env: &env,
        logs: logs.path(),
    };

    let mut functions = Vec::new();
    for (name, path) in &bootstraps.0 {
        functions.push(launcher.measure_starts(name, path, starts).await?);
    }
    for loaded in launcher.load_all(invocations).await? {
        if let Some(f) = functions.iter_mut().find(|f| f.function == loaded.function) {
            f.record(loaded);
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

impl FunctionFootprint {
    /// What the function did under load.
    fn record(&mut self, loaded: Loaded) {
        self.load = loaded.load;
        self.invocations = loaded.invocations;
        self.cut_short = loaded.cut_short;
        self.errors = loaded.errors;
        self.rejected = loaded.rejected;
        self.failed_records = loaded.failed_records;
        self.first_problem = loaded.first_problem;
        self.invocation = loaded.latencies.summary();
        self.peak_rss_kib = loaded.peak_rss_kib;
        self.peak_rss_mib = round2(loaded.peak_rss_kib as f64 / 1024.0);
        self.failure = loaded.failure;
    }
}

/// Every function's bootstrap.
struct Bootstraps(Vec<(&'static str, PathBuf)>);

impl Bootstraps {
    /// Every function's bootstrap under `target_dir/lambda`, or why not.
    fn find(target_dir: &Path) -> Result<Bootstraps, BenchError> {
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
            Ok(Bootstraps(found))
        } else {
            Err(BenchError(format!(
                "missing {}: build the Lambda bootstraps first with `make lambdas` (needs cargo-lambda on PATH, e.g. `pip install cargo-lambda`)",
                missing.join(", ")
            )))
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf, BenchError> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| BenchError(format!("no bootstrap for {name}")))
    }
}

/// Starts the functions' processes in the environment, each with a log of its own.
struct Launcher<'a> {
    bootstraps: &'a Bootstraps,
    env: &'a Environment,
    logs: &'a Path,
}

impl Launcher<'_> {
    /// Size and start to ready: a first start, then `starts` measured ones.
    async fn measure_starts(&self, name: &str, path: &Path, starts: usize) -> Result<FunctionFootprint, BenchError> {
        let bytes = std::fs::metadata(path).map_err(fail)?.len();
        let (mut ready, mut runs) = (Latencies::default(), Vec::new());
        let mut first = Duration::ZERO;
        for i in 0..=starts {
            let log = self.logs.join(format!("{name}-start-{i}.log"));
            let mut instance = Instance::spawn(name, path, &self.env.vars(name), &log).await?;
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
        Ok(FunctionFootprint {
            function: name.to_owned(),
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
        })
    }

    /// A process of `name` for a load, ready for its first event.
    async fn ready(&self, name: &'static str) -> Result<Instance, BenchError> {
        let log = self.logs.join(format!("{name}-load.log"));
        let mut instance = Instance::spawn(name, &self.bootstraps.path(name)?, &self.env.vars(name), &log).await?;
        instance.wait_ready().await?;
        Ok(instance)
    }

    /// Every function under load: the API and provider-webhooks first (the API creates the
    /// requests the others work on), then the dispatcher and callbacks, then the poller (the
    /// requests are at the provider by then).
    async fn load_all(&self, invocations: usize) -> Result<[Loaded; 5], BenchError> {
        let (api, hooks, created) = self.load_front(invocations).await?;
        let (dispatcher, poller, callbacks) = self.load_back(&created, invocations).await?;
        Ok([api, hooks, dispatcher, callbacks, poller])
    }

    /// The API and provider-webhooks, side by side; what the API created.
    async fn load_front(&self, invocations: usize) -> Result<(Loaded, Loaded, Created), BenchError> {
        let budget = || Instant::now() + LOAD_BUDGET;
        let (api, hooks) = tokio::join!(
            async {
                let mut i = self.ready("cashout-api").await?;
                let load = load_api(&mut i, self.env, invocations, budget()).await;
                finish(i, load).await
            },
            async {
                let mut i = self.ready("cashout-provider-webhooks").await?;
                let load = load_provider_webhooks(&mut i, invocations, budget()).await;
                finish(i, load).await
            }
        );
        let (api, created) = api?;
        let (hooks, _) = hooks?;
        if created.requests.is_empty() {
            return Err(BenchError(format!(
                "the API created no cashout request ({}), so the queue consumers have nothing to work on",
                api.first_problem.clone().unwrap_or_default()
            )));
        }
        Ok((api, hooks, created))
    }

    /// The dispatcher then the poller, beside callbacks (which has twice the budget).
    async fn load_back(&self, created: &Created, invocations: usize) -> Result<(Loaded, Loaded, Loaded), BenchError> {
        let (workers, callbacks) = tokio::join!(
            async {
                let budget = || Instant::now() + LOAD_BUDGET;
                let mut i = self.ready("cashout-dispatcher").await?;
                let load = load_dispatcher(&mut i, &created.requests, invocations, budget()).await;
                let (dispatcher, _) = finish(i, load).await?;
                let mut i = self.ready("cashout-poller").await?;
                let load = load_poller(&mut i, &created.requests, invocations, budget()).await;
                let (poller, _) = finish(i, load).await?;
                Ok::<_, BenchError>((dispatcher, poller))
            },
            async {
                let mut i = self.ready("cashout-callbacks").await?;
                let load = load_callbacks(
                    &mut i,
                    &created.requests,
                    created.endpoint,
                    invocations,
                    Instant::now() + 2 * LOAD_BUDGET,
                )
                .await;
                finish(i, load).await
            }
        );
        let (dispatcher, poller) = workers?;
        let (callbacks, _) = callbacks?;
        Ok((dispatcher, poller, callbacks))
    }
}
