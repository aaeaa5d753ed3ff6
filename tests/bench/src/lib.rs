//! # cashout-bench: measured, not assumed
//!
//! Two commands, both documented in `BENCHMARKS.md` and `RELIABILITY.md`, on the system-test
//! harness (`cashout-system`: the runner, the client, the receiver, the workload):
//!
//! - `bench` ([`bench`], [`sustained`], [`footprint`], [`statement`]): how much cashout carries —
//!   API, webhook delivery, the whole lifecycle, the sustained system loaded from outside, the AWS
//!   cost drivers, the Lambda footprint and the memory of a 100,000-request statement — each
//!   figure next to its ceiling taken in the same run.
//!   Prints a table, writes `target/bench/latest.json` and the charts ([`plots`]).
//! - `chaos` ([`chaos`]): what cashout loses when things break — a thousand cashout requests
//!   through the local runner while the simulators fail, time out, rate-limit, duplicate and
//!   reorder, the merchant's receiver refuses 30 % of deliveries, and the runner is killed with
//!   SIGKILL and restarted; then every invariant is checked against the providers' ledger and the
//!   receiver's log. Exits non-zero on any violation.
//!
//! The figures are rates and ratios, hence the floating point.
#![allow(clippy::float_arithmetic, clippy::cast_possible_truncation)]

pub mod bench;
pub mod chaos;
pub mod footprint;
pub mod plots;
pub mod statement;
pub mod sustained;
