//! The shared simulator state behind every route, and the fault wrapper every provider call goes
//! through.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::Provider;
use crate::book::{Book, Ctx};
use crate::config::{FaultConfig, Faults, SimConfig};
use crate::divergence::{ControlError, NewPayout, PayoutChange};
use crate::fault_state::FaultState;
use crate::ledger::{Ledger, LedgerPayout};

/// What changes while the simulator runs, behind one lock (never held across an `.await`).
pub(crate) struct Inner {
    pub book: Book,
    pub faults: FaultState,
    pub rng: StdRng,
    pub time_scale: u32,
}

pub(crate) struct Sim {
    pub config: SimConfig,
    pub inner: Mutex<Inner>,
    pub state_file: Option<PathBuf>,
    /// Wakes the delivery worker when something was queued.
    pub wake: Notify,
}

/// An injected refusal, which each provider writes in its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// A 5xx: 500, 502 or 503 (`error_before`, `error_after`), 504 after a hang (`timeout`).
    Server(StatusCode),
    /// A 400 after the operation was done (`bad_request_after`).
    BadRequest,
    /// The provider's refusal for an account or configuration reason, nothing done
    /// (`config_error`).
    Configuration,
}

/// One request fault, rolled once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestFault {
    None,
    RateLimit,
    ErrorBefore(StatusCode),
    ConfigError,
    ErrorAfter,
    TimeoutBefore,
    TimeoutAfter,
    Drop,
    BadRequestAfter,
}

impl Sim {
    pub(crate) fn new(config: SimConfig, book: Book, state_file: Option<PathBuf>) -> Sim {
        let inner = Inner {
            book,
            faults: FaultState::new(config.faults.clone(), config.clock.now()),
            rng: StdRng::seed_from_u64(config.seed),
            time_scale: config.time_scale.max(1),
        };
        Sim {
            config,
            inner: Mutex::new(inner),
            state_file,
            wake: Notify::new(),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.config.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f`, which changes the books, on the books brought up to date with the clock, then
    /// persists them.
    pub(crate) fn with_book<R>(&self, f: impl FnOnce(&mut Book, &mut Ctx<'_>) -> R) -> R {
        self.run(true, f)
    }

    /// Runs `f`, which only reads (or changes what is not persisted), on the books brought up to
    /// date with the clock; persists only if bringing them up to date changed something.
    pub(crate) fn read_book<R>(&self, f: impl FnOnce(&mut Book, &mut Ctx<'_>) -> R) -> R {
        self.run(false, f)
    }

    fn run<R>(&self, writes: bool, f: impl FnOnce(&mut Book, &mut Ctx<'_>) -> R) -> R {
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut ctx = Ctx {
            now,
            scale: inner.time_scale,
            config: &self.config,
            faults: inner.faults.at(now),
            rng: &mut inner.rng,
        };
        let queued_before = inner.book.deliveries.len();
        let advanced = inner.book.advance(&mut ctx);
        let out = f(&mut inner.book, &mut ctx);
        if writes || advanced {
            self.persist(&inner.book);
        }
        if inner.book.deliveries.len() != queued_before {
            self.wake.notify_one();
        }
        out
    }

    pub(crate) fn persist(&self, book: &Book) {
        if let Some(path) = &self.state_file
            && let Err(e) = book.save(path)
        {
            tracing::warn!(error = %e, path = %path.display(), "could not save the simulator state");
        }
    }

    pub(crate) fn ledger(&self) -> Ledger {
        self.read_book(|book, _| book.ledger())
    }

    /// The faults in force now (those whose `for_ms` ran out are cleared).
    pub(crate) fn faults(&self) -> Faults {
        let now = self.now();
        self.lock().faults.at(now).clone()
    }

    /// Replaces one provider's faults; a `for_ms` counts from now.
    pub(crate) fn set_faults(&self, provider: Provider, config: FaultConfig) {
        let now = self.now();
        self.lock().faults.set(provider, config, now);
    }

    /// Replaces every provider's faults; a `for_ms` counts from now.
    pub(crate) fn set_all_faults(&self, faults: &Faults) {
        let now = self.now();
        self.lock().faults.set_all(faults, now);
    }

    pub(crate) fn time_scale(&self) -> u32 {
        self.lock().time_scale
    }

    pub(crate) fn set_time_scale(&self, scale: u32) {
        self.lock().time_scale = scale.max(1);
    }

    /// Changes a payout behind the client's back (no notification).
    pub(crate) fn change_payout(
        &self,
        provider: Provider,
        id: &str,
        change: &PayoutChange,
    ) -> Result<LedgerPayout, ControlError> {
        self.with_book(|book, ctx| book.change_payout(provider, id, change, ctx))
    }

    /// The provider loses a payout (no notification).
    pub(crate) fn lose_payout(&self, provider: Provider, id: &str) -> Result<LedgerPayout, ControlError> {
        self.with_book(|book, _| book.lose_payout(provider, id))
    }

    /// Makes a payout the client never asked for (no notification).
    pub(crate) fn add_payout(&self, provider: Provider, new: &NewPayout) -> Result<LedgerPayout, ControlError> {
        self.with_book(|book, ctx| book.add_payout(provider, new, ctx))
    }

    /// Counts a create attempt for `reference` before any fault can hide it.
    pub(crate) fn count_attempt(&self, provider: Provider, reference: Option<&str>) {
        if let Some(r) = reference {
            self.with_book(|book, _| book.count_attempt(provider, r));
        }
    }

    fn roll_fault(&self, provider: Provider, create: bool) -> (RequestFault, Duration, Duration) {
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let f = inner.faults.at(now).get(provider).clone();
        let latency = Duration::from_millis(f.latency_ms);
        if f.creates_only && !create {
            return (RequestFault::None, latency, f.hang());
        }
        let roll = inner.rng.random_range(0u32..100);
        let mut edge = 0u32;
        let mut hit = |pct: u8| {
            edge += u32::from(pct);
            roll < edge
        };
        let fault = if hit(f.rate_limit) {
            RequestFault::RateLimit
        } else if hit(f.error_before) {
            let codes = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ];
            RequestFault::ErrorBefore(codes[inner.rng.random_range(0..codes.len())])
        } else if hit(f.config_error) {
            RequestFault::ConfigError
        } else if hit(f.error_after) {
            RequestFault::ErrorAfter
        } else if hit(f.timeout) {
            if inner.rng.random_bool(0.5) {
                RequestFault::TimeoutBefore
            } else {
                RequestFault::TimeoutAfter
            }
        } else if hit(f.drop) {
            RequestFault::Drop
        } else if hit(f.bad_request_after) {
            RequestFault::BadRequestAfter
        } else {
            RequestFault::None
        };
        (fault, latency, f.hang())
    }

    /// Runs a provider operation under the provider's faults. `error` renders an injected
    /// refusal in the provider's format.
    pub(crate) async fn faulted<F>(&self, provider: Provider, error: fn(Injected) -> Response, op: F) -> Response
    where
        F: Future<Output = Response>,
    {
        self.faulted_as(provider, false, error, op).await
    }

    /// [`Self::faulted`] for a create (the one operation `creates_only` faults).
    pub(crate) async fn faulted_create<F>(&self, provider: Provider, error: fn(Injected) -> Response, op: F) -> Response
    where
        F: Future<Output = Response>,
    {
        self.faulted_as(provider, true, error, op).await
    }

    async fn faulted_as<F>(&self, provider: Provider, create: bool, error: fn(Injected) -> Response, op: F) -> Response
    where
        F: Future<Output = Response>,
    {
        let (fault, latency, hang) = self.roll_fault(provider, create);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if fault != RequestFault::None {
            tracing::info!(%provider, ?fault, "injecting a fault");
        }
        match fault {
            RequestFault::RateLimit => {
                let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            RequestFault::ErrorBefore(code) => return error(Injected::Server(code)),
            RequestFault::ConfigError => return error(Injected::Configuration),
            RequestFault::TimeoutBefore => {
                // If the client gives up, the connection closes and this future is dropped:
                // nothing is done, as when a request dies before reaching the provider's core.
                tokio::time::sleep(hang).await;
                return error(Injected::Server(StatusCode::GATEWAY_TIMEOUT));
            }
            RequestFault::None
            | RequestFault::ErrorAfter
            | RequestFault::TimeoutAfter
            | RequestFault::Drop
            | RequestFault::BadRequestAfter => {}
        }
        let response = op.await;
        match fault {
            RequestFault::ErrorAfter => error(Injected::Server(StatusCode::INTERNAL_SERVER_ERROR)),
            RequestFault::TimeoutAfter => {
                tokio::time::sleep(hang).await;
                error(Injected::Server(StatusCode::GATEWAY_TIMEOUT))
            }
            RequestFault::Drop => broken_response(response.status()),
            RequestFault::BadRequestAfter => error(Injected::BadRequest),
            RequestFault::None
            | RequestFault::RateLimit
            | RequestFault::ErrorBefore(_)
            | RequestFault::ConfigError
            | RequestFault::TimeoutBefore => response,
        }
    }
}

/// A response whose body fails half-way: the client sees the connection drop.
fn broken_response(status: StatusCode) -> Response {
    let stream = futures::stream::iter([
        Ok(bytes::Bytes::from_static(b"{\"cashout")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: connection dropped",
        )),
    ]);
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response from a body already serialised (amounts are written as exact number tokens).
pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response written with four-space indentation, the layout of the seeds' examples (seed
/// 001 lines 120–130, seed 003's JSON:API samples), so that they compare byte for byte.
pub(crate) fn pretty_json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match pretty(body) {
        Some(text) => json_text(status, text),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the simulator could not write its answer",
        )
            .into_response(),
    }
}

/// `body` as four-space indented JSON text.
pub(crate) fn pretty<T: serde::Serialize>(body: &T) -> Option<String> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    body.serialize(&mut ser).ok()?;
    String::from_utf8(out).ok()
}

/// A JSON number token written from exact decimal text (never through a float).
pub(crate) fn number(text: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(text.to_owned()).unwrap_or_else(|_| {
        serde_json::value::RawValue::from_string("0".to_owned()).unwrap_or_else(|_| unreachable!("0 is JSON"))
    })
}
