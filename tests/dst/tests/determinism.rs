//! The simulation is a function of its seed: two runs of one seed write the same trace, and
//! different seeds explore different runs.
#![allow(clippy::unwrap_used)]

use cashout_dst::{Options, run};

#[test]
fn the_same_seed_replays_the_same_run_to_the_byte() {
    for seed in [1, 7, 12_345] {
        let a = run(Options {
            seed,
            keep_trace: false,
        });
        let b = run(Options {
            seed,
            keep_trace: false,
        });
        assert_eq!(a.digest, b.digest, "seed {seed}");
        assert_eq!(a.trace_lines, b.trace_lines, "seed {seed}");
        assert_eq!(a.violations, b.violations, "seed {seed}");
        assert!(a.trace_lines > 100, "seed {seed} did almost nothing: {:?}", a.stats);
    }
    assert_ne!(
        run(Options {
            seed: 1,
            keep_trace: false
        })
        .digest,
        run(Options {
            seed: 2,
            keep_trace: false
        })
        .digest
    );
}

#[test]
fn a_run_covers_the_reversal_watch_and_pays() {
    let report = run(Options {
        seed: 3,
        keep_trace: true,
    });
    let last = report.trace.last().unwrap();
    let seconds: f64 = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(seconds >= 8.0 * 86_400.0, "the run stopped at {seconds} s");
    assert!(
        report.stats.get("payouts paid").copied().unwrap_or(0) > 0,
        "{:?}",
        report.stats
    );
    assert!(
        report.stats.get("verified deliveries").copied().unwrap_or(0) > 0,
        "{:?}",
        report.stats
    );
}
