//! # cashout-provider-sim: the payout providers, simulated
//!
//! One HTTP server serving every provider under a path prefix — `/d24`, `/onspot`, `/tupay`
//! (D24 cashouts API v3) and `/cascad` (Cascad payout invoices) — faithful to the documented
//! APIs: signatures and credentials checked with the documented error codes, required fields and
//! regexps, unique references (D24 511, Cascad 409), status transitions and their restrictions,
//! id formats, masked account numbers, D24 form notifications without a status, Cascad
//! callbacks signed with `X-Signature`, both retried when the receiver fails.
//!
//! Outcomes are deterministic ([`TRIGGERS_HELP`]); faults are injected per provider
//! ([`FaultConfig`], [`FAULTS_HELP`]) from a seeded generator; `GET /_sim/ledger` is the ground
//! truth ([`Ledger`]). For reconciliation tests, payouts can be changed or made behind the
//! client's back, without a notification ([`SimHandle::change_payout`],
//! [`SimHandle::add_payout`], `PUT`/`POST /_sim/payouts/…`, [`CONTROL_HELP`]). It runs as the
//! `provider-sim` binary or in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = cashout_provider_sim::start(cashout_provider_sim::SimConfig::default(), listener).await?;
//! let d24_base_url = sim.base_url(cashout_provider_sim::Provider::D24); // http://127.0.0.1:PORT/d24
//! # let _ = d24_base_url;
//! assert!(sim.ledger().double_payouts().is_empty());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! This crate depends on no crate of the workspace: its status tables, error codes, wire types,
//! signatures, provider names and clock are its own reading of the provider documents
//! (`shared/seeds/`, `shared/PROVIDERS.md`), so that the adapters' contract tests compare two
//! independent readings and a mistake in one is caught by the other.

mod book;
mod cascad;
mod clock;
mod config;
mod control;
mod d24;
mod decimal;
mod deliver;
mod divergence;
mod fault_state;
mod ledger;
mod listed;
mod provider;
mod signing;
mod sim;
mod triggers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    CascadCredentials, D24Credentials, FaultConfig, FaultSpecError, Faults, MAX_FOR_MS, SimConfig, defaults,
};
pub use control::CONTROL_HELP;
pub use divergence::{ControlError, NewPayout, PayoutChange};
pub use ledger::{Ledger, LedgerDelivery, LedgerPayout, LedgerReference};
pub use provider::{Provider, UnknownProvider};
pub use triggers::TRIGGERS_HELP;

/// The fault knobs, for `--help` and the README.
pub const FAULTS_HELP: &str = "\
FAULTS (per provider: --d24-faults, --onspot-faults, --tupay-faults, --cascad-faults; all: --faults;
        or PUT /_sim/faults/{provider}). SPEC is key=value,key=value; rates are percentages of requests,
        rolled once per request from the seeded generator (--seed), at most one request fault each:
  rate_limit=P      429 Too Many Requests, Retry-After: 1; nothing done
  error_before=P    500/502/503 before anything is done
  config_error=P    refused for an account/configuration reason, nothing done: D24 family HTTP 401
                    {\"code\": 402, \"message\": \"Unregistered IP\"}; Cascad 403 (errors list, \"forbidden\")
  error_after=P     500 after the operation was done: the lost response (a create did create)
  timeout=P         hang hang_ms, then 504; half of them do the operation first
  drop=P            operation done, then the connection drops in the middle of the response
  hang_ms=MS        how long a timeout hangs (default 30000)
  latency_ms=MS     added to every response (not scaled)
  notify_drop=P     notification/callback never sent
  notify_duplicate=P  sent twice
  notify_reorder=P  held back 3 s (scaled) so that later ones overtake it
  bad_request_after=P  operation done, then 400 (seed 003: a Cascad 400 is not final, ask the status)
  accept_duplicate_references=true  stop enforcing unique external_id/reference_id (no 511/409):
                    proves that the client's lookup-before-create alone prevents double payouts
  creates_only=true  the request faults above hit creates only (lookups, holds, cancels answer)
  for_ms=MS         the faults last MS ms of the simulator's clock (not divided by the time scale)
                    from when they were set (start or PUT), then the provider's faults are cleared
                    (switches kept; GET /_sim/faults shows them cleared). 0 = until changed;
                    at most 86400000 (24 h), more is clamped. {\"error_before\": 100, \"for_ms\": 60000}:
                    the provider is down for a minute
SWITCHES (Cascad, same syntax):
  not_found_on_empty_filter=true  GET /payout-invoices?filter[reference_id]= with no invoice answers
                    404 instead of an empty list (seed 003 allows both; both mean \"none\"). Default false
  production_services=false  offer the test_* services only, not seed 003's card, swift_jpy and
                    bank_transfer_zar services. Default true
NOTIFICATIONS: D24 posts form-encoded notifications (no status) to notification_url on every status
  change, retried up to 5 more times 1 minute apart (scaled) until a 2xx; Cascad posts the JSON:API
  invoice with X-Signature = base64(sha1(secret+body+secret)) to callback_url, retried after 1, 2, 3...
  minutes (scaled), up to 100 times, until a 200. Deviation from D24 (ports 80/443 only): any port
  on loopback; URLs that are not on loopback are never posted to.";

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The state directory or file could not be read or created.
    #[error("simulator state in {path}: {source}")]
    State {
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The listener has no address.
    #[error("the listener has no local address: {0}")]
    Listener(std::io::Error),
    /// The HTTP client for notifications could not be built.
    #[error("the notification client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<sim::Sim>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts the simulator on `listener` (bind `127.0.0.1:0` for a free port). With a
/// `state_dir`, the books are loaded from it, kept in it after every change, and due
/// notifications the previous run had not delivered are sent again.
pub async fn start(config: SimConfig, listener: tokio::net::TcpListener) -> Result<SimHandle, SimError> {
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    let state_file = match &config.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| SimError::State {
                path: dir.clone(),
                source,
            })?;
            Some(dir.join("state.json"))
        }
        None => None,
    };
    let book = match &state_file {
        Some(path) => book::Book::load(path).map_err(|source| SimError::State {
            path: path.clone(),
            source,
        })?,
        None => book::Book::default(),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let sim = Arc::new(sim::Sim::new(config, book, state_file));
    let app = router(sim.clone());
    let (stop, stopped) = watch::channel(false);
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_stop.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the simulator server stopped");
        }
    });
    let worker = tokio::spawn(deliver::run(sim.clone(), client, stopped));
    tracing::info!(%addr, "provider simulator listening");
    Ok(SimHandle {
        addr,
        sim,
        stop,
        server,
        worker,
    })
}

/// Every provider under its name (`/d24`), then the control endpoints.
fn router(sim: Arc<sim::Sim>) -> Router {
    let providers = Provider::ALL.into_iter().fold(Router::new(), |router, p| {
        let api = match p {
            Provider::D24 | Provider::Onspot | Provider::Tupay => d24::router(sim.clone(), p),
            Provider::Cascad => cascad::router(sim.clone()),
        };
        router.nest(&format!("/{p}"), api)
    });
    providers.nest("/_sim", control::router(sim))
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A provider's base URL (`http://ADDR/d24`).
    pub fn base_url(&self, provider: Provider) -> String {
        format!("http://{}/{}", self.addr, provider.as_str())
    }

    /// The ground truth, brought up to date with the clock.
    pub fn ledger(&self) -> Ledger {
        self.sim.ledger()
    }

    /// The faults in force (a provider whose `for_ms` ran out shows its faults cleared).
    pub fn faults(&self) -> Faults {
        self.sim.faults()
    }

    /// Replaces one provider's faults; a `for_ms` counts from now on the simulator's clock.
    pub fn set_faults(&self, provider: Provider, faults: FaultConfig) {
        self.sim.set_faults(provider, faults);
    }

    /// Replaces every provider's faults; a `for_ms` counts from now on the simulator's clock.
    pub fn set_all_faults(&self, faults: Faults) {
        self.sim.set_all_faults(&faults);
    }

    /// Changes a payout's status, amount or currency behind the client's back, without a
    /// notification or callback (`PUT /_sim/payouts/{provider}/{payout_id}`); the ledger shows
    /// the payout as it now is.
    pub fn change_payout(
        &self,
        provider: Provider,
        payout_id: &str,
        change: &PayoutChange,
    ) -> Result<LedgerPayout, ControlError> {
        self.sim.change_payout(provider, payout_id, change)
    }

    /// The provider loses a payout, without a notification (`DELETE
    /// /_sim/payouts/{provider}/{payout_id}`): lookups, listings and the ledger no longer show
    /// it. Returns it as it was.
    pub fn lose_payout(&self, provider: Provider, payout_id: &str) -> Result<LedgerPayout, ControlError> {
        self.sim.lose_payout(provider, payout_id)
    }

    /// Makes a payout the client never asked for, as if someone else had made it on the
    /// account, without a notification or callback (`POST /_sim/payouts/{provider}`).
    pub fn add_payout(&self, provider: Provider, payout: &NewPayout) -> Result<LedgerPayout, ControlError> {
        self.sim.add_payout(provider, payout)
    }

    /// Changes the time scale for lifecycles planned from now on.
    pub fn set_time_scale(&self, scale: u32) {
        self.sim.set_time_scale(scale);
    }

    /// Stops serving (in-flight requests get up to 5 s) and stops the delivery worker; the
    /// state, if kept, is saved.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(5), &mut server).await.is_err() {
            server.abort();
        }
        let _ = self.worker.await;
        self.sim.with_book(|_, _| ());
    }
}
