//! `sqs-pump`: feeds the local SQS queues (moto) to the functions served by `cargo lambda watch`,
//! like the event source mappings and the schedule do on AWS (see `cashout_local::pump`).

use std::time::Duration;

use cashout_local::pump::{PumpConfig, default_routes};
use clap::Parser;

/// Pump local SQS queues into `cargo lambda watch`.
#[derive(Debug, Parser)]
#[command(name = "sqs-pump", version, about)]
struct Args {
    /// cargo lambda's invoke endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    invoke_url: String,
    /// The stack name prefixing the queue names (as with `cashout-local --backend aws`).
    #[arg(long, default_value = "cashout-local", env = "CASHOUT_STACK")]
    stack: String,
    /// Create the table and queues first.
    #[arg(long)]
    create_resources: bool,
    /// Seconds between scheduled sweeps sent to the poller (0: none).
    #[arg(long, default_value_t = 60)]
    sweep_every: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let aws = aws_config::load_from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let urls = if args.create_resources {
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        match cashout_store::resources::create_all(&dynamodb, &sqs, &args.stack).await {
            Ok(created) => created.queue_urls,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the resources");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        match cashout_local::existing_resources(&sqs, &args.stack).await {
            Ok((_, urls)) => urls,
            Err(e) => {
                tracing::error!(error = %e, "cannot find the queues");
                return std::process::ExitCode::FAILURE;
            }
        }
    };
    let config = PumpConfig {
        invoke_url: args.invoke_url,
        routes: default_routes(),
        batch: 10,
        wait: Duration::from_secs(1),
        schedule: (args.sweep_every > 0).then(|| ("cashout-poller".to_owned(), Duration::from_secs(args.sweep_every))),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    cashout_local::pump::run(sqs, urls, config, stopped).await;
    std::process::ExitCode::SUCCESS
}
