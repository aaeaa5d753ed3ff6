//! Settling: once the creates are done, every request is read back (with its audit trail) until
//! each matches what the provider's truth implies and each of its events reached every
//! subscribed endpoint, or the time bound passes. A delivery whose every retry the receiver
//! refused is dead-lettered by cashout; it is replayed as a merchant would
//! (`POST /v1/events/{id}/redeliver`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_provider_sim::{Ledger, SimHandle};
use cashout_system::client::Api;
use cashout_system::receiver::{Delivery, Receiver};
use serde_json::Value;
use tokio::sync::Mutex;

use super::ChaosConfig;
use super::merchant::Shared;
use super::plan::Plan;
use super::truth::{ENDPOINTS, Expect, expect, payouts_of_request, subscribed};

/// A request and its audit trail, as last read.
pub(super) struct Snapshot {
    pub request: Value,
    pub events: Vec<Value>,
}

/// Where the settling got to.
pub(super) struct Settled {
    /// The last read of each request.
    pub snapshots: HashMap<usize, Snapshot>,
    /// The requests settled and delivered.
    pub complete: HashSet<usize>,
    /// Events replayed after their retries ran out.
    pub replayed: usize,
    /// Whether every request settled within the bound.
    pub settled: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// The receiver's log, indexed by (endpoint, webhook id).
struct DeliveryIndex {
    /// Accepted (2xx, verified).
    accepted: HashSet<(String, String)>,
    /// Refused, and when.
    refused: HashMap<(String, String), Vec<Instant>>,
}

impl DeliveryIndex {
    fn of(log: &[Delivery]) -> DeliveryIndex {
        let accepted = log
            .iter()
            .filter(|d| d.accepted() && d.verified)
            .map(|d| (d.endpoint.clone(), d.webhook_id.clone()))
            .collect();
        let mut refused: HashMap<(String, String), Vec<Instant>> = HashMap::new();
        for d in log.iter().filter(|d| !d.accepted()) {
            refused
                .entry((d.endpoint.clone(), d.webhook_id.clone()))
                .or_default()
                .push(d.at);
        }
        DeliveryIndex { accepted, refused }
    }
}

/// The events replayed so far, and when.
struct Replays {
    /// Deliveries of one event cashout attempts before dead-lettering it.
    max_attempts: usize,
    at: HashMap<String, Instant>,
}

impl Replays {
    /// Whether `event_id` is due a replay: every retry refused, and refused again since its last
    /// replay (once per refusal after the last replay).
    fn due(&self, event_id: &str, refusals: Option<&Vec<Instant>>) -> bool {
        let exhausted = refusals.is_some_and(|r| r.len() >= self.max_attempts);
        let since_replay = match (refusals, self.at.get(event_id)) {
            (Some(r), Some(at)) => r.iter().any(|t| t > at),
            (_, None) => true,
            (None, Some(_)) => false,
        };
        exhausted && since_replay
    }
}

/// Polls every 2 s until every request matches the truth and every event reached every
/// subscribed endpoint, or `config.settle_timeout` passes; then reads everything once more.
pub(super) async fn settle(
    shared: &Arc<Shared>,
    sim: &SimHandle,
    receiver: &Receiver,
    config: &ChaosConfig,
) -> Settled {
    let started = Instant::now();
    let mut replays = Replays {
        max_attempts: cashout_app::AppConfig::local().webhook_retries.max_attempts() as usize,
        at: HashMap::new(),
    };
    let mut snapshots: HashMap<usize, Snapshot> = HashMap::new();
    let mut complete: HashSet<usize> = HashSet::new();
    let settled = loop {
        let ledger = sim.ledger();
        let deliveries = DeliveryIndex::of(&receiver.log());
        let pending: Vec<usize> = (0..shared.plans.len()).filter(|n| !complete.contains(n)).collect();
        for (n, snap) in fetch(shared, &pending).await {
            let status_ok = status_settled(&shared.plans[n], &snap, &ledger);
            let delivered = delivered(shared, n, &snap, &deliveries, &mut replays, config).await;
            if status_ok && delivered {
                complete.insert(n);
            }
            snapshots.insert(n, snap);
        }
        if complete.len() == shared.plans.len() {
            break true;
        }
        if started.elapsed() > config.settle_timeout {
            break false;
        }
        config.progress(format!(
            "{} of {} requests settled and delivered",
            complete.len(),
            shared.plans.len()
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let elapsed = started.elapsed();
    config.progress(format!("settled: {settled} after {elapsed:?}; checking"));

    // Final pass: a fresh look at everything.
    let all: Vec<usize> = (0..shared.plans.len()).collect();
    for (n, snap) in fetch(shared, &all).await {
        snapshots.insert(n, snap);
    }
    Settled {
        snapshots,
        complete,
        replayed: replays.at.len(),
        settled,
        elapsed,
    }
}

/// Whether the request is where the provider's truth says it ends (or legitimately waits).
fn status_settled(p: &Plan, snap: &Snapshot, ledger: &Ledger) -> bool {
    let actual = snap.request["status"].as_str().unwrap_or_default();
    let id = snap.request["id"].as_str().unwrap_or_default();
    let payouts = payouts_of_request(ledger, id);
    match expect(p, &payouts, actual) {
        Expect::Final(s) | Expect::Waiting(s, _) => s == actual,
        Expect::Moving => false,
    }
}

/// Whether every event of the request was accepted at every subscribed endpoint; replays those
/// dead-lettered.
async fn delivered(
    shared: &Shared,
    n: usize,
    snap: &Snapshot,
    deliveries: &DeliveryIndex,
    replays: &mut Replays,
    config: &ChaosConfig,
) -> bool {
    let p = &shared.plans[n];
    let mut delivered = true;
    for e in &snap.events {
        let event_id = e["id"].as_str().unwrap_or_default();
        let event_type = e["type"].as_str().unwrap_or_default();
        for ep in ENDPOINTS.iter().filter(|ep| subscribed(ep, p.merchant_b, event_type)) {
            let at = (ep.0.to_owned(), event_id.to_owned());
            if deliveries.accepted.contains(&at) {
                continue;
            }
            delivered = false;
            if replays.due(event_id, deliveries.refused.get(&at)) {
                let (code, _) = shared
                    .api
                    .post(&format!("/v1/events/{event_id}/redeliver"), shared.key(p), None)
                    .await;
                if code == 202 {
                    replays.at.insert(event_id.to_owned(), Instant::now());
                    shared.outcomes[n].lock().await.redelivered += 1;
                    config.progress(format!("event {event_id} dead-lettered at {}; replayed", ep.0));
                }
            }
        }
    }
    delivered
}

/// GETs each request and its events (16 at a time); records what was observed.
async fn fetch(shared: &Arc<Shared>, which: &[usize]) -> Vec<(usize, Snapshot)> {
    let queue = Arc::new(std::sync::Mutex::new(which.to_vec()));
    let out = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (shared, queue, out) = (shared.clone(), queue.clone(), out.clone());
            tokio::spawn(async move {
                loop {
                    let Some(n) = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop() else {
                        return;
                    };
                    let p = &shared.plans[n];
                    let Some(id) = shared.outcomes[n].lock().await.id.clone() else {
                        continue;
                    };
                    let key = shared.key(p);
                    let request = get_until_answered(&shared.api, &format!("/v1/cashout-requests/{id}"), key).await;
                    let events =
                        get_until_answered(&shared.api, &format!("/v1/cashout-requests/{id}/events"), key).await;
                    {
                        let mut o = shared.outcomes[n].lock().await;
                        if let (Some(v), Some(s)) = (request["version"].as_u64(), request["status"].as_str()) {
                            o.observed.push((v, s.to_owned()));
                        }
                    }
                    let events = events["data"].as_array().cloned().unwrap_or_default();
                    out.lock().await.push((n, Snapshot { request, events }));
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    std::mem::take(&mut *out.lock().await)
}

pub(super) async fn get_until_answered(api: &Api, path: &str, key: &str) -> Value {
    for _ in 0..600 {
        let (code, v) = api.get(path, key).await;
        if code == 200 {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Value::Null
}
