//! The store and the queues as the simulated system sees them: the in-memory adapter of
//! `cashout-store` (which passes the conformance suite), behind a yield at every call and seeded
//! faults — an unavailable store before or after a write landed, a spurious version conflict,
//! a queue that loses, duplicates or delays a send. After every write that landed, the request's
//! invariants are checked against the providers' truth.

use std::sync::Arc;
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
    QueueError, ReconciliationStore, RoutingStore, StoreError, StoredResponse, TaskEnvelope, TaskQueue, WebhookStore,
};
use cashout_core::ports::{DayUsageCount, PeopleStore, WorkList, WorkStore};
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Difference, Reconciliation};
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use cashout_core::routing::RoutingRule;
use cashout_core::webhook::{DeliveryAttempt, EndpointCreated, WebhookEndpoint};
use cashout_store::memory::MemoryStore;
use time::OffsetDateTime;

use crate::check::Checker;
use crate::ctx::Ctx;
use crate::exec::yield_now;

/// Fault rates of the store and queues, per mille of calls.
#[derive(Debug, Clone, Copy)]
pub struct StoreFaults {
    /// A call fails as unavailable before doing anything.
    pub unavailable: u32,
    /// A write lands but its answer is an error.
    pub lost_answer: u32,
    /// A change is refused with a version conflict it did not have.
    pub spurious_conflict: u32,
    /// A send is delivered twice.
    pub duplicate: u32,
    /// A send is delayed by up to a minute more.
    pub delay: u32,
    /// A send fails as unavailable (nothing sent).
    pub send_fails: u32,
}

/// The simulated store and queues.
#[derive(Clone)]
pub struct SimStore {
    /// The state that survives crashes.
    pub inner: MemoryStore,
    ctx: Arc<Ctx>,
    checker: Checker,
    faults: StoreFaults,
}

impl SimStore {
    /// The store of a run.
    pub fn new(inner: MemoryStore, ctx: Arc<Ctx>, checker: Checker, faults: StoreFaults) -> Self {
        SimStore {
            inner,
            ctx,
            checker,
            faults,
        }
    }

    async fn enter(&self, what: &str) -> Result<(), StoreError> {
        yield_now().await;
        if self.ctx.fault(self.faults.unavailable) {
            self.ctx.trace(|| format!("store {what}: unavailable"));
            return Err(StoreError::Unavailable {
                message: "simulated outage".into(),
                source: None,
            });
        }
        Ok(())
    }

    /// After a write landed: maybe its answer is lost.
    fn landed<T>(&self, what: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() && self.ctx.fault(self.faults.lost_answer) {
            self.ctx.trace(|| format!("store {what}: written, answer lost"));
            return Err(StoreError::Unavailable {
                message: "simulated lost answer".into(),
                source: None,
            });
        }
        result
    }

    fn written(&self, request: &CashoutRequest) {
        self.ctx.trace(|| {
            format!(
                "write {} v{} {}{}",
                short(request.id()),
                request.version(),
                request.status(),
                request
                    .provider_reference()
                    .map(|r| format!(" ref={r}"))
                    .unwrap_or_default()
            )
        });
        self.checker.request_written(request);
    }
}

/// The first 8 characters of an id's random part, for the trace.
pub fn short(id: CashoutRequestId) -> String {
    let text = id.to_string();
    text[text.len() - 8..].to_owned()
}

impl CashoutStore for SimStore {
    async fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        self.enter("create").await?;
        let result = self.inner.create_request(change, idempotency, released).await;
        if matches!(result, Ok(CreateOutcome::Created)) {
            self.written(&change.request);
        }
        self.landed("create", result)
    }

    async fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        new_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.enter("reclaim").await?;
        let result = self.inner.reclaim_idempotency(observed, new_until).await;
        self.landed("reclaim", result)
    }

    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.enter("complete idempotency").await?;
        let result = self.inner.complete_idempotency(merchant_id, key, response).await;
        self.landed("complete idempotency", result)
    }

    async fn get_request(&self, id: CashoutRequestId) -> Result<Option<CashoutRequest>, StoreError> {
        self.enter("get").await?;
        self.inner.get_request(id).await
    }

    async fn list_requests(
        &self,
        merchant_id: &MerchantId,
        query: &ListQuery,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        self.enter("list").await?;
        self.inner.list_requests(merchant_id, query).await
    }

    async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        self.enter("change").await?;
        if self.ctx.fault(self.faults.spurious_conflict) {
            self.ctx
                .trace(|| format!("store change {}: spurious conflict", short(change.request.id())));
            return Err(StoreError::Conflict {
                expected: change.expected_version,
            });
        }
        let result = self.inner.apply_change(change).await;
        if result.is_ok() {
            self.written(&change.request);
        }
        self.landed("change", result)
    }

    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        self.enter("events").await?;
        self.inner.list_events(id).await
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StatusEvent>, StoreError> {
        self.enter("event").await?;
        self.inner.get_event(id).await
    }

    async fn list_merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &cashout_core::ports::EventQuery,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.enter("events").await?;
        self.inner.list_merchant_events(merchant_id, query).await
    }

    async fn unpublished_events(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<StatusEvent>, StoreError> {
        self.enter("outbox").await?;
        self.inner.unpublished_events(before, limit).await
    }

    async fn mark_published(&self, id: EventId) -> Result<(), StoreError> {
        self.enter("mark published").await?;
        let result = self.inner.mark_published(id).await;
        self.landed("mark published", result)
    }

    async fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> Result<Option<CashoutRequestId>, StoreError> {
        self.enter("provider ref").await?;
        self.inner.find_by_provider_reference(provider, payout_id).await
    }

    async fn list_changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        self.enter("changed").await?;
        self.inner.list_changed_requests(query).await
    }

    async fn due_requests(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<DueRequest>, StoreError> {
        self.enter("due").await?;
        self.inner.due_requests(now, limit).await
    }
}

impl WebhookStore for SimStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint, max: usize) -> Result<EndpointCreated, StoreError> {
        self.enter("create endpoint").await?;
        let result = self.inner.create_endpoint(endpoint, max).await;
        self.landed("create endpoint", result)
    }

    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint, expected_version: u64) -> Result<(), StoreError> {
        self.enter("replace endpoint").await?;
        let result = self.inner.replace_endpoint(endpoint, expected_version).await;
        self.landed("replace endpoint", result)
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.enter("endpoint").await?;
        self.inner.get_endpoint(merchant_id, id).await
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.enter("endpoints").await?;
        self.inner.list_endpoints(merchant_id).await
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        self.enter("delete endpoint").await?;
        self.inner.delete_endpoint(merchant_id, id).await
    }

    async fn claim_attempt(&self, attempt: &DeliveryAttempt, stale_before: OffsetDateTime) -> Result<bool, StoreError> {
        self.enter("attempt").await?;
        let result = self.inner.claim_attempt(attempt, stale_before).await;
        self.landed("attempt", result)
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.enter("attempt").await?;
        let result = self.inner.record_attempt(attempt).await;
        self.landed("attempt", result)
    }

    async fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        self.enter("attempts").await?;
        self.inner.list_attempts(merchant_id, endpoint_id, limit, cursor).await
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.enter("event attempts").await?;
        self.inner.list_event_attempts(event_id).await
    }
}

impl ApiKeyStore for SimStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.inner.put_api_key(record).await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.get_api_key(hash).await
    }
}

impl RoutingStore for SimStore {
    async fn list_routing_rules(&self) -> Result<Vec<RoutingRule>, StoreError> {
        self.enter("routing rules").await?;
        self.inner.list_routing_rules().await
    }

    async fn get_routing_rule(&self, id: RoutingRuleId) -> Result<Option<RoutingRule>, StoreError> {
        self.enter("routing rule").await?;
        self.inner.get_routing_rule(id).await
    }

    async fn put_routing_rule(&self, rule: &RoutingRule, expected_version: u64) -> Result<(), StoreError> {
        self.enter("put routing rule").await?;
        self.inner.put_routing_rule(rule, expected_version).await
    }

    async fn delete_routing_rule(&self, id: RoutingRuleId) -> Result<bool, StoreError> {
        self.enter("delete routing rule").await?;
        self.inner.delete_routing_rule(id).await
    }

    async fn get_provider_health(&self, provider: ProviderName) -> Result<Option<ProviderHealth>, StoreError> {
        self.enter("provider health").await?;
        self.inner.get_provider_health(provider).await
    }

    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        self.enter("providers health").await?;
        self.inner.list_provider_health().await
    }

    async fn put_provider_health(&self, health: &ProviderHealth, expected_version: u64) -> Result<(), StoreError> {
        self.enter("put provider health").await?;
        self.inner.put_provider_health(health, expected_version).await
    }
}

impl ReconciliationStore for SimStore {
    async fn put_reconciliation(&self, run: &Reconciliation, expected_version: u64) -> Result<(), StoreError> {
        self.enter("put reconciliation").await?;
        let result = self.inner.put_reconciliation(run, expected_version).await;
        self.landed("put reconciliation", result)
    }

    async fn get_reconciliation(&self, id: ReconciliationId) -> Result<Option<Reconciliation>, StoreError> {
        self.enter("reconciliation").await?;
        self.inner.get_reconciliation(id).await
    }

    async fn put_differences(&self, id: ReconciliationId, differences: &[Difference]) -> Result<(), StoreError> {
        self.enter("put differences").await?;
        let result = self.inner.put_differences(id, differences).await;
        self.landed("put differences", result)
    }

    async fn list_differences(
        &self,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Difference>, StoreError> {
        self.enter("differences").await?;
        self.inner.list_differences(id, limit, cursor).await
    }
}

impl TaskQueue for SimStore {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        yield_now().await;
        if self.ctx.fault(self.faults.send_fails) {
            self.ctx
                .trace(|| format!("queue send {:?}: unavailable", envelope.task));
            return Err(QueueError::Unavailable {
                message: "simulated outage".into(),
                source: None,
            });
        }
        self.checker.task_sent(envelope);
        let mut envelope = envelope.clone();
        if self.ctx.fault(self.faults.delay) {
            let extra = Duration::from_millis(self.ctx.rng(|r| r.between(1, 60_000)));
            envelope.not_before = cashout_core_later(envelope.not_before, extra);
        }
        self.inner.send(&envelope).await?;
        if self.ctx.fault(self.faults.duplicate) {
            self.ctx.trace(|| format!("queue duplicates {:?}", envelope.task));
            self.inner.send(&envelope).await?;
        }
        Ok(())
    }
}

fn cashout_core_later(at: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| at.checked_add(d))
        .unwrap_or(at)
}

impl PeopleStore for SimStore {
    async fn put_operator(&self, record: &OperatorRecord, expected_version: u64) -> Result<(), StoreError> {
        self.enter("put operator").await?;
        self.inner.put_operator(record, expected_version).await
    }
    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        self.enter("get operator").await?;
        self.inner.get_operator(name).await
    }
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.enter("list operators").await?;
        self.inner.list_operators().await
    }
    async fn put_policy(&self, policy: &ApprovalPolicy, expected_version: u64) -> Result<(), StoreError> {
        self.enter("put policy").await?;
        self.inner.put_policy(policy, expected_version).await
    }
    async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ApprovalPolicy>, StoreError> {
        self.enter("get policy").await?;
        self.inner.get_policy(scope).await
    }
    async fn list_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        self.enter("list policies").await?;
        self.inner.list_policies().await
    }
    async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool, StoreError> {
        self.enter("delete policy").await?;
        self.inner.delete_policy(scope).await
    }
    async fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: time::Date,
        currency: Currency,
        amount_minor: i64,
    ) -> Result<DayUsageCount, StoreError> {
        self.enter("add day usage").await?;
        self.inner.add_day_usage(merchant, day, currency, amount_minor).await
    }
    async fn beneficiary_known(&self, merchant: &MerchantId, fingerprint: &str) -> Result<bool, StoreError> {
        self.enter("beneficiary known").await?;
        self.inner.beneficiary_known(merchant, fingerprint).await
    }
    async fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.enter("remember beneficiary").await?;
        self.inner.remember_beneficiary(merchant, fingerprint, at).await
    }
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.enter("put session").await?;
        self.inner.put_session(session).await
    }
    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.enter("get session").await?;
        self.inner.get_session(token_hash).await
    }
    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.enter("delete session").await?;
        self.inner.delete_session(token_hash).await
    }
}

impl WorkStore for SimStore {
    async fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        self.enter("list work").await?;
        self.inner.list_work(list, limit, cursor).await
    }
    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        self.enter("list dead letters").await?;
        self.inner.list_dead_letters(limit, cursor).await
    }
}

/// Rate limits are not part of the simulated protocol: straight to the memory store's buckets
/// (on the run's clock), with no fault and no scheduling point, so that seeds replay as before.
impl cashout_core::ports::RateLimitStore for SimStore {
    async fn take_token(
        &self,
        key: &cashout_core::limit::LimitKey,
        now: OffsetDateTime,
        limit: cashout_core::limit::RateLimit,
    ) -> Result<cashout_core::limit::Decision, StoreError> {
        self.inner.take_token(key, now, limit).await
    }
}
