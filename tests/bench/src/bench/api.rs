//! API create throughput at each concurrency, next to a no-op route of the same server called by
//! the same client with the same body: closed loops of clients, each calling back to back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cashout_app::AppConfig;
use cashout_core::provider::ProviderName;
use cashout_provider_sim::SimConfig;
use cashout_system::client::Api;
use cashout_system::in_process::{MERCHANT_KEY, NOOP_PATH, System};
use cashout_system::stats::{Latencies, LatencySummary, per_second, ratio};
use cashout_system::workload::{Trigger, account, body};
use serde::Serialize;

use super::{BenchError, fail, temp_store};

/// What a closed loop of clients did.
#[derive(Debug, Default)]
struct LoopRun {
    ok: u64,
    errors: u64,
    latencies: Latencies,
    elapsed: Duration,
}

/// `concurrency` clients, each calling `call(i)` back to back until `duration` has passed.
async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> LoopRun
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, next) = (call.clone(), next.clone());
            tokio::spawn(async move {
                let mut run = LoopRun::default();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    if call(i).await {
                        run.ok += 1;
                        run.latencies.push(t.elapsed());
                    } else {
                        run.errors += 1;
                    }
                }
                run
            })
        })
        .collect();
    let mut total = LoopRun::default();
    for c in clients {
        if let Ok(run) = c.await {
            total.ok += run.ok;
            total.errors += run.errors;
            total.latencies.extend(run.latencies);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// One side of a figure.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// Completed per second.
    pub per_second: f64,
    /// Completed.
    pub ok: u64,
    /// Failed (non-2xx or transport error).
    pub errors: u64,
    /// Latency of the completed ones.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

impl From<&LoopRun> for Throughput {
    fn from(r: &LoopRun) -> Self {
        Throughput {
            per_second: per_second(r.ok, r.elapsed),
            ok: r.ok,
            errors: r.errors,
            latency: r.latencies.summary(),
        }
    }
}

/// API create at one concurrency, next to the no-op route.
#[derive(Debug, Clone, Serialize)]
pub struct ApiFigure {
    /// Clients.
    pub concurrency: usize,
    /// `POST /v1/cashout-requests` (authenticate, validate, idempotency, write, review, enqueue).
    pub create: Throughput,
    /// `POST /_bench/noop` on the same server with the same body.
    pub noop: Throughput,
    /// create / noop requests per second (target ≥ 0.5 at 32).
    pub ratio: f64,
}

/// API create throughput at each concurrency, on the embedded store, with its no-op ceiling.
/// Workers are not running: this is the API alone.
pub async fn api(levels: &[usize], seconds: Duration) -> Result<Vec<ApiFigure>, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let store = temp_store(&dir)?;
    let system = System::start(store.clone(), store, SimConfig::default(), AppConfig::local())
        .await
        .map_err(fail)?;
    let api = Api::new(&system.base);
    let payload = Arc::new(body(ProviderName::D24, &account(1, Trigger::Success), "1000.00"));
    let raw = Arc::new(serde_json::to_vec(&*payload).map_err(fail)?);
    let http = reqwest::Client::new();
    let noop_url = Arc::new(format!("{}{NOOP_PATH}", system.base));

    // Warm up both paths (connections, SQLite pages, allocator).
    let _ = run_creates(&api, &payload, 4, Duration::from_millis(500), "warm").await;
    let _ = run_noop(&http, &noop_url, &raw, 4, Duration::from_millis(500)).await;

    let mut figures = Vec::new();
    for &c in levels {
        let noop = run_noop(&http, &noop_url, &raw, c, seconds).await;
        let create = run_creates(&api, &payload, c, seconds, &format!("c{c}")).await;
        let (create, noop) = (Throughput::from(&create), Throughput::from(&noop));
        figures.push(ApiFigure {
            concurrency: c,
            ratio: ratio(create.per_second, noop.per_second),
            create,
            noop,
        });
    }
    system.stop().await;
    Ok(figures)
}

async fn run_creates(
    api: &Api,
    payload: &Arc<serde_json::Value>,
    concurrency: usize,
    duration: Duration,
    tag: &str,
) -> LoopRun {
    let (api, payload, tag) = (api.clone(), payload.clone(), tag.to_owned());
    closed_loop(concurrency, duration, move |i| {
        let (api, payload, key) = (api.clone(), payload.clone(), format!("bench-{tag}-{i}"));
        async move { api.create(MERCHANT_KEY, &key, &payload).await.0 == 201 }
    })
    .await
}

async fn run_noop(
    http: &reqwest::Client,
    url: &Arc<String>,
    raw: &Arc<Vec<u8>>,
    concurrency: usize,
    duration: Duration,
) -> LoopRun {
    let (http, url, raw) = (http.clone(), url.clone(), raw.clone());
    closed_loop(concurrency, duration, move |_| {
        let (http, url, raw) = (http.clone(), url.clone(), raw.clone());
        async move {
            let res = http
                .post(url.as_str())
                .bearer_auth(MERCHANT_KEY)
                .header("content-type", "application/json")
                .header("idempotency-key", "noop")
                .body(raw.to_vec())
                .send()
                .await;
            match res {
                Ok(r) => r.status().as_u16() == 201 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}
