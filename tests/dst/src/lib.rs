//! # cashout-dst: the whole of cashout under one seed
//!
//! A deterministic simulation in the manner of FoundationDB's and TigerBeetle's (VOPR): the real
//! use cases ([`cashout_app::App`]), the real request aggregate and the real provider adapters
//! (their HTTP failure classification included) run against simulated ports — an in-memory
//! store and queues with faults, the providers on a simulated network, the merchants' webhook
//! receivers — with the clock, ids, randomness, scheduling and every fault decided by one `u64`
//! seed. The same seed replays the same run, to the byte of its trace.
//!
//! [`run`] runs one seed; the `cashout-dst` binary runs many and prints, for a failing seed, the
//! command that replays it and its trace up to the violation. `docs/simulation.md` says what is
//! simulated and what is not, the faults, the invariants ([`check`]), and how to replay a seed.

pub mod agenda;
pub mod check;
pub mod ctx;
pub mod exec;
pub mod net;
pub mod receivers;
pub mod rng;
pub mod store;
pub mod truth;
pub mod world;

pub use world::{Options, Report, run};
