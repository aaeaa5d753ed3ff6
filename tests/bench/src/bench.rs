//! The benchmarks. Every figure is taken next to its ceiling in the same run, so that a noisy
//! machine still gives a true ratio:
//!
//! | figure | ceiling |
//! |---|---|
//! | API create, requests/s and latency at concurrency 1, 8, 32 | a no-op route of the same server, same client, same body |
//! | signed webhook deliveries/s (the callbacks worker) | a bare loop of POSTs of the same bodies to the same receiver |
//! | whole lifecycle, cashouts/s from create to `PAID` with every webhook delivered | API creates/s at the same concurrency |
//! | DynamoDB units and SQS requests per paid cashout (DynamoDB Local + moto) | the minimum the design needs (`docs/cost-model.md`) |

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cashout_app::AppConfig;
use cashout_core::ports::{QueueName, Store, TaskQueue, TaskSource};
use cashout_core::provider::ProviderName;
use cashout_provider_sim::SimConfig;
use cashout_store::QueueInspect;
use cashout_store::sqlite::SqliteStore;
use serde::Serialize;

use crate::client::Api;
use crate::receiver::{Mode, Receiver};
use crate::stats::{Latencies, LatencySummary, per_second, ratio};
use crate::system::{MERCHANT_KEY, NOOP_PATH, System};
use crate::workload::{Trigger, account, body};

/// A benchmark that could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

pub(crate) fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}

/// The emulators `./scripts/bench` started, and a fresh table and queues on them.
pub(crate) struct EmulatorStack {
    pub dynamodb_url: String,
    pub sqs_url: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub created: cashout_store::resources::Created,
}

/// Connects to the emulators and creates a table and queues named after `prefix`.
pub(crate) async fn emulator_stack(prefix: &str) -> Result<EmulatorStack, BenchError> {
    use cashout_store::resources;
    let url = |name: &str| {
        std::env::var(name).map_err(|_| {
            BenchError(format!(
                "{name} is not set: run ./scripts/bench, which starts DynamoDB Local and moto"
            ))
        })
    };
    let (dynamodb_url, sqs_url) = (url("CASHOUT_TEST_DYNAMODB_URL")?, url("CASHOUT_TEST_SQS_URL")?);
    let dynamodb = aws_sdk_dynamodb::Client::new(&resources::emulator_config(&dynamodb_url).await);
    let sqs = aws_sdk_sqs::Client::new(&resources::emulator_config(&sqs_url).await);
    let stack = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
    let created = resources::create_all(&dynamodb, &sqs, &stack).await.map_err(fail)?;
    Ok(EmulatorStack {
        dynamodb_url,
        sqs_url,
        dynamodb,
        sqs,
        created,
    })
}

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

fn temp_store(dir: &tempfile::TempDir) -> Result<Arc<SqliteStore>, BenchError> {
    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    Ok(Arc::new(
        SqliteStore::open(&dir.path().join("cashout.sqlite3"), clock).map_err(fail)?,
    ))
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

/// Signed deliveries next to bare POSTs.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookFigure {
    /// Deliveries in each run.
    pub deliveries: u64,
    /// The callbacks worker (batch of 10, run concurrently): receive, read the event and the
    /// endpoint, sign, POST, record the attempt, acknowledge.
    pub signed_per_second: f64,
    /// 10 concurrent clients POSTing the same bodies and headers to the same receiver (best of
    /// a run before and a run after the measured one).
    pub bare_per_second: f64,
    /// signed / bare (target ≥ 0.5).
    pub ratio: f64,
}

/// Webhook delivery throughput, with its bare-POST ceiling.
pub async fn webhooks(deliveries: u64) -> Result<WebhookFigure, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let store = temp_store(&dir)?;
    let mut system = System::start(store.clone(), store, SimConfig::default(), AppConfig::local())
        .await
        .map_err(fail)?;
    let api = Api::new(&system.base);
    let receiver = Receiver::start(Mode::Count, 1).await.map_err(fail)?;
    let (_, secret) = api
        .register_endpoint(MERCHANT_KEY, &receiver.url("bench"), &[])
        .await
        .map_err(fail)?;

    // Each create publishes two events (created, APPROVED): one delivery task each, queued
    // while no worker runs.
    let payload = Arc::new(body(ProviderName::D24, &account(2, Trigger::Success), "1000.00"));
    let requests = deliveries.div_ceil(2);
    let created = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let fillers: Vec<_> = (0..8)
        .map(|_| {
            let (api, payload, created, next) = (api.clone(), payload.clone(), created.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return;
                    }
                    let (code, r) = api.create(MERCHANT_KEY, &format!("wh-{i}"), &payload).await;
                    if code == 201 {
                        created
                            .lock()
                            .await
                            .push(r["id"].as_str().unwrap_or_default().to_owned());
                    }
                }
            })
        })
        .collect();
    for f in fillers {
        let _ = f.await;
    }
    let depth = system.app.queue.depth(QueueName::Callbacks).await.map_err(fail)?;
    let queued = depth.visible;

    // The same bodies, signed once, for the bare loop.
    let mut bodies = Vec::new();
    for id in created.lock().await.iter() {
        let id: cashout_core::ids::CashoutRequestId = id.parse().map_err(fail)?;
        for e in cashout_core::ports::CashoutStore::list_events(&*system.app.store, id)
            .await
            .map_err(fail)?
        {
            let text = e.webhook_body();
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let sig = cashout_core::signing::WebhookSecret::parse(&secret)
                .map_err(fail)?
                .sign(&e.id.to_string(), ts, text.as_bytes())
                .map_err(fail)?;
            bodies.push((e.id.to_string(), ts, sig, text));
        }
    }
    let bodies = Arc::new(bodies);
    let url = receiver.url("bench");
    let bare_before = bare_posts(&url, &bodies).await;

    let before = receiver.count();
    let start = Instant::now();
    system.start_workers(&[QueueName::Callbacks]);
    let done = receiver
        .wait_count(before + queued, tokio::time::Instant::now() + Duration::from_secs(300))
        .await;
    let signed_elapsed = start.elapsed();
    system.stop().await;
    if !done {
        return Err(BenchError(format!(
            "only {} of {queued} deliveries arrived",
            receiver.count() - before
        )));
    }
    let bare_after = bare_posts(&url, &bodies).await;
    let signed = per_second(queued, signed_elapsed);
    let bare = bare_before.max(bare_after);
    Ok(WebhookFigure {
        deliveries: queued,
        signed_per_second: signed,
        bare_per_second: bare,
        ratio: ratio(signed, bare),
    })
}

/// 10 concurrent clients POST every body once; deliveries per second.
async fn bare_posts(url: &str, bodies: &Arc<Vec<(String, i64, String, String)>>) -> f64 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let (client, next, ok, bodies, url) =
                (client.clone(), next.clone(), ok.clone(), bodies.clone(), url.to_owned());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some((id, ts, sig, text)) = bodies.get(i) else {
                        return;
                    };
                    let res = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("user-agent", concat!("cashout-webhooks/", env!("CARGO_PKG_VERSION")))
                        .header("webhook-id", id)
                        .header("webhook-timestamp", ts.to_string())
                        .header("webhook-signature", sig)
                        .body(text.clone())
                        .send()
                        .await;
                    if let Ok(r) = res
                        && r.status().is_success()
                        && r.bytes().await.is_ok()
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for c in clients {
        let _ = c.await;
    }
    per_second(ok.load(Ordering::Relaxed), start.elapsed())
}

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

/// Creates `n` cashouts (D24, paid) at `concurrency`, waits until every one's four webhooks
/// arrived, and returns the per-request create instants and the receiver.
pub(crate) async fn drive_lifecycle<S, Q>(
    system: &System<S, Q>,
    receiver: &Receiver,
    n: usize,
    concurrency: usize,
    deadline: Duration,
) -> Result<(HashMap<String, Instant>, Instant, Duration), BenchError>
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
    Ok((started, t0, t0.elapsed()))
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
    let (started, _, elapsed) = result?;

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
        if let Some(t) = started.get(id) {
            latencies.push(at.duration_since(*t));
        }
    }
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

/// Units and requests per paid cashout.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerCashout {
    /// DynamoDB write capacity units.
    pub wcu: f64,
    /// DynamoDB read capacity units.
    pub rcu: f64,
    /// DynamoDB write calls.
    pub write_calls: f64,
    /// DynamoDB read calls.
    pub read_calls: f64,
    /// SQS requests: send, receive (non-empty), delete, change visibility.
    pub sqs_requests: f64,
    /// Of which `SendMessage`.
    pub sqs_send: f64,
    /// Of which non-empty `ReceiveMessage`.
    pub sqs_receive: f64,
    /// Of which `DeleteMessage`.
    pub sqs_delete: f64,
    /// Of which `ChangeMessageVisibility`.
    pub sqs_change_visibility: f64,
}

/// The minimum the design needs per paid cashout (`docs/cost-model.md`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Minimum {
    /// Write units (DynamoDB Local's counting, as measured).
    pub wcu: f64,
    /// Read units.
    pub rcu: f64,
    /// SQS requests.
    pub sqs_requests: f64,
}

/// Per `docs/cost-model.md`: the writes the table design makes for the steps a paid cashout
/// cannot skip, the reads each separately invoked step needs, and for each task the flow needs
/// (dispatch, one provider event per D24 notification, one delivery per event, and the
/// safety-net status check scheduled when the provider takes the payout) a send, a delete and a
/// tenth of a receive (receives take up to 10 messages). The reversal watch after payment is
/// reported apart.
pub const MINIMUM: Minimum = Minimum {
    wcu: 63.0,
    rcu: 17.0,
    sqs_requests: 16.8,
};

/// One check of a paid request for reversals, counted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WatchCost {
    /// Write units of the check (it records the check and moves the next one on).
    pub poll_wcu: f64,
    /// Read units.
    pub poll_rcu: f64,
    /// Tasks it sends (none: the next check is a day away, left to the sweep).
    pub poll_sqs_sends: u64,
    /// Read units of the sweep's pick-up of a due check (it reads the request, then sends its
    /// task); the sweep's index query is shared by every due request and runs anyway.
    pub pickup_rcu: f64,
    /// SQS requests of the picked-up task: send, receive, delete.
    pub pickup_sqs_requests: u64,
}

/// The reversal watch over its whole window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WatchProjection {
    /// Checks (`PollSchedule::default()`: one per `paid_watch_interval` over `paid_watch_window`).
    pub checks: u32,
    /// Write units.
    pub wcu: f64,
    /// Read units.
    pub rcu: f64,
    /// SQS requests (each check's task sent by the sweep when due).
    pub sqs_requests: f64,
}

/// DynamoDB units and SQS requests per paid cashout, counted on the emulators.
#[derive(Debug, Clone, Serialize)]
pub struct CostFigure {
    /// Paid cashouts counted (D24, one invoice endpoint, every webhook delivered once).
    pub paid_cashouts: usize,
    /// Measured, per paid cashout.
    pub measured: PerCashout,
    /// The design's minimum.
    pub minimum: Minimum,
    /// measured / minimum (target ≤ 1.25).
    pub ratio_wcu: f64,
    /// measured / minimum.
    pub ratio_rcu: f64,
    /// measured / minimum.
    pub ratio_sqs: f64,
    /// Empty receives of the harness's pull loops during the run (on AWS, Lambda's pollers; not
    /// per cashout).
    pub idle_empty_receives: u64,
    /// One sweep of an idle table: read calls and units.
    pub sweep_read_calls: u64,
    /// Its read units.
    pub sweep_rcu: f64,
    /// Versioned writes per cashout that lost a race and were decided again (no units on
    /// DynamoDB Local; charged on AWS).
    pub lost_races_per_cashout: f64,
    /// One reversal-watch check of a paid request, and one hop of a long-delayed task.
    pub watch: WatchCost,
    /// The reversal watch over its whole window, from those counted unit costs.
    pub reversal_watch: WatchProjection,
    /// Per store operation: calls in the whole run, units per paid cashout.
    pub by_operation: BTreeMap<String, crate::metered::OperationCost>,
    /// SQS sends by task type, in the whole run.
    pub sends_by_task: BTreeMap<String, u64>,
}

fn units(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}

/// Counts DynamoDB units and SQS requests over `n` paid cashouts on DynamoDB Local + moto, with
/// the production schedule (polls after 60 s, so provider notifications drive the lifecycle).
pub async fn cost(n: usize) -> Result<CostFigure, BenchError> {
    use cashout_store::dynamo::DynamoStore;
    use cashout_store::sqs::SqsQueue;

    use crate::metered::{CountedQueue, MeteredStore};

    let EmulatorStack {
        dynamodb, sqs, created, ..
    } = emulator_stack("bench").await?;
    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    let store = Arc::new(MeteredStore::new(DynamoStore::new(
        dynamodb,
        created.table_name,
        clock.clone(),
    )));
    let queue = Arc::new(CountedQueue::new(SqsQueue::new(sqs, created.queue_urls, clock)));
    // Real time at the simulated provider (D24: DELIVERED after 1 s, COMPLETED after 2 s), so
    // that its two notifications do not race each other unrealistically.
    let mut system = System::start(store.clone(), queue.clone(), SimConfig::default(), AppConfig::default())
        .await
        .map_err(fail)?;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 0 }, 5)
        .await
        .map_err(fail)?;
    let (_, secret) = Api::new(&system.base)
        .register_endpoint(MERCHANT_KEY, &receiver.url("cost"), &[])
        .await
        .map_err(fail)?;
    receiver.set_secret("cost", &secret);

    // One sweep of the (empty) table: its fixed cost.
    let before = store.consumed();
    system.app.sweep().await.map_err(fail)?;
    let sweep = store.consumed().since(&before);

    system.start_workers(&QueueName::ALL);
    store.reset();
    queue.reset();
    let (d0, q0) = (store.consumed(), queue.inner.requests());
    let driven = drive_lifecycle(&system, &receiver, n, 4, Duration::from_secs(300)).await;
    // The last deliveries are recorded and acknowledged after the receiver answered, and each
    // request's first safety-net check (60 s after the provider took it) fires after payment and
    // finds itself stale: wait until no task is visible, in flight or delayed (the reversal
    // watch's checks are a day away and left to the sweep, costed below).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut busy = 0;
        for q in QueueName::ALL {
            let d = queue.inner.depth(q).await.map_err(fail)?;
            busy += d.visible + d.in_flight + d.delayed;
        }
        if busy == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (d1, q1) = (store.consumed(), queue.inner.requests());
    let (by_operation, sends, conflicts) = (store.breakdown(), queue.sends(), store.conflicts());

    // What follows payment: one reversal-watch poll of a paid request (the production schedule
    // checks a paid payout on `PollSchedule::default()`), and what the sweep spends to pick a
    // due check up.
    let watch = async {
        let (started, _, _) = driven.as_ref().map_err(|e| BenchError(e.to_string()))?;
        let id: cashout_core::ids::CashoutRequestId = started
            .keys()
            .next()
            .ok_or(BenchError("no request".into()))?
            .parse()
            .map_err(fail)?;
        let request = cashout_core::ports::CashoutStore::get_request(&*store, id)
            .await
            .map_err(fail)?
            .ok_or(BenchError("the paid request is gone".into()))?;
        let (d_before, sends_before) = (store.consumed(), queue.sends().values().sum::<u64>());
        system.app.poll(id, request.next_check_at()).await.map_err(fail)?;
        let spent = store.consumed().since(&d_before);
        let watch_sends = queue.sends().values().sum::<u64>() - sends_before;
        let pickup_before = store.consumed();
        cashout_core::ports::CashoutStore::get_request(&*store, id)
            .await
            .map_err(fail)?;
        let pickup = store.consumed().since(&pickup_before);
        Ok::<_, BenchError>(WatchCost {
            poll_wcu: units(spent.write_units),
            poll_rcu: units(spent.read_units),
            poll_sqs_sends: watch_sends,
            pickup_rcu: units(pickup.read_units),
            pickup_sqs_requests: 3,
        })
    }
    .await;
    system.stop().await;
    let watch = watch?;
    driven?;
    let (d, q) = (d1.since(&d0), q1.since(&q0));
    let per = |x: f64| crate::stats::round2(x / n as f64);
    let measured = PerCashout {
        wcu: per(units(d.write_units)),
        rcu: per(units(d.read_units)),
        write_calls: per(d.write_calls as f64),
        read_calls: per(d.read_calls as f64),
        sqs_requests: per((q.send + q.receive + q.delete + q.change_visibility) as f64),
        sqs_send: per(q.send as f64),
        sqs_receive: per(q.receive as f64),
        sqs_delete: per(q.delete as f64),
        sqs_change_visibility: per(q.change_visibility as f64),
    };
    Ok(CostFigure {
        paid_cashouts: n,
        ratio_wcu: ratio(measured.wcu, MINIMUM.wcu),
        ratio_rcu: ratio(measured.rcu, MINIMUM.rcu),
        ratio_sqs: ratio(measured.sqs_requests, MINIMUM.sqs_requests),
        measured,
        minimum: MINIMUM,
        idle_empty_receives: q.empty_receive,
        sweep_read_calls: sweep.read_calls,
        sweep_rcu: units(sweep.read_units),
        lost_races_per_cashout: crate::stats::round2(conflicts as f64 / n as f64),
        reversal_watch: {
            let schedule = cashout_app::config::PollSchedule::default();
            let checks = schedule.paid_watch_window.as_secs() / schedule.paid_watch_interval.as_secs().max(1);
            let polls = checks as f64;
            WatchProjection {
                checks: u32::try_from(checks).unwrap_or(u32::MAX),
                wcu: crate::stats::round2(polls * watch.poll_wcu),
                rcu: crate::stats::round2(polls * (watch.poll_rcu + watch.pickup_rcu)),
                sqs_requests: crate::stats::round2(polls * watch.pickup_sqs_requests as f64),
            }
        },
        watch,
        by_operation: by_operation
            .into_iter()
            .map(|(op, c)| {
                let per = |x: f64| crate::stats::round2(x / n as f64);
                (
                    op,
                    crate::metered::OperationCost {
                        calls: c.calls,
                        wcu: per(c.wcu),
                        rcu: per(c.rcu),
                    },
                )
            })
            .collect(),
        sends_by_task: sends,
    })
}
