//! The deterministic executor: every piece of concurrent work (a queued task, an API call, the
//! sweep, a provider's notification) is a *process*, a future polled one step at a time in an
//! order the seed decides. Ports yield at every call ([`yield_now`]), so two processes
//! interleave at every I/O boundary; waits on simulated time ([`sleep_until`]) block a process
//! until the driver moves the clock. Nothing here reads the wall clock or a thread's state.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::task::{Context, Poll};

use time::OffsetDateTime;

/// What kind of work a process does (for the invariants that count per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A task taken from a queue.
    Task,
    /// A `provider_event` task from a hint (an on-demand check).
    HintTask,
    /// A merchant's or an operator's API call.
    Api,
    /// A provider posting a notification to us.
    Notification,
    /// The periodic sweep.
    Sweep,
}

/// One unit of concurrent work.
pub struct Process {
    /// What it is, for the trace.
    pub label: String,
    /// What kind of work.
    pub kind: Kind,
    /// When it is killed if still running (a function's timeout).
    pub deadline: OffsetDateTime,
    future: Pin<Box<dyn Future<Output = ()>>>,
}

/// How one poll ended.
pub enum Step {
    /// The process finished.
    Done,
    /// It is waiting (for its next turn, or for the clock).
    Pending,
    /// It panicked: the message.
    Panicked(String),
}

/// Blocked-until times of processes, shared with the futures that wait.
#[derive(Default)]
pub struct Waits {
    current: AtomicU64,
    until: Mutex<BTreeMap<u64, OffsetDateTime>>,
}

impl Waits {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, OffsetDateTime>> {
        self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The process being polled now.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    fn block(&self, until: OffsetDateTime) {
        let pid = self.current();
        self.lock().insert(pid, until);
    }
}

/// Returns `Pending` once: a point where another process may run.
pub fn yield_now() -> impl Future<Output = ()> {
    struct Yield(bool);
    impl Future for Yield {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    Yield(false)
}

/// Waits until the simulated clock reaches `at`.
pub fn sleep_until<'a>(
    waits: &'a Waits,
    now: impl Fn() -> OffsetDateTime + 'a,
    at: OffsetDateTime,
) -> impl Future<Output = ()> + 'a {
    std::future::poll_fn(move |_| {
        if now() >= at {
            Poll::Ready(())
        } else {
            waits.block(at);
            Poll::Pending
        }
    })
}

thread_local! {
    static IN_SIMULATION: Cell<bool> = const { Cell::new(false) };
}

/// Panics inside a simulated process are the simulation's findings, reported as violations;
/// everything else keeps the default report.
fn quiet_panics_in_processes() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_SIMULATION.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// The processes of a run.
#[derive(Default)]
pub struct Executor {
    processes: BTreeMap<u64, Process>,
    next_id: u64,
}

impl Executor {
    /// An executor with no process.
    pub fn new() -> Self {
        quiet_panics_in_processes();
        Executor::default()
    }

    /// Starts a process; it runs from its first poll.
    pub fn spawn(
        &mut self,
        label: String,
        kind: Kind,
        deadline: OffsetDateTime,
        future: impl Future<Output = ()> + 'static,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.processes.insert(
            id,
            Process {
                label,
                kind,
                deadline,
                future: Box::pin(future),
            },
        );
        id
    }

    /// Processes that can run at `now` (not waiting for the clock), in id order.
    pub fn runnable(&self, waits: &Waits, now: OffsetDateTime) -> Vec<u64> {
        let until = waits.lock();
        self.processes
            .keys()
            .copied()
            .filter(|id| until.get(id).is_none_or(|at| *at <= now))
            .collect()
    }

    /// The earliest time a waiting process wakes.
    pub fn next_wake(&self, waits: &Waits) -> Option<OffsetDateTime> {
        waits.lock().values().min().copied()
    }

    /// How many processes of a kind are running.
    pub fn count(&self, kind: Kind) -> usize {
        self.processes.values().filter(|p| p.kind == kind).count()
    }

    /// Whether any process is running.
    pub fn is_idle(&self) -> bool {
        self.processes.is_empty()
    }

    /// The kind of a running process.
    pub fn kind(&self, id: u64) -> Option<Kind> {
        self.processes.get(&id).map(|p| p.kind)
    }

    /// The label of a running process.
    pub fn label(&self, id: u64) -> Option<&str> {
        self.processes.get(&id).map(|p| p.label.as_str())
    }

    /// Polls one process once.
    pub fn poll(&mut self, waits: &Waits, id: u64) -> Step {
        let Some(process) = self.processes.get_mut(&id) else {
            return Step::Done;
        };
        waits.lock().remove(&id);
        waits.current.store(id, Ordering::Relaxed);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        IN_SIMULATION.with(|f| f.set(true));
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| process.future.as_mut().poll(&mut cx)));
        IN_SIMULATION.with(|f| f.set(false));
        match result {
            Ok(Poll::Pending) => Step::Pending,
            Ok(Poll::Ready(())) => {
                self.processes.remove(&id);
                Step::Done
            }
            Err(payload) => {
                self.processes.remove(&id);
                waits.lock().remove(&id);
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                Step::Panicked(message)
            }
        }
    }

    /// Kills every process (a crash): whatever they held in memory is gone.
    pub fn kill_all(&mut self, waits: &Waits) -> Vec<String> {
        waits.lock().clear();
        std::mem::take(&mut self.processes)
            .into_values()
            .map(|p| p.label)
            .collect()
    }

    /// Kills the processes past their deadline (a function timeout).
    pub fn kill_expired(&mut self, waits: &Waits, now: OffsetDateTime) -> Vec<String> {
        let expired: Vec<u64> = self
            .processes
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut until = waits.lock();
        expired
            .into_iter()
            .filter_map(|id| {
                until.remove(&id);
                self.processes.remove(&id).map(|p| p.label)
            })
            .collect()
    }
}
