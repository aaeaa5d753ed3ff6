//! `provider-sim`: the payout provider simulators as one process. See `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cashout_provider_sim::{
    CONTROL_HELP, CascadCredentials, D24Credentials, FAULTS_HELP, FaultConfig, Faults, SimConfig, TRIGGERS_HELP,
    defaults,
};
use clap::Parser;

const AFTER_HELP: &str = concat!(
    "ENDPOINTS: http://ADDR/d24, /onspot, /tupay (then /v3/cashout, /v3/cashout/status, /v3/cashout/cancel)\n",
    "           http://ADDR/cascad (then /payout-prerequest, /payout-services, /payout-invoices[/{id}[/process]])\n"
);

/// Simulators of the payout providers (D24, Onspot, Tupay, Cascad) with fault injection.
#[derive(Debug, Parser)]
#[command(
    name = "provider-sim",
    version,
    after_help = "Run with --help for the endpoints, the test triggers, the fault knobs and the control endpoint.",
    after_long_help = format!("{AFTER_HELP}\n{TRIGGERS_HELP}\n\n{FAULTS_HELP}\n\n{CONTROL_HELP}")
)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = defaults::LISTEN)]
    listen: SocketAddr,

    /// D24 cashout API login.
    #[arg(long, default_value = defaults::D24_LOGIN)]
    d24_login: String,
    /// D24 cashout API pass.
    #[arg(long, default_value = defaults::D24_PASS)]
    d24_pass: String,
    /// D24 API Signature secret (Payload-Signature, notification control).
    #[arg(long, default_value = defaults::D24_SECRET)]
    d24_secret: String,

    /// Onspot cashout API login.
    #[arg(long, default_value = defaults::ONSPOT_LOGIN)]
    onspot_login: String,
    /// Onspot cashout API pass.
    #[arg(long, default_value = defaults::ONSPOT_PASS)]
    onspot_pass: String,
    /// Onspot API Signature secret.
    #[arg(long, default_value = defaults::ONSPOT_SECRET)]
    onspot_secret: String,

    /// Tupay cashout API login.
    #[arg(long, default_value = defaults::TUPAY_LOGIN)]
    tupay_login: String,
    /// Tupay cashout API pass.
    #[arg(long, default_value = defaults::TUPAY_PASS)]
    tupay_pass: String,
    /// Tupay API Signature secret.
    #[arg(long, default_value = defaults::TUPAY_SECRET)]
    tupay_secret: String,

    /// Cascad commerce account id (Basic auth user name).
    #[arg(long, default_value = defaults::CASCAD_ACCOUNT)]
    cascad_account: String,
    /// Cascad API key (Basic auth password).
    #[arg(long, default_value = defaults::CASCAD_API_KEY)]
    cascad_api_key: String,
    /// Cascad callback secret (signs X-Signature).
    #[arg(long, default_value = defaults::CASCAD_SECRET)]
    cascad_secret: String,
    /// Cascad public key (public API: pre-request).
    #[arg(long, default_value = defaults::CASCAD_PUBLIC_KEY)]
    cascad_public_key: String,

    /// Seed of the random generator (faults, ids, success rates): same seed and same requests,
    /// same run.
    #[arg(long, default_value_t = defaults::SEED)]
    seed: u64,
    /// Integer speed-up of every lifecycle delay and retry gap (1 = real time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    time_scale: u32,
    /// Keep the ledger in DIR/state.json and resume from it (default: in memory only).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Faults for every provider (see FAULTS below).
    #[arg(long, value_name = "SPEC")]
    faults: Option<FaultConfig>,
    /// Faults for D24 (overrides --faults).
    #[arg(long, value_name = "SPEC")]
    d24_faults: Option<FaultConfig>,
    /// Faults for Onspot (overrides --faults).
    #[arg(long, value_name = "SPEC")]
    onspot_faults: Option<FaultConfig>,
    /// Faults for Tupay (overrides --faults).
    #[arg(long, value_name = "SPEC")]
    tupay_faults: Option<FaultConfig>,
    /// Faults for Cascad (overrides --faults).
    #[arg(long, value_name = "SPEC")]
    cascad_faults: Option<FaultConfig>,
}

impl Args {
    fn into_config(self) -> (SocketAddr, SimConfig) {
        let mut faults = self.faults.map(Faults::all).unwrap_or_default();
        if let Some(f) = self.d24_faults {
            faults.d24 = f;
        }
        if let Some(f) = self.onspot_faults {
            faults.onspot = f;
        }
        if let Some(f) = self.tupay_faults {
            faults.tupay = f;
        }
        if let Some(f) = self.cascad_faults {
            faults.cascad = f;
        }
        let d24 = |login, pass, secret| D24Credentials { login, pass, secret };
        let config = SimConfig {
            d24: d24(self.d24_login, self.d24_pass, self.d24_secret),
            onspot: d24(self.onspot_login, self.onspot_pass, self.onspot_secret),
            tupay: d24(self.tupay_login, self.tupay_pass, self.tupay_secret),
            cascad: CascadCredentials {
                account: self.cascad_account,
                api_key: self.cascad_api_key,
                secret: self.cascad_secret,
                public_key: self.cascad_public_key,
            },
            seed: self.seed,
            time_scale: self.time_scale,
            faults,
            state_dir: self.state_dir,
            ..SimConfig::default()
        };
        (self.listen, config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (listen, config) = Args::parse().into_config();
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let sim = match cashout_provider_sim::start(config, listener).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    announce(&sim.url());
    stopped().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(clippy::print_stdout)]
fn announce(url: &str) {
    println!("provider-sim listening on {url} (d24, onspot, tupay, cascad; control at {url}/_sim)");
}
