//! The webhook receiver of the sustained scenario: answers 204 at once, counts deliveries per
//! second from the start of the load, and notes when each request's `PAID` webhook arrived;
//! beside it, a bare route for the bare-POST ceiling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::task::JoinHandle;

use super::load::counters;
use crate::bench::{BenchError, fail};

/// What the receiver counts.
pub(super) struct Sink {
    /// When the load started (set once it has).
    pub start: std::sync::OnceLock<Instant>,
    /// Deliveries in each second since.
    pub per_second: Vec<AtomicU64>,
    /// Deliveries in all.
    pub total: AtomicU64,
    /// (request id, arrival) of each `PAID` webhook.
    pub paid: Mutex<Vec<(String, Instant)>>,
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

/// The receiver's server: `/hook` (counted) and `/bare`.
pub(super) struct SinkServer {
    pub sink: Arc<Sink>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl SinkServer {
    /// Starts it on a free port, counting `seconds` seconds.
    pub async fn start(seconds: usize) -> Result<SinkServer, BenchError> {
        let sink = Arc::new(Sink {
            start: std::sync::OnceLock::new(),
            per_second: counters(seconds),
            total: AtomicU64::new(0),
            paid: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let app = Router::new()
            .route("/hook", post(self::sink))
            .route("/bare", post(bare))
            .with_state(sink.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SinkServer { sink, addr, server })
    }

    /// The URL of `path` (`/hook`, `/bare`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Deliveries so far.
    pub fn total(&self) -> u64 {
        self.sink.total.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.server.abort();
    }
}
