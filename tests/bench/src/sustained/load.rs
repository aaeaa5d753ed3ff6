//! The load of the sustained scenario: `connections` clients creating cashout requests back to
//! back until the load ends, each counted in the second it was answered; a `429` makes its client
//! wait the `Retry-After` (at most 1 s), as a well-behaved merchant would. Then the drain: no
//! load while the owed webhooks arrive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cashout_core::provider::ProviderName;
use cashout_system::client::{Api, with_own_invoices};
use cashout_system::workload::{Trigger, account, body};

use super::sink::SinkServer;
use super::{MERCHANT_KEY, SustainedOptions, WEBHOOKS_PER_CREATE};

/// What the creating clients saw.
pub(super) struct Load {
    pub start: Instant,
    pub per_second_created: Vec<AtomicU64>,
    pub per_second_refused: Vec<AtomicU64>,
    pub accepted: AtomicU64,
    pub errors: AtomicU64,
    /// (answered at, latency, id) of every 201.
    pub created: Mutex<Vec<(Instant, Duration, String)>>,
}

impl Load {
    /// Starting now, counting `seconds` seconds.
    pub fn new(seconds: usize) -> Load {
        Load {
            start: Instant::now(),
            per_second_created: counters(seconds),
            per_second_refused: counters(seconds),
            accepted: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            created: Mutex::new(Vec::new()),
        }
    }

    /// Webhooks owed so far.
    pub fn owed(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed) * WEBHOOKS_PER_CREATE
    }
}

/// `n` per-second counters.
pub(super) fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn bump(counters: &[AtomicU64], start: Instant, at: Instant) {
    if let Some(c) = counters.get(at.duration_since(start).as_secs() as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// How the load and the drain ended.
pub(super) struct Drained {
    /// Owed minus received when the window ended.
    pub backlog_at_window_end: u64,
    /// Owed when the load stopped.
    pub owed: u64,
    /// When the last owed webhook arrived (`None`: not within the drain limit).
    pub drained_at: Option<Instant>,
    /// Then, or the end of the drain limit.
    pub run_end: Instant,
    /// Received when the drain ended.
    pub delivered: u64,
}

/// The load from `connections` clients until the window ends, then the drain.
pub(super) async fn run(api: &Api, load: &Arc<Load>, receiver: &SinkServer, options: &SustainedOptions) -> Drained {
    let load_end = load.start + options.warmup + options.window;
    let clients: Vec<_> = (0..options.connections)
        .map(|c| tokio::spawn(client(api.clone(), load.clone(), c, load_end)))
        .collect();
    tokio::time::sleep_until(load_end.into()).await;
    let backlog_at_window_end = load.owed().saturating_sub(receiver.total());
    for c in clients {
        let _ = c.await;
    }
    let owed = load.owed();
    let drain_deadline = Instant::now() + options.drain;
    let mut drained_at = None;
    while Instant::now() < drain_deadline {
        if receiver.total() >= owed {
            drained_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Drained {
        backlog_at_window_end,
        owed,
        drained_at,
        run_end: drained_at.unwrap_or_else(Instant::now),
        delivered: receiver.total(),
    }
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
