//! Prints the capacity units DynamoDB reports for each step of a request's life, against the
//! DynamoDB endpoint in `CASHOUT_DYNAMODB_URL` (DynamoDB Local by default on port 8000):
//!
//! ```sh
//! CASHOUT_DYNAMODB_URL=http://127.0.0.1:8000 cargo run -p cashout-store --example capacity-report
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::ids::{CashoutRequestId, EndpointId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::input::CashoutInput;
use cashout_core::ports::{
    CashoutStore, Clock, IdempotencyRecord, ListQuery, ManualClock, StoredResponse, WebhookStore,
};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::review::{ApprovalPolicy, ReviewFacts};
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt};
use cashout_store::dynamo::{ConsumedCapacity, DynamoStore};
use cashout_store::resources::{self, Definition};
use serde_json::json;
use time::OffsetDateTime;

/// A request of `invoices` invoices of its own (`id` in each invoice id): invoices are claimed by
/// one request at a time, so each request needs its own.
fn draft(invoices: usize, id: CashoutRequestId) -> cashout_core::input::CashoutDraft {
    let invoices: Vec<_> = (0..invoices)
        .map(|i| {
            json!({"invoice_id": format!("INV-{id}-{i:06}"), "payer": {"tax_id": "12345678", "name": "Payer Name S.A."},
                        "amount": "1250.00", "advance_percentage": "80"})
        })
        .collect();
    serde_json::from_value::<CashoutInput>(json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@example.com", "provider": "d24",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_id": "12345678909", "bank_account": "0001234567",
                        "email": "ana@example.com"},
        "invoices": invoices,
    }))
    .unwrap()
    .validate(&cashout_core::routing::Coverage::default())
    .unwrap()
}

fn payout(id: CashoutRequestId, state: PayoutState) -> ProviderPayout {
    ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new(format!("P-{id}")).unwrap(),
        reference: None,
        provider_status: "x".into(),
        state,
        updated_at: None,
    }
}

/// One request's life against the table, printing what each step consumed.
struct Steps<'a> {
    store: &'a DynamoStore,
    clock: &'a ManualClock,
    merchant: MerchantId,
    last: ConsumedCapacity,
}

impl Steps<'_> {
    fn print(&mut self, name: &str) {
        let now = self.store.consumed();
        let d = now.since(&self.last);
        println!(
            "{name:<40} reads {:>3} calls {:>6} RCU   writes {:>3} calls {:>6} WCU",
            d.read_calls, d.read_units, d.write_calls, d.write_units
        );
        self.last = now;
    }

    /// Creates a request of `invoices` invoices, completes its idempotency record and reads it.
    async fn create(&mut self, invoices: usize) -> CashoutRequest {
        let (store, clock, merchant) = (self.store, self.clock, self.merchant.clone());
        let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
        let created: Change = CashoutRequest::create(id, merchant.clone(), draft(invoices, id), clock.now());
        println!(
            "request JSON: {} bytes",
            serde_json::to_string(&created.request).unwrap().len()
        );
        let key = IdempotencyKey::new(format!("k-{id}")).unwrap();
        let idem = IdempotencyRecord::begin(merchant.clone(), key.clone(), "h".into(), id, clock.now());
        let outcome = store.create_request(&created, &idem, &[]).await.unwrap();
        assert!(
            matches!(outcome, cashout_core::ports::CreateOutcome::Created),
            "the create wrote nothing: {outcome:?}"
        );
        self.print("create (request + event + idempotency)");
        store
            .complete_idempotency(
                &merchant,
                &key,
                &StoredResponse {
                    status: 201,
                    body: "{\"id\":\"…\"}".repeat(40),
                },
            )
            .await
            .unwrap();
        self.print("complete idempotency");
        let r = store.get_request(id).await.unwrap().unwrap();
        self.print("get request");
        r
    }

    /// Takes `r` from review to PAID, one change at a time.
    async fn pay(&mut self, r: CashoutRequest) {
        let (store, clock) = (self.store, self.clock);
        let id = r.id();
        let review = r
            .review(
                &ApprovalPolicy::limit_only(cashout_core::review::PolicyScope::Default, 10_000_000.into()),
                &ReviewFacts::default(),
                None,
                clock.now(),
            )
            .unwrap();
        store.apply_change(&review).await.unwrap();
        self.print("review → APPROVED (+ event)");
        let claim = review
            .request
            .begin_dispatch(clock.now(), time::Duration::minutes(5))
            .unwrap();
        store.apply_change(&claim).await.unwrap();
        self.print("dispatch claim (no event)");
        let pending = claim
            .request
            .record_provider_payout(&payout(id, PayoutState::Pending), clock.now())
            .unwrap();
        let pending = pending.with_next_check(Some(clock.now() + time::Duration::minutes(1)));
        store.apply_change(&pending).await.unwrap();
        self.print("PENDING_PAYMENT (+ event + provider ref)");
        let check = pending
            .request
            .record_check(Some(clock.now() + time::Duration::minutes(5)), clock.now());
        store.apply_change(&check).await.unwrap();
        self.print("poll, no change (reschedule)");
        let paid = check
            .request
            .record_provider_payout(
                &payout(
                    id,
                    PayoutState::Paid {
                        paid_at: None,
                        amount: None,
                    },
                ),
                clock.now(),
            )
            .unwrap();
        store.apply_change(&paid).await.unwrap();
        self.print("PAID (+ event; still due: reversal watch)");
    }

    /// The reads and sweeps around request `id`: its events, the outbox, a delivery attempt,
    /// the due sweep, the provider reference, a listing.
    async fn read_around(&mut self, id: CashoutRequestId) {
        let (store, clock, merchant) = (self.store, self.clock, self.merchant.clone());
        let events = store.list_events(id).await.unwrap();
        self.print("list events");
        store
            .unpublished_events(clock.now() + time::Duration::seconds(1), 100)
            .await
            .unwrap();
        self.print("outbox sweep (4 shard queries)");
        store.mark_published(events[0].id).await.unwrap();
        self.print("mark one event published");
        store.get_event(events[0].id).await.unwrap();
        self.print("get event");
        let attempt = DeliveryAttempt {
            event_id: events[0].id,
            endpoint_id: EndpointId::from_uuid(uuid::Uuid::now_v7()),
            merchant_id: merchant.clone(),
            attempt: 1,
            attempted_at: clock.now(),
            outcome: AttemptOutcome::Delivered,
            status_code: Some(200),
            duration_ms: 120,
            response_excerpt: Some("ok".repeat(512)),
            next_attempt_at: None,
        };
        store.record_attempt(&attempt).await.unwrap();
        self.print("delivery attempt (1 KiB excerpt)");
        store.due_requests(clock.now(), 100).await.unwrap();
        self.print("due sweep (4 shard queries)");
        store
            .find_by_provider_reference(ProviderName::D24, &ProviderPayoutId::new(format!("P-{id}")).unwrap())
            .await
            .unwrap();
        self.print("provider reference lookup");
        store
            .list_requests(
                &merchant,
                &ListQuery {
                    status: None,
                    limit: 20,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        self.print("list page");
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("CASHOUT_DYNAMODB_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let client = aws_sdk_dynamodb::Client::new(&resources::emulator_config(&url).await);
    let prefix = format!("capacity{}", uuid::Uuid::now_v7().simple());
    let table = resources::create_table(&client, Definition::embedded().unwrap(), &prefix)
        .await
        .unwrap();
    let t0 = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(t0));
    let store = DynamoStore::new(client, table, clock.clone() as Arc<dyn Clock>);
    for invoices in [1, 10, 500] {
        println!("--- a request of {invoices} invoice(s)");
        let mut steps = Steps {
            store: &store,
            clock: &clock,
            merchant: MerchantId::new("clinic").unwrap(),
            last: store.consumed(),
        };
        let request = steps.create(invoices).await;
        let id = request.id();
        steps.pay(request).await;
        steps.read_around(id).await;
    }
}
