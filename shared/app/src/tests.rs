//! Use-case tests over the embedded SQLite store (store and queue), a scripted provider and a
//! recording webhook sender, with a manual clock.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_core::auth::{ApiKey, Principal};
use cashout_core::ids::{CashoutRequestId, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    Clock, InboundNotification, ManualClock, OutgoingWebhook, PayoutMethod, PayoutMethodQuery, PayoutOrder,
    PayoutProvider, ProviderError, ProviderErrorKind, ProviderNotification, QueueName, SendError, SequentialIds, Task,
    TaskEnvelope, TaskSource, WebhookResponse, WebhookSender,
};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::signing::{WebhookSecret, WebhookVerifier};
use cashout_core::status::CashoutStatus;
use cashout_core::webhook::RetrySchedule;
use cashout_store::sqlite::SqliteStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::worker::WorkerOptions;
use crate::{App, AppConfig, AppError, TaskOutcome};

/// What the scripted provider does on the next create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnCreate {
    Accept,
    /// Creates the payout but the answer is lost.
    LoseAnswer,
    /// Creates the payout, the answer is lost, and the status endpoint goes down for long.
    LoseAnswerInOutage,
    /// Fails before creating anything.
    Unavailable,
    Decline,
    Misconfigured,
}

#[derive(Default)]
struct ProviderState {
    payouts: HashMap<CashoutRequestId, ProviderPayout>,
    creates: u32,
    lookups: u32,
    script: VecDeque<OnCreate>,
    cancellable: bool,
    /// Whether status checks fail as unavailable (the status endpoint is down).
    status_down: bool,
    status_calls: u32,
    /// How many of the next lookups (by reference) fail as unavailable.
    failing_lookups: u32,
}

/// A provider double that keeps its payouts by reference and follows a script.
#[derive(Default)]
struct ScriptedProvider(Mutex<ProviderState>);

impl ScriptedProvider {
    fn script(&self, steps: &[OnCreate]) {
        self.0.lock().unwrap().script.extend(steps.iter().copied());
    }
    fn set_state(&self, id: CashoutRequestId, state: PayoutState) {
        let mut s = self.0.lock().unwrap();
        let p = s.payouts.get_mut(&id).unwrap();
        p.provider_status = format!("{state:?}");
        p.state = state;
    }
    fn creates(&self) -> u32 {
        self.0.lock().unwrap().creates
    }
    fn payouts(&self) -> usize {
        self.0.lock().unwrap().payouts.len()
    }
    fn fail_lookups(&self, n: u32) {
        self.0.lock().unwrap().failing_lookups = n;
    }
    /// A payout appears at the provider for `reference` without a create of ours (made by hand in
    /// the provider's panel, or a create that was processed late).
    fn insert(&self, reference: CashoutRequestId, state: PayoutState) {
        let mut s = self.0.lock().unwrap();
        let payout = ProviderPayout {
            provider: ProviderName::D24,
            payout_id: ProviderPayoutId::new(format!("P{}", s.payouts.len() + 1)).unwrap(),
            reference: Some(reference),
            provider_status: format!("{state:?}"),
            state,
            updated_at: None,
        };
        s.payouts.insert(reference, payout);
    }
}

fn err(kind: ProviderErrorKind, message: &str) -> ProviderError {
    ProviderError::new(ProviderName::D24, kind, message)
}

impl PayoutProvider for ScriptedProvider {
    async fn create_payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        let mut s = self.0.lock().unwrap();
        s.creates += 1;
        let step = s.script.pop_front().unwrap_or(OnCreate::Accept);
        let make = |s: &mut ProviderState| {
            let payout = ProviderPayout {
                provider: order.provider,
                payout_id: ProviderPayoutId::new(format!("P{}", s.payouts.len() + 1)).unwrap(),
                reference: Some(order.reference),
                state: PayoutState::Pending,
                provider_status: "PENDING".into(),
                updated_at: None,
            };
            s.payouts.entry(order.reference).or_insert(payout).clone()
        };
        match step {
            OnCreate::Accept => Ok(make(&mut s)),
            OnCreate::LoseAnswer => {
                make(&mut s);
                Err(err(ProviderErrorKind::Ambiguous, "timeout after sending"))
            }
            OnCreate::LoseAnswerInOutage => {
                make(&mut s);
                s.failing_lookups = 1_000;
                Err(err(ProviderErrorKind::Ambiguous, "timeout after sending"))
            }
            OnCreate::Unavailable => Err(err(ProviderErrorKind::Retryable { retry_after: None }, "503")),
            OnCreate::Decline => Err(err(ProviderErrorKind::Declined, "invalid bank account").with_code("300")),
            OnCreate::Misconfigured => Err(err(ProviderErrorKind::Configuration, "IP not allowed").with_code("402")),
        }
    }

    async fn find_payout(
        &self,
        _: ProviderName,
        reference: CashoutRequestId,
    ) -> Result<Option<ProviderPayout>, ProviderError> {
        let mut s = self.0.lock().unwrap();
        s.lookups += 1;
        if s.failing_lookups > 0 {
            s.failing_lookups -= 1;
            return Err(err(
                ProviderErrorKind::Retryable { retry_after: None },
                "status endpoint down",
            ));
        }
        Ok(s.payouts.get(&reference).cloned())
    }

    async fn payout_status(
        &self,
        _: ProviderName,
        _: &ProviderPayoutId,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let mut s = self.0.lock().unwrap();
        s.status_calls += 1;
        if s.status_down {
            return Err(err(
                ProviderErrorKind::Retryable { retry_after: None },
                "status endpoint down",
            ));
        }
        s.payouts
            .get(&reference)
            .cloned()
            .ok_or_else(|| err(ProviderErrorKind::NotFound, "no such payout"))
    }

    async fn cancel_payout(
        &self,
        _: ProviderName,
        _: &ProviderPayoutId,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let mut s = self.0.lock().unwrap();
        let cancellable = s.cancellable;
        let p = s
            .payouts
            .get_mut(&reference)
            .ok_or_else(|| err(ProviderErrorKind::NotFound, "no such payout"))?;
        if !cancellable {
            return Err(err(ProviderErrorKind::InvalidState, "already delivered").with_code("702"));
        }
        p.state = PayoutState::Cancelled;
        p.provider_status = "CANCELLED".into();
        Ok(p.clone())
    }

    fn parse_notification(
        &self,
        provider: ProviderName,
        n: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        let body = String::from_utf8_lossy(&n.body);
        let reference = body.strip_prefix("external_id=").and_then(|r| r.parse().ok());
        if reference.is_none() {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::Protocol,
                "no external_id",
            ));
        }
        Ok(ProviderNotification::Hint {
            reference,
            payout_id: None,
        })
    }

    async fn payout_methods(
        &self,
        provider: ProviderName,
        _: &PayoutMethodQuery,
    ) -> Result<Vec<PayoutMethod>, ProviderError> {
        Ok(vec![PayoutMethod {
            provider,
            method: None,
            service: None,
            amount_min: None,
            amount_max: None,
            fields: vec![],
        }])
    }
}

/// A webhook receiver double: answers from a script and keeps what it was sent. URLs in
/// `hostile` always answer 503 with a `Retry-After` of `u64::MAX` seconds.
#[derive(Default)]
struct RecordingSender {
    sent: Mutex<Vec<OutgoingWebhook>>,
    answers: Mutex<VecDeque<u16>>,
    hostile: Mutex<Vec<String>>,
}

impl WebhookSender for RecordingSender {
    async fn send(&self, request: &OutgoingWebhook) -> Result<WebhookResponse, SendError> {
        self.sent.lock().unwrap().push(request.clone());
        if self.hostile.lock().unwrap().contains(&request.url) {
            return Ok(WebhookResponse {
                status: 503,
                retry_after: Some(Duration::from_secs(u64::MAX)),
                body_excerpt: String::new(),
                elapsed: Duration::from_millis(3),
            });
        }
        let status = self.answers.lock().unwrap().pop_front().unwrap_or(200);
        Ok(WebhookResponse {
            status,
            retry_after: None,
            body_excerpt: String::new(),
            elapsed: Duration::from_millis(3),
        })
    }
}

type TestApp = App<SqliteStore, SqliteStore, ScriptedProvider, RecordingSender>;

struct Harness {
    app: TestApp,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn merchant(m: &str) -> Principal {
    Principal::Merchant {
        merchant_id: MerchantId::new(m).unwrap(),
    }
}

impl Harness {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A harness whose configuration `tune` adjusts.
    async fn with(tune: impl FnOnce(&mut AppConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
        ));
        let store = Arc::new(SqliteStore::open(&dir.path().join("cashout.sqlite3"), clock.clone()).unwrap());
        let mut config = AppConfig {
            webhook_retries: RetrySchedule::new(vec![Duration::ZERO, Duration::from_secs(5)]),
            notification_base_url: Some("https://cashout.example".into()),
            ..AppConfig::default()
        };
        tune(&mut config);
        let app = App::new(
            store.clone(),
            store,
            Arc::new(ScriptedProvider::default()),
            Arc::new(RecordingSender::default()),
            clock.clone(),
            Arc::new(SequentialIds::default()),
            config,
        );
        app.register_api_key(&ApiKey::new("sk_m1"), merchant("m1"), None)
            .await
            .unwrap();
        Harness { app, clock, _dir: dir }
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Creates as merchant m1. Each idempotency key advances invoices of its own (the key is
    /// appended to the payers' tax ids), so that tests creating several requests from one body
    /// do not meet the one-request-per-invoice rule; [`Harness::create_as_is`] sends the body
    /// unchanged.
    async fn create(&self, key: &str, body: &Value) -> Result<Value, AppError> {
        let mut body = body.clone();
        if let Some(invoices) = body["invoices"].as_array_mut() {
            for invoice in invoices {
                if let Some(tax_id) = invoice["payer"]["tax_id"].as_str() {
                    invoice["payer"]["tax_id"] = json!(format!("{tax_id}-{key}"));
                }
            }
        }
        self.create_as_is(key, &body).await
    }

    async fn create_as_is(&self, key: &str, body: &Value) -> Result<Value, AppError> {
        let r = self
            .app
            .create_cashout(&MerchantId::new("m1").unwrap(), Some(key), body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_str(&r.body).unwrap())
    }

    /// Takes every visible task of a queue (acknowledged).
    async fn drain(&self, queue: QueueName) -> Vec<Task> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .app
                .store
                .receive(queue, 10, Duration::from_secs(30))
                .await
                .unwrap();
            if batch.is_empty() {
                return out;
            }
            for m in batch {
                self.app.store.ack(queue, &m.receipt).await.unwrap();
                out.push(TaskEnvelope::from_json(&m.body).unwrap().task);
            }
        }
    }

    /// Runs every due task of every queue until none is left (the clock does not move).
    async fn run_due(&self) {
        loop {
            let mut ran = false;
            for queue in QueueName::ALL {
                for m in self
                    .app
                    .store
                    .receive(queue, 10, Duration::from_secs(30))
                    .await
                    .unwrap()
                {
                    ran = true;
                    let app = self.app.clone();
                    let result = self
                        .app
                        .process_message(&m.body, |t| async move { app.handle_task(t).await })
                        .await;
                    match result {
                        Ok(()) => self.app.store.ack(queue, &m.receipt).await.unwrap(),
                        Err(e) => panic!("task failed: {e}"),
                    }
                }
            }
            if !ran {
                return;
            }
        }
    }

    async fn status(&self, id: &str) -> CashoutStatus {
        self.app
            .store
            .get_request(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .status()
    }
}

use cashout_core::ports::CashoutStore;

fn body(amount: &str) -> Value {
    json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@clinic.example", "provider": "d24",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                        "bank_code": "001", "bank_branch": "1234", "bank_account": "0012345678", "account_type": "C"},
        "invoices": [
            {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": amount, "advance_percentage": "80"},
            {"invoice_id": "INV-2", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": "100.00", "advance_percentage": "50"}
        ]
    })
}

#[tokio::test]
async fn a_request_is_created_approved_dispatched_and_paid() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("1000.00")).await.unwrap();
    assert_eq!(created["status"], "APPROVED");
    assert_eq!(created["requested_amount"], "850.00");
    assert_eq!(created["beneficiary"]["bank_account"], "******5678");
    let id = created["id"].as_str().unwrap().to_owned();

    h.run_due().await;
    assert_eq!(h.status(&id).await, CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);

    h.app.provider.set_state(
        id.parse().unwrap(),
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let r = h.app.store.get_request(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(r.status(), CashoutStatus::Paid);
    assert_eq!(r.paid_amount().unwrap().to_string(), "850.00");
    assert_eq!(r.payment_reference(), Some("P1"));
    let events = h.app.list_events(&merchant("m1"), r.id()).await.unwrap();
    let statuses: Vec<_> = events
        .data
        .iter()
        .map(|e| e.data["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["REQUESTED", "APPROVED", "PENDING_PAYMENT", "PAID"]);
}

#[tokio::test]
async fn the_same_key_and_body_replays_and_another_body_is_refused() {
    let h = Harness::new().await;
    let first = h
        .app
        .create_cashout(
            &MerchantId::new("m1").unwrap(),
            Some("k1"),
            body("1000.00").to_string().as_bytes(),
        )
        .await
        .unwrap();
    // Same body, other key order and whitespace.
    let again = serde_json::to_string_pretty(&body("1000.00")).unwrap();
    let replay = h
        .app
        .create_cashout(&MerchantId::new("m1").unwrap(), Some("k1"), again.as_bytes())
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    let other = h.create("k1", &body("999.00")).await;
    assert!(matches!(other, Err(AppError::IdempotencyMismatch)));
    assert_eq!(h.drain(QueueName::Dispatch).await.len(), 1, "one request, one dispatch");
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let h = Harness::new().await;
    let m = MerchantId::new("m1").unwrap();
    assert!(matches!(
        h.app.create_cashout(&m, None, b"{}").await,
        Err(AppError::BadHeader(_))
    ));
    assert!(matches!(
        h.app.create_cashout(&m, Some("k"), b"{nope").await,
        Err(AppError::InvalidJson(_))
    ));
    let mut unknown = body("1.00");
    unknown["colour"] = json!("red");
    assert!(matches!(h.create("k", &unknown).await, Err(AppError::InvalidBody(_))));
    let err = h.create("k", &body("10.001")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (422, "validation_failed"));
    let page = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert!(page.data.is_empty());
    assert!(h.drain(QueueName::Callbacks).await.is_empty());
}

#[tokio::test]
async fn large_requests_wait_for_an_operator_who_may_exclude_invoices() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("20000.00")).await.unwrap();
    assert_eq!(created["status"], "UNDER_REVIEW");
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    let inv = "INV-2".parse().unwrap();
    assert!(matches!(
        h.app.exclude_invoice(&merchant("m1"), id, &inv).await,
        Err(AppError::Forbidden(_))
    ));
    let view = h.app.exclude_invoice(&Principal::Operator, id, &inv).await.unwrap();
    assert_eq!(view.invoices[1].status, cashout_core::status::InvoiceStatus::Excluded);
    h.app.approve(&Principal::Operator, id).await.unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let r = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(r.status(), CashoutStatus::Paid);
    assert_eq!(r.requested_amount().to_string(), "16050.00");
    assert_eq!(r.paid_amount().unwrap().to_string(), "16000.00");
    assert_eq!((r.paid_invoice_count(), r.requested_invoice_count()), (1, 2));
}

#[tokio::test]
async fn another_merchants_request_is_not_found() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    assert!(matches!(
        h.app.get_cashout(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        h.app.cancel(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        h.app.list_events(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(h.app.get_cashout(&Principal::Operator, id).await.is_ok());
}

#[tokio::test]
async fn a_lost_create_answer_is_adopted_without_a_second_payout() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::LoseAnswer]);
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id = created["id"].as_str().unwrap();
    h.run_due().await;
    assert_eq!(h.status(id).await, CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn an_unavailable_provider_is_retried_and_a_found_payout_never_recreated() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Unavailable]);
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tasks = h.drain(QueueName::Dispatch).await;
    assert_eq!(tasks, [Task::Dispatch { cashout_request_id: id }]);
    assert_eq!(
        h.app.dispatch(id).await.unwrap(),
        TaskOutcome::RetryAfter(Duration::from_secs(2))
    );
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::Approved);
    // The next attempt looks up first; finding nothing, it creates.
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
    // A duplicate dispatch task changes nothing and creates nothing.
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(h.app.provider.creates(), 2);
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn declined_data_rejects_and_configuration_errors_need_an_operator() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Decline, OnCreate::Misconfigured]);
    let a = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.run_due().await;
    assert_eq!(h.status(&a).await, CashoutStatus::Rejected);
    let b: CashoutRequestId = h.create("k2", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PaymentProcessorError);
    // The operator retries once the account is fixed: the dispatcher pays it.
    h.app.retry(&Principal::Operator, b).await.unwrap();
    h.run_due().await;
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PendingPayment);
}

#[tokio::test]
async fn cancel_is_immediate_before_dispatch_and_goes_through_the_provider_after() {
    let h = Harness::new().await;
    let a: CashoutRequestId = h.create("k1", &body("20000.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let view = h.app.cancel(&merchant("m1"), a).await.unwrap();
    assert_eq!(view.status, CashoutStatus::Cancelled);
    assert!(matches!(
        h.app.cancel(&merchant("m1"), a).await,
        Err(AppError::Transition(_))
    ));

    let b: CashoutRequestId = h.create("k2", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert!(matches!(
        h.app.cancel(&merchant("m1"), b).await,
        Err(AppError::NotCancellable(_))
    ));
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PendingPayment);
    h.app.provider.0.lock().unwrap().cancellable = true;
    assert_eq!(
        h.app.cancel(&merchant("m1"), b).await.unwrap().status,
        CashoutStatus::Cancelled
    );
}

#[tokio::test]
async fn stale_and_duplicate_polls_change_nothing() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    let r = h.app.store.get_request(id).await.unwrap().unwrap();
    let due = r.next_check_at().unwrap();
    // A poll scheduled for another time is stale.
    assert_eq!(
        h.app.poll(id, Some(due - time::Duration::seconds(1))).await.unwrap(),
        TaskOutcome::Done
    );
    assert_eq!(
        h.app.store.get_request(id).await.unwrap().unwrap().version(),
        r.version()
    );
    // An on-demand poll without news changes nothing either.
    h.app.poll(id, None).await.unwrap();
    assert_eq!(
        h.app.store.get_request(id).await.unwrap().unwrap().version(),
        r.version()
    );
    // The scheduled one counts the check and schedules the next.
    h.app.poll(id, Some(due)).await.unwrap();
    let after = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(after.checks_since_change(), 1);
    assert!(after.next_check_at().unwrap() > due);
}

#[tokio::test]
async fn a_provider_hint_polls_at_the_end_of_its_window() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Rejected {
            code: Some("800".into()),
            reason: Some("ERROR_ACCOUNT_INCORRECT".into()),
        },
    );
    let hint = InboundNotification {
        headers: vec![],
        body: format!("external_id={id}").into_bytes(),
    };
    h.app
        .receive_notification(ProviderName::D24, hint.clone())
        .await
        .unwrap();
    h.app.receive_notification(ProviderName::D24, hint).await.unwrap();
    h.clock.advance(time::Duration::seconds(5));
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::Rejected);
    let bad = InboundNotification {
        headers: vec![],
        body: b"garbage".to_vec(),
    };
    assert!(matches!(
        h.app.receive_notification(ProviderName::D24, bad).await,
        Err(AppError::InvalidNotification(_))
    ));
}

#[tokio::test]
async fn events_are_delivered_signed_and_retried() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let ep = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    let secret = WebhookSecret::parse(ep.secret.as_deref().unwrap()).unwrap();
    h.app.sender.answers.lock().unwrap().extend([500, 200]);
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    let sent = h.app.sender.sent.lock().unwrap().clone();
    // created, approved, pending payment; the first attempt of the first event failed.
    let verifier = WebhookVerifier::new(secret);
    for w in &sent {
        let mut headers = http::HeaderMap::new();
        for (k, v) in &w.headers {
            headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        verifier.verify(&headers, w.body.as_bytes(), h.now()).unwrap();
    }
    let ids: Vec<_> = sent
        .iter()
        .map(|w| w.headers.iter().find(|(k, _)| k == "webhook-id").unwrap().1.clone())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        ids.iter().filter(|i| **i == ids[0]).count(),
        2,
        "a retry keeps its webhook-id"
    );
    let attempts = h
        .app
        .list_attempts(&m1, ep.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert_eq!(attempts.data.len(), 4);
    assert_eq!(attempts.data.iter().filter(|a| a.outcome == "failed").count(), 1);
}

#[tokio::test]
async fn a_gone_endpoint_is_disabled_and_exhausted_deliveries_can_be_replayed() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let gone = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://a.example.com/"}"#)
        .await
        .unwrap();
    h.app.sender.answers.lock().unwrap().extend([410]);
    let id: CashoutRequestId = h.create("k1", &body("20000.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert!(
        h.app
            .get_endpoint(&m1, gone.id.parse().unwrap())
            .await
            .unwrap()
            .disabled
    );

    let flaky = h
        .app
        .create_endpoint(
            &m1,
            br#"{"url":"https://b.example.com/", "event_types":["cashout_request.status_update"]}"#,
        )
        .await
        .unwrap();
    h.app.sender.answers.lock().unwrap().extend([500; 20]);
    h.app.approve(&Principal::Operator, id).await.unwrap();
    h.run_due().await;
    h.clock.advance(time::Duration::seconds(10));
    h.run_due().await;
    let attempts = h
        .app
        .list_attempts(&m1, flaky.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert!(attempts.data.iter().any(|a| a.outcome == "exhausted"), "{attempts:?}");
    assert!(attempts.data.iter().all(|a| a.outcome != "delivered"), "{attempts:?}");
    h.app.sender.answers.lock().unwrap().clear();
    let events = h.app.list_events(&m1, id).await.unwrap();
    let approved = events.data.iter().find(|e| e.data["status"] == "APPROVED").unwrap();
    let queued = h.app.redeliver(&m1, approved.id.parse().unwrap()).await.unwrap();
    assert_eq!(queued, 1);
    h.run_due().await;
    let attempts = h
        .app
        .list_attempts(&m1, flaky.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    let replayed: Vec<_> = attempts.data.iter().filter(|a| a.event_id == approved.id).collect();
    assert!(
        replayed.iter().any(|a| a.outcome == "delivered" && a.attempt == 4),
        "{replayed:?}"
    );
}

#[tokio::test]
async fn private_endpoints_are_refused_unless_allowed() {
    let h = Harness::new().await;
    for url in [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://169.254.169.254/",
        "https://localhost/",
    ] {
        let body = json!({ "url": url }).to_string();
        let err = h
            .app
            .create_endpoint(&merchant("m1"), body.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{url}");
    }
}

#[tokio::test]
async fn the_sweep_finishes_interrupted_work() {
    let h = Harness::new().await;
    // A create that crashed after writing the request and before reviewing it.
    let draft = serde_json::from_value::<cashout_core::input::CashoutInput>(body("10.00"))
        .unwrap()
        .validate(&h.app.config.coverage)
        .unwrap();
    let now = h.now();
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let change = cashout_core::cashout::CashoutRequest::create(id, MerchantId::new("m1").unwrap(), draft, now)
        .with_next_check(Some(now + h.app.config.review_grace));
    let record = cashout_core::ports::IdempotencyRecord::begin(
        MerchantId::new("m1").unwrap(),
        "k9".parse().unwrap(),
        "hash".into(),
        id,
        now,
    );
    h.app.store.create_request(&change, &record, &[]).await.unwrap();
    assert_eq!(h.app.sweep().await.unwrap(), crate::poll::SweepReport::default());
    h.clock.advance(time::Duration::minutes(10));
    let report = h.app.sweep().await.unwrap();
    assert_eq!(report.reviewed, 1);
    assert_eq!(report.events, 1, "the created event was never published");
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
}

#[tokio::test]
async fn a_create_left_in_progress_is_resumed_not_duplicated() {
    let h = Harness::new().await;
    let text = body("10.00").to_string();
    let value: Value = serde_json::from_str(&text).unwrap();
    let draft = serde_json::from_value::<cashout_core::input::CashoutInput>(value.clone())
        .unwrap()
        .validate(&h.app.config.coverage)
        .unwrap();
    let now = h.now();
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let change = cashout_core::cashout::CashoutRequest::create(id, MerchantId::new("m1").unwrap(), draft, now);
    let record = cashout_core::ports::IdempotencyRecord::begin(
        MerchantId::new("m1").unwrap(),
        "k1".parse().unwrap(),
        crate::create::canonical_hash(&value),
        id,
        now,
    );
    h.app.store.create_request(&change, &record, &[]).await.unwrap();
    assert!(matches!(
        h.create_as_is("k1", &value).await,
        Err(AppError::IdempotencyInProgress)
    ));
    h.clock.advance(time::Duration::seconds(61));
    let resumed = h.create_as_is("k1", &value).await.unwrap();
    assert_eq!(resumed["id"], id.to_string());
    assert_eq!(resumed["status"], "APPROVED");
    let page = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
}

#[tokio::test]
async fn unknown_keys_are_unauthorized() {
    let h = Harness::new().await;
    assert!(matches!(
        h.app.authenticate("sk_nope").await,
        Err(AppError::Unauthorized)
    ));
    assert_eq!(h.app.authenticate("sk_m1").await.unwrap(), merchant("m1"));
}

#[tokio::test]
async fn tasks_that_arrive_early_are_sent_on() {
    let h = Harness::new().await;
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let early = TaskEnvelope::new(
        Task::Dispatch { cashout_request_id: id },
        h.now(),
        Duration::from_secs(3600),
    );
    h.app
        .process_message(&early.to_json(), |_| async { panic!("must not run early") })
        .await
        .unwrap();
    h.clock.advance(time::Duration::hours(1));
    assert_eq!(h.drain(QueueName::Dispatch).await.len(), 1);
}

mod http_surface {
    //! The router's answers that do not depend on a use case: authentication, body limits,
    //! unknown routes and methods — all problem+json with a stable code.

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::Harness;
    use crate::http::{api_router, finish};

    async fn send(h: &Harness, request: Request<Body>) -> (StatusCode, String, serde_json::Value) {
        let response = finish(api_router(h.app.clone())).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn post(path: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
        let mut r = Request::post(path)
            .header("content-type", "application/json")
            .header("idempotency-key", "k");
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn errors_are_problem_json_with_stable_codes() {
        let h = Harness::new().await;
        let cases = [
            (
                post("/v1/cashout-requests", None, b"{}".to_vec()),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                post("/v1/cashout-requests", Some("sk_nope"), b"{}".to_vec()),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                post("/v1/cashout-requests", Some("sk_m1"), vec![b' '; 1024 * 1024 + 1]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
            ),
            (
                post("/v1/cashout-requests", Some("sk_m1"), b"[1,".to_vec()),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                post("/v1/cashout-requests", Some("sk_m1"), br#"{"currency":"BRL"}"#.to_vec()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                post("/v1/nowhere", Some("sk_m1"), vec![]),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                Request::delete("/v1/cashout-requests")
                    .header("authorization", "Bearer sk_m1")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
        ];
        for (request, status, code) in cases {
            let path = request.uri().to_string();
            let (got, content_type, problem) = send(&h, request).await;
            assert_eq!(
                (got, problem["code"].as_str()),
                (status, Some(code)),
                "{path}: {problem}"
            );
            assert_eq!(content_type, "application/problem+json", "{path}");
            assert_eq!(problem["status"], status.as_u16());
            assert!(problem["type"].as_str().unwrap().ends_with(code));
        }
        let (_, _, problem) = send(
            &h,
            post("/v1/cashout-requests", Some("sk_m1"), br#"{"currency":"BRL"}"#.to_vec()),
        )
        .await;
        let fields: Vec<_> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"country") && fields.contains(&"invoices"),
            "{fields:?}"
        );
    }

    #[tokio::test]
    async fn an_overloaded_pipeline_answers_429_with_retry_after_and_writes_nothing() {
        let h = Harness::with(|c| c.max_backlog = Some(100)).await;
        h.app.pipeline.set_backlog(101);
        let body = serde_json::to_vec(&super::body("1000.00")).unwrap();
        let response = finish(api_router(h.app.clone()))
            .oneshot(post("/v1/cashout-requests", Some("sk_m1"), body.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let (_, content_type, problem) = send(&h, post("/v1/cashout-requests", Some("sk_m1"), body.clone())).await;
        assert_eq!(
            (content_type.as_str(), problem["code"].as_str()),
            ("application/problem+json", Some("overloaded"))
        );
        let page = h
            .app
            .list_cashouts(&super::merchant("m1"), None, None, None, None)
            .await
            .unwrap();
        assert!(page.data.is_empty(), "a refused create writes nothing");
        // At the bound, work is accepted again; the same key then creates the request.
        h.app.pipeline.set_backlog(100);
        let (status, _, created) = send(&h, post("/v1/cashout-requests", Some("sk_m1"), body)).await;
        assert_eq!(
            (status, created["status"].as_str()),
            (StatusCode::CREATED, Some("APPROVED"))
        );
    }

    #[tokio::test]
    async fn the_openapi_document_lists_every_route() {
        let h = Harness::new().await;
        let (status, _, doc) = send(&h, Request::get("/v1/openapi.json").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/v1/cashout-requests",
            "/v1/cashout-requests/{id}",
            "/v1/cashout-requests/{id}/events",
            "/v1/cashout-requests/{id}/cancel",
            "/v1/cashout-requests/{id}/approve",
            "/v1/cashout-requests/{id}/reject",
            "/v1/cashout-requests/{id}/invoices/{invoice_id}/exclude",
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints/{id}",
            "/v1/webhook-endpoints/{id}/rotate-secret",
            "/v1/webhook-endpoints/{id}/attempts",
            "/v1/events/{event_id}/redeliver",
            "/v1/payout-methods",
            "/webhooks/{provider}",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not documented");
        }
    }
}

#[tokio::test]
async fn the_daily_reversal_check_is_left_to_the_sweep_not_hopped_through_the_queue() {
    use cashout_store::QueueInspect;
    let h = Harness::new().await;
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let paid = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(paid.status(), CashoutStatus::Paid);
    let due = paid.next_check_at().expect("a paid request is watched for reversals");
    assert_eq!(due - h.now(), time::Duration::hours(24));
    assert_eq!(
        h.app.store.depth(QueueName::Poll).await.unwrap().total(),
        0,
        "nothing waits in the queue"
    );

    // Not yet due (nor overdue by the sweep's lag): the sweep sends nothing.
    h.clock.advance(time::Duration::hours(24));
    assert_eq!(h.app.sweep().await.unwrap().polls, 0);
    h.clock.advance(time::Duration::seconds(121));
    assert_eq!(h.app.sweep().await.unwrap().polls, 1);
    h.run_due().await;
    let checked = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(checked.status(), CashoutStatus::Paid);
    assert_eq!(checked.next_check_at(), Some(h.now() + time::Duration::hours(24)));
    assert_eq!(h.app.sweep().await.unwrap().polls, 0, "checked: not due again");
}

// ----- money safety (issue 10): each test below fails on the code before its fix -----

#[tokio::test]
async fn a_receiver_asking_for_an_endless_retry_after_gets_a_bounded_retry_and_others_keep_receiving() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let hostile = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://hostile.example.com/"}"#)
        .await
        .unwrap();
    let healthy = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://healthy.example.com/"}"#)
        .await
        .unwrap();
    h.app
        .sender
        .hostile
        .lock()
        .unwrap()
        .push("https://hostile.example.com/".into());
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    h.create("k2", &body("10.00")).await.unwrap();
    h.run_due().await;

    let longest = h.app.config.webhook_retries.longest();
    let attempts = h
        .app
        .list_attempts(&m1, hostile.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert!(!attempts.data.is_empty());
    for a in &attempts.data {
        let next = a.next_attempt_at.expect("a failed attempt is retried");
        assert!(
            next <= a.attempted_at + longest,
            "retry at {next}, beyond the schedule's longest step"
        );
    }
    let delivered = h
        .app
        .list_attempts(&m1, healthy.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    let ok = delivered.data.iter().filter(|a| a.outcome == "delivered").count();
    assert_eq!(ok, 6, "both requests' created, APPROVED and PENDING_PAYMENT events");
}

#[tokio::test]
async fn a_long_status_outage_keeps_one_chain_of_checks_per_request() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
    h.app.provider.0.lock().unwrap().status_down = true;
    // An hour of outage, the sweep running every minute as it does in production.
    for _ in 0..60 {
        h.clock.advance(time::Duration::minutes(1));
        h.app.sweep().await.unwrap();
        h.run_due().await;
    }
    let calls = h.app.provider.0.lock().unwrap().status_calls;
    // One chain backing off (30 s at first, as the schedule grows): well under two calls a
    // minute. Copies that multiply would make hundreds.
    assert!(calls <= 120, "{calls} status calls in an hour of outage");
    let queued: Vec<_> = h.drain(QueueName::Poll).await;
    assert!(queued.len() <= 1, "{} polls waiting: {queued:?}", queued.len());
}

async fn create_id(h: &Harness, key: &str, amount: &str) -> CashoutRequestId {
    h.create(key, &body(amount)).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn request(h: &Harness, id: CashoutRequestId) -> cashout_core::cashout::CashoutRequest {
    h.app.store.get_request(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_create_of_unknown_outcome_followed_by_failing_lookups_waits_flagged_and_never_gives_up() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 3).await;
    h.app.provider.script(&[OnCreate::LoseAnswerInOutage]);
    let id = create_id(&h, "k1", "10.00").await;
    // Attempt 1: the create's answer is lost and the lookup after it fails too.
    let mut outcome = h.app.dispatch(id).await.unwrap();
    for _ in 0..10 {
        let TaskOutcome::RetryAfter(wait) = outcome else {
            panic!("dispatch stopped asking: {outcome:?}")
        };
        h.clock.advance(time::Duration::try_from(wait).unwrap());
        outcome = h.app.dispatch(id).await.unwrap();
    }
    let r = request(&h, id).await;
    assert_eq!(
        r.status(),
        CashoutStatus::Approved,
        "never PAYMENT_PROCESSOR_ERROR while a payout may exist"
    );
    assert!(r.needs_attention(), "{:?}", r.attention());
    assert_eq!(h.app.provider.creates(), 1, "never a second create while lookups fail");
    // The status endpoint comes back: the payout made by the lost create is adopted.
    h.app.provider.fail_lookups(0);
    let TaskOutcome::RetryAfter(wait) = outcome else {
        panic!()
    };
    h.clock.advance(time::Duration::try_from(wait).unwrap());
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    assert_eq!((h.app.provider.creates(), h.app.provider.payouts()), (1, 1));
}

#[tokio::test]
async fn a_request_whose_provider_never_saw_a_create_gives_up_after_its_attempts() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 2).await;
    let id = create_id(&h, "k1", "10.00").await;
    h.app.provider.fail_lookups(1_000);
    let TaskOutcome::RetryAfter(wait) = h.app.dispatch(id).await.unwrap() else {
        panic!()
    };
    h.clock.advance(time::Duration::try_from(wait).unwrap());
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PaymentProcessorError);
    assert!(!r.needs_attention());
    assert_eq!(h.app.provider.creates(), 0);
}

#[tokio::test]
async fn a_second_dispatcher_backs_off_while_the_first_holds_the_claim() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "10.00").await;
    // A first dispatcher has claimed the request and is talking to the provider.
    let claimed = request(&h, id)
        .await
        .begin_dispatch(h.now(), time::Duration::minutes(5))
        .unwrap();
    h.app.store.apply_change(&claimed).await.unwrap();
    // A duplicate task (or the sweep) runs a second dispatcher meanwhile.
    let outcome = h.app.dispatch(id).await.unwrap();
    assert!(
        matches!(outcome, TaskOutcome::RetryAfter(w) if w >= Duration::from_secs(60)),
        "{outcome:?}"
    );
    assert_eq!(h.app.provider.creates(), 0, "no concurrent create");
    assert_eq!(h.app.provider.0.lock().unwrap().lookups, 0);
    // The first one crashed: once its lease lapses, the next attempt looks up, then creates.
    h.clock.advance(time::Duration::minutes(5));
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);
}

#[tokio::test]
async fn cancel_and_reject_of_a_processor_error_ask_the_provider_first() {
    let h = Harness::new().await;
    h.app
        .provider
        .script(&[OnCreate::Misconfigured, OnCreate::Misconfigured]);
    let a = create_id(&h, "k1", "10.00").await;
    let b = create_id(&h, "k2", "10.00").await;
    h.run_due().await;
    assert_eq!(request(&h, a).await.status(), CashoutStatus::PaymentProcessorError);
    // The provider holds a payout for each all the same (processed late, or made in its panel).
    h.app.provider.insert(a, PayoutState::Pending);
    h.app.provider.insert(b, PayoutState::Pending);

    assert!(matches!(
        h.app.cancel(&merchant("m1"), a).await,
        Err(AppError::NotCancellable(_))
    ));
    let r = request(&h, a).await;
    assert_eq!(
        r.status(),
        CashoutStatus::PendingPayment,
        "the payout is followed, not dropped"
    );
    assert!(r.needs_attention());

    assert!(matches!(
        h.app.reject(&Principal::Operator, b, "duplicate".into()).await,
        Err(AppError::ProviderHoldsPayout(_))
    ));
    assert_eq!(request(&h, b).await.status(), CashoutStatus::PendingPayment);

    // Holding nothing, the provider lets the cancel through.
    let c = create_id(&h, "k3", "10.00").await;
    h.app.provider.script(&[OnCreate::Misconfigured]);
    h.run_due().await;
    assert_eq!(request(&h, c).await.status(), CashoutStatus::PaymentProcessorError);
    assert_eq!(
        h.app.cancel(&merchant("m1"), c).await.unwrap().status,
        CashoutStatus::Cancelled
    );
}

#[tokio::test]
async fn an_operator_retry_racing_a_merchant_cancel_never_cancels_a_held_payout() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured]);
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    h.app.provider.insert(id, PayoutState::Pending);
    h.app.retry(&Principal::Operator, id).await.unwrap();
    // The merchant cancels before the dispatcher runs.
    let cancelled = h.app.cancel(&merchant("m1"), id).await;
    assert!(matches!(cancelled, Err(AppError::NotCancellable(_))), "{cancelled:?}");
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    h.run_due().await;
    assert_eq!(h.app.provider.creates(), 1, "only the first, refused create");
}

#[tokio::test]
async fn a_payout_reported_for_a_cancelled_request_is_recorded_and_flagged() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "20000.00").await;
    h.app.cancel(&merchant("m1"), id).await.unwrap();
    h.app.provider.insert(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    let payout = h.app.provider.0.lock().unwrap().payouts[&id].clone();
    h.app.observe(id, Some(&payout), None).await.unwrap();
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::Cancelled);
    assert!(
        r.needs_attention(),
        "a paid payout for a cancelled request must reach a person"
    );
    assert_eq!(r.provider_reference(), Some(&payout.payout_id));
    let view = h.app.get_cashout(&Principal::Operator, id).await.unwrap();
    assert!(view.needs_attention);
    let cleared = h.app.resolve_attention(&Principal::Operator, id).await.unwrap();
    assert!(!cleared.needs_attention);
}

#[tokio::test]
async fn a_second_payout_id_for_our_reference_is_flagged() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    let mut other = h.app.provider.0.lock().unwrap().payouts[&id].clone();
    other.payout_id = ProviderPayoutId::new("P999").unwrap();
    h.app.observe(id, Some(&other), None).await.unwrap();
    let r = request(&h, id).await;
    assert!(
        matches!(
            r.attention().first().map(|a| &a.reason),
            Some(cashout_core::cashout::AttentionReason::ConflictingPayout { .. })
        ),
        "{:?}",
        r.attention()
    );
}

#[tokio::test]
async fn hints_about_unknown_payouts_are_dropped_and_hints_for_one_request_coalesce() {
    let h = Harness::new().await;
    let hint = |id: String| InboundNotification {
        headers: vec![],
        body: format!("external_id={id}").into_bytes(),
    };
    // Forged hints for requests that do not exist cost no queue message.
    for n in 0..20u128 {
        let forged = CashoutRequestId::from_uuid(uuid::Uuid::from_u128(n));
        h.app
            .receive_notification(ProviderName::D24, hint(forged.to_string()))
            .await
            .unwrap();
    }
    assert!(h.drain(QueueName::ProviderEvents).await.is_empty());
    // Twenty hints for one request at the provider: one check, at the end of the window.
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    for _ in 0..20 {
        h.app
            .receive_notification(ProviderName::D24, hint(id.to_string()))
            .await
            .unwrap();
    }
    h.clock
        .advance(time::Duration::try_from(h.app.config.hint_window).unwrap());
    assert_eq!(h.drain(QueueName::ProviderEvents).await.len(), 1);
    // A hint after the window schedules the next check.
    h.clock.advance(time::Duration::seconds(1));
    h.app
        .receive_notification(ProviderName::D24, hint(id.to_string()))
        .await
        .unwrap();
    h.clock
        .advance(time::Duration::try_from(h.app.config.hint_window).unwrap());
    assert_eq!(h.drain(QueueName::ProviderEvents).await.len(), 1);
}

#[tokio::test]
async fn an_invoice_is_advanced_by_one_request_at_a_time() {
    let h = Harness::new().await;
    let id_of = |v: &Value| -> CashoutRequestId { v["id"].as_str().unwrap().parse().unwrap() };
    // A waits for review with INV-1 and INV-2.
    let a = h.create_as_is("a", &body("20000.00")).await.unwrap();
    assert_eq!(a["status"], "UNDER_REVIEW");
    let a = id_of(&a);
    // B names the same invoices: refused, naming A, and nothing of B exists.
    let err = h.create_as_is("b", &body("10.00")).await.unwrap_err();
    assert!(
        matches!(&err, AppError::InvoiceInUse { holder, invoice_id, .. } if *holder == a && invoice_id.as_str() == "INV-1"),
        "{err:?}"
    );
    assert_eq!((err.status(), err.code()), (409, "invoice_in_use"));
    let all = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert_eq!(all.data.len(), 1, "the refused create wrote nothing");
    // A excludes INV-2: INV-2 alone is free again, INV-1 is not.
    h.app
        .exclude_invoice(&Principal::Operator, a, &"INV-2".parse().unwrap())
        .await
        .unwrap();
    let only = |invoice: &str| {
        let mut b = body("10.00");
        b["invoices"] = json!([b["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["invoice_id"] == invoice)
            .unwrap()]);
        b
    };
    let c = id_of(&h.create_as_is("c", &only("INV-2")).await.unwrap());
    assert!(matches!(
        h.create_as_is("d", &only("INV-1")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == a
    ));
    // C is at the provider: INV-2 stays taken.
    h.run_due().await;
    assert_eq!(h.status(&c.to_string()).await, CashoutStatus::PendingPayment);
    assert!(matches!(
        h.create_as_is("e", &only("INV-2")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == c
    ));
    // A is cancelled: INV-1 is free, once; the next one meets its new holder.
    h.app.cancel(&merchant("m1"), a).await.unwrap();
    let f = id_of(&h.create_as_is("f", &only("INV-1")).await.unwrap());
    assert!(matches!(
        h.create_as_is("g", &only("INV-1")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == f
    ));
    // A replay of a create is still its first answer, never a conflict with itself.
    let replay = h.create_as_is("f", &only("INV-1")).await.unwrap();
    assert_eq!(id_of(&replay), f);
}

/// Waits for `done` (checked every few milliseconds), at most ten seconds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_publisher_and_the_workers_deliver_every_event_and_acknowledge_every_task() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    h.app
        .create_endpoint(&m1, br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn({
        let (app, stopped) = (h.app.clone(), stopped.clone());
        async move { app.run_publisher(stopped).await }
    });
    let callbacks = tokio::spawn({
        let (app, stopped) = (h.app.clone(), stopped.clone());
        async move {
            app.run_queue(
                QueueName::Callbacks,
                WorkerOptions::for_queue(QueueName::Callbacks),
                stopped,
            )
            .await;
        }
    });
    // Twenty creates, each one write with two events (created, APPROVED), handed to the
    // publisher rather than published before the answer.
    for n in 0..20 {
        h.create(&format!("k{n}"), &body("10.00")).await.unwrap();
    }
    eventually("40 deliveries", || h.app.sender.sent.lock().unwrap().len() >= 40).await;
    stop.send(true).unwrap();
    publisher.await.unwrap();
    callbacks.await.unwrap();
    assert_eq!(h.app.sender.sent.lock().unwrap().len(), 40, "each event once");
    let unpublished = h
        .app
        .store
        .unpublished_events(h.now() + time::Duration::hours(1), 100)
        .await
        .unwrap();
    assert!(unpublished.is_empty(), "every event marked published: {unpublished:?}");
    let depth = cashout_store::QueueInspect::depth(&*h.app.store, QueueName::Callbacks)
        .await
        .unwrap();
    assert_eq!(depth.total(), 0, "every delivery task acknowledged: {depth:?}");
}

#[tokio::test]
async fn events_the_publisher_cannot_take_are_left_to_the_sweep() {
    let h = Harness::with(|c| c.outbox_lag = Duration::from_secs(5)).await;
    h.app
        .create_endpoint(&merchant("m1"), br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    // A publisher that has stopped (its channel is closed): the write path must not wait for
    // it nor publish inline, and must not lose the events.
    let (_stop, stopped) = tokio::sync::watch::channel(true);
    h.app.run_publisher(stopped).await;
    h.create("k1", &body("10.00")).await.unwrap();
    assert!(
        h.drain(QueueName::Callbacks).await.is_empty(),
        "nothing published inline"
    );
    h.clock.advance(time::Duration::seconds(6));
    h.app.sweep().await.unwrap();
    let tasks = h.drain(QueueName::Callbacks).await;
    assert_eq!(tasks.len(), 2, "the sweep published both events: {tasks:?}");
}
