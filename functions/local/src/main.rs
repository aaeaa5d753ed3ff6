//! `cashout-local`: the whole of cashout in one process (see `cashout_local`).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,aws=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cashout_local::run(cashout_local::Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cashout-local stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
