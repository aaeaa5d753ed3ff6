//! Throughput of the embedded store (WAL, `synchronous=FULL`, on this machine's disk): creates/s
//! and transitions/s with 1 and 16 concurrent writers.
//!
//! ```sh
//! cargo run --release -p cashout-store --example store-bench [-- <requests per run>]
//! ```
//! A create writes the request, its first event and the idempotency record; a transition is one
//! conditional change of a request's life (approve with event, dispatch claim, provider accepted
//! with event and provider reference, paid with event), each its own transaction.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::ids::{CashoutRequestId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::input::CashoutInput;
use cashout_core::ports::{CashoutStore, Clock, IdempotencyRecord, SystemClock};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::review::{ApprovalPolicy, ReviewFacts};
use cashout_store::sqlite::SqliteStore;
use serde_json::json;

fn change(clock: &dyn Clock) -> (Change, IdempotencyRecord) {
    let draft = serde_json::from_value::<CashoutInput>(json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@example.com", "provider": "d24",
        "beneficiary": {"name": "Ana", "document_id": "12345678909", "bank_account": "0001234567"},
        "invoices": [{"invoice_id": "INV-1", "payer": {"tax_id": "1", "name": "P"}, "amount": "100.00", "advance_percentage": "80"}],
    }))
    .unwrap()
    .validate(&cashout_core::routing::Coverage::default())
    .unwrap();
    let now = clock.now();
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let merchant = MerchantId::new("bench").unwrap();
    let created = CashoutRequest::create(id, merchant.clone(), draft, now);
    let idem = IdempotencyRecord::begin(
        merchant,
        IdempotencyKey::new(id.to_string()).unwrap(),
        "h".into(),
        id,
        now,
    );
    (created, idem)
}

fn payout(id: CashoutRequestId, state: PayoutState) -> ProviderPayout {
    ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new(format!("P-{id}")).unwrap(),
        reference: None,
        provider_status: "bench".into(),
        state,
        updated_at: None,
    }
}

/// Runs `per_writer` jobs on each of `writers` tasks; returns the wall time.
async fn run<F, Fut>(writers: usize, per_writer: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let job = job.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    job(w * per_writer + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn rate(n: usize, took: Duration) -> String {
    let per_sec = u128::try_from(n).unwrap() * 1_000_000 / took.as_micros().max(1);
    format!("{per_sec:>6}/s  ({n} in {:.2?})", took)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let total: usize = std::env::args().nth(1).map_or(1600, |n| n.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    println!(
        "embedded store at {} (WAL, synchronous=FULL), {total} requests per run",
        dir.path().display()
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    for writers in [1, 16] {
        let store = SqliteStore::open(&dir.path().join(format!("bench-{writers}.sqlite3")), clock.clone()).unwrap();
        let per_writer = total / writers;
        let n = per_writer * writers;

        let made: Arc<Vec<_>> = Arc::new((0..n).map(|_| change(clock.as_ref())).collect());
        let (s, m) = (store.clone(), made.clone());
        let took = run(writers, per_writer, move |i| {
            let (s, m) = (s.clone(), m.clone());
            async move {
                let (c, idem) = &m[i];
                s.create_request(c, idem, &[]).await.unwrap();
            }
        })
        .await;
        println!("{writers:>2} writer(s)  creates      {}", rate(n, took));

        let (s, m, c) = (store.clone(), made.clone(), clock.clone());
        let took = run(writers, per_writer, move |i| {
            let (s, m, c) = (s.clone(), m.clone(), c.clone());
            async move {
                let r = &m[i].0.request;
                let id = r.id();
                let approve = r
                    .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, c.now())
                    .unwrap();
                s.apply_change(&approve).await.unwrap();
                let claim = approve
                    .request
                    .begin_dispatch(c.now(), time::Duration::minutes(5))
                    .unwrap();
                s.apply_change(&claim).await.unwrap();
                let pending = claim
                    .request
                    .record_provider_payout(&payout(id, PayoutState::Pending), c.now())
                    .unwrap();
                s.apply_change(&pending).await.unwrap();
                let paid = pending
                    .request
                    .record_provider_payout(
                        &payout(
                            id,
                            PayoutState::Paid {
                                paid_at: None,
                                amount: None,
                            },
                        ),
                        c.now(),
                    )
                    .unwrap();
                s.apply_change(&paid).await.unwrap();
            }
        })
        .await;
        println!("{writers:>2} writer(s)  transitions  {}", rate(n * 4, took));
    }
}
