//! The ceilings of the sustained scenario, taken in the same run on the same disk and the same
//! receiver: the embedded store's durable-write ceiling (concurrent creates straight into a
//! `SqliteStore`, group-committed, and bare `fdatasync`s of one file) and bare POSTs to the
//! receiver.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use cashout_core::provider::ProviderName;
use cashout_system::client::with_own_invoices;
use cashout_system::stats::per_second;
use cashout_system::workload::{Trigger, account, body};

use super::{MERCHANT, StoreCeiling};
use crate::bench::{BenchError, fail};

/// 32 clients POSTing a webhook-sized body to `url` for `duration`: POSTs per second.
pub(super) async fn bare_posts(url: &str, duration: Duration) -> f64 {
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
pub(super) async fn store_ceiling(dir: &Path, connections: usize) -> Result<StoreCeiling, BenchError> {
    Ok(StoreCeiling {
        fsyncs_per_second: fsyncs_per_second(dir).await?,
        creates_per_second: creates_per_second(dir, connections).await?,
    })
}

/// Bare flushes: 2 s of write + fdatasync on one file.
async fn fsyncs_per_second(dir: &Path) -> Result<f64, BenchError> {
    let path = dir.join("fsync.bin");
    tokio::task::spawn_blocking(move || -> std::io::Result<f64> {
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
    .map_err(fail)
}

/// Request creates per second straight into a `SqliteStore` from `connections` tasks, for 3 s.
async fn creates_per_second(dir: &Path, connections: usize) -> Result<f64, BenchError> {
    use cashout_core::cashout::CashoutRequest;
    use cashout_core::ids::{CashoutRequestId, IdempotencyKey, MerchantId};
    use cashout_core::ports::{CashoutStore, Clock, IdempotencyRecord, SystemClock};
    use cashout_store::sqlite::SqliteStore;

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
    Ok(per_second(done.load(Ordering::Relaxed), start.elapsed()))
}
