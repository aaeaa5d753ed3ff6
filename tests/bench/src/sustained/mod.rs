//! The sustained system scenario: cashout as a user runs it, loaded from outside.
//!
//! `cashout-local` (release build) runs as its own process with every worker and the sweep; the
//! provider simulators run outside it, in this process (time scale 1,000, so a payout settles in
//! milliseconds; no state file), as a real provider is another machine; one webhook endpoint
//! points at a receiver in this process that answers 204 at once. From this process,
//! `connections` clients create cashout requests back to back (each a D24 request that ends
//! `PAID`, so each accepted create owes four webhooks: created, `APPROVED`, `PENDING_PAYMENT`,
//! `PAID`): a warm-up, the measured window, then no load while the backlog drains.
//!
//! Beside it, taken in the same run on the same disk and the same receiver: the embedded store's
//! durable-write ceiling (concurrent creates straight into a `SqliteStore`, group-committed, and
//! bare `fdatasync`s of one file) and bare POSTs to the receiver.
//!
//! A `429` from the API (backpressure) is counted as refused and its client waits the
//! `Retry-After` (at most 1 s) before its next create, as a well-behaved merchant would.
//!
//! The receiver is in [`sink`], the creating clients and the drain in [`load`], the ceilings in
//! [`ceilings`]; this module runs them in order and turns what they counted into the figure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use cashout_provider_sim::{SimConfig, SimHandle};
use cashout_system::client::Api;
use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use cashout_system::stats::{Latencies, LatencySummary, ms, per_second, ratio, round2};
use serde::Serialize;

use crate::bench::{BenchError, fail};

mod ceilings;
mod load;
mod sink;

use load::{Drained, Load};
use sink::{Sink, SinkServer};

/// Webhooks each accepted create owes (created, APPROVED, PENDING_PAYMENT, PAID).
pub const WEBHOOKS_PER_CREATE: u64 = 4;
const MERCHANT: &str = "merchant_sustained";
const MERCHANT_KEY: &str = "sk_sustained_merchant";
const OPERATOR_KEY: &str = "sk_sustained_operator";

/// How the scenario runs.
#[derive(Debug, Clone)]
pub struct SustainedOptions {
    /// The `cashout-local` binary.
    pub binary: PathBuf,
    /// Concurrent creating clients.
    pub connections: usize,
    /// Load before the window (not measured).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// The longest wait, after the load stops, for every owed webhook.
    pub drain: Duration,
    /// Where the runner's log goes.
    pub log_dir: PathBuf,
    /// `cashout-local --schedule` (`local`: polls after 1 s and the reversal watch every 10 s for
    /// a minute, as a user's run; `production`: the deployed schedule).
    pub schedule: String,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    /// Seconds since the load started.
    pub t: u64,
    /// Creates answered 201 in that second.
    pub creates: u64,
    /// Creates answered 429.
    pub refused: u64,
    /// Webhooks received.
    pub deliveries: u64,
}

/// The durable-write ceiling of the embedded store on this disk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StoreCeiling {
    /// `fdatasync`s per second of one file from one thread (the disk's flush rate).
    pub fsyncs_per_second: f64,
    /// Request creates per second straight into the store from `connections` tasks (one
    /// transaction each; the writer commits them in groups).
    pub creates_per_second: f64,
}

/// The scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SustainedFigure {
    /// Creating clients.
    pub connections: usize,
    /// Warm-up, window and drain limit, seconds.
    pub warmup_s: u64,
    /// The measured window.
    pub window_s: u64,
    /// The longest drain wait.
    pub drain_limit_s: u64,
    /// Creates answered 201 per second in the window.
    pub creates_per_second: f64,
    /// Creates answered 429 per second in the window.
    pub refused_per_second: f64,
    /// Creates that failed otherwise (transport, 5xx), whole run.
    pub create_errors: u64,
    /// Latency of the creates answered 201 in the window.
    pub create_latency: LatencySummary,
    /// 90th percentile of the same.
    pub create_p90_ms: f64,
    /// Webhooks received per second in the window.
    pub deliveries_per_second_window: f64,
    /// Webhooks received per second from the first create to the last webhook (or the end of
    /// the drain limit).
    pub deliveries_per_second_run: f64,
    /// Creates accepted, whole run.
    pub accepted: u64,
    /// Webhooks owed (4 per accepted create) and received.
    pub owed: u64,
    /// Received.
    pub delivered: u64,
    /// Owed minus received when the window ends.
    pub backlog_at_window_end: u64,
    /// Owed minus received when the drain ends.
    pub backlog_after_drain: u64,
    /// Seconds from the end of the load to the last owed webhook (`None`: not within the limit).
    pub drained_after_s: Option<f64>,
    /// From the create call to its `PAID` webhook, every accepted create.
    pub create_to_paid: LatencySummary,
    /// 90th percentile of the same.
    pub create_to_paid_p90_ms: f64,
    /// Deliveries/s in the window's first and last minute, and last / first (windows of 2
    /// minutes or more; the no-decay figure).
    pub first_minute_deliveries_per_second: Option<f64>,
    /// See above.
    pub last_minute_deliveries_per_second: Option<f64>,
    /// See above.
    pub last_over_first: Option<f64>,
    /// Deliveries/s in the window's second minute, and last / second (windows of 3 minutes or
    /// more): on the local schedule the first minute carries no reversal-watch checks yet (a
    /// `PAID` request is checked every 10 s for its first minute), so the second minute is the
    /// first one in steady state.
    pub second_minute_deliveries_per_second: Option<f64>,
    /// See above.
    pub last_over_second: Option<f64>,
    /// The store's ceiling, same run.
    pub store_ceiling: StoreCeiling,
    /// Bare POSTs per second to the same receiver from 32 clients, same run.
    pub bare_posts_per_second: f64,
    /// deliveries/s in the window over bare POSTs/s.
    pub deliveries_over_bare: f64,
    /// Every second of the run.
    pub series: Vec<Second>,
    /// Create → PAID latencies in ms, a sorted sample of at most 2,000 (for the plot).
    pub create_to_paid_sample_ms: Vec<f64>,
}

/// Runs the scenario.
pub async fn sustained(options: &SustainedOptions) -> Result<SustainedFigure, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let store_ceiling = ceilings::store_ceiling(dir.path(), options.connections).await?;

    let seconds = (options.warmup + options.window + options.drain).as_secs() as usize + 5;
    let receiver = SinkServer::start(seconds).await?;
    let bare_posts_per_second = ceilings::bare_posts(&receiver.url("/bare"), Duration::from_secs(3)).await;

    std::fs::create_dir_all(&options.log_dir).map_err(fail)?;
    let (runner, sim) = start_runner(options, dir.path()).await?;
    let api = Api::new(&runner.base);
    api.register_endpoint(MERCHANT_KEY, &receiver.url("/hook"), &[])
        .await
        .map_err(fail)?;

    let load = Arc::new(Load::new(seconds));
    let _ = receiver.sink.start.set(load.start);
    let drained = load::run(&api, &load, &receiver, options).await;
    drop(runner);
    receiver.stop();
    sim.shutdown().await;

    let measured = Measured {
        options,
        seconds,
        load: &load,
        sink: &receiver.sink,
        drained,
    };
    Ok(measured.figure(store_ceiling, bare_posts_per_second))
}

/// The simulators (time scale 1,000, outside the runner) and the runner on its own data, with
/// the schedule asked for.
async fn start_runner(options: &SustainedOptions, dir: &Path) -> Result<(Runner, SimHandle), BenchError> {
    let sim = cashout_provider_sim::start(
        SimConfig {
            time_scale: 1000,
            ..SimConfig::default()
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?,
    )
    .await
    .map_err(fail)?;
    let spec = RunnerSpec {
        binary: options.binary.clone(),
        data_dir: dir.join("data"),
        listen: free_addr().map_err(fail)?,
        simulators: Simulators::External { url: sim.url() },
        backend: Backend::Embedded,
        operator_key: OPERATOR_KEY.into(),
        rust_log: std::env::var("SUSTAINED_RUST_LOG").unwrap_or_else(|_| "info".into()),
        log_dir: Some(options.log_dir.clone()),
        extra_args: vec!["--schedule".into(), options.schedule.clone()],
        env: Vec::new(),
    };
    let runner = spec.start(MERCHANT, MERCHANT_KEY, 0).map_err(BenchError)?;
    Ok((runner, sim))
}

/// What a run counted, to be read as the figure.
struct Measured<'a> {
    options: &'a SustainedOptions,
    /// Seconds counted.
    seconds: usize,
    load: &'a Load,
    sink: &'a Sink,
    drained: Drained,
}

impl Measured<'_> {
    fn load_end(&self) -> Instant {
        self.load.start + self.options.warmup + self.options.window
    }

    /// The sum of the window's seconds of `v`.
    fn in_window(&self, v: &[AtomicU64]) -> u64 {
        v.iter()
            .skip(self.options.warmup.as_secs() as usize)
            .take(self.options.window.as_secs() as usize)
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn figure(&self, store_ceiling: StoreCeiling, bare_posts_per_second: f64) -> SustainedFigure {
        let (options, load, drained) = (self.options, self.load, &self.drained);
        let window = options.window;
        let (create_latency, to_paid) = self.latencies();
        let series = self.series();
        let Minutes { first, second, last } = minutes(&series, options);
        let deliveries_per_second_window = per_second(self.in_window(&self.sink.per_second), window);
        SustainedFigure {
            connections: options.connections,
            warmup_s: options.warmup.as_secs(),
            window_s: window.as_secs(),
            drain_limit_s: options.drain.as_secs(),
            creates_per_second: per_second(self.in_window(&load.per_second_created), window),
            refused_per_second: per_second(self.in_window(&load.per_second_refused), window),
            create_errors: load.errors.load(Ordering::Relaxed),
            create_latency: create_latency.summary(),
            create_p90_ms: ms(create_latency.percentile(90.0)),
            deliveries_per_second_window,
            deliveries_per_second_run: per_second(drained.delivered, self.drained.run_end.duration_since(load.start)),
            accepted: load.accepted.load(Ordering::Relaxed),
            owed: drained.owed,
            delivered: drained.delivered,
            backlog_at_window_end: drained.backlog_at_window_end,
            backlog_after_drain: drained.owed.saturating_sub(drained.delivered),
            drained_after_s: drained
                .drained_at
                .map(|d| round2(d.duration_since(self.load_end()).as_secs_f64())),
            create_to_paid: to_paid.summary(),
            create_to_paid_p90_ms: ms(to_paid.percentile(90.0)),
            first_minute_deliveries_per_second: first,
            last_minute_deliveries_per_second: last,
            last_over_first: first.zip(last).map(|(f, l)| ratio(l, f)),
            second_minute_deliveries_per_second: second,
            last_over_second: second.zip(last).map(|(s, l)| ratio(l, s)),
            store_ceiling,
            bare_posts_per_second,
            deliveries_over_bare: ratio(deliveries_per_second_window, bare_posts_per_second),
            series,
            create_to_paid_sample_ms: to_paid.sorted_sample_ms(2000),
        }
    }

    /// Latency of the creates answered in the window, and from each create to its `PAID`
    /// webhook.
    fn latencies(&self) -> (Latencies, Latencies) {
        let (window_start, load_end) = (self.load.start + self.options.warmup, self.load_end());
        let mut create_latency = Latencies::default();
        let mut created_at = HashMap::new();
        for (at, latency, id) in self.load.created.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            if *at >= window_start && *at < load_end {
                create_latency.push(*latency);
            }
            created_at.insert(id.clone(), at.checked_sub(*latency).unwrap_or(*at));
        }
        let mut to_paid = Latencies::default();
        for (id, at) in self.sink.paid.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            if let Some(t) = created_at.get(id) {
                to_paid.push(at.saturating_duration_since(*t));
            }
        }
        (create_latency, to_paid)
    }

    /// Every second of the run, to its end.
    fn series(&self) -> Vec<Second> {
        let (load, sink) = (self.load, self.sink);
        let last = self.drained.run_end.duration_since(load.start).as_secs() as usize + 1;
        (0..self.seconds)
            .map(|t| Second {
                t: t as u64,
                creates: load.per_second_created[t].load(Ordering::Relaxed),
                refused: load.per_second_refused[t].load(Ordering::Relaxed),
                deliveries: sink.per_second[t].load(Ordering::Relaxed),
            })
            .take_while(|s| (s.t as usize) < last)
            .collect()
    }
}

/// Deliveries/s in minutes of the window.
struct Minutes {
    /// The first (windows of 2 minutes or more).
    first: Option<f64>,
    /// The second (windows of 3 minutes or more).
    second: Option<f64>,
    /// The last (windows of 2 minutes or more).
    last: Option<f64>,
}

fn minutes(series: &[Second], options: &SustainedOptions) -> Minutes {
    let minute = |from: usize| -> f64 {
        round2(series.iter().skip(from).take(60).map(|s| s.deliveries).sum::<u64>() as f64 / 60.0)
    };
    let (w0, window) = (options.warmup.as_secs() as usize, options.window.as_secs() as usize);
    let at_least = |seconds: usize| window >= seconds;
    Minutes {
        first: at_least(120).then(|| minute(w0)),
        second: at_least(180).then(|| minute(w0 + 60)),
        last: at_least(120).then(|| minute(w0 + window - 60)),
    }
}
