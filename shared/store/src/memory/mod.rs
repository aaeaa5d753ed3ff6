//! The store and queue ports in memory: the same behaviour as the durable backends (the
//! conformance suite runs against it), nothing kept across a process. For fast tests and the
//! deterministic simulation (`tests/dst`), which needs a store whose every call finishes at once,
//! whose time comes only from the injected clock, and whose iteration order is fixed (ordered
//! maps throughout, never hash order).

mod api_keys;
mod limits;
mod people;
mod queue;
mod reconcile;
mod requests;
mod routing;
mod webhooks;
mod work;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord, OperatorName, OperatorRecord, SessionRecord};
use cashout_core::cashout::CashoutRequest;
use cashout_core::event::StatusEvent;
use cashout_core::health::ProviderHealth;
use cashout_core::ids::{
    CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId, ReconciliationId,
    RoutingRuleId,
};
use cashout_core::money::Currency;
use cashout_core::ports::{Clock, IdempotencyRecord, QueueName, StoreError};
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Difference, Reconciliation};
use cashout_core::review::ApprovalPolicy;
use cashout_core::routing::RoutingRule;
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use time::{Date, OffsetDateTime};

use crate::inspect::DeadLetter;
use crate::resources::Definition;

/// One queued message.
#[derive(Debug, Clone)]
struct Message {
    queue: QueueName,
    body: String,
    visible_at: OffsetDateTime,
    receive_count: u32,
}

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<CashoutRequestId, CashoutRequest>,
    /// Events by request and sequence, with their `published` flag.
    events: BTreeMap<EventId, (StatusEvent, bool)>,
    idempotency: BTreeMap<(MerchantId, IdempotencyKey), IdempotencyRecord>,
    provider_refs: BTreeMap<(ProviderName, ProviderPayoutId), CashoutRequestId>,
    /// Invoice claims by storage key: the holder and when it claimed.
    claims: BTreeMap<String, (CashoutRequestId, OffsetDateTime)>,
    endpoints: BTreeMap<(MerchantId, EndpointId), WebhookEndpoint>,
    attempts: BTreeMap<(EventId, EndpointId, u32), DeliveryAttempt>,
    api_keys: HashMap<ApiKeyHash, ApiKeyRecord>,
    rules: BTreeMap<RoutingRuleId, RoutingRule>,
    health: BTreeMap<ProviderName, ProviderHealth>,
    reconciliations: BTreeMap<ReconciliationId, Reconciliation>,
    /// Differences by run and `Difference::key`.
    differences: BTreeMap<(ReconciliationId, String), Difference>,
    operators: BTreeMap<OperatorName, OperatorRecord>,
    /// Policies by `PolicyScope::key`.
    policies: BTreeMap<String, ApprovalPolicy>,
    /// A merchant's day: its count (every currency) and its amount per currency.
    day_usage: BTreeMap<(MerchantId, Date), (u64, BTreeMap<Currency, i64>)>,
    /// (merchant, beneficiary fingerprint) paid before.
    beneficiaries: BTreeSet<(MerchantId, String)>,
    /// Sessions by token hash.
    sessions: BTreeMap<String, SessionRecord>,
    messages: BTreeMap<u64, Message>,
    next_message: u64,
    dead_letters: Vec<(QueueName, DeadLetter)>,
}

/// The store and the four queues in memory. Cheap to clone (clones share the state).
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    max_receives: Arc<BTreeMap<QueueName, u32>>,
    /// Rate-limit buckets (`limits.rs`).
    limits: Arc<cashout_core::limit::Buckets<cashout_core::limit::LimitKey>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store reading time from `clock`, with the queues' redrive limits of
    /// `infra/template.yaml`.
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let definition = Definition::embedded().map_err(|e| StoreError::Invalid {
            message: "the queue definition".into(),
            source: Some(e.into()),
        })?;
        let max_receives = definition
            .queues
            .iter()
            .map(|(q, spec)| (*q, spec.max_receive_count))
            .collect();
        Ok(MemoryStore {
            state: Arc::default(),
            clock,
            max_receives: Arc::new(max_receives),
            limits: Arc::new(cashout_core::limit::Buckets::new(cashout_core::limit::KEPT_BUCKETS)),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: every operation checks first
        // and writes last.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every request, in id order (the simulation's invariant checks).
    pub fn all_requests(&self) -> Vec<CashoutRequest> {
        self.state().requests.values().cloned().collect()
    }

    /// One request, at once (the simulation's invariant checks).
    pub fn request(&self, id: CashoutRequestId) -> Option<CashoutRequest> {
        self.state().requests.get(&id).cloned()
    }

    /// The request a provider payout id is indexed to, at once.
    pub fn indexed(&self, provider: ProviderName, payout_id: &ProviderPayoutId) -> Option<CashoutRequestId> {
        self.state().provider_refs.get(&(provider, payout_id.clone())).copied()
    }

    /// A request's events in sequence order, at once.
    pub fn events_of(&self, id: CashoutRequestId) -> Vec<StatusEvent> {
        self.state()
            .events
            .range(EventId::new(id, 0)..=EventId::new(id, u64::MAX))
            .map(|(_, (e, _))| e.clone())
            .collect()
    }

    /// Every endpoint of every merchant.
    pub fn all_endpoints(&self) -> Vec<WebhookEndpoint> {
        self.state().endpoints.values().cloned().collect()
    }

    /// Whether a queue holds a message visible at `now`.
    pub fn has_visible(&self, queue: QueueName, now: OffsetDateTime) -> bool {
        self.state()
            .messages
            .values()
            .any(|m| m.queue == queue && m.visible_at <= now)
    }

    /// The earliest `next_check_at` of any request.
    pub fn earliest_check(&self) -> Option<OffsetDateTime> {
        self.state()
            .requests
            .values()
            .filter_map(CashoutRequest::next_check_at)
            .min()
    }

    /// When the oldest unpublished event occurred.
    pub fn oldest_unpublished(&self) -> Option<OffsetDateTime> {
        self.state()
            .events
            .values()
            .filter(|(_, published)| !published)
            .map(|(e, _)| e.occurred_at)
            .min()
    }

    /// Every attempt of every delivery, in (event, endpoint, attempt) order.
    pub fn all_attempts(&self) -> Vec<DeliveryAttempt> {
        self.state().attempts.values().cloned().collect()
    }

    /// When the next queued message becomes visible, if any is waiting.
    pub fn next_visible_at(&self) -> Option<OffsetDateTime> {
        self.state().messages.values().map(|m| m.visible_at).min()
    }

    /// Messages still queued or in flight, per queue.
    pub fn queued(&self) -> BTreeMap<QueueName, usize> {
        let mut out = BTreeMap::new();
        for m in self.state().messages.values() {
            *out.entry(m.queue).or_insert(0) += 1;
        }
        out
    }

    /// Every dead-lettered message so far.
    pub fn all_dead_letters(&self) -> Vec<(QueueName, DeadLetter)> {
        self.state().dead_letters.clone()
    }
}
