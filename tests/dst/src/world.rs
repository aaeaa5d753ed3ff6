//! One run: the scenario the seed draws (merchants, endpoints, requests, people, faults), the
//! real `App` wired to the simulated ports, and the driver that decides, step by step, which
//! process moves, which timed event fires, which queued task starts, and when the clock jumps.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cashout_app::{App, AppConfig, AppError};
use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, InvoiceId, MerchantId};
use cashout_core::ports::{InboundNotification, QueueName, Task, TaskEnvelope, TaskSource};
use cashout_core::provider::ProviderName;
use cashout_core::status::CashoutStatus;
use cashout_providers::{HttpTransport, Providers, ProvidersConfig};
use cashout_store::memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::agenda::{Agenda, Event};
use crate::check::{Checker, flagged};
use crate::ctx::{Ctx, SimClock, SimIds, Violation};
use crate::exec::{Executor, Kind, Step};
use crate::net::{self, Lifecycle, ProviderFaults, SimNet, Window};
use crate::receivers::{Behaviour, Plan, SimReceivers};
use crate::rng::Rng;
use crate::store::{SimStore, StoreFaults, short};
use crate::truth::{PayoutState, Truth};

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
    /// The seed.
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
    let truth = Arc::new(Truth::default());
    let agenda = Arc::new(Agenda::default());
    let clock = Arc::new(SimClock(ctx.clone()));
    let memory = match MemoryStore::new(clock.clone()) {
        Ok(m) => m,
        Err(e) => {
            ctx.violation(format!("the store cannot start: {e}"));
            return report(&ctx, BTreeMap::new());
        }
    };
    let checker = Checker::new(ctx.clone(), truth.clone(), memory.clone());
    let mut draw = ctx.rng(Rng::fork);
    let level = u32::try_from(draw.between(0, 3)).unwrap_or(3);
    let store = SimStore::new(memory.clone(), ctx.clone(), checker.clone(), store_faults(level));
    let faults = provider_faults(&mut draw, start, level);
    let lifecycle = Lifecycle {
        rejected: 100,
        held: 40,
        reversed: 60,
        partly: 25,
    };
    let mut providers_config = ProvidersConfig::for_simulator(net::BASE);
    providers_config.http.read_retries = 1;
    let net = Arc::new(SimNet::new(
        ctx.clone(),
        truth.clone(),
        agenda.clone(),
        checker.clone(),
        faults,
        lifecycle,
        providers_config.http.request_timeout,
    ));
    let transport: Arc<dyn HttpTransport> = net.clone();
    let coverage = providers_config.coverage();
    let providers = match Providers::with_transport(providers_config, transport) {
        Ok(p) => p,
        Err(e) => {
            ctx.violation(format!("the providers cannot start: {e}"));
            return report(&ctx, BTreeMap::new());
        }
    };
    let receivers = Arc::new(SimReceivers::new(ctx.clone(), truth.clone()));
    let config = AppConfig {
        notification_base_url: Some("https://cashout.sim".into()),
        coverage,
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
    let mut world = World {
        ctx: ctx.clone(),
        truth,
        agenda,
        memory,
        checker,
        net,
        app,
        exec: Executor::new(),
        plan: Vec::new(),
        created: Arc::default(),
        in_flight: BTreeMap::new(),
        stats: BTreeMap::new(),
        end: start + time::Duration::days(DAYS),
    };
    world.setup(&mut draw, &receivers, start);
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

fn store_faults(level: u32) -> StoreFaults {
    StoreFaults {
        unavailable: 2 * level,
        lost_answer: 2 * level,
        spurious_conflict: 5 * level,
        duplicate: 10 + 10 * level,
        delay: 20 * level,
        send_fails: 2 * level,
    }
}

fn minutes(m: u64) -> time::Duration {
    time::Duration::minutes(i64::try_from(m).unwrap_or(0))
}

fn window(r: &mut Rng, start: OffsetDateTime, within_min: u64, len_min: (u64, u64)) -> Window {
    let from = start + minutes(r.between(0, within_min));
    Window {
        from,
        until: from + minutes(r.between(len_min.0, len_min.1)),
    }
}

fn provider_faults(r: &mut Rng, start: OffsetDateTime, level: u32) -> BTreeMap<ProviderName, ProviderFaults> {
    ProviderName::ALL
        .into_iter()
        .map(|p| {
            let mut f = ProviderFaults {
                unique_references: !r.chance(300),
                not_sent: 5 * level,
                error_before: 5 * level,
                timeout_before: 3 * level,
                throttled: 5 * level,
                error_after_create: 15 * level,
                timeout_after_create: 15 * level,
                declines: 30,
                account_errors: 10,
                ..ProviderFaults::default()
            };
            if r.chance(250) {
                f.create_outages.push(window(r, start, 240, (5, 180)));
            }
            if r.chance(300) {
                // Lookups down for hours: what a dispatch must ride out without giving up.
                f.read_outages.push(window(r, start, 240, (10, 360)));
            }
            (p, f)
        })
        .collect()
}

/// A valid request body for a provider.
fn body(r: &mut Rng, provider: ProviderName, n: usize) -> Value {
    let invoices: Vec<Value> = (0..r.between(1, 3))
        .map(|k| {
            let amount = if r.chance(120) {
                r.between(9_000, 30_000)
            } else {
                r.between(10, 4_000)
            };
            json!({
                "invoice_id": format!("INV-{n}-{k}"),
                "payer": {"tax_id": format!("{}", 11_222_333_000_100u64 + r.below(50)), "name": "Payer Co"},
                "amount": format!("{amount}.{:02}", r.below(100)),
                "advance_percentage": format!("{}", r.between(50, 100)),
            })
        })
        .collect();
    let account = format!("{:010}", r.below(10_000_000_000));
    let (currency, country, beneficiary) = match provider {
        ProviderName::D24 | ProviderName::Onspot => (
            "BRL",
            "BR",
            json!({"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                   "email": "ana@example.com", "bank_code": "001", "bank_branch": "1234", "bank_account": account, "account_type": "C"}),
        ),
        ProviderName::Tupay => (
            "PEN",
            "PE",
            json!({"name": "Luis", "last_name": "Quispe", "document_type": "DNI", "document_id": "12345678",
                   "bank_account": format!("{account}{account}"), "account_type": "S"}),
        ),
        ProviderName::Cascad => (
            "USD",
            "US",
            json!({"name": "Jo", "last_name": "Doe", "bank_account": account}),
        ),
    };
    let mut body = json!({
        "currency": currency, "country": country, "requested_by": "ops@merchant.example",
        "provider": provider.as_str(), "beneficiary": beneficiary, "invoices": invoices,
    });
    if provider == ProviderName::Cascad {
        // Cascad pays USD by card and by its test service: the test service, named.
        body["payout_method"] = json!("test");
    }
    body
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
    fn stat(&mut self, name: &str, by: u64) {
        *self.stats.entry(name.to_owned()).or_insert(0) += by;
    }

    /// Deletes the merchant's endpoints at `url`; whether none is left.
    fn remove_endpoints(&mut self, principal: &Principal, url: &str) -> bool {
        let Some(Ok(list)) = complete(self.app.list_endpoints(principal)) else {
            return false;
        };
        list.data.iter().filter(|ep| ep.url == url).all(|ep| {
            ep.id.parse().is_ok_and(|id| {
                matches!(
                    complete(self.app.delete_endpoint(principal, id)),
                    Some(Ok(()) | Err(AppError::NotFound))
                )
            })
        })
    }

    fn setup(&mut self, r: &mut Rng, receivers: &SimReceivers, start: OffsetDateTime) {
        let merchants: Vec<MerchantId> = (1..=r.between(1, 2))
            .filter_map(|m| MerchantId::new(format!("m{m}")).ok())
            .collect();
        for merchant in &merchants {
            for e in 1..=r.between(1, 2) {
                let url = format!("https://{merchant}-e{e}.example/hooks");
                let types = if r.chance(200) {
                    json!(["cashout_request.status_update"])
                } else {
                    json!([])
                };
                let body = json!({"url": url, "event_types": types}).to_string();
                let principal = Principal::Merchant {
                    merchant_id: merchant.clone(),
                };
                // A careful merchant whose create got no answer removes what it may have made
                // (an endpoint whose secret it never saw) before it tries again.
                let created = (0..50).find_map(|_| {
                    if !self.remove_endpoints(&principal, &url) {
                        return None;
                    }
                    complete(self.app.create_endpoint(&principal, body.as_bytes())).and_then(Result::ok)
                });
                let Some(view) = created else {
                    self.ctx.violation("the endpoints could not be created");
                    return;
                };
                let mut plan = Plan::default();
                for _ in 0..r.between(0, 3) {
                    let behaviour = match r.below(10) {
                        0..=4 => Behaviour::Fails,
                        5..=6 => Behaviour::Hangs,
                        7..=8 => Behaviour::Hostile(*r.pick(&[u64::MAX, 1 << 40, 86_400 * 365])),
                        _ => Behaviour::Gone,
                    };
                    let len = match behaviour {
                        Behaviour::Fails => (10, 360),
                        Behaviour::Hangs | Behaviour::Hostile(_) => (1, 120),
                        Behaviour::Gone => (1, 2),
                    };
                    plan.windows.push((window(r, start, 24 * 60, len), behaviour));
                }
                receivers.add(&url, view.secret.as_deref().unwrap_or_default(), plan);
                self.ctx.trace(|| format!("endpoint {url} ({types})"));
            }
        }
        let requests = r.between(4, 14);
        for n in 0..usize::try_from(requests).unwrap_or(0) {
            let provider = match r.below(100) {
                0..=39 => ProviderName::D24,
                40..=54 => ProviderName::Onspot,
                55..=69 => ProviderName::Tupay,
                _ => ProviderName::Cascad,
            };
            let merchant = r.pick(&merchants).clone();
            let mut body = body(r, provider, n);
            // Sometimes the merchant sends invoices of an earlier request again: refused while
            // that one holds them, accepted once it let them go (cancelled, rejected, excluded).
            let earlier: Vec<&Planned> = self.plan.iter().filter(|p| p.merchant == merchant).collect();
            if !earlier.is_empty() && r.chance(200) {
                let again: Value = serde_json::from_str(&r.pick(&earlier).body).unwrap_or_default();
                body["invoices"] = again["invoices"].clone();
            }
            self.plan.push(Planned {
                merchant,
                key: format!("order-{n}"),
                body: body.to_string(),
            });
            let at = start + time::Duration::seconds(i64::try_from(r.between(0, 3 * 3600)).unwrap_or(0));
            self.agenda.at(at, Event::Create(n));
            if r.chance(200) {
                self.agenda.at(
                    at + time::Duration::seconds(i64::try_from(r.between(0, 600)).unwrap_or(0)),
                    Event::Replay(n),
                );
            }
            if r.chance(150) {
                self.agenda.at(
                    at + time::Duration::seconds(i64::try_from(r.between(0, 7200)).unwrap_or(0)),
                    Event::Cancel(n),
                );
            }
        }
        let mut at = start;
        while at < start + time::Duration::days(2) {
            at += minutes(r.between(20, 120));
            self.agenda.at(at, Event::Operator);
        }
        for _ in 0..r.between(0, 3) {
            self.agenda.at(start + minutes(r.between(1, 2 * 24 * 60)), Event::Crash);
        }
        let forged = if r.chance(300) { r.between(1, 20) } else { 0 };
        for _ in 0..forged {
            let provider = *r.pick(&ProviderName::ALL);
            self.agenda.at(
                start + minutes(r.between(0, 24 * 60)),
                Event::Forged { provider, about: None },
            );
        }
        self.agenda.at(start + time::Duration::minutes(1), Event::Sweep);
        self.agenda.at(start + time::Duration::days(HEAL_AT_DAYS), Event::Heal);
    }

    /// The driver loop: until the end of the run.
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
            for label in self.exec.kill_expired(&self.ctx.waits, now) {
                self.ctx.trace(|| format!("timeout kills {label}"));
                self.stat("processes killed by their timeout", 1);
            }
            self.in_flight.retain(|pid, _| self.exec.kind(*pid).is_some());
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
                continue;
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
        for label in self.exec.kill_all(&self.ctx.waits) {
            self.ctx.trace(|| format!("the run ends during {label}"));
        }
        self.ctx.trace(|| "end of the run".to_owned());
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
            Ok(Task::ProviderEvent { payout: None, .. }) => Kind::HintTask,
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

    fn fire(&mut self, event: Event) {
        match event {
            Event::Transition {
                provider,
                payout_id,
                to,
            } => {
                if let Some(after) = self.net.transition(provider, &payout_id, to) {
                    self.net.notify_later(&after);
                }
            }
            Event::Notify { provider, payout_id } => self.notify(provider, &payout_id, 0),
            Event::Forged { provider, about } => self.forge(provider, about),
            Event::Create(n) | Event::Replay(n) => self.create(n),
            Event::Cancel(n) => self.cancel(n),
            Event::Operator => self.operate(),
            Event::Sweep => {
                let now = self.ctx.now();
                self.agenda.at(now + time::Duration::minutes(1), Event::Sweep);
                let config = &self.app.config;
                let lag = |d: Duration| now - time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
                let due = self
                    .memory
                    .earliest_check()
                    .is_some_and(|at| at <= lag(config.sweep_lag))
                    || self
                        .memory
                        .oldest_unpublished()
                        .is_some_and(|at| at < lag(config.outbox_lag));
                if due && self.exec.count(Kind::Sweep) == 0 {
                    let app = self.app.clone();
                    let ctx = self.ctx.clone();
                    self.spawn("sweep".into(), Kind::Sweep, async move {
                        if let Err(e) = app.sweep().await {
                            ctx.trace(|| format!("sweep failed: {e}"));
                        }
                    });
                }
            }
            Event::Crash => {
                let killed = self.exec.kill_all(&self.ctx.waits);
                self.in_flight.clear();
                self.ctx.trace(|| format!("CRASH: {} processes lost", killed.len()));
                self.stat("crashes", 1);
            }
            Event::Heal => {
                self.ctx.heal();
                self.ctx.trace(|| "faults stop".to_owned());
            }
        }
    }

    fn create(&mut self, n: usize) {
        let Some(planned) = self.plan.get(n).cloned() else {
            return;
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let agenda = self.agenda.clone();
        let created = self.created.clone();
        self.stat("creates sent", 1);
        self.spawn(format!("create {}", planned.key), Kind::Api, async move {
            match app
                .create_cashout(&planned.merchant, Some(&planned.key), planned.body.as_bytes())
                .await
            {
                Ok(response) => {
                    let id = serde_json::from_str::<Value>(&response.body)
                        .ok()
                        .and_then(|v| v["id"].as_str().and_then(|i| i.parse::<CashoutRequestId>().ok()));
                    if let Some(id) = id {
                        crate::ctx::lock(&created).insert(n, id);
                    }
                    ctx.trace(|| {
                        format!(
                            "create {} answered {} {}",
                            planned.key,
                            response.status,
                            id.map(short).unwrap_or_default()
                        )
                    });
                }
                Err(e) => {
                    // A merchant retries a create that failed, with the same key and body.
                    ctx.trace(|| format!("create {} failed: {e}", planned.key));
                    if e.is_retryable() || e.status() >= 500 {
                        agenda.at(ctx.now() + time::Duration::seconds(30), Event::Replay(n));
                    }
                }
            }
        });
    }

    /// The request created for plan entry `n`, once its create answered.
    fn created(&self, n: usize) -> Option<CashoutRequestId> {
        crate::ctx::lock(&self.created).get(&n).copied()
    }

    fn cancel(&mut self, n: usize) {
        let Some(id) = self.created(n) else { return };
        let Some(merchant) = self.plan.get(n).map(|p| p.merchant.clone()) else {
            return;
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        self.spawn(format!("cancel {}", short(id)), Kind::Api, async move {
            let principal = Principal::Merchant { merchant_id: merchant };
            match app.cancel(&principal, id).await {
                Ok(view) => ctx.trace(|| format!("cancel {} answered {}", short(id), view.status)),
                Err(e) => ctx.trace(|| format!("cancel {} refused: {e}", short(id))),
            }
        });
    }

    /// An operator looks at what waits for a person and acts on one request.
    fn operate(&mut self) {
        let waiting: Vec<_> = self
            .memory
            .all_requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.status(),
                    CashoutStatus::UnderReview | CashoutStatus::PaymentProcessorError
                )
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        let r = waiting[self.ctx.rng(|g| g.index(waiting.len()))].clone();
        let id = r.id();
        let choice = self.ctx.rng(|g| g.below(100));
        let invoice: Option<InvoiceId> = r
            .invoices()
            .iter()
            .filter(|i| i.is_included())
            .map(|i| i.invoice_id.clone())
            .next();
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let status = r.status();
        self.spawn(format!("operator on {} ({status})", short(id)), Kind::Api, async move {
            let op = Principal::Operator;
            let result = match (status, choice) {
                (CashoutStatus::UnderReview, 0..=19) if r.included_invoice_count() > 1 && invoice.is_some() => {
                    let invoice = invoice.unwrap_or_else(|| r.invoices()[0].invoice_id.clone());
                    match app.exclude_invoice(&op, id, &invoice).await {
                        Ok(_) => app.approve(&op, id).await,
                        Err(e) => Err(e),
                    }
                }
                (CashoutStatus::UnderReview, 0..=69) => app.approve(&op, id).await,
                (CashoutStatus::PaymentProcessorError, 0..=59) => app.retry(&op, id).await,
                _ => app.reject(&op, id, "operator decision".into()).await,
            };
            match result {
                Ok(view) => ctx.trace(|| format!("operator on {} → {}", short(id), view.status)),
                Err(e) => ctx.trace(|| format!("operator on {} refused: {e}", short(id))),
            }
        });
    }

    /// A provider posts what it knows about a payout now.
    fn notify(&mut self, provider: ProviderName, payout_id: &str, attempt: u32) {
        let Some(payout) = self.truth.payout(provider, payout_id) else {
            return;
        };
        let notification = match provider {
            ProviderName::Cascad => {
                let body = net::invoice_doc(&payout).into_bytes();
                let signature = net::cascad_signature(net::CASCAD_SECRETS.2, &body);
                InboundNotification {
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("x-signature".into(), signature),
                    ],
                    body,
                }
            }
            _ => d24_hint(Some(&payout.id), Some(&payout.reference)),
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let agenda = self.agenda.clone();
        let id = payout_id.to_owned();
        self.stat("notifications", 1);
        self.spawn(
            format!("{provider} notifies {payout_id}"),
            Kind::Notification,
            async move {
                if let Err(e) = app.receive_notification(provider, notification).await {
                    ctx.trace(|| format!("notification refused: {e}"));
                    if attempt < 5 {
                        // The provider tries again later.
                        agenda.at(
                            ctx.now() + time::Duration::minutes(2),
                            Event::Notify {
                                provider,
                                payout_id: id,
                            },
                        );
                    }
                }
            },
        );
    }

    /// Someone who is not the provider posts to `/webhooks/{provider}`.
    fn forge(&mut self, provider: ProviderName, about: Option<CashoutRequestId>) {
        let known: Vec<CashoutRequestId> = self.memory.all_requests().iter().map(|r| r.id()).collect();
        let (kind, about, fake_id) = self.ctx.rng(|r| {
            let about = about.or_else(|| (!known.is_empty() && r.chance(500)).then(|| *r.pick(&known)));
            (r.below(3), about, 9_000_000 + r.below(1_000_000))
        });
        let notification = match provider {
            ProviderName::Cascad => {
                let body = json!({"data": {"id": "cpoi_forged", "type": "payout-invoice", "attributes": {"status": "processed", "resolution": "ok", "amount": 10, "currency": "USD", "reference_id": about.map(|a| a.to_string())}}})
                    .to_string()
                    .into_bytes();
                let headers = match kind {
                    0 => vec![],
                    _ => vec![("x-signature".to_owned(), net::cascad_signature("not-the-secret", &body))],
                };
                InboundNotification { headers, body }
            }
            _ => {
                let reference = about.map(|a| a.to_string());
                match kind {
                    0 => d24_hint(Some(&fake_id.to_string()), None),
                    1 => d24_hint(
                        None,
                        Some(&reference.unwrap_or_else(|| uuid::Uuid::from_u128(u128::from(fake_id)).to_string())),
                    ),
                    _ => d24_hint(Some(&fake_id.to_string()), reference.as_deref()),
                }
            }
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        self.stat("forged notifications", 1);
        self.spawn(
            format!("forged {provider} notification"),
            Kind::Notification,
            async move {
                let result = app.receive_notification(provider, notification).await;
                ctx.trace(|| {
                    format!(
                        "forged notification answered: {}",
                        result.map_or_else(|e| e.to_string(), |()| "ok".into())
                    )
                });
            },
        );
    }

    fn count_outcomes(&mut self) {
        for r in self.memory.all_requests() {
            self.stat(&format!("final {}", r.status()), 1);
            if flagged(&r) {
                self.stat("flagged for a person", 1);
            }
        }
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

/// A D24 notification form (seed 001 / the digest: form-urlencoded, no status).
fn d24_hint(cashout_id: Option<&str>, external_id: Option<&str>) -> InboundNotification {
    let mut fields = vec![("date", "2026-11-01 00:00:00".to_owned()), ("control", "0".repeat(64))];
    if let Some(id) = cashout_id {
        fields.push(("cashout_id", id.to_owned()));
    }
    if let Some(r) = external_id {
        fields.push(("external_id", r.to_owned()));
    }
    InboundNotification {
        headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        body: serde_urlencoded::to_string(&fields).unwrap_or_default().into_bytes(),
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
        Task::ProviderEvent {
            provider,
            reference,
            payout_id,
            payout,
        } => format!(
            "{provider} event {} {}{}",
            reference.map(short).unwrap_or_default(),
            payout_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            if payout.is_some() { " (with status)" } else { " (hint)" }
        ),
        Task::PublishEvent { event_id } => format!("publish {event_id}"),
        Task::Deliver {
            event_id,
            endpoint_id,
            attempt,
        } => format!("deliver {event_id} to {endpoint_id} #{attempt}"),
    }
}
