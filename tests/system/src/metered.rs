//! A store and a queue that attribute DynamoDB units to each store operation and count sends by
//! task type, for the cost breakdown. Store calls are serialised (one at a time) so that the
//! difference of the shared meter around a call is that call's alone; the calls themselves, hence
//! the units, are the ones the product makes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::auth::{OperatorName, OperatorRecord, SessionRecord};
use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::InvoiceClaim;
use cashout_core::event::StatusEvent;
use cashout_core::health::ProviderHealth;
use cashout_core::ids::{
    CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId, ReconciliationId,
    RoutingRuleId,
};
use cashout_core::money::Currency;
use cashout_core::ports::{
    ApiKeyStore, CashoutStore, ChangedQuery, CreateOutcome, Cursor, DueRequest, IdempotencyRecord, ListQuery, Page,
    QueueError, QueueName, Receipt, ReceivedTask, ReconciliationStore, RoutingStore, StoreError, StoredResponse, Task,
    TaskEnvelope, TaskQueue, TaskSource, WebhookStore,
};
use cashout_core::ports::{DayUsageCount, PeopleStore, WorkList, WorkStore};
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Difference, Reconciliation};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use cashout_core::routing::RoutingRule;
use cashout_core::webhook::{DeliveryAttempt, EndpointCreated, WebhookEndpoint};
use cashout_store::dynamo::{ConsumedCapacity, DynamoStore};
use cashout_store::sqs::SqsQueue;
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

/// What one store operation consumed in all.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OperationCost {
    /// Calls of the operation.
    pub calls: u64,
    /// Write units.
    pub wcu: f64,
    /// Read units.
    pub rcu: f64,
}

/// A DynamoDB store whose every operation is metered.
pub struct MeteredStore {
    inner: DynamoStore,
    one_at_a_time: tokio::sync::Mutex<()>,
    costs: Mutex<BTreeMap<String, (u64, ConsumedCapacity)>>,
    conflicts: std::sync::atomic::AtomicU64,
}

fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}

impl MeteredStore {
    /// Meters `inner`.
    pub fn new(inner: DynamoStore) -> Self {
        MeteredStore {
            inner,
            one_at_a_time: tokio::sync::Mutex::new(()),
            costs: Mutex::new(BTreeMap::new()),
            conflicts: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The store's running totals.
    pub fn consumed(&self) -> ConsumedCapacity {
        self.inner.consumed()
    }

    /// Forgets the tallies.
    pub fn reset(&self) {
        self.costs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.conflicts.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Versioned writes that lost a race (DynamoDB Local reports no units for them; AWS charges
    /// a failed conditional write like a successful one).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Per operation, since the last reset.
    pub fn breakdown(&self) -> BTreeMap<String, OperationCost> {
        self.costs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(op, (calls, c))| {
                (
                    op.clone(),
                    OperationCost {
                        calls: *calls,
                        wcu: to_f64(c.write_units),
                        rcu: to_f64(c.read_units),
                    },
                )
            })
            .collect()
    }

    /// Runs one store call alone and books what it consumed under `op`. Boxed: the store's futures
    /// are large, and this one holds them.
    fn metered<'a, T: Send + 'a>(
        &'a self,
        op: impl Into<String> + Send + 'a,
        call: impl Future<Output = T> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = T> + Send + 'a>> {
        Box::pin(async move {
            let _one = self.one_at_a_time.lock().await;
            let before = self.inner.consumed();
            let out = call.await;
            let spent = self.inner.consumed().since(&before);
            let mut costs = self.costs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = costs.entry(op.into()).or_default();
            entry.0 += 1;
            entry.1.read_units += spent.read_units;
            entry.1.write_units += spent.write_units;
            entry.1.read_calls += spent.read_calls;
            entry.1.write_calls += spent.write_calls;
            out
        })
    }
}

impl CashoutStore for MeteredStore {
    async fn create_request(
        &self,
        change: &Change,
        idem: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        self.metered("create_request", self.inner.create_request(change, idem, released))
            .await
    }
    async fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.metered("reclaim_idempotency", self.inner.reclaim_idempotency(observed, until))
            .await
    }
    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.metered(
            "complete_idempotency",
            self.inner.complete_idempotency(merchant_id, key, response),
        )
        .await
    }
    async fn get_request(&self, id: CashoutRequestId) -> Result<Option<CashoutRequest>, StoreError> {
        self.metered("get_request", self.inner.get_request(id)).await
    }
    async fn list_requests(&self, m: &MerchantId, q: &ListQuery) -> Result<Page<CashoutRequest>, StoreError> {
        self.metered("list_requests", self.inner.list_requests(m, q)).await
    }
    async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        let what = match (change.events.len(), change.new_provider_reference.is_some()) {
            (0, false) => "no event".to_owned(),
            (n, false) => format!("{n} event(s)"),
            (n, true) => format!("{n} event(s), provider reference"),
        };
        let op = format!("apply_change → {} ({what})", change.request.status());
        let result = self.metered(op, self.inner.apply_change(change)).await;
        if let Err(StoreError::Conflict { .. }) = result {
            self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        self.metered("list_events", self.inner.list_events(id)).await
    }
    async fn get_event(&self, id: EventId) -> Result<Option<StatusEvent>, StoreError> {
        self.metered("get_event", self.inner.get_event(id)).await
    }
    async fn list_merchant_events(
        &self,
        m: &MerchantId,
        query: &cashout_core::ports::EventQuery,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.metered("list_merchant_events", self.inner.list_merchant_events(m, query))
            .await
    }
    async fn unpublished_events(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<StatusEvent>, StoreError> {
        self.metered("unpublished_events", self.inner.unpublished_events(before, limit))
            .await
    }
    async fn mark_published(&self, id: EventId) -> Result<(), StoreError> {
        self.metered("mark_published", self.inner.mark_published(id)).await
    }
    async fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> Result<Option<CashoutRequestId>, StoreError> {
        self.metered(
            "find_by_provider_reference",
            self.inner.find_by_provider_reference(provider, payout_id),
        )
        .await
    }
    async fn list_changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        self.metered("list_changed_requests", self.inner.list_changed_requests(query))
            .await
    }
    async fn due_requests(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<DueRequest>, StoreError> {
        self.metered("due_requests", self.inner.due_requests(now, limit)).await
    }
}

impl WebhookStore for MeteredStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint, max: usize) -> Result<EndpointCreated, StoreError> {
        self.metered("create_endpoint", self.inner.create_endpoint(endpoint, max))
            .await
    }
    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint, expected_version: u64) -> Result<(), StoreError> {
        self.metered(
            "replace_endpoint",
            self.inner.replace_endpoint(endpoint, expected_version),
        )
        .await
    }
    async fn get_endpoint(&self, m: &MerchantId, id: EndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.metered("get_endpoint", self.inner.get_endpoint(m, id)).await
    }
    async fn list_endpoints(&self, m: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.metered("list_endpoints", self.inner.list_endpoints(m)).await
    }
    async fn delete_endpoint(&self, m: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        self.metered("delete_endpoint", self.inner.delete_endpoint(m, id)).await
    }
    async fn claim_attempt(&self, attempt: &DeliveryAttempt, stale_before: OffsetDateTime) -> Result<bool, StoreError> {
        self.metered("claim_attempt", self.inner.claim_attempt(attempt, stale_before))
            .await
    }
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.metered("record_attempt", self.inner.record_attempt(attempt)).await
    }
    async fn list_attempts(
        &self,
        m: &MerchantId,
        ep: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        self.metered("list_attempts", self.inner.list_attempts(m, ep, limit, cursor))
            .await
    }
    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.metered("list_event_attempts", self.inner.list_event_attempts(event_id))
            .await
    }
}

impl ApiKeyStore for MeteredStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.metered("put_api_key", self.inner.put_api_key(record)).await
    }
    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.metered("get_api_key", self.inner.get_api_key(hash)).await
    }
}

impl RoutingStore for MeteredStore {
    async fn list_routing_rules(&self) -> Result<Vec<RoutingRule>, StoreError> {
        self.metered("list_routing_rules", self.inner.list_routing_rules())
            .await
    }
    async fn get_routing_rule(&self, id: RoutingRuleId) -> Result<Option<RoutingRule>, StoreError> {
        self.metered("get_routing_rule", self.inner.get_routing_rule(id)).await
    }
    async fn put_routing_rule(&self, rule: &RoutingRule, expected_version: u64) -> Result<(), StoreError> {
        self.metered("put_routing_rule", self.inner.put_routing_rule(rule, expected_version))
            .await
    }
    async fn delete_routing_rule(&self, id: RoutingRuleId) -> Result<bool, StoreError> {
        self.metered("delete_routing_rule", self.inner.delete_routing_rule(id))
            .await
    }
    async fn get_provider_health(&self, provider: ProviderName) -> Result<Option<ProviderHealth>, StoreError> {
        self.metered("get_provider_health", self.inner.get_provider_health(provider))
            .await
    }
    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        self.metered("list_provider_health", self.inner.list_provider_health())
            .await
    }
    async fn put_provider_health(&self, health: &ProviderHealth, expected_version: u64) -> Result<(), StoreError> {
        self.metered(
            "put_provider_health",
            self.inner.put_provider_health(health, expected_version),
        )
        .await
    }
}

impl ReconciliationStore for MeteredStore {
    async fn put_reconciliation(&self, run: &Reconciliation, expected_version: u64) -> Result<(), StoreError> {
        let result = self
            .metered(
                "put_reconciliation",
                self.inner.put_reconciliation(run, expected_version),
            )
            .await;
        if let Err(StoreError::Conflict { .. }) = result {
            self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
    async fn get_reconciliation(&self, id: ReconciliationId) -> Result<Option<Reconciliation>, StoreError> {
        self.metered("get_reconciliation", self.inner.get_reconciliation(id))
            .await
    }
    async fn put_differences(&self, id: ReconciliationId, differences: &[Difference]) -> Result<(), StoreError> {
        self.metered("put_differences", self.inner.put_differences(id, differences))
            .await
    }
    async fn list_differences(
        &self,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Difference>, StoreError> {
        self.metered("list_differences", self.inner.list_differences(id, limit, cursor))
            .await
    }
}

/// The SQS queues, counting sends by task type.
pub struct CountedQueue {
    /// The queues.
    pub inner: SqsQueue,
    sends: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CountedQueue {
    /// Counts sends to `inner`.
    pub fn new(inner: SqsQueue) -> Self {
        CountedQueue {
            inner,
            sends: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Sends by task type (`poll` split into scheduled and on-demand).
    pub fn sends(&self) -> BTreeMap<String, u64> {
        self.sends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets the tallies.
    pub fn reset(&self) {
        self.sends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn task_name(task: &Task, delayed: bool) -> String {
    let name = match task {
        Task::Dispatch { .. } => "dispatch",
        Task::Poll { due_at: Some(_), .. } => "poll (scheduled)",
        Task::Poll { due_at: None, .. } => "poll (on demand)",
        Task::ProviderEvent { .. } => "provider_event",
        Task::PublishEvent { .. } => "publish_event",
        Task::Deliver { attempt: 1, .. } => "deliver",
        Task::Deliver { .. } => "deliver (retry)",
        Task::Replay { .. } => "replay",
        Task::DeliverNotice { .. } => "deliver_notice",
        Task::Reconcile { .. } => "reconcile",
    };
    if delayed {
        format!("{name}, delayed")
    } else {
        name.to_owned()
    }
}

impl TaskQueue for CountedQueue {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        let delayed = envelope.remaining_delay(OffsetDateTime::now_utc()) > Duration::from_secs(1);
        *self
            .sends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(task_name(&envelope.task, delayed))
            .or_insert(0) += 1;
        self.inner.send(envelope).await
    }
}

impl TaskSource for CountedQueue {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        self.inner.receive(queue, max, visibility).await
    }
    async fn ack(&self, queue: QueueName, receipt: &Receipt) -> Result<(), QueueError> {
        self.inner.ack(queue, receipt).await
    }
    async fn release(&self, queue: QueueName, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        self.inner.release(queue, receipt, delay).await
    }
}

impl PeopleStore for MeteredStore {
    async fn put_operator(&self, record: &OperatorRecord, expected_version: u64) -> Result<(), StoreError> {
        self.metered("put_operator", self.inner.put_operator(record, expected_version))
            .await
    }
    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        self.metered("get_operator", self.inner.get_operator(name)).await
    }
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.metered("list_operators", self.inner.list_operators()).await
    }
    async fn put_policy(&self, policy: &ApprovalPolicy, expected_version: u64) -> Result<(), StoreError> {
        self.metered("put_policy", self.inner.put_policy(policy, expected_version))
            .await
    }
    async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ApprovalPolicy>, StoreError> {
        self.metered("get_policy", self.inner.get_policy(scope)).await
    }
    async fn list_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        self.metered("list_policies", self.inner.list_policies()).await
    }
    async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool, StoreError> {
        self.metered("delete_policy", self.inner.delete_policy(scope)).await
    }
    async fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: time::Date,
        currency: Currency,
        amount_minor: i64,
    ) -> Result<DayUsageCount, StoreError> {
        self.metered(
            "add_day_usage",
            self.inner.add_day_usage(merchant, day, currency, amount_minor),
        )
        .await
    }
    async fn beneficiary_known(&self, merchant: &MerchantId, fingerprint: &str) -> Result<bool, StoreError> {
        self.metered("beneficiary_known", self.inner.beneficiary_known(merchant, fingerprint))
            .await
    }
    async fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.metered(
            "remember_beneficiary",
            self.inner.remember_beneficiary(merchant, fingerprint, at),
        )
        .await
    }
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.metered("put_session", self.inner.put_session(session)).await
    }
    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.metered("get_session", self.inner.get_session(token_hash)).await
    }
    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.metered("delete_session", self.inner.delete_session(token_hash))
            .await
    }
}

impl WorkStore for MeteredStore {
    async fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        self.metered("list_work", self.inner.list_work(list, limit, cursor))
            .await
    }
    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        self.metered("list_dead_letters", self.inner.list_dead_letters(limit, cursor))
            .await
    }
}

impl cashout_core::ports::RateLimitStore for MeteredStore {
    async fn take_token(
        &self,
        key: &cashout_core::limit::LimitKey,
        now: OffsetDateTime,
        limit: cashout_core::limit::RateLimit,
    ) -> Result<cashout_core::limit::Decision, StoreError> {
        self.metered("take_token", self.inner.take_token(key, now, limit)).await
    }
}
