//! `cashout-dst`: runs seeds of the deterministic simulation.
//!
//! ```text
//! cashout-dst --seeds 1000 --from 0      # seeds 0..999; one line per failing seed, a summary
//! cashout-dst --seed 42 --trace          # replays seed 42 and prints its whole trace
//! ```
//!
//! Exits 1 if any seed broke an invariant.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cashout_dst::ctx::lock;
use cashout_dst::{Options, Report, run};
use clap::Parser;

/// Runs seeds of the deterministic simulation of cashout.
#[derive(Debug, Parser)]
#[command(name = "cashout-dst", version, about)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Run this one seed (a replay) instead.
    #[arg(long, conflicts_with_all = ["seeds", "from"])]
    seed: Option<u64>,
    /// With `--seed`: print the whole trace.
    #[arg(long, requires = "seed")]
    trace: bool,
    /// Threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print each seed's digest and figures.
    #[arg(long)]
    verbose: bool,
}

#[allow(clippy::print_stdout)]
fn print_failure(report: &Report) {
    println!(
        "FAIL seed {}: {} (replay: cashout-dst --seed {} --trace)",
        report.seed,
        report.violations.first().map_or("", |v| v.message.as_str()),
        report.seed
    );
    for v in report.violations.iter().skip(1).take(4) {
        println!("  also: {}", v.message);
    }
}

#[allow(clippy::print_stdout)]
fn print_trace(report: &Report) {
    println!(
        "trace of seed {} ({} lines, digest {}):",
        report.seed, report.trace_lines, report.digest
    );
    let stop = report
        .trace
        .iter()
        .position(|l| l.contains("VIOLATION"))
        .map_or(report.trace.len(), |i| i + 1);
    for line in &report.trace[..stop] {
        println!("  {line}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.seed {
        Some(seed) => replay(seed, args.trace),
        None => run_seeds(&args),
    }
}

/// Runs one seed keeping its whole trace: the trace (asked for, or the seed failed), the run's
/// figures and its digest.
#[allow(clippy::print_stdout)]
fn replay(seed: u64, trace: bool) -> ExitCode {
    let report = run(Options { seed, keep_trace: true });
    if trace || !report.violations.is_empty() {
        print_trace(&report);
    }
    for (k, v) in &report.stats {
        println!("  {k}: {v}");
    }
    println!("seed {seed}: digest {}", report.digest);
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        print_failure(&report);
        ExitCode::FAILURE
    }
}

/// What the worker threads share.
struct Work {
    /// The next seed to run.
    next: AtomicU64,
    /// The first seed not to run.
    end: u64,
    verbose: bool,
    failed: Mutex<Vec<Report>>,
    /// The runs' figures, summed.
    totals: Mutex<BTreeMap<String, u64>>,
}

/// Runs the seeds on worker threads; then the first failing seed's trace and the summary.
#[allow(clippy::print_stdout)]
fn run_seeds(args: &Args) -> ExitCode {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let work = Arc::new(Work {
        next: AtomicU64::new(args.from),
        end: args.from.saturating_add(args.seeds),
        verbose: args.verbose,
        failed: Mutex::new(Vec::new()),
        totals: Mutex::new(BTreeMap::new()),
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || run_worker(&work))
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            println!("a worker thread died");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = started.elapsed();
    let mut failed = std::mem::take(&mut *lock(&work.failed));
    failed.sort_by_key(|r| r.seed);
    if let Some(first) = failed.first() {
        print_trace(first);
    }
    print_summary(args, threads, elapsed, &lock(&work.totals), failed.len());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One worker thread: takes the next seed until none is left; adds up the figures, prints a
/// failure as soon as it is found and keeps the report.
#[allow(clippy::print_stdout)]
fn run_worker(work: &Work) {
    loop {
        let seed = work.next.fetch_add(1, Ordering::Relaxed);
        if seed >= work.end {
            break;
        }
        let report = run(Options {
            seed,
            keep_trace: false,
        });
        if work.verbose {
            println!("seed {seed}: digest {} {:?}", report.digest, report.stats);
        }
        {
            let mut t = lock(&work.totals);
            for (k, v) in &report.stats {
                *t.entry(k.clone()).or_insert(0) += v;
            }
        }
        if !report.violations.is_empty() {
            print_failure(&report);
            let _ = std::io::stdout().flush();
            lock(&work.failed).push(report);
        }
    }
}

/// The summed figures, and how many seeds ran how fast and how many failed.
#[allow(clippy::print_stdout)]
fn print_summary(args: &Args, threads: usize, elapsed: Duration, totals: &BTreeMap<String, u64>, failed: usize) {
    println!("totals over {} seeds:", args.seeds);
    for (k, v) in totals {
        println!("  {k}: {v}");
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    let rate = args.seeds as f64 / seconds;
    println!(
        "{} seeds from {} on {threads} threads in {:.1} s ({rate:.1} seeds/s): {} failed",
        args.seeds, args.from, seconds, failed
    );
}
