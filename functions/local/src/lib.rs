//! cashout in one process: the merchant API, the provider-webhooks endpoint and every worker
//! (dispatch, poll, provider events, callbacks, the sweep) over one store and queue — the embedded
//! SQLite file by default, DynamoDB + SQS with `--backend aws` — and, unless `--no-sim`, the
//! provider simulators in-process with their state under the data directory (a restart of the
//! runner is not a restart of the providers).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cashout_app::http::{api_router, console_router, finish, portal_router, webhooks_router};
use cashout_app::sender::HttpWebhookSender;
use cashout_app::worker::WorkerOptions;
use cashout_app::{App, AppConfig};
use cashout_core::auth::{ApiKey, OperatorName, OperatorRole, Principal};
use cashout_core::ids::MerchantId;
use cashout_core::ports::{
    Clock, PayoutProvider, QueueName, Store, SystemClock, SystemIds, TaskQueue, TaskSource, WebhookSender,
};
use cashout_providers::{Providers, ProvidersConfig};
use cashout_store::QueueInspect;
use cashout_store::resources::{Definition, create_all, local_name};
use cashout_store::sealing::{KeyFile, Kms, Sealer};
use cashout_store::sqlite::SqliteStore;
use cashout_store::sqs::{QueueUrls, SqsQueue};
use clap::{Parser, ValueEnum};
use tokio::sync::watch;

pub mod pump;

/// Where state and queues live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// One SQLite file under the data directory (store and queues).
    Embedded,
    /// DynamoDB and SQS through the standard AWS configuration (`AWS_ENDPOINT_URL` for
    /// emulators).
    Aws,
}

/// How fast requests are checked and webhooks retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// Seconds: polls after 1 s, webhook retries after 0, 1, 2, 5… s (local runs, demos, tests).
    Local,
    /// The production schedule: polls after 60 s, 5 min ×5, then 30 min; webhook retries up to
    /// 10 h apart.
    Production,
}

/// `cashout-local`: run cashout on one machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "cashout-local", version, about, long_about = None)]
pub struct Args {
    /// Address of the API (and of `/webhooks/{provider}`).
    #[arg(long, default_value = "127.0.0.1:8080", env = "CASHOUT_LISTEN")]
    pub listen: SocketAddr,
    /// Directory for the embedded store and the simulators' state.
    #[arg(long, default_value = ".cashout", env = "CASHOUT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The merchant API key to register at start.
    #[arg(long, default_value = "sk_local_merchant", env = "CASHOUT_MERCHANT_KEY")]
    pub merchant_key: String,
    /// The merchant that key belongs to.
    #[arg(long, default_value = "merchant_local", env = "CASHOUT_MERCHANT_ID")]
    pub merchant_id: String,
    /// The API key of the admin operator named `local`, registered at start.
    #[arg(long, default_value = "sk_local_operator", env = "CASHOUT_OPERATOR_KEY")]
    pub operator_key: String,
    /// Another operator, as `NAME:ROLE:KEY` (ROLE `reviewer` or `admin`); repeatable, so that
    /// two-person approval can be tried on one machine
    /// (`--operator alice:reviewer:sk_alice --operator bob:reviewer:sk_bob`).
    #[arg(long = "operator", value_name = "NAME:ROLE:KEY", value_parser = parse_operator)]
    pub operators: Vec<OperatorFlag>,
    /// Address of the in-process provider simulators (same API as `provider-sim`).
    #[arg(long, default_value = "127.0.0.1:7070", env = "CASHOUT_SIM_LISTEN")]
    pub sim_listen: SocketAddr,
    /// Time-scale of the in-process simulators (integer speed-up of every lifecycle).
    #[arg(long, default_value_t = 1)]
    pub sim_time_scale: u32,
    /// Seed of the in-process simulators.
    #[arg(long)]
    pub sim_seed: Option<u64>,
    /// Do not start the simulators; use `--sim-url` (a separate `provider-sim`).
    #[arg(long)]
    pub no_sim: bool,
    /// With `--no-sim`: base URL of a `provider-sim` running with its default credentials.
    #[arg(long, default_value = "http://127.0.0.1:7070", env = "CASHOUT_SIM_URL")]
    pub sim_url: String,
    /// With `--no-sim`: real provider settings (base URLs, credentials) as a JSON file, in the
    /// format of `cashout_providers::ProvidersConfig::from_json`; instead of `--sim-url`.
    #[arg(long, env = "CASHOUT_PROVIDERS_FILE", requires = "no_sim")]
    pub providers_file: Option<PathBuf>,
    /// Store and queues.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    pub backend: Backend,
    /// With `--backend aws`: create the table and queues (from `infra/template.yaml`) first.
    #[arg(long)]
    pub create_resources: bool,
    /// With `--backend aws`: the stack name that prefixes the table and queue names.
    #[arg(long, default_value = "cashout-local", env = "CASHOUT_STACK")]
    pub stack: String,
    /// With `--backend aws`: the KMS key (id, ARN or alias) that wraps the data keys of endpoint
    /// signing secrets, as on AWS. Without it the key file `<data dir>/cashout.key` wraps them
    /// (DynamoDB Local has no KMS; see docs/store.md).
    #[arg(long, env = "CASHOUT_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,
    /// Base URL providers send notifications to (default: `http://<listen>`).
    #[arg(long, env = "CASHOUT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Requests at or under this amount (in their currency) are approved at once.
    #[arg(long, default_value_t = 10_000)]
    pub auto_approve_limit: u64,
    /// Polling and webhook-retry schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Local)]
    pub schedule: Schedule,
    /// Refuse private, loopback and link-local webhook endpoints. They are allowed by default
    /// only with the simulators on the embedded store (a laptop); wins over
    /// `--allow-private-webhooks`.
    #[arg(long)]
    pub forbid_private_webhooks: bool,
    /// Allow private, loopback and link-local webhook endpoints with real providers
    /// (`--providers-file`) or `--backend aws` too, where they are refused by default.
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// Backpressure: answer creates `429 overloaded` (with `Retry-After`) while more than this
    /// many tasks and events wait for the workers; 0 never pushes back.
    #[arg(long, default_value_t = 5_000, env = "CASHOUT_MAX_BACKLOG")]
    pub max_backlog: u64,
    /// Each merchant's and operator's API rate limit, `RATE/BURST` (calls a second, calls at
    /// once); over it, calls are answered `429 rate_limited` with `Retry-After`.
    #[arg(long, default_value = "50/100", env = "CASHOUT_RATE_LIMIT")]
    pub rate_limit: cashout_core::limit::RateLimit,
    /// Merchants with a limit of their own: `MERCHANT=RATE/BURST,…`.
    #[arg(long, default_value = "", env = "CASHOUT_RATE_LIMITS")]
    pub rate_limits: String,
    /// Failed authentications a client address may make, `RATE/BURST`; beyond, its calls are
    /// refused before any key is looked up.
    #[arg(long, default_value = "5/20", env = "CASHOUT_UNAUTHENTICATED_RATE_LIMIT")]
    pub unauthenticated_rate_limit: cashout_core::limit::RateLimit,
}

/// Why the runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Start-up failed.
    #[error("{0}")]
    Startup(String),
}

impl Args {
    /// Whether webhook endpoints may be private, loopback or link-local addresses: with the
    /// simulators on the embedded store (everything on one machine), unless forbidden; with real
    /// providers or AWS only when asked for.
    pub fn private_webhooks_allowed(&self) -> bool {
        if self.forbid_private_webhooks {
            return false;
        }
        let one_machine = self.providers_file.is_none() && matches!(self.backend, Backend::Embedded);
        one_machine || self.allow_private_webhooks
    }
}

fn startup(e: impl std::fmt::Display) -> RunError {
    RunError::Startup(e.to_string())
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })
}

/// The runner's configuration: its flags, and the breaker's `CASHOUT_BREAKER_*` thresholds from
/// the environment (as on AWS).
fn config(args: &Args, listen: SocketAddr) -> Result<AppConfig, RunError> {
    let mut config = match args.schedule {
        Schedule::Local => AppConfig::local(),
        Schedule::Production => AppConfig {
            allow_private_webhooks: true,
            ..AppConfig::default()
        },
    };
    config = config.with_auto_approve_limit(args.auto_approve_limit.into());
    config.allow_private_webhooks = args.private_webhooks_allowed();
    config.max_backlog = (args.max_backlog > 0).then_some(args.max_backlog);
    config.rate_limits = cashout_app::limits::RateLimits {
        default: args.rate_limit,
        unauthenticated: args.unauthenticated_rate_limit,
        ..cashout_app::limits::RateLimits::default()
    }
    .with_merchants(&args.rate_limits)
    .map_err(|e| startup(format!("--rate-limits: {e}")))?;
    config.notification_base_url = Some(args.public_url.clone().unwrap_or_else(|| format!("http://{listen}")));
    config.breaker =
        cashout_app::config::breaker_from(&|name| std::env::var(name).ok(), config.breaker).map_err(startup)?;
    config.reconcile =
        cashout_app::config::reconcile_from(&|name| std::env::var(name).ok(), config.reconcile).map_err(startup)?;
    Ok(config)
}

/// Runs until Ctrl-C (or SIGTERM). Prints the line `listening on http://ADDR` once serving.
pub async fn run(args: Args) -> Result<(), RunError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| startup(format!("data dir {}: {e}", args.data_dir.display())))?;

    let (stop, stopped) = watch::channel(false);
    let sim = if args.no_sim {
        None
    } else {
        let sim_config = cashout_provider_sim::SimConfig {
            state_dir: Some(args.data_dir.join("sim")),
            time_scale: args.sim_time_scale.max(1),
            seed: args.sim_seed.unwrap_or(cashout_provider_sim::SimConfig::default().seed),
            ..cashout_provider_sim::SimConfig::default()
        };
        let handle = cashout_provider_sim::start(sim_config, bind(args.sim_listen).await?)
            .await
            .map_err(startup)?;
        Some(handle)
    };
    let providers_config = match (&sim, &args.providers_file) {
        (Some(sim), _) => ProvidersConfig::for_simulator(&sim.url()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| startup(format!("{}: {e}", file.display())))?;
            ProvidersConfig::from_json(&text).map_err(startup)?
        }
        (None, None) => ProvidersConfig::for_simulator(&args.sim_url),
    };
    let coverage = providers_config.coverage();
    let providers = Arc::new(Providers::new(providers_config).map_err(startup)?);
    let sender = Arc::new(HttpWebhookSender::new(args.private_webhooks_allowed()).map_err(startup)?);
    let listener = bind(args.listen).await?;
    let listen = listener.local_addr().map_err(|source| RunError::Listen {
        addr: args.listen,
        source,
    })?;
    let config = config(&args, listen)?.with_coverage(coverage);

    match args.backend {
        Backend::Embedded => {
            let store =
                Arc::new(SqliteStore::open(&args.data_dir.join("cashout.sqlite3"), clock.clone()).map_err(startup)?);
            let app = App::new(
                store.clone(),
                store,
                providers,
                sender,
                clock,
                Arc::new(SystemIds),
                config,
            );
            serve(app, &args, listener, stop, stopped).await?;
        }
        Backend::Aws => {
            let aws = aws_config::load_from_env().await;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
            let sqs = aws_sdk_sqs::Client::new(&aws);
            let (table, urls) = if args.create_resources {
                let created = create_all(&dynamodb, &sqs, &args.stack).await.map_err(startup)?;
                (created.table_name, created.queue_urls)
            } else {
                existing_resources(&sqs, &args.stack).await?
            };
            let sealer = match &args.kms_key_id {
                Some(key) => Sealer::from(Kms::from_sdk(&aws, key.clone())),
                None => Sealer::from(KeyFile::load_or_create(&args.data_dir.join("cashout.key")).map_err(startup)?),
            };
            let store =
                Arc::new(cashout_store::dynamo::DynamoStore::new(dynamodb, table, clock.clone()).with_sealer(sealer));
            let queue = Arc::new(SqsQueue::new(sqs, urls, clock.clone()));
            let app = App::new(store, queue, providers, sender, clock, Arc::new(SystemIds), config);
            serve(app, &args, listener, stop, stopped).await?;
        }
    }
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

/// The table and queues of a stack that already exist.
pub async fn existing_resources(sqs: &aws_sdk_sqs::Client, stack: &str) -> Result<(String, QueueUrls), RunError> {
    let def = Definition::embedded().map_err(startup)?;
    let mut urls = QueueUrls::default();
    for spec in def.queues.values() {
        let url_of = async |suffix: &str| -> Result<String, RunError> {
            let name = local_name(stack, suffix);
            sqs.get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| startup(format!("queue {name}: {e} (pass --create-resources to create it)")))?
                .queue_url
                .ok_or_else(|| startup(format!("queue {name} has no URL")))
        };
        let main = url_of(&spec.name_suffix).await?;
        let dead = url_of(&spec.dead_letter_name_suffix).await?;
        urls.insert(spec.queue, main, dead);
    }
    Ok((local_name(stack, &def.table.name_suffix), urls))
}

async fn serve<S, Q, P, W>(
    app: App<S, Q, P, W>,
    args: &Args,
    listener: tokio::net::TcpListener,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
) -> Result<(), RunError>
where
    S: Store + 'static,
    Q: TaskQueue + TaskSource + QueueInspect + 'static,
    P: PayoutProvider + 'static,
    W: WebhookSender + 'static,
{
    let merchant = MerchantId::new(args.merchant_id.clone()).map_err(startup)?;
    register_keys(&app, args, &merchant).await?;
    let workers = spawn_workers(&app, args.schedule, &stopped);

    let router = finish(
        api_router(app.clone())
            .merge(console_router(app.clone()))
            .merge(portal_router(app.clone()))
            .merge(webhooks_router(app)),
    );
    let addr = listener.local_addr().map_err(startup)?;
    // The one line scripts and people wait for.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "cashout listening on http://{addr}  merchant {merchant} key: {}  operator key: {}",
            args.merchant_key, args.operator_key
        );
    }
    let mut server_stopped = stopped.clone();
    // The peer's address: failed authentications are limited per client address.
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = server_stopped.changed().await;
        });
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    let (served, ()) = tokio::join!(server.into_future(), signal);
    served.map_err(startup)?;
    for w in workers {
        let _ = w.await;
    }
    Ok(())
}

/// The local merchant's and operator's keys, from the flags.
async fn register_keys<S: Store, Q, P, W>(
    app: &App<S, Q, P, W>,
    args: &Args,
    merchant: &MerchantId,
) -> Result<(), RunError> {
    app.register_api_key(
        &ApiKey::new(args.merchant_key.clone()),
        Principal::Merchant {
            merchant_id: merchant.clone(),
        },
        Some("local merchant".into()),
    )
    .await
    .map_err(startup)?;
    let local = OperatorName::new("local").map_err(startup)?;
    app.ensure_operator(local, OperatorRole::Admin, &ApiKey::new(args.operator_key.clone()))
        .await
        .map_err(startup)?;
    for op in &args.operators {
        app.ensure_operator(op.name.clone(), op.role, &ApiKey::new(op.key.clone()))
            .await
            .map_err(startup)?;
    }
    Ok(())
}

/// An operator given by flag.
#[derive(Debug, Clone)]
pub struct OperatorFlag {
    /// Their name.
    pub name: OperatorName,
    /// Their role.
    pub role: OperatorRole,
    /// Their API key.
    pub key: String,
}

/// Reads `NAME:ROLE:KEY`.
fn parse_operator(text: &str) -> Result<OperatorFlag, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(name), Some(role), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected NAME:ROLE:KEY (ROLE reviewer or admin)".into());
    };
    let name = OperatorName::new(name).map_err(|e| e.to_string())?;
    let role = role.parse()?;
    if key.is_empty() || key.len() > 256 || key.chars().any(char::is_whitespace) {
        return Err("the key is 1 to 256 characters without spaces".into());
    }
    Ok(OperatorFlag {
        name,
        role,
        key: key.to_owned(),
    })
}

/// Every worker of the process, each running until `stopped`: the publisher, one pull loop per
/// queue, the backlog gauge and the sweep.
fn spawn_workers<S, Q, P, W>(
    app: &App<S, Q, P, W>,
    schedule: Schedule,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>>
where
    S: Store + 'static,
    Q: TaskQueue + TaskSource + QueueInspect + 'static,
    P: PayoutProvider + 'static,
    W: WebhookSender + 'static,
{
    let mut workers = Vec::new();
    {
        let (app, stopped) = (app.clone(), stopped.clone());
        workers.push(tokio::spawn(async move { app.run_publisher(stopped).await }));
    }
    for queue in QueueName::ALL {
        let (app, stopped) = (app.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            app.run_queue(queue, WorkerOptions::for_queue(queue), stopped).await
        }));
    }
    {
        let (app, stopped) = (app.clone(), stopped.clone());
        workers.push(tokio::spawn(async move { watch_backlog(&app, stopped).await }));
    }
    let sweep_every = match schedule {
        Schedule::Local => Duration::from_secs(1),
        Schedule::Production => Duration::from_secs(60),
    };
    {
        let (app, stopped) = (app.clone(), stopped.clone());
        workers.push(tokio::spawn(async move { app.run_sweeper(sweep_every, stopped).await }));
    }
    workers
}

/// How often the backlog is measured for the API's backpressure.
const BACKLOG_EVERY: Duration = Duration::from_millis(200);

/// Measures the work waiting (tasks visible in every queue, events waiting for the publisher)
/// every [`BACKLOG_EVERY`] into the gauge the API's backpressure reads, until `stopped`.
async fn watch_backlog<S, Q, P, W>(app: &App<S, Q, P, W>, mut stopped: watch::Receiver<bool>)
where
    Q: QueueInspect,
{
    loop {
        let mut waiting = app.pipeline.events_waiting();
        for queue in QueueName::ALL {
            match app.queue.depth(queue).await {
                Ok(depth) => waiting = waiting.saturating_add(depth.visible),
                Err(e) => tracing::debug!(queue = %queue, error = %e, "could not measure the queue"),
            }
        }
        app.pipeline.set_backlog(waiting);
        tokio::select! {
            () = tokio::time::sleep(BACKLOG_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::Args;

    fn allowed(flags: &[&str]) -> bool {
        let argv = std::iter::once("cashout-local").chain(flags.iter().copied());
        Args::try_parse_from(argv).unwrap().private_webhooks_allowed()
    }

    #[test]
    fn private_webhooks_are_allowed_by_default_only_with_the_simulators_on_the_embedded_store() {
        assert!(allowed(&[]), "in-process simulators, embedded store");
        assert!(
            allowed(&["--no-sim", "--sim-url", "http://127.0.0.1:7070"]),
            "a separate simulator"
        );
        assert!(!allowed(&["--backend", "aws"]));
        assert!(
            !allowed(&["--no-sim", "--providers-file", "providers.json"]),
            "real providers"
        );
        assert!(allowed(&["--backend", "aws", "--allow-private-webhooks"]));
        assert!(allowed(&[
            "--no-sim",
            "--providers-file",
            "p.json",
            "--allow-private-webhooks"
        ]));
        assert!(!allowed(&["--forbid-private-webhooks"]));
        assert!(
            !allowed(&["--forbid-private-webhooks", "--allow-private-webhooks"]),
            "forbidding wins"
        );
    }
}
