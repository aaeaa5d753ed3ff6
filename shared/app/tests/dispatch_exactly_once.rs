//! At most one payout, through the real [`App::dispatch`] (claim, lookup, fence, create, adopt
//! or release), over generated schedules of everything that makes a create's outcome unknown
//! or races it: a timeout or a 5xx after the provider made the payout, a 5xx or throttling
//! (with any `Retry-After`) before it did, an unreadable answer, lookups that fail, a dispatcher
//! that crashes after its create reached the provider, a duplicate dispatch task, the sweep
//! re-dispatching an `APPROVED` request, a merchant's cancel and an operator's reject or retry,
//! each also landing between a dispatcher's claim and its create or while its create is in
//! flight.
//!
//! The provider double does **not** enforce unique references: every create that reaches it
//! acts, so a second create for a reference it already holds is a double payout, and the lookup
//! by reference before every create is the only defence. After every step the test asserts:
//! - no create ever reaches the provider while it holds a payout for the reference (so at most
//!   one payout exists);
//! - while the provider holds a live payout, the request is never `CANCELLED`, `REJECTED` or
//!   `PAYMENT_PROCESSOR_ERROR` unless it is flagged for a person
//!   ([`CashoutRequest::attention`]);
//!
//! and once the provider heals, that dispatch finishes: the request leaves `APPROVED`, and is
//! `PENDING_PAYMENT` if the provider holds a live payout for it.
//!
//! Store and queue: [`MemoryStore`]; time: a [`ManualClock`] that only the schedule moves.
//! Interleavings are exact, not timed: the double pauses the dispatcher at a chosen provider
//! call and the test runs the other actor before letting it go on (or drops it: a crash).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_app::{App, AppConfig, AppError, Created, TaskOutcome};
use cashout_core::auth::Principal;
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, MerchantId, PayoutReference, ProviderPayoutId};
use cashout_core::ports::{
    CashoutStore, InboundNotification, ManualClock, PayoutMethod, PayoutMethodQuery, PayoutOrder, PayoutProvider,
    ProviderError, ProviderErrorKind, ProviderNotification, QueueName, SequentialIds, Task, TaskEnvelope, TaskSource,
};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::status::CashoutStatus;
use cashout_store::memory::MemoryStore;
use proptest::prelude::*;
use time::OffsetDateTime;
use tokio::sync::oneshot;

// ----- the provider double -----

/// What the provider does with the next create that reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// Makes the payout and answers.
    Accept,
    /// Makes the payout; the answer times out (`Ambiguous`).
    TimeoutAfter,
    /// As [`Create::TimeoutAfter`], and the provider's read endpoints fail for the next
    /// [`OUTAGE_READS`] reads (the whole provider is in trouble).
    TimeoutInOutage,
    /// A 5xx before it made anything (`Ambiguous`: the client cannot tell).
    ServerErrorBefore,
    /// A 5xx after it made the payout (`Ambiguous`).
    ServerErrorAfter,
    /// 429 with `Retry-After` (seconds); nothing made.
    Throttled(u64),
    /// Connection refused; nothing made.
    Unavailable,
    /// An answer that cannot be read (`Protocol`), after making the payout or not.
    Unreadable { made: bool },
    /// The data is refused; nothing made.
    Declined,
    /// The account is refused; nothing made.
    Misconfigured,
}

impl Create {
    /// Whether the provider made the payout.
    fn makes(self) -> bool {
        matches!(
            self,
            Create::Accept
                | Create::TimeoutAfter
                | Create::TimeoutInOutage
                | Create::ServerErrorAfter
                | Create::Unreadable { made: true }
        )
    }

    fn error(self) -> Option<ProviderError> {
        let (kind, message) = match self {
            Create::Accept => return None,
            Create::TimeoutAfter | Create::TimeoutInOutage => (ProviderErrorKind::Ambiguous, "timeout after sending"),
            Create::ServerErrorBefore => (ProviderErrorKind::Ambiguous, "502 (nothing made)"),
            Create::ServerErrorAfter => (ProviderErrorKind::Ambiguous, "500 (payout made)"),
            Create::Throttled(s) => (
                ProviderErrorKind::Retryable {
                    retry_after: Some(Duration::from_secs(s)),
                },
                "429",
            ),
            Create::Unavailable => (ProviderErrorKind::Retryable { retry_after: None }, "connection refused"),
            Create::Unreadable { .. } => (ProviderErrorKind::Protocol, "unreadable answer"),
            Create::Declined => (ProviderErrorKind::Declined, "invalid bank account"),
            Create::Misconfigured => (ProviderErrorKind::Configuration, "IP not allowed"),
        };
        Some(ProviderError::new(ProviderName::D24, kind, message))
    }
}

/// How many reads fail after a [`Create::TimeoutInOutage`].
const OUTAGE_READS: usize = 3;

/// What the provider does with the next read (lookup by reference, status by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Answer,
    /// 503: nothing known.
    Fail,
    /// 429 with `Retry-After` (seconds).
    Throttled(u64),
}

/// Where a dispatcher is paused while something else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// Claimed, about to look the payout up: between the claim and the create.
    Claimed,
    /// The create reached the provider (which acted on it); the answer is on its way back.
    CreateSent,
    /// The lookup before the create answered; the dispatcher has not acted on it yet.
    LookedUp,
}

/// A dispatcher paused at `point`: it says so on `entered` and waits for `release`.
struct Gate {
    point: Point,
    entered: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

#[derive(Default)]
struct ProviderState {
    creates: VecDeque<Create>,
    reads: VecDeque<Read>,
    cancellable: bool,
    /// Every payout ever made, by reference.
    payouts: BTreeMap<PayoutReference, Vec<ProviderPayout>>,
    made: u32,
    /// Creates that reached the provider while it held a payout for their reference.
    creates_while_held: u32,
    gate: Option<Gate>,
    calls: Vec<String>,
}

impl ProviderState {
    fn take_gate(&mut self, point: Point) -> Option<Gate> {
        if self.gate.as_ref().is_some_and(|g| g.point == point) {
            self.gate.take()
        } else {
            None
        }
    }

    fn read(&mut self) -> Result<(), ProviderError> {
        match self.reads.pop_front().unwrap_or(Read::Answer) {
            Read::Answer => Ok(()),
            Read::Fail => Err(ProviderError::new(
                ProviderName::D24,
                ProviderErrorKind::Retryable { retry_after: None },
                "503 on a read",
            )),
            Read::Throttled(s) => Err(ProviderError::new(
                ProviderName::D24,
                ProviderErrorKind::Retryable {
                    retry_after: Some(Duration::from_secs(s)),
                },
                "429 on a read",
            )),
        }
    }
}

/// A payout provider that follows a script, acts on every create that reaches it (it does not
/// enforce unique references) and can pause a caller at a [`Point`].
#[derive(Default)]
struct ScriptedProvider(Mutex<ProviderState>);

impl ScriptedProvider {
    fn state(&self) -> std::sync::MutexGuard<'_, ProviderState> {
        self.0.lock().unwrap()
    }

    fn arm(&self, gate: Gate) {
        self.state().gate = Some(gate);
    }

    /// Drops a gate no call reached.
    fn disarm(&self) {
        self.state().gate = None;
    }

    /// Heals: every create is accepted and every read answered from now on.
    fn heal(&self) {
        let mut s = self.state();
        s.creates.clear();
        s.reads.clear();
    }
}

async fn pause(gate: Option<Gate>) {
    if let Some(g) = gate {
        let _ = g.entered.send(());
        let _ = g.release.await;
    }
}

impl PayoutProvider for ScriptedProvider {
    async fn create_payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        let (gate, answer) = {
            let mut s = self.state();
            let step = s.creates.pop_front().unwrap_or(Create::Accept);
            s.calls.push(format!("create {step:?}"));
            let held = s.payouts.get(&order.reference).is_some_and(|p| !p.is_empty());
            if held {
                s.creates_while_held += 1;
            }
            let mut made = None;
            if step.makes() {
                s.made += 1;
                let payout = ProviderPayout {
                    provider: order.provider,
                    payout_id: ProviderPayoutId::new(format!("P{}", s.made)).unwrap(),
                    reference: Some(order.reference),
                    state: PayoutState::Pending,
                    provider_status: "PENDING".into(),
                    updated_at: None,
                };
                s.payouts.entry(order.reference).or_default().push(payout.clone());
                made = Some(payout);
            }
            if step == Create::TimeoutInOutage {
                for _ in 0..OUTAGE_READS {
                    s.reads.push_front(Read::Fail);
                }
            }
            let answer = match step.error() {
                Some(e) => Err(e),
                None => Ok(made.unwrap()),
            };
            (s.take_gate(Point::CreateSent), answer)
        };
        pause(gate).await;
        answer
    }

    async fn find_payout(
        &self,
        _: ProviderName,
        reference: PayoutReference,
    ) -> Result<Option<ProviderPayout>, ProviderError> {
        let gate = self.state().take_gate(Point::Claimed);
        pause(gate).await;
        let (gate, answer) = {
            let mut s = self.state();
            let read = s.read();
            s.calls
                .push(format!("lookup {}", if read.is_ok() { "answered" } else { "failed" }));
            let answer = read.map(|()| s.payouts.get(&reference).and_then(|p| p.first()).cloned());
            (s.take_gate(Point::LookedUp), answer)
        };
        pause(gate).await;
        answer
    }

    async fn payout_status(
        &self,
        _: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let mut s = self.state();
        let read = s.read();
        s.calls
            .push(format!("status {}", if read.is_ok() { "answered" } else { "failed" }));
        read?;
        s.payouts
            .get(&reference)
            .and_then(|p| p.iter().find(|p| &p.payout_id == payout_id))
            .cloned()
            .ok_or_else(|| ProviderError::new(ProviderName::D24, ProviderErrorKind::NotFound, "no such payout"))
    }

    async fn cancel_payout(
        &self,
        _: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let mut s = self.state();
        s.calls.push("cancel".into());
        let cancellable = s.cancellable;
        let payout = s
            .payouts
            .get_mut(&reference)
            .and_then(|p| p.iter_mut().find(|p| &p.payout_id == payout_id))
            .ok_or_else(|| ProviderError::new(ProviderName::D24, ProviderErrorKind::NotFound, "no such payout"))?;
        if !cancellable || payout.state != PayoutState::Pending {
            return Err(ProviderError::new(
                ProviderName::D24,
                ProviderErrorKind::InvalidState,
                "already delivered",
            ));
        }
        payout.state = PayoutState::Cancelled;
        payout.provider_status = "CANCELLED".into();
        Ok(payout.clone())
    }

    fn parse_notification(
        &self,
        provider: ProviderName,
        _: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        Err(ProviderError::new(
            provider,
            ProviderErrorKind::Protocol,
            "no notifications here",
        ))
    }

    async fn payout_methods(&self, _: ProviderName, _: &PayoutMethodQuery) -> Result<Vec<PayoutMethod>, ProviderError> {
        Ok(Vec::new())
    }
}

// ----- the system under test -----

type TestApp = App<MemoryStore, MemoryStore, ScriptedProvider, ()>;

const MERCHANT: &str = "m1";

struct Harness {
    app: TestApp,
    clock: Arc<ManualClock>,
    id: CashoutRequestId,
    /// What each step did, for the failure message.
    trace: Vec<String>,
    /// The wait the last dispatch asked for.
    asked: Duration,
}

fn merchant() -> Principal {
    Principal::Merchant {
        merchant_id: MerchantId::new(MERCHANT).unwrap(),
    }
}

fn body() -> serde_json::Value {
    serde_json::json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@clinic.example", "provider": "d24",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                        "bank_code": "001", "bank_branch": "1234", "bank_account": "0012345678", "account_type": "C"},
        "invoices": [
            {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": "10.00", "advance_percentage": "80"}
        ]
    })
}

impl Harness {
    /// An `APPROVED` request (its dispatch task queued) and a provider following the scripts.
    async fn new(creates: &[Create], reads: &[Read], cancellable: bool) -> Harness {
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
        ));
        let store = Arc::new(MemoryStore::new(clock.clone()).unwrap());
        let provider = ScriptedProvider::default();
        {
            let mut s = provider.state();
            s.creates.extend(creates);
            s.reads.extend(reads);
            s.cancellable = cancellable;
        }
        let config = AppConfig {
            // Few attempts, so that giving up (or refusing to) is part of every long schedule.
            dispatch_max_attempts: 3,
            notification_base_url: Some("https://cashout.example".into()),
            ..AppConfig::default()
        };
        let app = App::new(
            store.clone(),
            store,
            Arc::new(provider),
            Arc::new(()),
            clock.clone(),
            Arc::new(SequentialIds::default()),
            config,
        );
        let created = app
            .create_cashout(
                &MerchantId::new(MERCHANT).unwrap(),
                Some("k1"),
                body().to_string().as_bytes(),
            )
            .await
            .unwrap();
        let Created::New { request, .. } = created else {
            panic!("a first create replayed: {created:?}")
        };
        assert_eq!(request.status(), CashoutStatus::Approved);
        let id = request.id();
        Harness {
            app,
            clock,
            id,
            trace: Vec::new(),
            asked: Duration::ZERO,
        }
    }

    fn provider(&self) -> &ScriptedProvider {
        &self.app.provider
    }

    async fn request(&self) -> CashoutRequest {
        self.app.store.get_request(self.id).await.unwrap().unwrap()
    }

    fn advance(&mut self, by: Duration) {
        self.clock.advance(time::Duration::try_from(by).unwrap());
        self.trace.push(format!("  clock +{}s", by.as_secs()));
    }

    /// One dispatch task, run to its end.
    async fn dispatch(&mut self, who: &str) -> Result<(), String> {
        let outcome = self.app.dispatch(self.id).await;
        self.dispatched(who, outcome)
    }

    fn dispatched(&mut self, who: &str, outcome: Result<TaskOutcome, AppError>) -> Result<(), String> {
        self.trace.push(format!("  {who}: {outcome:?}"));
        match outcome {
            Ok(TaskOutcome::RetryAfter(wait)) => {
                self.asked = wait;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{who} failed: {e}")),
        }
    }

    /// The sweep, then every dispatch task waiting in the queue (the create's own, the sweep's,
    /// a retry's): the queue delivers each at least once.
    async fn sweep(&mut self) -> Result<(), String> {
        let report = self.app.sweep().await.map_err(|e| format!("sweep failed: {e}"))?;
        self.trace.push(format!("  sweep: {report:?}"));
        loop {
            let batch = self
                .app
                .store
                .receive(QueueName::Dispatch, 10, Duration::from_secs(30))
                .await
                .unwrap();
            if batch.is_empty() {
                return Ok(());
            }
            for m in batch {
                self.app.store.ack(QueueName::Dispatch, &m.receipt).await.unwrap();
                let task = TaskEnvelope::from_json(&m.body).unwrap().task;
                assert!(matches!(task, Task::Dispatch { .. }), "{task:?}");
                let outcome = self.app.handle_dispatch_task(task).await;
                self.dispatched("queued dispatch", outcome)?;
            }
        }
    }

    async fn cancel(&mut self) {
        let answer = self.app.cancel(&merchant(), self.id).await;
        self.trace.push(format!("  cancel: {:?}", answer.map(|v| v.status)));
    }

    async fn reject(&mut self) {
        let answer = self
            .app
            .reject(&Principal::admin("ops"), self.id, "duplicate".into())
            .await;
        self.trace.push(format!("  reject: {:?}", answer.map(|v| v.status)));
    }

    async fn retry(&mut self) {
        let answer = self.app.retry(&Principal::admin("ops"), self.id).await;
        self.trace.push(format!("  retry: {:?}", answer.map(|v| v.status)));
    }

    /// The invariants, after any step.
    async fn check(&self) -> Result<(), String> {
        let r = self.request().await;
        let (made, while_held, live) = {
            let s = self.provider().state();
            let payouts = s.payouts.get(&self.id.into()).map_or(&[][..], Vec::as_slice);
            let live = payouts.iter().any(|p| p.state == PayoutState::Pending);
            (payouts.len(), s.creates_while_held, live)
        };
        if while_held > 0 || made > 1 {
            return Err(format!(
                "{while_held} create(s) reached the provider while it held a payout: {made} payouts for one request"
            ));
        }
        let ended = matches!(
            r.status(),
            CashoutStatus::Cancelled | CashoutStatus::Rejected | CashoutStatus::PaymentProcessorError
        );
        if live && ended && !r.needs_attention() {
            return Err(format!(
                "the request is {} without a flag for a person while the provider holds its payout",
                r.status()
            ));
        }
        Ok(())
    }

    fn report(&self, error: &str) -> String {
        format!(
            "{error}\nsteps:\n{}\nprovider calls: {:?}",
            self.trace.join("\n"),
            self.provider().state().calls
        )
    }
}

// ----- schedules -----

/// What runs beside a paused dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beside {
    /// A duplicate dispatch task.
    Dispatch,
    /// The sweep and the dispatch tasks it sends.
    Sweep,
    /// The merchant cancels.
    Cancel,
    /// An operator rejects.
    Reject,
    /// The paused dispatcher's lease lapses and another dispatch runs.
    LapseThenDispatch,
}

/// How far the clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// What the last dispatch asked for.
    Asked,
    Second,
    /// Past any lease, the dispatch grace and the sweep's lag: a crashed dispatcher's lease has
    /// lapsed and the sweep finds the request overdue.
    Lapse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A dispatch task runs to its end.
    Dispatch,
    /// A dispatch task pauses at the point; `beside` runs; the dispatch goes on.
    Interleaved(Point, Beside),
    /// A dispatcher dies at the point (its lease is left to lapse).
    Crash(Point),
    /// The sweep, and the dispatch tasks waiting in the queue.
    Sweep,
    /// The merchant cancels.
    Cancel,
    /// An operator rejects.
    Reject,
    /// An operator sends a `PAYMENT_PROCESSOR_ERROR` back to dispatch.
    Retry,
    Wait(Wait),
}

/// What a paused dispatcher did.
enum Paused {
    /// It ended without reaching the point.
    Ended(Result<TaskOutcome, AppError>),
    /// It is at the point.
    AtPoint,
}

impl Harness {
    async fn step(&mut self, step: Step) -> Result<(), String> {
        self.trace.push(format!("{step:?}"));
        match step {
            Step::Dispatch => self.dispatch("dispatch").await?,
            // Boxed: a dispatch future is large (clippy::large_futures).
            Step::Interleaved(point, beside) => Box::pin(self.interleaved(point, Some(beside))).await?,
            Step::Crash(point) => Box::pin(self.interleaved(point, None)).await?,
            Step::Sweep => self.sweep().await?,
            Step::Cancel => self.cancel().await,
            Step::Reject => self.reject().await,
            Step::Retry => self.retry().await,
            Step::Wait(Wait::Asked) => self.advance(self.asked.max(Duration::from_secs(1))),
            Step::Wait(Wait::Second) => self.advance(Duration::from_secs(1)),
            Step::Wait(Wait::Lapse) => {
                let c = &self.app.config;
                let lapse = c.dispatch_lease + c.dispatch_grace + c.sweep_lag + Duration::from_secs(1);
                self.advance(lapse);
            }
        }
        self.check().await
    }

    /// A dispatch paused at `point` while `beside` runs (then it goes on), or killed there
    /// (`beside` is `None`). A dispatch that ends without reaching the point (nothing to claim,
    /// another dispatcher's lease) simply ends, and `beside` runs after it.
    async fn interleaved(&mut self, point: Point, beside: Option<Beside>) -> Result<(), String> {
        let (entered, mut at_point) = oneshot::channel();
        let (go_on, release) = oneshot::channel();
        self.provider().arm(Gate {
            point,
            entered,
            release,
        });
        let app = self.app.clone();
        let id = self.id;
        let first = app.dispatch(id);
        tokio::pin!(first);
        let paused = tokio::select! {
            biased;
            outcome = &mut first => Paused::Ended(outcome),
            Ok(()) = &mut at_point => Paused::AtPoint,
        };
        match paused {
            Paused::Ended(outcome) => {
                self.provider().disarm();
                self.dispatched("dispatch (never reached the point)", outcome)?;
                self.beside(beside).await
            }
            Paused::AtPoint => {
                let Some(beside) = beside else {
                    self.trace.push(format!("  the dispatcher dies at {point:?}"));
                    return Ok(());
                };
                self.trace.push(format!("  dispatch paused at {point:?}"));
                self.beside(Some(beside)).await?;
                self.check().await?;
                let _ = go_on.send(());
                let outcome = first.await;
                self.dispatched("paused dispatch, resumed", outcome)
            }
        }
    }

    async fn beside(&mut self, beside: Option<Beside>) -> Result<(), String> {
        match beside {
            None => Ok(()),
            Some(Beside::Dispatch) => self.dispatch("duplicate dispatch").await,
            Some(Beside::Sweep) => self.sweep().await,
            Some(Beside::Cancel) => {
                self.cancel().await;
                Ok(())
            }
            Some(Beside::Reject) => {
                self.reject().await;
                Ok(())
            }
            Some(Beside::LapseThenDispatch) => {
                Box::pin(self.step(Step::Wait(Wait::Lapse))).await?;
                self.dispatch("dispatch after the lease lapsed").await
            }
        }
    }

    /// The provider heals and time passes: dispatch must finish.
    async fn settle(&mut self) -> Result<(), String> {
        self.trace.push("the provider heals".into());
        self.provider().heal();
        for _ in 0..4 {
            Box::pin(self.step(Step::Wait(Wait::Lapse))).await?;
            Box::pin(self.step(Step::Sweep)).await?;
            Box::pin(self.step(Step::Dispatch)).await?;
        }
        let r = self.request().await;
        let live = self
            .provider()
            .state()
            .payouts
            .get(&self.id.into())
            .is_some_and(|p| p.iter().any(|p| p.state == PayoutState::Pending));
        if r.status() == CashoutStatus::Approved {
            return Err("dispatch never finished after the provider healed".into());
        }
        if live && r.status() != CashoutStatus::PendingPayment && !r.needs_attention() {
            return Err(format!(
                "the provider holds a live payout and the request is {}, unflagged",
                r.status()
            ));
        }
        Ok(())
    }
}

/// Runs a schedule: every step, then the provider heals and dispatch must finish. `Err` says
/// which invariant broke, after which steps.
async fn run(creates: &[Create], reads: &[Read], cancellable: bool, steps: &[Step]) -> Result<(), String> {
    let mut h = Harness::new(creates, reads, cancellable).await;
    let mut result = h.check().await;
    for step in steps {
        if result.is_err() {
            break;
        }
        result = Box::pin(h.step(*step)).await;
    }
    if result.is_ok() {
        result = Box::pin(h.settle()).await;
    }
    result.map_err(|e| h.report(&e))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn retry_after() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 1u64..=600, Just(u64::MAX)]
}

fn create() -> impl Strategy<Value = Create> {
    prop_oneof![
        3 => Just(Create::TimeoutAfter),
        2 => Just(Create::TimeoutInOutage),
        2 => Just(Create::ServerErrorBefore),
        3 => Just(Create::ServerErrorAfter),
        2 => retry_after().prop_map(Create::Throttled),
        2 => Just(Create::Unavailable),
        1 => any::<bool>().prop_map(|made| Create::Unreadable { made }),
        2 => Just(Create::Accept),
        1 => Just(Create::Declined),
        1 => Just(Create::Misconfigured),
    ]
}

fn read() -> impl Strategy<Value = Read> {
    prop_oneof![
        3 => Just(Read::Answer),
        3 => Just(Read::Fail),
        1 => retry_after().prop_map(Read::Throttled),
    ]
}

fn point() -> impl Strategy<Value = Point> {
    prop_oneof![Just(Point::Claimed), Just(Point::CreateSent), Just(Point::LookedUp)]
}

fn beside() -> impl Strategy<Value = Beside> {
    prop_oneof![
        Just(Beside::Dispatch),
        Just(Beside::Sweep),
        Just(Beside::Cancel),
        Just(Beside::Reject),
        Just(Beside::LapseThenDispatch),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Dispatch),
        4 => (point(), beside()).prop_map(|(p, b)| Step::Interleaved(p, b)),
        2 => point().prop_map(Step::Crash),
        3 => Just(Step::Sweep),
        1 => Just(Step::Cancel),
        1 => Just(Step::Reject),
        1 => Just(Step::Retry),
        3 => Just(Step::Wait(Wait::Asked)),
        1 => Just(Step::Wait(Wait::Second)),
        2 => Just(Step::Wait(Wait::Lapse)),
    ]
}

/// 1,024 schedules by default (about a second); `PROPTEST_CASES` overrides (30,000 take about a
/// minute).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1_024);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn dispatch_never_makes_a_second_payout_nor_ends_a_request_whose_payout_the_provider_holds(
        creates in prop::collection::vec(create(), 0..8),
        reads in prop::collection::vec(read(), 0..16),
        cancellable in any::<bool>(),
        steps in prop::collection::vec(step(), 1..24),
    ) {
        let result = block_on(run(&creates, &reads, cancellable, &steps));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

// ----- fixed schedules: the classic ways to pay twice, each on its own -----

fn must_hold(creates: &[Create], reads: &[Read], steps: &[Step]) {
    if let Err(e) = block_on(run(creates, reads, false, steps)) {
        panic!("{e}");
    }
}

#[test]
fn a_timeout_after_the_provider_made_the_payout_then_a_failed_lookup_is_not_created_again() {
    must_hold(
        &[Create::TimeoutInOutage],
        &[],
        &[
            Step::Dispatch,
            Step::Wait(Wait::Asked),
            Step::Dispatch,
            Step::Wait(Wait::Asked),
            Step::Dispatch,
        ],
    );
}

/// A dispatcher stalls after its lookup (nothing there) past its lease; the next one's create
/// reaches the provider but its answer is lost and its lookups fail. The stale one wakes up:
/// what it knew must not erase what the next one learnt, or later attempts give up over a
/// payout the provider holds.
#[test]
fn a_dispatcher_that_outlives_its_lease_does_not_erase_what_the_next_one_learnt() {
    must_hold(
        &[Create::TimeoutInOutage],
        &[],
        &[
            Step::Interleaved(Point::LookedUp, Beside::LapseThenDispatch),
            Step::Wait(Wait::Asked),
            Step::Dispatch,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
        ],
    );
}

#[test]
fn a_dispatcher_that_dies_after_its_create_reached_the_provider_is_not_followed_by_a_second_create() {
    must_hold(
        &[Create::Accept],
        &[],
        &[Step::Crash(Point::CreateSent), Step::Wait(Wait::Lapse), Step::Sweep],
    );
}

#[test]
fn a_duplicate_dispatch_or_a_cancel_between_claim_and_create_changes_nothing() {
    for beside in [Beside::Dispatch, Beside::Sweep, Beside::Cancel, Beside::Reject] {
        for point in [Point::Claimed, Point::CreateSent, Point::LookedUp] {
            must_hold(
                &[Create::ServerErrorAfter],
                &[Read::Answer, Read::Fail, Read::Fail],
                &[
                    Step::Interleaved(point, beside),
                    Step::Wait(Wait::Asked),
                    Step::Dispatch,
                    Step::Cancel,
                ],
            );
        }
    }
}

#[test]
fn giving_up_after_failing_lookups_flags_the_request_instead_of_ending_it() {
    must_hold(
        &[Create::TimeoutAfter],
        &std::iter::once(Read::Answer)
            .chain([Read::Fail; 12])
            .collect::<Vec<_>>(),
        &[
            Step::Dispatch,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
            Step::Wait(Wait::Lapse),
            Step::Sweep,
            Step::Cancel,
            Step::Reject,
        ],
    );
}

/// The checker can fail: a create sent to a provider that holds the payout is seen, and so is
/// a request given up while the provider holds its payout.
#[test]
fn the_checker_sees_a_second_create_and_a_request_ended_over_a_held_payout() {
    block_on(async {
        let h = Harness::new(&[], &[], false).await;
        let order = PayoutOrder::for_request(&h.request().await, None);
        h.provider().create_payout(&order).await.unwrap();
        assert!(h.check().await.is_ok());
        h.provider().create_payout(&order).await.unwrap();
        let e = h.check().await.unwrap_err();
        assert!(e.contains("while it held a payout"), "{e}");

        let h = Harness::new(&[Create::Misconfigured], &[], false).await;
        h.app.dispatch(h.id).await.unwrap();
        assert_eq!(h.request().await.status(), CashoutStatus::PaymentProcessorError);
        assert!(h.check().await.is_ok(), "the provider holds nothing");
        let order = PayoutOrder::for_request(&h.request().await, None);
        h.provider().create_payout(&order).await.unwrap();
        let e = h.check().await.unwrap_err();
        assert!(e.contains("without a flag for a person"), "{e}");
    });
}
