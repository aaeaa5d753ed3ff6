//! A merchant's webhook receiver: every endpoint is a path `/hook/{name}` on one local server.
//! Each delivery is logged with what it carried and what was answered; in `Verify` mode its
//! signature is checked with the official Standard Webhooks library (the one a merchant would
//! use), and a seeded share of deliveries is refused (500/503) to exercise the retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

/// What the receiver does with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count and answer 200 (benchmarks: the cheapest possible receiver).
    Count,
    /// Verify the signature, log the body, refuse `fail_percent` % of deliveries.
    Verify {
        /// Share of deliveries answered 500/503, 0 to 100.
        fail_percent: u8,
    },
}

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The endpoint's name (`/hook/{name}`).
    pub endpoint: String,
    /// `webhook-id`.
    pub webhook_id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
    /// The body, parsed (`Null` when it is not JSON).
    pub body: serde_json::Value,
    /// The body as received.
    pub raw: Bytes,
    /// `webhook-signature`.
    pub signature: String,
    /// Whether the signature verified with the endpoint's secret (official library).
    pub verified: bool,
    /// Why it did not verify.
    pub verify_error: Option<String>,
    /// What the receiver answered.
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Delivery {
    /// Whether the receiver accepted it (a 2xx): the sender may stop retrying.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Inner {
    mode: Mode,
    secrets: Mutex<HashMap<String, String>>,
    log: Mutex<Vec<Delivery>>,
    rng: Mutex<rand::rngs::StdRng>,
    count: AtomicU64,
    arrived: Notify,
}

/// The receiver; cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

async fn receive(
    State(r): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    r.count.fetch_add(1, Ordering::Relaxed);
    let Mode::Verify { fail_percent } = r.mode else {
        r.arrived.notify_waiters();
        return (StatusCode::OK, "ok");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let secret = r
        .secrets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&endpoint)
        .cloned();
    let verdict = match secret {
        None => Err(format!("no secret known for endpoint {endpoint}")),
        Some(secret) => standardwebhooks::Webhook::new(&secret)
            .map_err(|e| format!("{e:?}"))
            .and_then(|wh| wh.verify(&body, &headers).map_err(|e| format!("{e:?}"))),
    };
    let fail = {
        let mut rng = r.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rng.random_range(0..100u8) < fail_percent
    };
    let answered = match (&verdict, fail) {
        (Err(_), _) => StatusCode::UNAUTHORIZED,
        (Ok(()), true) if r.count.load(Ordering::Relaxed) % 2 == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        (Ok(()), true) => StatusCode::SERVICE_UNAVAILABLE,
        (Ok(()), false) => StatusCode::OK,
    };
    let delivery = Delivery {
        endpoint,
        webhook_id: header("webhook-id").to_owned(),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        raw: body.clone(),
        signature: header("webhook-signature").to_owned(),
        verified: verdict.is_ok(),
        verify_error: verdict.err(),
        answered: answered.as_u16(),
        at: Instant::now(),
    };
    r.log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(delivery);
    r.arrived.notify_waiters();
    (answered, if answered.is_success() { "ok" } else { "try again" })
}

impl Receiver {
    /// Starts a receiver on a free loopback port; `seed` decides which deliveries fail.
    pub async fn start(mode: Mode, seed: u64) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            mode,
            secrets: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            count: AtomicU64::new(0),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/hook/{endpoint}", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the webhook receiver stopped");
            }
        });
        Ok(Receiver { inner, addr })
    }

    /// The URL of endpoint `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/hook/{name}", self.addr)
    }

    /// Tells the receiver the secret of endpoint `name` (as the API returned it).
    pub fn set_secret(&self, name: &str, secret: &str) {
        self.inner
            .secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), secret.to_owned());
    }

    /// Deliveries received so far (any answer).
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// A copy of the log.
    pub fn log(&self) -> Vec<Delivery> {
        self.inner
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` over the log without copying it.
    pub fn with_log<R>(&self, f: impl FnOnce(&[Delivery]) -> R) -> R {
        f(&self.inner.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Waits until `found` finds what it looks for in the log (it runs again on every arrival),
    /// or `deadline` passes (`None`).
    pub async fn wait_for<T>(
        &self,
        deadline: tokio::time::Instant,
        mut found: impl FnMut(&[Delivery]) -> Option<T>,
    ) -> Option<T> {
        loop {
            let arrived = self.inner.arrived.notified();
            if let Some(t) = self.with_log(&mut found) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.with_log(found);
            }
        }
    }

    /// Waits until `count()` reaches `n`, or `deadline` passes (returns whether it did).
    pub async fn wait_count(&self, n: u64, deadline: tokio::time::Instant) -> bool {
        loop {
            let arrived = self.inner.arrived.notified();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.count() >= n;
            }
        }
    }
}
