//! `cashout-dst`: runs seeds of the deterministic simulation.
//!
//! ```text
//! cashout-dst --seeds 1000 --from 0      # seeds 0..999; one line per failing seed, a summary
//! cashout-dst --seed 42 --trace          # replays seed 42 and prints its whole trace
//! ```
//!
//! Exits 1 if any seed broke an invariant.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(seed) = args.seed {
        let report = run(Options { seed, keep_trace: true });
        if args.trace || !report.violations.is_empty() {
            print_trace(&report);
        }
        for (k, v) in &report.stats {
            println!("  {k}: {v}");
        }
        println!("seed {seed}: digest {}", report.digest);
        return if report.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            print_failure(&report);
            ExitCode::FAILURE
        };
    }

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let next = Arc::new(AtomicU64::new(args.from));
    let end = args.from.saturating_add(args.seeds);
    let failed = Arc::new(Mutex::new(Vec::new()));
    let totals = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, failed, totals) = (next.clone(), failed.clone(), totals.clone());
            let verbose = args.verbose;
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let report = run(Options {
                        seed,
                        keep_trace: false,
                    });
                    if verbose {
                        println!("seed {seed}: digest {} {:?}", report.digest, report.stats);
                    }
                    {
                        let mut t = totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (k, v) in &report.stats {
                            *t.entry(k.clone()).or_insert(0) += v;
                        }
                    }
                    if !report.violations.is_empty() {
                        print_failure(&report);
                        let _ = std::io::stdout().flush();
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(report);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            println!("a worker thread died");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = started.elapsed();
    let mut failed = std::mem::take(&mut *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    failed.sort_by_key(|r| r.seed);
    if let Some(first) = failed.first() {
        print_trace(first);
    }
    let totals = totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("totals over {} seeds:", args.seeds);
    for (k, v) in totals.iter() {
        println!("  {k}: {v}");
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    let rate = args.seeds as f64 / seconds;
    println!(
        "{} seeds from {} on {threads} threads in {:.1} s ({rate:.1} seeds/s): {} failed",
        args.seeds,
        args.from,
        seconds,
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
