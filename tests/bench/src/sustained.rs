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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use cashout_core::provider::ProviderName;
use serde::Serialize;

use crate::bench::{BenchError, fail};
use cashout_system::client::{Api, with_own_invoices};
use cashout_system::runner::{Backend, RunnerSpec, Simulators, free_addr};
use cashout_system::stats::{Latencies, LatencySummary, per_second, ratio, round2};
use cashout_system::workload::{Trigger, account, body};

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

/// The receiver: counts per second from the start of the load, and the arrival of each
/// request's `PAID` webhook.
struct Sink {
    start: std::sync::OnceLock<Instant>,
    per_second: Vec<AtomicU64>,
    total: AtomicU64,
    paid: Mutex<Vec<(String, Instant)>>,
}

#[derive(serde::Deserialize)]
struct Hook<'a> {
    #[serde(borrow)]
    cashout_request_id: Option<&'a str>,
    #[serde(borrow)]
    status: Option<&'a str>,
}

async fn sink(State(s): State<Arc<Sink>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    if let Some(start) = s.start.get()
        && let Some(c) = s.per_second.get(now.duration_since(*start).as_secs() as usize)
    {
        c.fetch_add(1, Ordering::Relaxed);
    }
    s.total.fetch_add(1, Ordering::Relaxed);
    if let Ok(hook) = serde_json::from_slice::<Hook<'_>>(&body)
        && hook.status == Some("PAID")
        && let Some(id) = hook.cashout_request_id
    {
        s.paid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((id.to_owned(), now));
    }
    StatusCode::NO_CONTENT
}

async fn bare(_body: Bytes) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// What the creating clients saw.
struct Load {
    start: Instant,
    per_second_created: Vec<AtomicU64>,
    per_second_refused: Vec<AtomicU64>,
    accepted: AtomicU64,
    errors: AtomicU64,
    /// (answered at, latency, id) of every 201.
    created: Mutex<Vec<(Instant, Duration, String)>>,
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn bump(counters: &[AtomicU64], start: Instant, at: Instant) {
    if let Some(c) = counters.get(at.duration_since(start).as_secs() as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the scenario.
pub async fn sustained(options: &SustainedOptions) -> Result<SustainedFigure, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let store_ceiling = store_ceiling(dir.path(), options.connections).await?;

    let seconds = (options.warmup + options.window + options.drain).as_secs() as usize + 5;
    let sink_state = Arc::new(Sink {
        start: std::sync::OnceLock::new(),
        per_second: counters(seconds),
        total: AtomicU64::new(0),
        paid: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
    let receiver_addr = listener.local_addr().map_err(fail)?;
    let app = Router::new()
        .route("/hook", post(sink))
        .route("/bare", post(bare))
        .with_state(sink_state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bare_posts_per_second = bare_posts(&format!("http://{receiver_addr}/bare"), Duration::from_secs(3)).await;

    std::fs::create_dir_all(&options.log_dir).map_err(fail)?;
    let sim = cashout_provider_sim::start(
        cashout_provider_sim::SimConfig {
            time_scale: 1000,
            ..cashout_provider_sim::SimConfig::default()
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?,
    )
    .await
    .map_err(fail)?;
    let spec = RunnerSpec {
        binary: options.binary.clone(),
        data_dir: dir.path().join("data"),
        listen: free_addr().map_err(fail)?,
        simulators: Simulators::External { url: sim.url() },
        backend: Backend::Embedded,
        operator_key: OPERATOR_KEY.into(),
        rust_log: std::env::var("SUSTAINED_RUST_LOG").unwrap_or_else(|_| "info".into()),
        log_dir: Some(options.log_dir.clone()),
        extra_args: vec!["--schedule".into(), options.schedule.clone()],
    };
    let runner = spec.start(MERCHANT, MERCHANT_KEY, 0).map_err(BenchError)?;
    let api = Api::new(&runner.base);
    api.register_endpoint(MERCHANT_KEY, &format!("http://{receiver_addr}/hook"), &[])
        .await
        .map_err(fail)?;

    let load = Arc::new(Load {
        start: Instant::now(),
        per_second_created: counters(seconds),
        per_second_refused: counters(seconds),
        accepted: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        created: Mutex::new(Vec::new()),
    });
    let _ = sink_state.start.set(load.start);
    let load_end = load.start + options.warmup + options.window;
    let clients: Vec<_> = (0..options.connections)
        .map(|c| tokio::spawn(client(api.clone(), load.clone(), c, load_end)))
        .collect();
    let window_start = load.start + options.warmup;
    tokio::time::sleep_until(load_end.into()).await;
    let backlog_at_window_end = (load.accepted.load(Ordering::Relaxed) * WEBHOOKS_PER_CREATE)
        .saturating_sub(sink_state.total.load(Ordering::Relaxed));
    for c in clients {
        let _ = c.await;
    }
    let owed = load.accepted.load(Ordering::Relaxed) * WEBHOOKS_PER_CREATE;
    let drain_deadline = Instant::now() + options.drain;
    let mut drained_at = None;
    while Instant::now() < drain_deadline {
        if sink_state.total.load(Ordering::Relaxed) >= owed {
            drained_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run_end = drained_at.unwrap_or_else(Instant::now);
    let delivered = sink_state.total.load(Ordering::Relaxed);
    drop(runner);
    server.abort();
    sim.shutdown().await;

    let window = options.window;
    let in_window = |v: &[AtomicU64]| -> u64 {
        let from = options.warmup.as_secs() as usize;
        v.iter()
            .skip(from)
            .take(window.as_secs() as usize)
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    };
    let mut create_latency = Latencies::default();
    let mut created_at = std::collections::HashMap::new();
    for (at, latency, id) in load
        .created
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        if *at >= window_start && *at < load_end {
            create_latency.push(*latency);
        }
        created_at.insert(id.clone(), at.checked_sub(*latency).unwrap_or(*at));
    }
    let mut to_paid = Latencies::default();
    for (id, at) in sink_state
        .paid
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        if let Some(t) = created_at.get(id) {
            to_paid.push(at.saturating_duration_since(*t));
        }
    }
    let series: Vec<Second> = (0..seconds)
        .map(|t| Second {
            t: t as u64,
            creates: load.per_second_created[t].load(Ordering::Relaxed),
            refused: load.per_second_refused[t].load(Ordering::Relaxed),
            deliveries: sink_state.per_second[t].load(Ordering::Relaxed),
        })
        .take_while(|s| (s.t as usize) < run_end.duration_since(load.start).as_secs() as usize + 1)
        .collect();
    let minute = |from: usize| -> f64 {
        round2(series.iter().skip(from).take(60).map(|s| s.deliveries).sum::<u64>() as f64 / 60.0)
    };
    let (first, last) = if window >= Duration::from_secs(120) {
        let w0 = options.warmup.as_secs() as usize;
        let w1 = w0 + window.as_secs() as usize - 60;
        (Some(minute(w0)), Some(minute(w1)))
    } else {
        (None, None)
    };
    let deliveries_per_second_window = per_second(in_window(&sink_state.per_second), window);
    Ok(SustainedFigure {
        connections: options.connections,
        warmup_s: options.warmup.as_secs(),
        window_s: window.as_secs(),
        drain_limit_s: options.drain.as_secs(),
        creates_per_second: per_second(in_window(&load.per_second_created), window),
        refused_per_second: per_second(in_window(&load.per_second_refused), window),
        create_errors: load.errors.load(Ordering::Relaxed),
        create_latency: create_latency.summary(),
        create_p90_ms: cashout_system::stats::ms(create_latency.percentile(90.0)),
        deliveries_per_second_window,
        deliveries_per_second_run: per_second(delivered, run_end.duration_since(load.start)),
        accepted: load.accepted.load(Ordering::Relaxed),
        owed,
        delivered,
        backlog_at_window_end,
        backlog_after_drain: owed.saturating_sub(delivered),
        drained_after_s: drained_at.map(|d| round2(d.duration_since(load_end).as_secs_f64())),
        create_to_paid: to_paid.summary(),
        create_to_paid_p90_ms: cashout_system::stats::ms(to_paid.percentile(90.0)),
        first_minute_deliveries_per_second: first,
        last_minute_deliveries_per_second: last,
        last_over_first: first.zip(last).map(|(f, l)| ratio(l, f)),
        store_ceiling,
        bare_posts_per_second,
        deliveries_over_bare: ratio(deliveries_per_second_window, bare_posts_per_second),
        series,
        create_to_paid_sample_ms: to_paid.sorted_sample_ms(2000),
    })
}

/// One creating client: creates back to back until `until`.
async fn client(api: Api, load: Arc<Load>, c: usize, until: Instant) {
    let payload = body(ProviderName::D24, &account(c as u64, Trigger::Success), "1000.00");
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let key = format!("s-{c}-{n}");
        let body = with_own_invoices(&payload, &key);
        let t = Instant::now();
        let answer = api.create_raw(MERCHANT_KEY, &key, &body).await;
        let at = Instant::now();
        match answer {
            Ok((201, id, _)) => {
                bump(&load.per_second_created, load.start, at);
                load.accepted.fetch_add(1, Ordering::Relaxed);
                load.created
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((at, at.duration_since(t), id));
            }
            Ok((429, _, retry_after)) => {
                bump(&load.per_second_refused, load.start, at);
                let wait = Duration::from_secs(retry_after.unwrap_or(1)).min(Duration::from_secs(1));
                tokio::time::sleep(wait.min(until.saturating_duration_since(Instant::now()))).await;
            }
            _ => {
                load.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// 32 clients POSTing a webhook-sized body to `url` for `duration`: POSTs per second.
async fn bare_posts(url: &str, duration: Duration) -> f64 {
    let client = reqwest::Client::new();
    let body = Bytes::from(vec![b'x'; 700]);
    let ok = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + duration;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, ok, url, body) = (client.clone(), ok.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    if client.post(&url).body(body.clone()).send().await.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    per_second(ok.load(Ordering::Relaxed), start.elapsed())
}

/// The store's durable-write ceiling on the disk under `dir`.
async fn store_ceiling(dir: &Path, connections: usize) -> Result<StoreCeiling, BenchError> {
    use cashout_core::cashout::CashoutRequest;
    use cashout_core::ids::{CashoutRequestId, IdempotencyKey, MerchantId};
    use cashout_core::ports::{CashoutStore, Clock, IdempotencyRecord, SystemClock};
    use cashout_store::sqlite::SqliteStore;

    // Bare flushes: 2 s of write + fdatasync on one file.
    let path = dir.join("fsync.bin");
    let fsyncs = tokio::task::spawn_blocking(move || -> std::io::Result<f64> {
        use std::io::Write;
        let mut file = std::fs::File::create(&path)?;
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            file.write_all(&[0u8; 512])?;
            file.sync_data()?;
            n += 1;
        }
        Ok(per_second(n, start.elapsed()))
    })
    .await
    .map_err(fail)?
    .map_err(fail)?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqliteStore::open(&dir.join("ceiling.sqlite3"), clock.clone()).map_err(fail)?);
    let coverage = cashout_providers::ProvidersConfig::for_simulator("http://127.0.0.1:9").coverage();
    let payload = Arc::new(body(ProviderName::D24, &account(1, Trigger::Success), "1000.00"));
    let coverage = Arc::new(coverage);
    let merchant = MerchantId::new(MERCHANT).map_err(fail)?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(3);
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (store, payload, coverage, merchant, done, clock) = (
                store.clone(),
                payload.clone(),
                coverage.clone(),
                merchant.clone(),
                done.clone(),
                clock.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    let now = clock.now();
                    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
                    let input = serde_json::from_value::<cashout_core::input::CashoutInput>(with_own_invoices(
                        &payload,
                        &format!("c-{c}-{n}"),
                    ));
                    let Some(draft) = input.ok().and_then(|i| i.validate(&coverage).ok()) else {
                        return;
                    };
                    let change = CashoutRequest::create(id, merchant.clone(), draft, now);
                    let Ok(key) = IdempotencyKey::new(format!("c-{c}-{n}")) else {
                        return;
                    };
                    let record = IdempotencyRecord::begin(merchant.clone(), key, "h".into(), id, now);
                    if store.create_request(&change, &record, &[]).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    Ok(StoreCeiling {
        fsyncs_per_second: fsyncs,
        creates_per_second: per_second(done.load(Ordering::Relaxed), start.elapsed()),
    })
}
