//! The whole lifecycle on the embedded backend: cashouts/s from create to `PAID` with every
//! webhook delivered, next to API creates/s at the same concurrency.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cashout_app::AppConfig;
use cashout_core::ports::{QueueName, Store, TaskQueue, TaskSource};
use cashout_core::provider::ProviderName;
use cashout_provider_sim::SimConfig;
use cashout_system::client::Api;
use cashout_system::in_process::{MERCHANT_KEY, System};
use cashout_system::receiver::{Mode, Receiver};
use cashout_system::stats::{Latencies, LatencySummary, per_second, ratio};
use cashout_system::workload::{Trigger, account, body};
use serde::Serialize;

use super::{BenchError, fail, temp_store};

/// The whole lifecycle on the embedded backend.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleFigure {
    /// Cashout requests created.
    pub requests: usize,
    /// Concurrent creating clients.
    pub concurrency: usize,
    /// Cashouts per second from the first create to the last `PAID` webhook delivered.
    pub paid_per_second: f64,
    /// From its create call to its `PAID` webhook, per request.
    pub create_to_paid_webhook: LatencySummary,
    /// API creates per second at the same concurrency (this run's API figure): the ceiling.
    pub create_ceiling_per_second: f64,
    /// paid / create ceiling.
    pub ratio: f64,
    /// Webhooks received (4 per request: created, APPROVED, PENDING_PAYMENT, PAID).
    pub webhooks: usize,
}

/// What [`drive_lifecycle`] did.
pub(super) struct Driven {
    /// When each request's create was sent, by id.
    pub created_at: HashMap<String, Instant>,
    /// From the first create to the last webhook.
    pub elapsed: Duration,
}

/// Creates `n` cashouts (D24, paid) at `concurrency` and waits until every one's four webhooks
/// arrived.
pub(super) async fn drive_lifecycle<S, Q>(
    system: &System<S, Q>,
    receiver: &Receiver,
    n: usize,
    concurrency: usize,
    deadline: Duration,
) -> Result<Driven, BenchError>
where
    S: Store + 'static,
    Q: TaskQueue + TaskSource + 'static,
{
    let api = Api::new(&system.base);
    let started = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, started, next) = (api.clone(), started.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n as u64 {
                        return Ok::<(), String>(());
                    }
                    let payload = body(ProviderName::D24, &account(1000 + i, Trigger::Success), "1000.00");
                    let t = Instant::now();
                    let (code, r) = api.create(MERCHANT_KEY, &format!("life-{i}"), &payload).await;
                    if code != 201 {
                        return Err(format!("create answered {code}: {r}"));
                    }
                    started
                        .lock()
                        .await
                        .insert(r["id"].as_str().unwrap_or_default().to_owned(), t);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.map_err(fail)?.map_err(BenchError)?;
    }
    let started = std::mem::take(&mut *started.lock().await);
    let expected = (n * 4) as u64;
    if !receiver
        .wait_count(expected, tokio::time::Instant::now() + deadline)
        .await
    {
        return Err(BenchError(format!(
            "{} of {expected} webhooks after {deadline:?}",
            receiver.count()
        )));
    }
    Ok(Driven {
        created_at: started,
        elapsed: t0.elapsed(),
    })
}

/// The whole lifecycle on the embedded backend, at zero simulator latency.
pub async fn lifecycle(n: usize, concurrency: usize, create_ceiling: f64) -> Result<LifecycleFigure, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let store = temp_store(&dir)?;
    let sim = SimConfig {
        time_scale: 1000,
        ..SimConfig::default()
    };
    let mut system = System::start(store.clone(), store, sim, AppConfig::local())
        .await
        .map_err(fail)?;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 0 }, 3)
        .await
        .map_err(fail)?;
    let api = Api::new(&system.base);
    let (_, secret) = api
        .register_endpoint(MERCHANT_KEY, &receiver.url("life"), &[])
        .await
        .map_err(fail)?;
    receiver.set_secret("life", &secret);
    system.start_workers(&QueueName::ALL);
    system.start_sweeper(Duration::from_secs(1));
    let result = drive_lifecycle(&system, &receiver, n, concurrency, Duration::from_secs(300)).await;
    system.stop().await;
    let Driven { created_at, elapsed } = result?;
    let latencies = create_to_paid(&receiver, &created_at, n)?;
    let paid = per_second(n as u64, elapsed);
    Ok(LifecycleFigure {
        requests: n,
        concurrency,
        paid_per_second: paid,
        create_to_paid_webhook: latencies.summary(),
        create_ceiling_per_second: create_ceiling,
        ratio: ratio(paid, create_ceiling),
        webhooks: receiver.count() as usize,
    })
}

/// From each request's create to the arrival of its `PAID` webhook; `Err` unless every webhook
/// verified and each of the `n` requests was paid.
fn create_to_paid(
    receiver: &Receiver,
    created_at: &HashMap<String, Instant>,
    n: usize,
) -> Result<Latencies, BenchError> {
    let mut latencies = Latencies::default();
    let mut paid_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut unverified = 0;
    receiver.with_log(|log| {
        for d in log {
            if !d.verified {
                unverified += 1;
            }
            if d.body["status"] == "PAID" && d.body["event"] == "cashout_request.status_update" {
                let id = d.body["cashout_request_id"].as_str().unwrap_or_default().to_owned();
                paid_at.entry(id).or_insert(d.at);
            }
        }
    });
    if unverified > 0 || paid_at.len() != n {
        return Err(BenchError(format!(
            "{unverified} unverified webhooks, {} of {n} paid",
            paid_at.len()
        )));
    }
    for (id, at) in &paid_at {
        if let Some(t) = created_at.get(id) {
            latencies.push(at.duration_since(*t));
        }
    }
    Ok(latencies)
}
