//! What the use-case tests share: a scripted provider, a recording webhook sender, the harness
//! over the embedded store with a manual clock, and request bodies.

#![allow(clippy::unwrap_used)]

pub(crate) use std::collections::{HashMap, VecDeque};
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::Duration;

pub(crate) use cashout_core::auth::{ApiKey, Principal};
pub(crate) use cashout_core::ids::{CashoutRequestId, MerchantId, PayoutReference, ProviderPayoutId};
pub(crate) use cashout_core::ports::{
    Clock, InboundNotification, ManualClock, OutgoingWebhook, PayoutMethod, PayoutMethodQuery, PayoutOrder,
    PayoutProvider, ProviderError, ProviderErrorKind, ProviderNotification, QueueName, SendError, SequentialIds, Task,
    TaskEnvelope, TaskSource, WebhookResponse, WebhookSender,
};
pub(crate) use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
pub(crate) use cashout_core::signing::{WebhookSecret, WebhookVerifier};
pub(crate) use cashout_core::status::CashoutStatus;
pub(crate) use cashout_core::webhook::RetrySchedule;
pub(crate) use cashout_store::sqlite::SqliteStore;
pub(crate) use serde_json::{Value, json};
pub(crate) use time::OffsetDateTime;

pub(crate) use crate::worker::WorkerOptions;
pub(crate) use crate::{App, AppConfig, AppError, TaskOutcome};

/// What the scripted provider does on the next create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCreate {
    Accept,
    /// Creates the payout but the answer is lost.
    LoseAnswer,
    /// Creates the payout, the answer is lost, and the status endpoint goes down for long.
    LoseAnswerInOutage,
    /// The answer is lost and nothing was made (a timeout before the provider took it).
    LoseAnswerNothingMade,
    /// Fails before creating anything.
    Unavailable,
    Decline,
    Misconfigured,
}

#[derive(Default)]
pub(crate) struct ProviderState {
    pub(crate) payouts: HashMap<PayoutReference, ProviderPayout>,
    pub(crate) creates: u32,
    pub(crate) lookups: u32,
    pub(crate) script: VecDeque<OnCreate>,
    pub(crate) cancellable: bool,
    /// Whether status checks fail as unavailable (the status endpoint is down).
    pub(crate) status_down: bool,
    pub(crate) status_calls: u32,
    /// How many of the next lookups (by reference) fail as unavailable.
    pub(crate) failing_lookups: u32,
}

/// A provider double that keeps its payouts by reference and follows a script.
#[derive(Default)]
pub(crate) struct ScriptedProvider(pub(crate) Mutex<ProviderState>);

impl ScriptedProvider {
    pub(crate) fn script(&self, steps: &[OnCreate]) {
        self.0.lock().unwrap().script.extend(steps.iter().copied());
    }
    pub(crate) fn set_state(&self, id: CashoutRequestId, state: PayoutState) {
        let mut s = self.0.lock().unwrap();
        let p = s.payouts.get_mut(&id.into()).unwrap();
        p.provider_status = format!("{state:?}");
        p.state = state;
    }
    pub(crate) fn creates(&self) -> u32 {
        self.0.lock().unwrap().creates
    }
    pub(crate) fn payouts(&self) -> usize {
        self.0.lock().unwrap().payouts.len()
    }
    pub(crate) fn fail_lookups(&self, n: u32) {
        self.0.lock().unwrap().failing_lookups = n;
    }
    /// A payout appears at the provider for `reference` without a create of ours (made by hand in
    /// the provider's panel, or a create that was processed late).
    pub(crate) fn insert(&self, reference: CashoutRequestId, state: PayoutState) {
        let mut s = self.0.lock().unwrap();
        let payout = ProviderPayout {
            provider: ProviderName::D24,
            payout_id: ProviderPayoutId::new(format!("P{}", s.payouts.len() + 1)).unwrap(),
            reference: Some(reference.into()),
            provider_status: format!("{state:?}"),
            state,
            updated_at: None,
        };
        s.payouts.insert(reference.into(), payout);
    }
}

pub(crate) fn err(kind: ProviderErrorKind, message: &str) -> ProviderError {
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
            OnCreate::LoseAnswerNothingMade => Err(err(ProviderErrorKind::Ambiguous, "timeout before sending")),
            OnCreate::Unavailable => Err(err(ProviderErrorKind::Retryable { retry_after: None }, "503")),
            OnCreate::Decline => Err(err(ProviderErrorKind::Declined, "invalid bank account").with_code("300")),
            OnCreate::Misconfigured => Err(err(ProviderErrorKind::Configuration, "IP not allowed").with_code("402")),
        }
    }

    async fn find_payout(
        &self,
        _: ProviderName,
        reference: PayoutReference,
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
        reference: PayoutReference,
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
        reference: PayoutReference,
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
pub(crate) struct RecordingSender {
    pub(crate) sent: Mutex<Vec<OutgoingWebhook>>,
    pub(crate) answers: Mutex<VecDeque<u16>>,
    pub(crate) hostile: Mutex<Vec<String>>,
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

pub(crate) type TestApp = App<SqliteStore, SqliteStore, ScriptedProvider, RecordingSender>;

pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn merchant(m: &str) -> Principal {
    Principal::Merchant {
        merchant_id: MerchantId::new(m).unwrap(),
    }
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A harness whose configuration `tune` adjusts.
    pub(crate) async fn with(tune: impl FnOnce(&mut AppConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
        ));
        let store = Arc::new(SqliteStore::open(&dir.path().join("cashout.sqlite3"), clock.clone()).unwrap());
        let mut config = AppConfig {
            webhook_retries: RetrySchedule::new(vec![Duration::ZERO, Duration::from_secs(5)]),
            notification_base_url: Some("https://cashout.example".into()),
            // The daily reconciliation would start on the first sweep after 02:00; its own tests
            // turn it on.
            reconcile: crate::reconcile::ReconcileConfig {
                daily_at: None,
                ..crate::reconcile::ReconcileConfig::default()
            },
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

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Creates as merchant m1. Each idempotency key advances invoices of its own (the key is
    /// appended to the payers' tax ids), so that tests creating several requests from one body
    /// do not meet the one-request-per-invoice rule; [`Harness::create_as_is`] sends the body
    /// unchanged.
    pub(crate) async fn create(&self, key: &str, body: &Value) -> Result<Value, AppError> {
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

    pub(crate) async fn create_as_is(&self, key: &str, body: &Value) -> Result<Value, AppError> {
        let r = self
            .app
            .create_cashout(&MerchantId::new("m1").unwrap(), Some(key), body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_str(&r.answer().body).unwrap())
    }

    /// Takes every visible task of a queue (acknowledged).
    pub(crate) async fn drain(&self, queue: QueueName) -> Vec<Task> {
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
    pub(crate) async fn run_due(&self) {
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

    pub(crate) async fn status(&self, id: &str) -> CashoutStatus {
        self.app
            .store
            .get_request(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .status()
    }
}

pub(crate) use cashout_core::ports::CashoutStore;

pub(crate) fn body(amount: &str) -> Value {
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

pub(crate) async fn create_id(h: &Harness, key: &str, amount: &str) -> CashoutRequestId {
    h.create(key, &body(amount)).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub(crate) async fn request(h: &Harness, id: CashoutRequestId) -> cashout_core::cashout::CashoutRequest {
    h.app.store.get_request(id).await.unwrap().unwrap()
}

/// Waits for `done` (checked every few milliseconds), at most ten seconds.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
