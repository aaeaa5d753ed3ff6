//! The AWS cost drivers: DynamoDB units and SQS requests per paid cashout, counted on DynamoDB
//! Local + moto through a metered store and a counting queue, next to the minimum the design
//! needs (`docs/cost-model.md`); and what the reversal watch after payment adds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_app::AppConfig;
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{CashoutStore, QueueName};
use cashout_provider_sim::SimConfig;
use cashout_store::QueueInspect;
use cashout_store::dynamo::{ConsumedCapacity, DynamoStore};
use cashout_store::sealing::Sealer;
use cashout_store::sqs::{SqsQueue, SqsRequests};
use cashout_system::client::Api;
use cashout_system::emulators::{self, EmulatorStack};
use cashout_system::in_process::{MERCHANT_KEY, System};
use cashout_system::metered::{CountedQueue, MeteredStore, OperationCost};
use cashout_system::receiver::{Mode, Receiver};
use cashout_system::stats::{ratio, round2};
use serde::Serialize;

use super::lifecycle::{Driven, drive_lifecycle};
use super::{BenchError, fail};

/// Units and requests per paid cashout.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerCashout {
    /// DynamoDB write capacity units.
    pub wcu: f64,
    /// DynamoDB read capacity units.
    pub rcu: f64,
    /// DynamoDB write calls.
    pub write_calls: f64,
    /// DynamoDB read calls.
    pub read_calls: f64,
    /// SQS requests: send, receive (non-empty), delete, change visibility.
    pub sqs_requests: f64,
    /// Of which `SendMessage`.
    pub sqs_send: f64,
    /// Of which non-empty `ReceiveMessage`.
    pub sqs_receive: f64,
    /// Of which `DeleteMessage`.
    pub sqs_delete: f64,
    /// Of which `ChangeMessageVisibility`.
    pub sqs_change_visibility: f64,
}

/// The minimum the design needs per paid cashout (`docs/cost-model.md`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Minimum {
    /// Write units (DynamoDB Local's counting, as measured).
    pub wcu: f64,
    /// Read units.
    pub rcu: f64,
    /// SQS requests.
    pub sqs_requests: f64,
}

/// Per `docs/cost-model.md`: the writes the table design makes for the steps a paid cashout
/// cannot skip, the reads each separately invoked step needs, and for each task the flow needs
/// (dispatch, one provider event per D24 notification, one delivery per event, and the
/// safety-net status check scheduled when the provider takes the payout) a send, a delete and a
/// tenth of a receive (receives take up to 10 messages). The reversal watch after payment is
/// reported apart.
pub const MINIMUM: Minimum = Minimum {
    wcu: 63.0,
    rcu: 17.0,
    sqs_requests: 16.8,
};

/// One check of a paid request for reversals, counted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WatchCost {
    /// Write units of the check (it records the check and moves the next one on).
    pub poll_wcu: f64,
    /// Read units.
    pub poll_rcu: f64,
    /// Tasks it sends (none: the next check is a day away, left to the sweep).
    pub poll_sqs_sends: u64,
    /// Read units of the sweep's pick-up of a due check (it reads the request, then sends its
    /// task); the sweep's index query is shared by every due request and runs anyway.
    pub pickup_rcu: f64,
    /// SQS requests of the picked-up task: send, receive, delete.
    pub pickup_sqs_requests: u64,
}

/// The reversal watch over its whole window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WatchProjection {
    /// Checks (`PollSchedule::default()`: one per `paid_watch_interval` over `paid_watch_window`).
    pub checks: u32,
    /// Write units.
    pub wcu: f64,
    /// Read units.
    pub rcu: f64,
    /// SQS requests (each check's task sent by the sweep when due).
    pub sqs_requests: f64,
}

/// DynamoDB units and SQS requests per paid cashout, counted on the emulators.
#[derive(Debug, Clone, Serialize)]
pub struct CostFigure {
    /// Paid cashouts counted (D24, one invoice endpoint, every webhook delivered once).
    pub paid_cashouts: usize,
    /// Measured, per paid cashout.
    pub measured: PerCashout,
    /// The design's minimum.
    pub minimum: Minimum,
    /// measured / minimum (target ≤ 1.25).
    pub ratio_wcu: f64,
    /// measured / minimum.
    pub ratio_rcu: f64,
    /// measured / minimum.
    pub ratio_sqs: f64,
    /// Empty receives of the harness's pull loops during the run (on AWS, Lambda's pollers; not
    /// per cashout).
    pub idle_empty_receives: u64,
    /// One sweep of an idle table: read calls and units.
    pub sweep_read_calls: u64,
    /// Its read units.
    pub sweep_rcu: f64,
    /// Versioned writes per cashout that lost a race and were decided again (no units on
    /// DynamoDB Local; charged on AWS).
    pub lost_races_per_cashout: f64,
    /// One reversal-watch check of a paid request, and one hop of a long-delayed task.
    pub watch: WatchCost,
    /// The reversal watch over its whole window, from those counted unit costs.
    pub reversal_watch: WatchProjection,
    /// Per store operation: calls in the whole run, units per paid cashout.
    pub by_operation: BTreeMap<String, OperationCost>,
    /// SQS sends by task type, in the whole run.
    pub sends_by_task: BTreeMap<String, u64>,
}

fn units(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}

/// The system on the emulators, metered, with a verifying receiver subscribed to everything.
struct Metered {
    system: System<MeteredStore, CountedQueue>,
    store: Arc<MeteredStore>,
    queue: Arc<CountedQueue>,
    receiver: Receiver,
}

/// What the lifecycle run consumed.
struct Counted {
    dynamo: ConsumedCapacity,
    sqs: SqsRequests,
    /// One sweep of the empty table.
    sweep: ConsumedCapacity,
    by_operation: BTreeMap<String, OperationCost>,
    sends: BTreeMap<String, u64>,
    conflicts: u64,
}

/// Counts DynamoDB units and SQS requests over `n` paid cashouts on DynamoDB Local + moto, with
/// the production schedule (polls after 60 s, so provider notifications drive the lifecycle).
pub async fn cost(n: usize) -> Result<CostFigure, BenchError> {
    let Metered {
        mut system,
        store,
        queue,
        receiver,
    } = start_metered().await?;

    // One sweep of the (empty) table: its fixed cost.
    let before = store.consumed();
    Box::pin(system.app.sweep()).await.map_err(fail)?;
    let sweep = store.consumed().since(&before);

    system.start_workers(&QueueName::ALL);
    store.reset();
    queue.reset();
    let (d0, q0) = (store.consumed(), queue.inner.requests());
    let driven = drive_lifecycle(&system, &receiver, n, 4, Duration::from_secs(300)).await;
    // The last deliveries are recorded and acknowledged after the receiver answered, and each
    // request's first safety-net check (60 s after the provider took it) fires after payment and
    // finds itself stale: wait until no task is visible, in flight or delayed (the reversal
    // watch's checks are a day away and left to the sweep, costed below).
    wait_until_idle(&queue, Duration::from_secs(180)).await?;
    let (d1, q1) = (store.consumed(), queue.inner.requests());
    let counted = Counted {
        dynamo: d1.since(&d0),
        sqs: q1.since(&q0),
        sweep,
        by_operation: store.breakdown(),
        sends: queue.sends(),
        conflicts: store.conflicts(),
    };

    let watch = match &driven {
        Ok(driven) => watch_cost(&system, &store, &queue, driven).await,
        Err(e) => Err(BenchError(e.to_string())),
    };
    system.stop().await;
    let watch = watch?;
    driven?;
    Ok(figure(n, counted, watch))
}

/// A fresh table and queues on the emulators, the system on them (metered), the receiver.
async fn start_metered() -> Result<Metered, BenchError> {
    let EmulatorStack {
        dynamodb, sqs, created, ..
    } = emulators::stack("bench").await.map_err(BenchError)?;
    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    // A key of this process seals the endpoint's secret (KMS is not part of the emulated stack).
    let store = Arc::new(MeteredStore::new(
        DynamoStore::new(dynamodb, created.table_name, clock.clone()).with_sealer(Sealer::in_memory()),
    ));
    let queue = Arc::new(CountedQueue::new(SqsQueue::new(sqs, created.queue_urls, clock)));
    // Real time at the simulated provider (D24: DELIVERED after 1 s, COMPLETED after 2 s), so
    // that its two notifications do not race each other unrealistically.
    let system = System::start(store.clone(), queue.clone(), SimConfig::default(), AppConfig::default())
        .await
        .map_err(fail)?;
    let receiver = Receiver::start(Mode::Verify { fail_percent: 0 }, 5)
        .await
        .map_err(fail)?;
    let (_, secret) = Api::new(&system.base)
        .register_endpoint(MERCHANT_KEY, &receiver.url("cost"), &[])
        .await
        .map_err(fail)?;
    receiver.set_secret("cost", &secret);
    Ok(Metered {
        system,
        store,
        queue,
        receiver,
    })
}

/// Waits until no task is visible, in flight or delayed on any queue, `limit` at most.
async fn wait_until_idle(queue: &CountedQueue, limit: Duration) -> Result<(), BenchError> {
    let deadline = Instant::now() + limit;
    loop {
        let mut busy = 0;
        for q in QueueName::ALL {
            let d = queue.inner.depth(q).await.map_err(fail)?;
            busy += d.visible + d.in_flight + d.delayed;
        }
        if busy == 0 || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What follows payment: one reversal-watch poll of a paid request (the production schedule
/// checks a paid payout on `PollSchedule::default()`), and what the sweep spends to pick a due
/// check up.
async fn watch_cost(
    system: &System<MeteredStore, CountedQueue>,
    store: &MeteredStore,
    queue: &CountedQueue,
    driven: &Driven,
) -> Result<WatchCost, BenchError> {
    let id: CashoutRequestId = driven
        .created_at
        .keys()
        .next()
        .ok_or(BenchError("no request".into()))?
        .parse()
        .map_err(fail)?;
    let request = store
        .get_request(id)
        .await
        .map_err(fail)?
        .ok_or(BenchError("the paid request is gone".into()))?;
    let (d_before, sends_before) = (store.consumed(), queue.sends().values().sum::<u64>());
    system.app.poll(id, request.next_check_at()).await.map_err(fail)?;
    let spent = store.consumed().since(&d_before);
    let watch_sends = queue.sends().values().sum::<u64>() - sends_before;
    let pickup_before = store.consumed();
    store.get_request(id).await.map_err(fail)?;
    let pickup = store.consumed().since(&pickup_before);
    Ok(WatchCost {
        poll_wcu: units(spent.write_units),
        poll_rcu: units(spent.read_units),
        poll_sqs_sends: watch_sends,
        pickup_rcu: units(pickup.read_units),
        pickup_sqs_requests: 3,
    })
}

/// The figure of a run of `n` paid cashouts.
fn figure(n: usize, counted: Counted, watch: WatchCost) -> CostFigure {
    let measured = per_cashout(&counted.dynamo, &counted.sqs, n);
    CostFigure {
        paid_cashouts: n,
        ratio_wcu: ratio(measured.wcu, MINIMUM.wcu),
        ratio_rcu: ratio(measured.rcu, MINIMUM.rcu),
        ratio_sqs: ratio(measured.sqs_requests, MINIMUM.sqs_requests),
        measured,
        minimum: MINIMUM,
        idle_empty_receives: counted.sqs.empty_receive,
        sweep_read_calls: counted.sweep.read_calls,
        sweep_rcu: units(counted.sweep.read_units),
        lost_races_per_cashout: round2(counted.conflicts as f64 / n as f64),
        reversal_watch: reversal_watch(&watch),
        watch,
        by_operation: counted
            .by_operation
            .into_iter()
            .map(|(op, c)| {
                let per = |x: f64| round2(x / n as f64);
                (
                    op,
                    OperationCost {
                        calls: c.calls,
                        wcu: per(c.wcu),
                        rcu: per(c.rcu),
                    },
                )
            })
            .collect(),
        sends_by_task: counted.sends,
    }
}

/// Units and requests of the run, per paid cashout.
fn per_cashout(d: &ConsumedCapacity, q: &SqsRequests, n: usize) -> PerCashout {
    let per = |x: f64| round2(x / n as f64);
    PerCashout {
        wcu: per(units(d.write_units)),
        rcu: per(units(d.read_units)),
        write_calls: per(d.write_calls as f64),
        read_calls: per(d.read_calls as f64),
        sqs_requests: per((q.send + q.receive + q.delete + q.change_visibility) as f64),
        sqs_send: per(q.send as f64),
        sqs_receive: per(q.receive as f64),
        sqs_delete: per(q.delete as f64),
        sqs_change_visibility: per(q.change_visibility as f64),
    }
}

/// The reversal watch over its whole window (`PollSchedule::default()`), from one check's costs.
fn reversal_watch(watch: &WatchCost) -> WatchProjection {
    let schedule = cashout_app::config::PollSchedule::default();
    let checks = schedule.paid_watch_window.as_secs() / schedule.paid_watch_interval.as_secs().max(1);
    let polls = checks as f64;
    WatchProjection {
        checks: u32::try_from(checks).unwrap_or(u32::MAX),
        wcu: round2(polls * watch.poll_wcu),
        rcu: round2(polls * (watch.poll_rcu + watch.pickup_rcu)),
        sqs_requests: round2(polls * watch.pickup_sqs_requests as f64),
    }
}
