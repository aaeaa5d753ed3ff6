//! `bench`: prints cashout's throughput, cost and footprint figures, each next to its ceiling
//! taken in the same run, and writes them to `target/bench/latest.json`. See `BENCHMARKS.md`.
//!
//! ```sh
//! ./scripts/bench                 # everything (starts DynamoDB Local and moto for the cost figures)
//! cargo run --release -p cashout-bench --bin bench -- --only api,webhooks,lifecycle
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::float_arithmetic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cashout_bench::{bench, footprint, statement, sustained};
use cashout_system::machine::Machine;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "cashout's figures, each next to its ceiling")]
struct Args {
    /// Which benchmarks: sustained, api, webhooks, lifecycle, cost, footprint (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sustained,api,webhooks,lifecycle,cost,footprint"
    )]
    only: Vec<String>,
    /// Seconds per API run (each concurrency runs the no-op route, then create).
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// API concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    levels: Vec<usize>,
    /// Webhook deliveries per run.
    #[arg(long, default_value_t = 2000)]
    deliveries: u64,
    /// Cashouts in the lifecycle run.
    #[arg(long, default_value_t = 400)]
    lifecycle: usize,
    /// Creating clients in the lifecycle run.
    #[arg(long, default_value_t = 8)]
    lifecycle_concurrency: usize,
    /// Cashouts in the cost run (DynamoDB Local + moto).
    #[arg(long, default_value_t = 20)]
    cost_requests: usize,
    /// Sustained scenario: creating clients (connections), one run per value; the headline is
    /// the run at 32 (or the last).
    #[arg(long, value_delimiter = ',', default_value = "8,32,64")]
    connections: Vec<usize>,
    /// Sustained scenario: the runner's `--schedule` (local or production).
    #[arg(long, default_value = "local")]
    schedule: String,
    /// Where the SVG charts of the sustained scenario go (default: `benchmarks/` next to
    /// BENCHMARKS.md).
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Sustained scenario: warm-up seconds before the measured window.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Sustained scenario: seconds of the measured window (300 for the no-decay check).
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// Sustained scenario: the longest wait, after the load, for every owed webhook.
    #[arg(long, default_value_t = 20)]
    drain: u64,
    /// Where the JSON goes (default: target/bench/latest.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `statement` (not in the default set): requests seeded for the statement scenario.
    #[arg(long, default_value_t = 100_000)]
    statement_requests: usize,
    /// `statement`: the stores it runs on (`embedded`, `aws`).
    #[arg(long, value_delimiter = ',', default_value = "embedded,aws")]
    statement_backends: Vec<String>,
    /// `statement`: concurrent seeding tasks.
    #[arg(long, default_value_t = 32)]
    seed_concurrency: usize,
}

fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/bench → target
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The JSON being written, and whether any benchmark failed.
struct Results {
    json: Value,
    failed: bool,
}

impl Results {
    fn new(machine: &Machine) -> Results {
        Results {
            json: json!({
                "taken_at": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "machine": machine,
                "command": std::env::args().collect::<Vec<_>>().join(" "),
            }),
            failed: false,
        }
    }

    /// Records a figure under `name`, or its error (the run then fails).
    fn report(&mut self, name: &str, value: Result<Value, bench::BenchError>) {
        match value {
            Ok(v) => self.json[name] = v,
            Err(e) => {
                eprintln!("bench {name}: {e}");
                self.json[name] = json!({ "error": e.to_string() });
                self.failed = true;
            }
        }
    }

    /// Writes the JSON to `out`; whether everything succeeded.
    fn write(mut self, out: &Path) -> bool {
        if let Some(dir) = out.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match serde_json::to_string_pretty(&self.json).map(|text| std::fs::write(out, text)) {
            Ok(Ok(())) => println!("\nresults: {}", out.display()),
            _ => {
                eprintln!("could not write {}", out.display());
                self.failed = true;
            }
        }
        !self.failed
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
    let wants = |name: &str| args.only.iter().any(|o| o == name);
    let machine = Machine::detect();
    println!(
        "machine: {} · {} cores · {} MiB · Linux {} · {}",
        machine.cpu, machine.cores, machine.memory_mib, machine.kernel, machine.rustc
    );
    let mut results = Results::new(&machine);
    if wants("sustained") {
        run_sustained(&args, &mut results).await;
    }
    // API creates/s by concurrency: the lifecycle's ceiling.
    let mut create_ceiling = HashMap::new();
    if wants("api") {
        run_api(&args, &mut results, &mut create_ceiling).await;
    }
    if wants("webhooks") {
        run_webhooks(&args, &mut results).await;
    }
    if wants("lifecycle") {
        run_lifecycle(&args, &mut results, &create_ceiling).await;
    }
    if wants("cost") {
        run_cost(&args, &mut results).await;
    }
    if wants("footprint") {
        run_footprint(&mut results).await;
    }
    if wants("statement") {
        run_statement(&args, &mut results).await;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("bench").join("latest.json"));
    if results.write(&out) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// The sustained scenario at each number of connections, then its charts.
async fn run_sustained(args: &Args, results: &mut Results) {
    let mut runs = Vec::new();
    for &connections in &args.connections {
        println!(
            "\nSustained system: cashout-local (every worker) loaded from outside by {connections} clients; {} s warm-up, {} s window, drain up to {} s",
            args.warmup, args.window, args.drain
        );
        let options = sustained::SustainedOptions {
            binary: cashout_system::runner::default_binary(),
            connections,
            warmup: Duration::from_secs(args.warmup),
            window: Duration::from_secs(args.window),
            drain: Duration::from_secs(args.drain),
            log_dir: target_dir().join("bench").join(format!("sustained-{connections}")),
            schedule: args.schedule.clone(),
        };
        match sustained::sustained(&options).await {
            Ok(f) => {
                print_sustained(&f);
                runs.push(f);
            }
            Err(e) => results.report(&format!("sustained_{connections}"), Err(e)),
        }
    }
    let headline = runs.iter().find(|r| r.connections == 32).or(runs.last()).cloned();
    if let Some(headline) = headline {
        let dir = args
            .charts
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks"));
        match cashout_bench::plots::write_charts(&dir, &runs, &headline) {
            Ok(paths) => println!("  charts: {}", paths.join(", ")),
            Err(e) => results.report("sustained_charts", Err(bench::BenchError(e.to_string()))),
        }
        results.report("sustained", Ok(json!({ "headline": headline, "runs": runs })));
    }
}

/// API create next to the no-op route, at each concurrency; notes creates/s as the ceiling.
async fn run_statement(args: &Args, results: &mut Results) {
    for name in &args.statement_backends {
        let backend = match name.as_str() {
            "embedded" => statement::StatementBackend::Embedded,
            "aws" => statement::StatementBackend::Aws,
            other => {
                results.report(
                    &format!("statement_{other}"),
                    Err(bench::BenchError(format!("unknown backend {other}"))),
                );
                continue;
            }
        };
        println!(
            "\nStatement of {} requests ({name}): seeded through the store, fetched whole from cashout-local over HTTP",
            args.statement_requests
        );
        let options = statement::StatementOptions {
            binary: cashout_system::runner::default_binary(),
            backend,
            requests: args.statement_requests,
            seed_concurrency: args.seed_concurrency,
            log_dir: target_dir().join("bench").join(format!("statement-{name}")),
        };
        let r = statement::statement(&options).await;
        let mut differences = Vec::new();
        if let Ok(f) = &r {
            println!(
                "  seeded {} requests in {} s ({}/s); cashout-local ready in {} ms, idle RSS {} KiB",
                f.requests, f.seed_s, f.seed_per_second, f.ready_ms, f.idle_rss_kib
            );
            for (currency, c) in &f.expected.currencies {
                println!(
                    "  seeded {currency}: {} requests, requested {}, paid {}, reversed {}, pending {}",
                    c.count, c.requested, c.paid, c.reversed, c.pending
                );
            }
            println!(
                "  fetch                              lines        bytes  first byte ms  last byte ms   MiB/s  RSS before KiB  peak KiB  increase KiB  exact"
            );
            for x in &f.fetches {
                println!(
                    "  {:<32} {:>7} {:>12} {:>14} {:>13} {:>7} {:>15} {:>9} {:>13}  {}",
                    x.what,
                    x.lines,
                    x.bytes,
                    x.first_byte_ms,
                    x.last_byte_ms,
                    x.mib_per_second,
                    x.rss_before_kib,
                    x.peak_rss_kib,
                    x.peak_increase_kib,
                    if x.differences.is_empty() { "yes" } else { "NO" }
                );
                for d in &x.differences {
                    println!("      {d}");
                }
                differences.extend(x.differences.iter().map(|d| format!("{}: {d}", x.what)));
            }
        }
        results.report(&format!("statement_{name}"), r.map(|f| json!(f)));
        if !differences.is_empty() {
            results.report(
                &format!("statement_{name}_differences"),
                Err(bench::BenchError(differences.join("; "))),
            );
        }
    }
}

async fn run_api(args: &Args, results: &mut Results, create_ceiling: &mut HashMap<usize, f64>) {
    println!(
        "\nAPI create vs a no-op route of the same server (embedded store, {} s per run)",
        args.seconds
    );
    println!("  conc   create/s   p50 ms   p99 ms  |   noop/s   p50 ms   p99 ms  |  ratio (target ≥ 0.5 at 32)");
    let r = bench::api(&args.levels, Duration::from_secs(args.seconds)).await;
    if let Ok(figures) = &r {
        for f in figures {
            create_ceiling.insert(f.concurrency, f.create.per_second);
            println!(
                "  {:>4} {:>10.0} {:>8.2} {:>8.2}  | {:>8.0} {:>8.2} {:>8.2}  |  {:.2}{}",
                f.concurrency,
                f.create.per_second,
                f.create.latency.p50_ms,
                f.create.latency.p99_ms,
                f.noop.per_second,
                f.noop.latency.p50_ms,
                f.noop.latency.p99_ms,
                f.ratio,
                if f.create.errors + f.noop.errors > 0 {
                    format!("  ({} create errors, {} noop errors)", f.create.errors, f.noop.errors)
                } else {
                    String::new()
                }
            );
        }
    }
    results.report("api", r.map(|f| json!(f)));
}

/// Signed deliveries next to bare POSTs.
async fn run_webhooks(args: &Args, results: &mut Results) {
    println!("\nWebhook delivery: signed deliveries by the callbacks worker vs bare POSTs of the same bodies");
    let r = bench::webhooks(args.deliveries).await;
    if let Ok(f) = &r {
        println!(
            "  {} deliveries: signed {:.0}/s, bare {:.0}/s, ratio {:.2} (target ≥ 0.5)",
            f.deliveries, f.signed_per_second, f.bare_per_second, f.ratio
        );
    }
    results.report("webhooks", r.map(|f| json!(f)));
}

/// The whole lifecycle next to creates/s at its concurrency (measured now if `api` did not run
/// at that concurrency).
async fn run_lifecycle(args: &Args, results: &mut Results, create_ceiling: &HashMap<usize, f64>) {
    println!(
        "\nWhole lifecycle: create → PAID with every webhook delivered (embedded, simulators at zero latency, {} clients)",
        args.lifecycle_concurrency
    );
    let ceiling = match create_ceiling.get(&args.lifecycle_concurrency) {
        Some(c) => *c,
        None => bench::api(&[args.lifecycle_concurrency], Duration::from_secs(args.seconds))
            .await
            .ok()
            .and_then(|f| f.first().map(|f| f.create.per_second))
            .unwrap_or_default(),
    };
    let r = bench::lifecycle(args.lifecycle, args.lifecycle_concurrency, ceiling).await;
    if let Ok(f) = &r {
        println!(
            "  {} cashouts: {:.1} paid/s (creates alone: {:.0}/s, ratio {:.2}); create → PAID webhook p50 {:.0} ms, p99 {:.0} ms",
            f.requests,
            f.paid_per_second,
            f.create_ceiling_per_second,
            f.ratio,
            f.create_to_paid_webhook.p50_ms,
            f.create_to_paid_webhook.p99_ms
        );
    }
    results.report("lifecycle", r.map(|f| json!(f)));
}

/// The AWS cost drivers on the emulators.
async fn run_cost(args: &Args, results: &mut Results) {
    println!("\nAWS cost drivers per paid cashout, counted on DynamoDB Local + moto (production schedule)");
    let r = Box::pin(bench::cost(args.cost_requests)).await;
    if let Ok(f) = &r {
        print_cost(f);
    }
    results.report("cost", r.map(|f| json!(f)));
}

/// The Lambda footprint of every function; a failed measurement fails the run.
async fn run_footprint(results: &mut Results) {
    println!(
        "\nLambda footprint: the cargo-lambda bootstraps on a local Runtime API (DynamoDB Local + moto; {} starts, {} invocations each)",
        footprint::STARTS,
        footprint::INVOCATIONS
    );
    println!(
        "  function                   bootstrap MiB  ready p50 ms  ready max ms  peak RSS MiB  invocations  errors  rejected  (targets: ≤ {} MiB, ≤ {} ms, ≤ {} MiB)",
        footprint::TARGET_BOOTSTRAP_MIB,
        footprint::TARGET_READY_MS,
        footprint::TARGET_RSS_MIB
    );
    let r = footprint::footprint(&target_dir(), footprint::INVOCATIONS, footprint::STARTS).await;
    let mut failures = Vec::new();
    if let Ok(f) = &r {
        for x in &f.functions {
            print_function_footprint(x);
        }
        failures = f.failures();
    }
    results.report("footprint", r.map(|f| json!(f)));
    if !failures.is_empty() {
        results.report(
            "footprint_failed",
            Err(bench::BenchError(format!(
                "failed measurements: {}",
                failures.join("; ")
            ))),
        );
    }
}

fn print_function_footprint(x: &footprint::FunctionFootprint) {
    println!(
        "  {:<26} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>12} {:>7} {:>9}{}{}",
        x.function,
        x.bootstrap_mib,
        x.ready_p50_ms,
        x.ready_max_ms,
        x.peak_rss_mib,
        x.invocations,
        x.errors,
        x.rejected,
        if x.cut_short {
            "  (load stopped at its time budget)"
        } else {
            ""
        },
        match &x.first_problem {
            Some(p) => format!("  first problem: {p}"),
            None => String::new(),
        }
    );
}

fn print_cost(f: &bench::CostFigure) {
    let m = &f.measured;
    println!(
        "  {} paid cashouts: {:.1} WCU (minimum {:.0}, ratio {:.2}) · {:.1} RCU (minimum {:.0}, ratio {:.2}) · {:.1} SQS requests (minimum {:.0}, ratio {:.2}); target ≤ 1.25",
        f.paid_cashouts,
        m.wcu,
        f.minimum.wcu,
        f.ratio_wcu,
        m.rcu,
        f.minimum.rcu,
        f.ratio_rcu,
        m.sqs_requests,
        f.minimum.sqs_requests,
        f.ratio_sqs
    );
    println!(
        "  calls: {:.1} writes, {:.1} reads · SQS: {:.1} send, {:.1} receive, {:.1} delete, {:.1} change-visibility · idle empty receives {} · one sweep: {} reads, {} RCU",
        m.write_calls,
        m.read_calls,
        m.sqs_send,
        m.sqs_receive,
        m.sqs_delete,
        m.sqs_change_visibility,
        f.idle_empty_receives,
        f.sweep_read_calls,
        f.sweep_rcu
    );
    println!("  per operation (calls in the run; units per paid cashout):");
    for (op, c) in &f.by_operation {
        println!(
            "    {op:<42} {:>5} calls {:>6.2} WCU {:>6.2} RCU",
            c.calls, c.wcu, c.rcu
        );
    }
    println!("  SQS sends by task: {:?}", f.sends_by_task);
    println!("  lost write races per cashout: {}", f.lost_races_per_cashout);
    println!(
        "  after payment, the reversal watch: one check {} WCU + {} RCU, picked up by the sweep for {} RCU + {} SQS requests; over the whole watch ({} checks): {} WCU, {} RCU, {} SQS requests",
        f.watch.poll_wcu,
        f.watch.poll_rcu,
        f.watch.pickup_rcu,
        f.watch.pickup_sqs_requests,
        f.reversal_watch.checks,
        f.reversal_watch.wcu,
        f.reversal_watch.rcu,
        f.reversal_watch.sqs_requests
    );
}

fn print_sustained(f: &sustained::SustainedFigure) {
    println!(
        "  creates: {:.0}/s accepted, {:.0}/s refused (429), {} errors; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        f.creates_per_second,
        f.refused_per_second,
        f.create_errors,
        f.create_latency.p50_ms,
        f.create_p90_ms,
        f.create_latency.p99_ms
    );
    println!(
        "  deliveries: {:.0}/s in the window, {:.0}/s over the whole run; {} of {} owed delivered",
        f.deliveries_per_second_window, f.deliveries_per_second_run, f.delivered, f.owed
    );
    println!(
        "  backlog: {} webhooks at the end of the window, {} after the drain; drained {}",
        f.backlog_at_window_end,
        f.backlog_after_drain,
        match f.drained_after_s {
            Some(s) => format!("{s:.1} s after the load stopped"),
            None => format!("NOT within {} s", f.drain_limit_s),
        }
    );
    println!(
        "  create → PAID webhook: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        f.create_to_paid.p50_ms, f.create_to_paid_p90_ms, f.create_to_paid.p99_ms, f.create_to_paid.max_ms
    );
    if let (Some(first), Some(last), Some(r)) = (
        f.first_minute_deliveries_per_second,
        f.last_minute_deliveries_per_second,
        f.last_over_first,
    ) {
        println!("  decay: first minute {first:.0} deliveries/s, last minute {last:.0}/s (last / first {r:.2})");
    }
    if let (Some(second), Some(r)) = (f.second_minute_deliveries_per_second, f.last_over_second) {
        println!(
            "  from the second minute (steady state on the local schedule): {second:.0} deliveries/s, last / second {r:.2}"
        );
    }
    println!(
        "  ceilings, same run: store {:.0} creates/s from {} writers, disk {:.0} fdatasyncs/s; bare POSTs to the receiver {:.0}/s (deliveries / bare {:.2})",
        f.store_ceiling.creates_per_second,
        f.connections,
        f.store_ceiling.fsyncs_per_second,
        f.bare_posts_per_second,
        f.deliveries_over_bare
    );
}
