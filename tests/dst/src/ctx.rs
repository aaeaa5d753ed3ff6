//! What every part of a run shares: the simulated clock, the seeded generator, the trace and its
//! digest, the violations found, and the processes' waits. One per run, behind an `Arc`.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cashout_core::ports::{Clock, IdGenerator};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::exec::{Kind, Waits, sleep_until};
use crate::rng::Rng;

/// A broken invariant: what, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time.
    pub at: OffsetDateTime,
    /// Which invariant and what broke it.
    pub message: String,
}

/// The run's trace: every line feeds the digest; the last lines are kept for a report (all of
/// them with `keep_all`).
pub struct Trace {
    digest: Sha256,
    lines: VecDeque<String>,
    keep_all: bool,
    count: u64,
}

/// How many trace lines a failing seed's report shows.
pub const TRACE_TAIL: usize = 400;

impl Trace {
    fn new(keep_all: bool) -> Self {
        Trace {
            digest: Sha256::new(),
            lines: VecDeque::new(),
            keep_all,
            count: 0,
        }
    }
}

/// Locks a mutex whatever a panicking holder left (the simulation reports the panic itself).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared state of a run.
pub struct Ctx {
    /// The run's seed.
    pub seed: u64,
    start: OffsetDateTime,
    now: Mutex<OffsetDateTime>,
    rng: Mutex<Rng>,
    /// Processes waiting for the clock.
    pub waits: Waits,
    trace: Mutex<Trace>,
    violations: Mutex<Vec<Violation>>,
    healed: AtomicBool,
    kinds: Mutex<BTreeMap<u64, Kind>>,
}

impl Ctx {
    /// A run starting at `start`.
    pub fn new(seed: u64, start: OffsetDateTime, keep_trace: bool) -> Arc<Ctx> {
        Arc::new(Ctx {
            seed,
            start,
            now: Mutex::new(start),
            rng: Mutex::new(Rng::new(seed)),
            waits: Waits::default(),
            trace: Mutex::new(Trace::new(keep_trace)),
            violations: Mutex::new(Vec::new()),
            healed: AtomicBool::new(false),
            kinds: Mutex::new(BTreeMap::new()),
        })
    }

    /// Simulated now.
    pub fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }

    /// Moves the clock forward (never back).
    pub fn advance_to(&self, at: OffsetDateTime) {
        let mut now = lock(&self.now);
        if at > *now {
            *now = at;
        }
    }

    /// Seconds since the start, for the trace.
    pub fn elapsed(&self) -> f64 {
        let d = self.now() - self.start;
        d.as_seconds_f64()
    }

    /// Draws from the run's generator.
    pub fn rng<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> T {
        f(&mut lock(&self.rng))
    }

    /// True with probability `per_mille` / 1000, and never once the run has healed.
    pub fn fault(&self, per_mille: u32) -> bool {
        !self.is_healed() && self.rng(|r| r.chance(per_mille))
    }

    /// Whether faults have stopped (the last part of a run, so that everything can settle).
    pub fn is_healed(&self) -> bool {
        self.healed.load(Ordering::Relaxed)
    }

    /// Stops every fault from now on.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }

    /// Adds a line to the trace.
    pub fn trace(&self, line: impl FnOnce() -> String) {
        let text = format!("{:>12.3} {}", self.elapsed(), line());
        let mut t = lock(&self.trace);
        t.digest.update(text.as_bytes());
        t.digest.update(b"\n");
        t.count += 1;
        t.lines.push_back(text);
        if !t.keep_all && t.lines.len() > TRACE_TAIL {
            t.lines.pop_front();
        }
    }

    /// The trace's lines kept so far, and how many were written in all.
    pub fn trace_lines(&self) -> (Vec<String>, u64) {
        let t = lock(&self.trace);
        (t.lines.iter().cloned().collect(), t.count)
    }

    /// The digest of every trace line so far (hex).
    pub fn digest(&self) -> String {
        let t = lock(&self.trace);
        hex::encode(t.digest.clone().finalize())
    }

    /// Records a broken invariant.
    pub fn violation(&self, message: impl Into<String>) {
        let message = message.into();
        self.trace(|| format!("VIOLATION {message}"));
        lock(&self.violations).push(Violation {
            at: self.now(),
            message,
        });
    }

    /// The violations so far.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.violations).clone()
    }

    /// Remembers what kind of work a process does.
    pub fn set_kind(&self, pid: u64, kind: Kind) {
        lock(&self.kinds).insert(pid, kind);
    }

    /// Forgets a finished process.
    pub fn forget(&self, pid: u64) {
        lock(&self.kinds).remove(&pid);
    }

    /// The kind of the process being polled now.
    pub fn current_kind(&self) -> Option<Kind> {
        lock(&self.kinds).get(&self.waits.current()).copied()
    }

    /// Waits until the clock reaches `at` (from inside a process).
    pub fn sleep_until(&self, at: OffsetDateTime) -> impl Future<Output = ()> + '_ {
        sleep_until(&self.waits, || self.now(), at)
    }

    /// Waits `d` of simulated time (from inside a process).
    pub fn sleep(&self, d: std::time::Duration) -> impl Future<Output = ()> + '_ {
        let at = cashout_core_after(self.now(), d);
        self.sleep_until(at)
    }
}

fn cashout_core_after(now: OffsetDateTime, d: std::time::Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(now)
}

/// The simulated clock, as the ports see it.
#[derive(Clone)]
pub struct SimClock(pub Arc<Ctx>);

impl Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

/// Ids and secrets from the run's generator.
#[derive(Clone)]
pub struct SimIds(pub Arc<Ctx>);

impl IdGenerator for SimIds {
    fn uuid_v7(&self, at: OffsetDateTime) -> Uuid {
        let random = self.0.rng(|r| (r.next_u64(), r.next_u64()));
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6..8].copy_from_slice(&random.0.to_be_bytes()[..2]);
        bytes[8..].copy_from_slice(&random.1.to_be_bytes());
        uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid()
    }

    fn secret_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        self.0.rng(|r| {
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&r.next_u64().to_be_bytes());
            }
        });
        bytes
    }
}
