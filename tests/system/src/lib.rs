//! # cashout-system: the system-test harness
//!
//! What drives cashout from the outside, as a merchant, a provider and an operator would, for
//! the end-to-end, security and chaos tests (`functions/local/tests`) and the benchmark and
//! chaos commands (`cashout-bench`):
//!
//! - [`runner`]: `cashout-local` as a process — started on its own data with the embedded store
//!   or the emulators, its simulators inside it or outside (so that their ledger outlives a
//!   kill), killed with SIGKILL, restarted;
//! - [`in_process`]: the same system in this process over any store and queue, to measure it;
//! - [`client`]: the merchant's side of the API, and waits on a request's status;
//! - [`receiver`]: a merchant's webhook receiver that verifies every delivery with the official
//!   Standard Webhooks library and can refuse a seeded share of them;
//! - [`workload`]: create bodies for every provider, with the simulators' outcome triggers;
//! - [`emulators`]: DynamoDB Local and moto, and a fresh table and queues on them;
//! - [`metered`]: a store and a queue that count what each operation costs;
//! - [`stats`], [`machine`]: latency percentiles and rates, and the machine a figure was taken on.
//!
//! The figures are rates and ratios, hence the floating point.
#![allow(clippy::float_arithmetic, clippy::cast_possible_truncation)]

pub mod client;
pub mod emulators;
pub mod in_process;
pub mod machine;
pub mod metered;
pub mod receiver;
pub mod runner;
pub mod stats;
pub mod workload;
