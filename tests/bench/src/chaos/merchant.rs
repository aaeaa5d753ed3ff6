//! The merchants and the operator: concurrent clients that create the planned requests, retry
//! every create whose answer they did not get (same key, same body), send some twice, cancel
//! some right away; the operator who approves the requests planned for approval. What they saw is
//! kept for the checks.

// Violations are printed as they happen when the run is verbose.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cashout_system::client::Api;
use serde_json::Value;
use tokio::sync::Mutex;

use super::plan::{Plan, Review};
use super::{MERCHANT_A, MERCHANT_B, OPERATOR_KEY};

/// What happened to one request, from the merchant's side.
#[derive(Debug, Clone, Default)]
pub(super) struct Outcome {
    pub id: Option<String>,
    pub create_calls: u32,
    /// Every (version, status) a GET returned, in order.
    pub observed: Vec<(u64, String)>,
    pub cancel_answer: Option<u16>,
    pub redelivered: u32,
}

/// What the clients, the settling and the checks share.
pub(super) struct Shared {
    pub api: Api,
    pub plans: Vec<Plan>,
    pub outcomes: Vec<Mutex<Outcome>>,
    /// Requests played to the end (created or given up).
    pub created: AtomicUsize,
    pub create_retries: AtomicU64,
    pub retry_codes: std::sync::Mutex<BTreeMap<String, u64>>,
    pub violations: std::sync::Mutex<Vec<String>>,
    pub verbose: bool,
}

impl Shared {
    /// Nothing played yet.
    pub fn new(api: Api, plans: Vec<Plan>, verbose: bool) -> Shared {
        Shared {
            api,
            outcomes: plans.iter().map(|_| Mutex::new(Outcome::default())).collect(),
            plans,
            created: AtomicUsize::new(0),
            create_retries: AtomicU64::new(0),
            retry_codes: std::sync::Mutex::new(BTreeMap::new()),
            violations: std::sync::Mutex::new(Vec::new()),
            verbose,
        }
    }

    /// Records a broken invariant.
    pub fn violation(&self, v: String) {
        if self.verbose {
            eprintln!("chaos: VIOLATION {v}");
        }
        self.violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(v);
    }

    /// The API key of the request's merchant.
    pub fn key(&self, p: &Plan) -> &'static str {
        if p.merchant_b { MERCHANT_B.1 } else { MERCHANT_A.1 }
    }
}

/// A merchant's retry: transport failures (the runner is down), 5xx, 429 and "in progress" are
/// retried with the same key and body until answered, for at most `budget`.
async fn create_until_answered(shared: &Shared, p: &Plan, budget: Duration) -> Option<Value> {
    let deadline = Instant::now() + budget;
    let mut wait = Duration::from_millis(100);
    loop {
        let (code, r) = shared.api.create(shared.key(p), &p.key, &p.body).await;
        shared.outcomes[p.n].lock().await.create_calls += 1;
        match code {
            201 => return Some(r),
            // 429 (over the rate limit, or the backlog's backpressure) says when to come back:
            // at least a second later, as its `Retry-After` does.
            429 => wait = wait.max(Duration::from_secs(1)),
            0 | 409 | 500..=599 => {}
            _ => {
                shared.violation(format!("request #{} create answered {code}: {r}", p.n));
                return None;
            }
        }
        shared.create_retries.fetch_add(1, Ordering::Relaxed);
        let why = match code {
            0 => "no answer (runner down)".to_owned(),
            _ => format!("{code} {}", r["code"].as_str().unwrap_or_default()),
        };
        *shared
            .retry_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(why)
            .or_insert(0) += 1;
        if Instant::now() > deadline {
            shared.violation(format!("request #{} create unanswered after {budget:?}", p.n));
            return None;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// A merchant's cancel: retried while the answer is "try later" (dispatch in progress, 429, 5xx,
/// no answer); any final answer is recorded.
async fn cancel_until_answered(shared: &Shared, p: &Plan, id: &str, budget: Duration) -> u16 {
    let deadline = Instant::now() + budget;
    loop {
        let (code, r) = shared
            .api
            .post(&format!("/v1/cashout-requests/{id}/cancel"), shared.key(p), None)
            .await;
        let retry = match code {
            0 | 429 | 500..=599 => true,
            409 => matches!(
                r["code"].as_str(),
                Some("dispatch_in_progress" | "concurrent_update" | "idempotency_in_progress")
            ),
            _ => false,
        };
        if !retry || Instant::now() > deadline {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One merchant client: takes the next planned request until none is left, and plays it.
pub(super) async fn client_loop(shared: Arc<Shared>, next: Arc<AtomicUsize>) {
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some(p) = shared.plans.get(n) else { return };
        let Some(created) = create_until_answered(&shared, p, Duration::from_secs(180)).await else {
            shared.created.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        shared.outcomes[n].lock().await.id = Some(id.clone());
        if p.duplicate
            && let Some(again) = create_until_answered(&shared, p, Duration::from_secs(180)).await
            && again["id"] != created["id"]
        {
            shared.violation(format!(
                "request #{} sent twice with key {}: two requests {} and {}",
                p.n, p.key, created["id"], again["id"]
            ));
        }
        if p.cancel_soon || p.review == Some(Review::MerchantCancels) {
            let code = cancel_until_answered(&shared, p, &id, Duration::from_secs(120)).await;
            shared.outcomes[n].lock().await.cancel_answer = Some(code);
        }
        shared.created.fetch_add(1, Ordering::Relaxed);
    }
}

/// Joins the client tasks that have ended; one that panicked (or was cancelled) fails the run,
/// since its request and the rest of its share were never played.
pub(super) async fn reap_finished(clients: &mut Vec<tokio::task::JoinHandle<()>>) -> Result<(), String> {
    let mut i = 0;
    while i < clients.len() {
        if clients[i].is_finished() {
            client_ended(clients.swap_remove(i).await)?;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// How a client task ended: `Err` (the run fails) unless it played its share to the end.
pub(super) fn client_ended(joined: Result<(), tokio::task::JoinError>) -> Result<(), String> {
    match joined {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("a client task panicked, its requests unplayed: {message}"))
        }
        Err(e) => Err(format!("a client task did not finish, its requests unplayed: {e}")),
    }
}

/// The operator approves every request planned for approval (retried while the runner is down
/// or busy, 60 s at most each).
pub(super) async fn approve_reviews(shared: &Shared) {
    let operator = Api::new(shared.api.base());
    for (p, o) in shared.plans.iter().zip(&shared.outcomes) {
        if p.review == Some(Review::Approve)
            && let Some(id) = o.lock().await.id.clone()
        {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (code, r) = operator
                    .post(&format!("/v1/cashout-requests/{id}/approve"), OPERATOR_KEY, None)
                    .await;
                if code == 200 {
                    break;
                }
                if !matches!(code, 0 | 409 | 429 | 500..=599) || Instant::now() > deadline {
                    shared.violation(format!("approving {id}: {code} {r}"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_panics_fails_the_run_with_its_message() {
        let mut clients = vec![
            tokio::spawn(async {}),
            tokio::spawn(async { panic!("request #7: unexpected body") }),
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !clients.iter().all(tokio::task::JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the client tasks never ended");
            tokio::task::yield_now().await;
        }
        let e = reap_finished(&mut clients).await.unwrap_err();
        assert!(
            e.contains("panicked") && e.contains("request #7: unexpected body"),
            "{e}"
        );

        let cancelled = tokio::spawn(std::future::pending::<()>());
        cancelled.abort();
        let e = client_ended(cancelled.await).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert_eq!(client_ended(tokio::spawn(async {}).await), Ok(()));
    }
}
