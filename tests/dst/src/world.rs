//! One run: the scenario the seed draws (merchants, endpoints, requests, people, faults), the
//! real `App` wired to the simulated ports, and the driver that decides, step by step, which
//! process moves, which timed event fires, which queued task starts, and when the clock jumps.
//!
//! The scenario is drawn in [`scenario`]; what each timed event does is in [`events`]; this
//! module wires the run and drives it.

mod events;
mod scenario;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cashout_app::{App, AppConfig};
use cashout_core::ids::{CashoutRequestId, MerchantId};
use cashout_core::ports::{ProviderEvent, ProviderNotification, QueueName, Task, TaskEnvelope, TaskSource};
use cashout_providers::{HttpTransport, Providers, ProvidersConfig};
use cashout_store::memory::MemoryStore;
use time::OffsetDateTime;

use crate::agenda::Agenda;
use crate::check::{Checker, flagged};
use crate::ctx::{Ctx, SimClock, SimIds, Violation};
use crate::exec::{Executor, Kind, Step};
use crate::net::{self, Lifecycle, SimNet};
use crate::receivers::SimReceivers;
use crate::rng::Rng;
use crate::store::{SimStore, short};
use crate::truth::{PayoutState, Truth};
use scenario::{provider_faults, store_faults};

type SimApp = App<SimStore, SimStore, Providers, SimReceivers>;

/// How a run is made.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The seed that decides everything.
    pub seed: u64,
    /// Keep every trace line (for a replay), not only the last ones.
    pub keep_trace: bool,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    /// SHA-256 of the whole trace: the same seed gives the same digest.
    pub digest: String,
    /// Broken invariants, in order.
    pub violations: Vec<Violation>,
    /// The trace (its tail, or all of it with `keep_trace`).
    pub trace: Vec<String>,
    /// How many trace lines the run wrote.
    pub trace_lines: u64,
    /// Figures of the run.
    pub stats: BTreeMap<String, u64>,
}

/// The simulated time a run covers: the reversal watch (7 days after payment) and more.
pub const DAYS: i64 = 9;
/// When faults stop, so that every request can settle.
pub const HEAL_AT_DAYS: i64 = 8;
/// How long a process may run before it is killed (the functions' timeout).
const PROCESS_TIMEOUT: time::Duration = time::Duration::seconds(30);
/// How long a received message stays hidden (the queues' visibility timeout).
const VISIBILITY: Duration = Duration::from_secs(180);
/// Messages of one queue handled at once.
const PER_QUEUE: usize = 10;
/// More steps than this in a run means work multiplies instead of settling.
const MAX_STEPS: u64 = 400_000;
/// More steps than this at one simulated instant is a livelock.
const MAX_STEPS_AT_ONE_INSTANT: u64 = 200_000;
/// How the providers' payouts live, per mille: rejected, held, reversed, partly paid.
const LIFECYCLE: Lifecycle = Lifecycle {
    rejected: 100,
    held: 40,
    reversed: 60,
    partly: 25,
};

/// One request of the plan.
#[derive(Debug, Clone)]
struct Planned {
    merchant: MerchantId,
    key: String,
    body: String,
}

struct World {
    ctx: Arc<Ctx>,
    truth: Arc<Truth>,
    agenda: Arc<Agenda>,
    memory: MemoryStore,
    checker: Checker,
    net: Arc<SimNet>,
    app: SimApp,
    exec: Executor,
    receivers: Arc<SimReceivers>,
    plan: Vec<Planned>,
    /// The request each plan entry became, once a create answered.
    created: Arc<std::sync::Mutex<BTreeMap<usize, CashoutRequestId>>>,
    in_flight: BTreeMap<u64, QueueName>,
    stats: BTreeMap<String, u64>,
    end: OffsetDateTime,
}

/// Runs one seed.
pub fn run(options: Options) -> Report {
    let start = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap_or(OffsetDateTime::UNIX_EPOCH); // 2026-11-01
    let ctx = Ctx::new(options.seed, start, options.keep_trace);
    let (mut world, mut draw) = match World::new(&ctx, start) {
        Ok(made) => made,
        Err(why) => {
            ctx.violation(why);
            return report(&ctx, BTreeMap::new());
        }
    };
    world.setup(&mut draw, start);
    world.drive();
    world.checker.finish();
    world.count_outcomes();
    report(&ctx, world.stats)
}

fn report(ctx: &Ctx, stats: BTreeMap<String, u64>) -> Report {
    let (trace, trace_lines) = ctx.trace_lines();
    Report {
        seed: ctx.seed,
        digest: ctx.digest(),
        violations: ctx.violations(),
        trace,
        trace_lines,
        stats,
    }
}

/// Polls a future that only yields (never waits for the clock) to its end.
fn complete<F: Future>(future: F) -> Option<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    for _ in 0..10_000 {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

impl World {
    /// Wires a run: the store with its faults, the providers on the simulated network, the
    /// receivers and the real `App` over them. Returns the world and the generator the
    /// scenario is drawn from, or why the run cannot start.
    fn new(ctx: &Arc<Ctx>, start: OffsetDateTime) -> Result<(World, Rng), String> {
        let truth = Arc::new(Truth::default());
        let agenda = Arc::new(Agenda::default());
        let clock = Arc::new(SimClock(ctx.clone()));
        let memory = MemoryStore::new(clock.clone()).map_err(|e| format!("the store cannot start: {e}"))?;
        let checker = Checker::new(ctx.clone(), truth.clone(), memory.clone());
        let mut draw = ctx.rng(Rng::fork);
        let level = u32::try_from(draw.between(0, 3)).unwrap_or(3);
        let store = SimStore::new(memory.clone(), ctx.clone(), checker.clone(), store_faults(level));
        let faults = provider_faults(&mut draw, start, level);
        let mut providers_config = ProvidersConfig::for_simulator(net::BASE);
        providers_config.http.read_retries = 1;
        let net = Arc::new(SimNet::new(
            ctx.clone(),
            truth.clone(),
            agenda.clone(),
            checker.clone(),
            faults,
            LIFECYCLE,
            providers_config.http.request_timeout,
        ));
        let coverage = providers_config.coverage();
        let transport: Arc<dyn HttpTransport> = net.clone();
        let providers = Providers::with_transport(providers_config, transport)
            .map_err(|e| format!("the providers cannot start: {e}"))?;
        let receivers = Arc::new(SimReceivers::new(ctx.clone(), truth.clone()));
        let config = AppConfig {
            notification_base_url: Some("https://cashout.sim".into()),
            coverage,
            // The daily reconciliation is tested on its own; here it would only add provider
            // calls at 02:00 of simulated time.
            // Reconciliations are planned events here (the sweep's daily one would only add the
            // same at 02:00); no pacing (its timer is real time, not the simulation's).
            reconcile: cashout_app::reconcile::ReconcileConfig {
                daily_at: None,
                calls_per_second: 0,
                ..cashout_app::reconcile::ReconcileConfig::default()
            },
            ..AppConfig::default()
        };
        let store = Arc::new(store);
        let app = App::new(
            store.clone(),
            store,
            Arc::new(providers),
            receivers.clone(),
            clock,
            Arc::new(SimIds(ctx.clone())),
            config,
        );
        let world = World {
            ctx: ctx.clone(),
            truth,
            agenda,
            memory,
            checker,
            net,
            app,
            exec: Executor::new(),
            receivers,
            plan: Vec::new(),
            created: Arc::default(),
            in_flight: BTreeMap::new(),
            stats: BTreeMap::new(),
            end: start + time::Duration::days(DAYS),
        };
        Ok((world, draw))
    }

    fn stat(&mut self, name: &str, by: u64) {
        *self.stats.entry(name.to_owned()).or_insert(0) += by;
    }

    /// The driver loop: until the end of the run, or until it stops making progress.
    fn drive(&mut self) {
        let mut steps: u64 = 0;
        let mut last_now = self.ctx.now();
        let mut steps_at_now: u64 = 0;
        loop {
            let now = self.ctx.now();
            if now >= self.end {
                break;
            }
            steps += 1;
            if steps > MAX_STEPS {
                self.ctx.violation(format!(
                    "liveness: {MAX_STEPS} steps before the end of the run (work keeps multiplying); queued {:?}",
                    self.memory.queued()
                ));
                break;
            }
            self.debug_progress(steps);
            if now == last_now {
                steps_at_now += 1;
                if steps_at_now > MAX_STEPS_AT_ONE_INSTANT {
                    self.ctx.violation(format!(
                        "liveness: {MAX_STEPS_AT_ONE_INSTANT} steps without time moving (a livelock), {steps} steps in all"
                    ));
                    break;
                }
            } else {
                last_now = now;
                steps_at_now = 0;
            }
            self.kill_expired(now);
            self.move_one(now);
        }
        for label in self.exec.kill_all(&self.ctx.waits) {
            self.ctx.trace(|| format!("the run ends during {label}"));
        }
        self.ctx.trace(|| "end of the run".to_owned());
    }

    /// With `DST_DEBUG` set, a line on stderr every 100 000 steps.
    fn debug_progress(&self, steps: u64) {
        if std::env::var_os("DST_DEBUG").is_some() && steps.is_multiple_of(100_000) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "step {steps} at {:.0} s: queued {:?}, processes {}",
                    self.ctx.elapsed(),
                    self.memory.queued(),
                    self.in_flight.len()
                );
            }
        }
    }

    /// Kills the processes that outlived their timeout.
    fn kill_expired(&mut self, now: OffsetDateTime) {
        for label in self.exec.kill_expired(&self.ctx.waits, now) {
            self.ctx.trace(|| format!("timeout kills {label}"));
            self.stat("processes killed by their timeout", 1);
        }
        self.in_flight.retain(|pid, _| self.exec.kind(*pid).is_some());
    }

    /// One move, picked by the seed among what can move now: a runnable process takes a step
    /// (weighted twice), the due event fires, or a queue with visible messages and a free slot
    /// starts a task. With nothing to move, the clock jumps to the next wake-up.
    fn move_one(&mut self, now: OffsetDateTime) {
        let runnable = self.exec.runnable(&self.ctx.waits, now);
        let event_due = self.agenda.next_at().is_some_and(|at| at <= now);
        let queues: Vec<QueueName> = QueueName::ALL
            .into_iter()
            .filter(|q| self.in_flight.values().filter(|f| *f == q).count() < PER_QUEUE)
            .filter(|q| self.memory.has_visible(*q, now))
            .collect();
        let choices = runnable.len() * 2 + usize::from(event_due) + queues.len();
        if choices == 0 {
            let next = [
                self.exec.next_wake(&self.ctx.waits),
                self.agenda.next_at(),
                self.memory.next_visible_at(),
            ]
            .into_iter()
            .flatten()
            .filter(|at| *at > now)
            .min();
            match next {
                Some(at) => self.ctx.advance_to(at.min(self.end)),
                None => self.ctx.advance_to(self.end),
            }
            return;
        }
        let pick = self.ctx.rng(|r| r.index(choices));
        if pick < runnable.len() * 2 {
            self.step(runnable[pick / 2]);
        } else if event_due && pick == runnable.len() * 2 {
            if let Some(event) = self.agenda.pop_due(now) {
                self.fire(event);
            }
        } else {
            let q = queues[pick - runnable.len() * 2 - usize::from(event_due)];
            self.take(q);
        }
    }

    fn step(&mut self, pid: u64) {
        match self.exec.poll(&self.ctx.waits, pid) {
            Step::Pending => {}
            Step::Done => self.ctx.forget(pid),
            Step::Panicked(message) => {
                self.ctx.forget(pid);
                self.ctx.violation(format!("invariant 7: a panic: {message}"));
            }
        }
    }

    fn spawn(&mut self, label: String, kind: Kind, future: impl Future<Output = ()> + 'static) -> u64 {
        let deadline = self.ctx.now() + PROCESS_TIMEOUT;
        self.ctx.trace(|| format!("start {label}"));
        let pid = self.exec.spawn(label, kind, deadline, future);
        self.ctx.set_kind(pid, kind);
        pid
    }

    /// Receives one message and starts its task.
    fn take(&mut self, queue: QueueName) {
        let Some(Ok(mut batch)) = complete(self.memory.receive(queue, 1, VISIBILITY)) else {
            return;
        };
        let Some(message) = batch.pop() else { return };
        let task = TaskEnvelope::from_json(&message.body).map(|e| e.task);
        let kind = match &task {
            Ok(Task::ProviderEvent(ProviderEvent {
                notification: ProviderNotification::Hint { .. },
                ..
            })) => Kind::HintTask,
            _ => Kind::Task,
        };
        let label = match &task {
            Ok(t) => format!("{} {}", queue, describe(t)),
            Err(_) => format!("{queue} unreadable"),
        };
        let app = self.app.clone();
        let memory = self.memory.clone();
        let ctx = self.ctx.clone();
        let pid = self.spawn(label, kind, async move {
            let handler = app.clone();
            let result = app
                .process_message(&message.body, |t| async move { handler.handle_task(t).await })
                .await;
            let settled = match result {
                Ok(()) => memory.ack(queue, &message.receipt).await,
                Err(e) => {
                    ctx.trace(|| format!("task failed: {e}"));
                    let delay = Duration::from_secs(1u64 << message.receive_count.saturating_sub(1).min(6));
                    memory
                        .release(queue, &message.receipt, delay.min(Duration::from_secs(60)))
                        .await
                }
            };
            if let Err(e) = settled {
                ctx.trace(|| format!("could not settle a message: {e}"));
            }
        });
        self.in_flight.insert(pid, queue);
        self.stat("tasks run", 1);
    }

    fn count_outcomes(&mut self) {
        let mut failovers = 0;
        for r in self.memory.all_requests() {
            let moved = r.provider_attempts().iter().filter(|a| a.failover.is_some()).count() as u64;
            failovers += moved;
            if moved > 0 {
                self.stat("requests that failed over", 1);
            }
            if r.routing().is_some_and(|c| c.routes.len() > 1) {
                self.stat("requests with several routes", 1);
            }
            self.stat(&format!("final {}", r.status()), 1);
            if flagged(&r) {
                self.stat("flagged for a person", 1);
            }
        }
        self.stat("failovers", failovers);
        self.stat("seeds with a failover", u64::from(failovers > 0));
        let payouts = self.truth.payouts();
        self.stat("payouts", payouts.len() as u64);
        self.stat("payouts paid", payouts.iter().filter(|p| p.ever_paid).count() as u64);
        self.stat(
            "payouts reversed",
            payouts.iter().filter(|p| p.state == PayoutState::Rejected(826)).count() as u64,
        );
        self.stat("verified deliveries", self.truth.deliveries().len() as u64);
        self.stat("dead letters", self.memory.all_dead_letters().len() as u64);
    }
}

fn describe(task: &Task) -> String {
    match task {
        Task::Dispatch { cashout_request_id } => format!("dispatch {}", short(*cashout_request_id)),
        Task::Poll {
            cashout_request_id,
            due_at,
        } => format!(
            "poll {}{}",
            short(*cashout_request_id),
            if due_at.is_some() { "" } else { " (on demand)" }
        ),
        Task::ProviderEvent(event) => format!(
            "{} event {} {}{}",
            event.provider,
            event.reference().map(|r| short(r.request_id())).unwrap_or_default(),
            event.payout_id().map(ToString::to_string).unwrap_or_default(),
            match event.notification {
                ProviderNotification::Status(_) => " (with status)",
                ProviderNotification::Hint { .. } => " (hint)",
            }
        ),
        Task::PublishEvent { event_id } => format!("publish {event_id}"),
        Task::Deliver {
            event_id,
            endpoint_id,
            attempt,
        } => format!("deliver {event_id} to {endpoint_id} #{attempt}"),
        Task::Replay {
            event_id,
            endpoint_id,
            attempt,
        } => format!("replay {event_id} to {endpoint_id} #{attempt}"),
        Task::DeliverNotice {
            notice,
            endpoint_id,
            attempt,
        } => format!("deliver notice {} to {endpoint_id} #{attempt}", notice.id),
        Task::Reconcile {
            reconciliation_id,
            version,
        } => format!("reconcile {reconciliation_id} v{}", version.unwrap_or_default()),
    }
}
