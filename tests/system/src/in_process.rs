//! cashout in the harness's own process, over any store and queue: the same routers, workers and
//! sweep the local runner mounts (`functions/local`), the provider simulators in memory, and —
//! for the benchmarks only — a no-op route on the same server, the ceiling of the API figures.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::routing::post;
use cashout_app::http::{api_router, finish, webhooks_router};
use cashout_app::sender::HttpWebhookSender;
use cashout_app::worker::WorkerOptions;
use cashout_app::{App, AppConfig};
use cashout_core::auth::{ApiKey, Principal};
use cashout_core::ids::MerchantId;
use cashout_core::ports::{Clock, QueueName, Store, SystemClock, SystemIds, TaskQueue, TaskSource};
use cashout_provider_sim::{SimConfig, SimHandle};
use cashout_providers::{Providers, ProvidersConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The merchant every harness acts for.
pub const MERCHANT: &str = "merchant_bench";
/// Its API key.
pub const MERCHANT_KEY: &str = "sk_bench_merchant";
/// The operator key.
pub const OPERATOR_KEY: &str = "sk_bench_operator";
/// The benchmark-only route that does nothing (the ceiling of the API figures).
pub const NOOP_PATH: &str = "/_bench/noop";

/// The app type the harness runs.
pub type BenchApp<S, Q> = App<S, Q, Providers, HttpWebhookSender>;

/// A running in-process system.
pub struct System<S, Q> {
    /// The app (its store and queue are the harness's to inspect).
    pub app: BenchApp<S, Q>,
    /// `http://127.0.0.1:PORT` of the API, `/webhooks/{provider}` and the no-op route.
    pub base: String,
    /// The simulators.
    pub sim: SimHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Why the system could not start.
#[derive(Debug, thiserror::Error)]
#[error("starting the in-process system: {0}")]
pub struct StartError(String);

fn err(e: impl std::fmt::Display) -> StartError {
    StartError(e.to_string())
}

async fn noop(_body: Bytes) -> (StatusCode, [(header::HeaderName, &'static str); 1], &'static str) {
    (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], "{}")
}

impl<S, Q> System<S, Q>
where
    S: Store + 'static,
    Q: TaskQueue + TaskSource + 'static,
{
    /// Starts the simulators and the HTTP server (no workers yet: see [`Self::start_workers`]).
    /// `config.notification_base_url` is set to this server.
    pub async fn start(
        store: Arc<S>,
        queue: Arc<Q>,
        sim_config: SimConfig,
        mut config: AppConfig,
    ) -> Result<System<S, Q>, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sim = cashout_provider_sim::start(
            sim_config,
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(err)?,
        )
        .await
        .map_err(err)?;
        let providers_config = ProvidersConfig::for_simulator(&sim.url());
        config.coverage = providers_config.coverage();
        let providers = Arc::new(Providers::new(providers_config).map_err(err)?);
        let sender = Arc::new(HttpWebhookSender::new(true).map_err(err)?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(err)?;
        let base = format!("http://{}", listener.local_addr().map_err(err)?);
        config.notification_base_url = Some(base.clone());
        config.allow_private_webhooks = true;
        let app = App::new(store, queue, providers, sender, clock, Arc::new(SystemIds), config);
        app.register_api_key(
            &ApiKey::new(MERCHANT_KEY),
            Principal::Merchant {
                merchant_id: MerchantId::new(MERCHANT).map_err(err)?,
            },
            Some("bench merchant".into()),
        )
        .await
        .map_err(err)?;
        app.register_api_key(&ApiKey::new(OPERATOR_KEY), Principal::admin("ops"), None)
            .await
            .map_err(err)?;

        let (stop, stopped) = watch::channel(false);
        let router = finish(
            api_router(app.clone())
                .merge(webhooks_router(app.clone()))
                .merge(Router::new().route(NOOP_PATH, post(noop))),
        );
        let mut server_stop = stopped.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = server_stop.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "bench server stopped");
            }
        });
        Ok(System {
            app,
            base,
            sim,
            stop,
            tasks: vec![server],
        })
    }

    /// Starts a worker on each of `queues` (the local runner's pull loop).
    pub fn start_workers(&mut self, queues: &[QueueName]) {
        for &queue in queues {
            let (app, stopped) = (self.app.clone(), self.stop.subscribe());
            self.tasks.push(tokio::spawn(async move {
                app.run_queue(queue, WorkerOptions::for_queue(queue), stopped).await;
            }));
        }
    }

    /// Starts the periodic sweep.
    pub fn start_sweeper(&mut self, every: Duration) {
        let (app, stopped) = (self.app.clone(), self.stop.subscribe());
        self.tasks
            .push(tokio::spawn(async move { app.run_sweeper(every, stopped).await }));
    }

    /// Stops the server, the workers and the simulators; in-flight tasks finish first.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.sim.shutdown().await;
    }
}
