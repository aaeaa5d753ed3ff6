//! Webhook delivery throughput: the callbacks worker signing and delivering a queue of
//! deliveries, next to bare POSTs of the same bodies and headers to the same receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cashout_app::AppConfig;
use cashout_core::ports::QueueName;
use cashout_core::provider::ProviderName;
use cashout_provider_sim::SimConfig;
use cashout_store::QueueInspect;
use cashout_store::sqlite::SqliteStore;
use cashout_system::client::Api;
use cashout_system::in_process::{MERCHANT_KEY, System};
use cashout_system::receiver::{Mode, Receiver};
use cashout_system::stats::{per_second, ratio};
use cashout_system::workload::{Trigger, account, body};
use serde::Serialize;

use super::{BenchError, fail, temp_store};

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

/// One delivery as the callbacks worker would send it.
struct Signed {
    webhook_id: String,
    timestamp: i64,
    signature: String,
    body: String,
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
    let created = create_requests(&api, deliveries.div_ceil(2)).await;
    let queued = system
        .app
        .queue
        .depth(QueueName::Callbacks)
        .await
        .map_err(fail)?
        .visible;
    let signed = Arc::new(sign_events(&system, &created, &secret).await?);
    let url = receiver.url("bench");
    let bare_before = bare_posts(&url, &signed).await;

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
    let bare_after = bare_posts(&url, &signed).await;
    let signed = per_second(queued, signed_elapsed);
    let bare = bare_before.max(bare_after);
    Ok(WebhookFigure {
        deliveries: queued,
        signed_per_second: signed,
        bare_per_second: bare,
        ratio: ratio(signed, bare),
    })
}

/// Creates `requests` D24 requests from 8 clients; answers the ids of those created.
async fn create_requests(api: &Api, requests: u64) -> Vec<String> {
    let payload = Arc::new(body(ProviderName::D24, &account(2, Trigger::Success), "1000.00"));
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
    std::mem::take(&mut *created.lock().await)
}

/// The events of the `created` requests, signed once with `secret`, for the bare loop.
async fn sign_events(
    system: &System<SqliteStore, SqliteStore>,
    created: &[String],
    secret: &str,
) -> Result<Vec<Signed>, BenchError> {
    let secret = cashout_core::signing::WebhookSecret::parse(secret).map_err(fail)?;
    let mut signed = Vec::new();
    for id in created {
        let id: cashout_core::ids::CashoutRequestId = id.parse().map_err(fail)?;
        for e in cashout_core::ports::CashoutStore::list_events(&*system.app.store, id)
            .await
            .map_err(fail)?
        {
            let body = e.webhook_body();
            let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
            let signature = secret
                .sign(&e.id.to_string(), timestamp, body.as_bytes())
                .map_err(fail)?;
            signed.push(Signed {
                webhook_id: e.id.to_string(),
                timestamp,
                signature,
                body,
            });
        }
    }
    Ok(signed)
}

/// 10 concurrent clients POST every body once; deliveries per second.
async fn bare_posts(url: &str, bodies: &Arc<Vec<Signed>>) -> f64 {
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
                    let Some(signed) = bodies.get(i) else {
                        return;
                    };
                    let res = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("user-agent", concat!("cashout-webhooks/", env!("CARGO_PKG_VERSION")))
                        .header("webhook-id", &signed.webhook_id)
                        .header("webhook-timestamp", signed.timestamp.to_string())
                        .header("webhook-signature", &signed.signature)
                        .body(signed.body.clone())
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
