//! The fast subset of the chaos run (`./scripts/chaos` runs the full one; `RELIABILITY.md`):
//! a few dozen cashout requests through this crate's `cashout-local` while the simulators fail,
//! time out, rate-limit, duplicate and reorder, the receiver refuses 30 % of deliveries, and the
//! runner is killed with SIGKILL while work is in flight; then every invariant of
//! `cashout_bench::chaos` is checked against the providers' ledger and the receiver's log.

use std::time::Duration;

use cashout_bench::chaos::{ChaosConfig, ChaosReport, run};
use cashout_system::runner::Backend;

async fn fast(backend: Backend, requests: usize) -> ChaosReport {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = ChaosConfig {
        runner: env!("CARGO_BIN_EXE_cashout-local").into(),
        backend,
        requests,
        // One kill, after the creates, with dispatches, polls and deliveries in flight.
        kills: 1,
        clients: 8,
        seed: 11,
        time_scale: 10,
        receiver_fail_percent: 30,
        settle_timeout: Duration::from_secs(420),
        work_dir: dir.path().to_path_buf(),
        rust_log: "info,tower_http=warn,aws=warn".into(),
        verbose: false,
    };
    let report = run(config).await.expect("the chaos run starts");
    assert!(
        report.violations.is_empty(),
        "{} violations (logs in {}):\n{}",
        report.violations.len(),
        dir.keep().display(),
        report.violations.join("\n")
    );
    assert_eq!(report.double_payouts, 0);
    assert!(report.settled);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_chaos_subset_pays_once_reports_everything_and_survives_kill_9() {
    let report = fast(Backend::Embedded, 60).await;
    assert_eq!(report.kills, 1);
    assert!(report.deliveries_refused > 0, "the receiver refused some deliveries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chaos_subset_on_dynamodb_local_and_moto() {
    let stack = format!("chaosfast{}", std::process::id());
    let backend = Backend::aws_from_env(&stack).expect("the emulators of ./scripts/test");
    let report = fast(backend, 30).await;
    assert_eq!(report.kills, 1);
}
