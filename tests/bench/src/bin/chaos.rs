//! `chaos`: drives cashout through provider faults, a failing receiver and `kill -9`, then checks
//! every invariant against the simulators' ledger and the receiver's log. Exits 1 on any
//! violation. See `RELIABILITY.md`.
//!
//! ```sh
//! ./scripts/chaos                                   # 1,000 requests embedded + 200 on DynamoDB Local and moto
//! cargo run --release -p cashout-bench --bin chaos -- --backend embedded --requests 200
//! cargo run --release -p cashout-bench --bin chaos -- --backend embedded --no-outage
//! ```
//!
//! By default D24 goes down during the creates (`--outage-timeouts-s` of timeouts, then
//! `--outage-errors-s` of 5xx) while a quarter of the requests, BR/BRL without a `provider`, may
//! fail over to Onspot.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Duration;

use cashout_bench::chaos::{ChaosConfig, ChaosReport, Outage, run_with};
use cashout_system::runner::{Backend, default_binary};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Embedded,
    Aws,
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "cashout under faults, failing receivers and kill -9; non-zero exit on any violation"
)]
struct Args {
    /// Which backends.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Requests on the embedded backend.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Requests on DynamoDB Local + moto (slower emulators: a smaller run).
    #[arg(long, default_value_t = 200)]
    aws_requests: usize,
    /// kill -9 + restarts of the runner per backend.
    #[arg(long, default_value_t = 3)]
    kills: usize,
    /// Concurrent merchant clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seed of the plan, the simulators and the receiver.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Simulator time scale.
    #[arg(long, default_value_t = 10)]
    time_scale: u32,
    /// Share of deliveries the receiver refuses.
    #[arg(long, default_value_t = 30)]
    fail_percent: u8,
    /// Seconds allowed after the last create for everything to settle.
    #[arg(long, default_value_t = 600)]
    settle_timeout: u64,
    /// The cashout-local binary (default: next to this one).
    #[arg(long)]
    runner: Option<PathBuf>,
    /// Where data, logs and reports go (default: target/chaos).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// No provider outage during the creates.
    #[arg(long)]
    no_outage: bool,
    /// Seconds during which every D24 call times out (a create's outcome unknown; half of them
    /// done), once a quarter of the requests are played.
    #[arg(long, default_value_t = 10)]
    outage_timeouts_s: u64,
    /// Seconds of 5xx on every D24 call after the timeouts; then D24 comes back.
    #[arg(long, default_value_t = 15)]
    outage_errors_s: u64,
    /// RUST_LOG of the runner.
    #[arg(long, default_value = "info,tower_http=warn,aws=warn")]
    runner_log: String,
}

fn print(report: &ChaosReport) {
    println!("\n== chaos on {} ==", report.backend);
    println!(
        "requests {} · kills {} (ready again after {:?} ms) · create retries {} · duplicate creates {}",
        report.requests, report.kills, report.restart_ready_ms, report.create_retries, report.duplicate_creates
    );
    println!("why creates were repeated: {:?}", report.create_retry_reasons);
    println!("final statuses: {:?}", report.statuses);
    println!("legitimately waiting: {:?}", report.waiting);
    println!("payouts at the providers: {:?}", report.payouts);
    println!(
        "provider create requests {} (at most {} for one reference) · double payouts {} · provider notifications {}",
        report.provider_create_attempts,
        report.max_create_attempts_per_reference,
        report.double_payouts,
        report.provider_notifications
    );
    println!(
        "events {} · deliveries received {} (refused {}, accepted duplicates {}) · events replayed after exhausting retries {}",
        report.events,
        report.deliveries_received,
        report.deliveries_refused,
        report.duplicate_deliveries,
        report.replayed_events
    );
    println!(
        "creates took {} s · settled {} after {} s",
        report.create_phase_s, report.settled, report.settle_s
    );
    println!(
        "requests paid twice (over every provider and attempt reference) {} · most payouts for one request {}",
        report.requests_paid_twice, report.max_payouts_per_request
    );
    println!(
        "routed (no provider named) {} · failed over {} · left attempts by reason {:?} · their final statuses {:?}",
        report.routed_requests, report.failed_over, report.failovers_by_reason, report.failed_over_statuses
    );
    println!("last provider attempt: {:?}", report.final_providers);
    if let Some(o) = &report.outage {
        println!(
            "outage of {} at {} s (request {}): {} s of timeouts ({} creates received, {} of them created a payout), then {} s of 5xx ({} creates refused)",
            o.provider,
            o.started_at_s,
            o.started_at_request,
            o.timeouts_s,
            o.creates_during_timeouts,
            o.payouts_created_during_timeouts,
            o.errors_s,
            o.creates_during_errors
        );
    }
    println!(
        "provider health read {} of {} times; circuit transitions:",
        report.health_polls.0, report.health_polls.1
    );
    for t in &report.circuit_transitions {
        println!(
            "  {:>7.2} s {} {} → {} (opened {} times)",
            t.at_s, t.provider, t.from, t.to, t.times_opened
        );
    }
    if let Some(st) = &report.statement {
        println!(
            "statement {}..{} (operator, every merchant): {} lines{}",
            st.from,
            st.to,
            st.lines,
            st.error
                .as_deref()
                .map(|e| format!(", NOT READ: {e}"))
                .unwrap_or_default()
        );
        for (currency, c) in &st.currencies {
            println!(
                "  {currency}: {} lines · paid {} (ledger {}; {} PAID lines, {} paid payouts) · reversed {} (ledger {}; {} lines, {} payouts) · {}",
                c.lines,
                c.statement_paid,
                c.ledger_paid,
                c.paid_lines,
                c.paid_payouts,
                c.statement_reversed,
                c.ledger_reversed,
                c.reversed_lines,
                c.reversed_payouts,
                if c.matches { "match" } else { "MISMATCH" }
            );
        }
        println!("  differences per reference: {}", st.differences.len());
        for d in &st.differences {
            println!("    {d}");
        }
    }
    if report.violations.is_empty() {
        println!("violations: none");
    } else {
        println!("VIOLATIONS ({}):", report.violations.len());
        for v in &report.violations {
            println!("  - {v}");
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent()?.parent().map(|t| t.join("chaos")))
            .unwrap_or_else(|| PathBuf::from("target/chaos"))
    });
    let mut runs = Vec::new();
    if matches!(args.backend, Which::Embedded | Which::Both) {
        runs.push((Backend::Embedded, args.requests));
    }
    if matches!(args.backend, Which::Aws | Which::Both) {
        let stack = format!("chaos{}", std::process::id());
        match Backend::aws_from_env(&stack) {
            Ok(b) => runs.push((b, args.aws_requests)),
            Err(e) => {
                eprintln!("chaos: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let mut failed = false;
    for (backend, requests) in runs {
        let dir = work.join(backend.name());
        let _ = std::fs::remove_dir_all(&dir);
        let config = ChaosConfig {
            runner: args.runner.clone().unwrap_or_else(default_binary),
            backend,
            requests,
            kills: args.kills,
            clients: args.clients,
            seed: args.seed,
            time_scale: args.time_scale,
            receiver_fail_percent: args.fail_percent,
            settle_timeout: Duration::from_secs(args.settle_timeout),
            work_dir: dir.clone(),
            rust_log: args.runner_log.clone(),
            verbose: true,
        };
        let outage = (!args.no_outage).then(|| Outage {
            timeouts: Duration::from_secs(args.outage_timeouts_s),
            errors: Duration::from_secs(args.outage_errors_s),
            ..Outage::default()
        });
        match run_with(config, outage).await {
            Ok(report) => {
                print(&report);
                let path = dir.join("report.json");
                let _ = std::fs::write(
                    &path,
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default(),
                );
                println!("report: {} (runner logs beside it)", path.display());
                failed |= !report.violations.is_empty();
            }
            Err(e) => {
                eprintln!("chaos could not run: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
