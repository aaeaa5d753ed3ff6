//! The store and queue ports in memory: the same behaviour as the durable backends (the
//! conformance suite runs against it), nothing kept across a process. For fast tests and the
//! deterministic simulation (`tests/dst`), which needs a store whose every call finishes at once,
//! whose time comes only from the injected clock, and whose iteration order is fixed (ordered
//! maps throughout, never hash order).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::InvoiceClaim;
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    ApiKeyStore, CashoutStore, Clock, CreateOutcome, Cursor, DueRequest, IdempotencyRecord, IdempotencyState,
    ListQuery, Page, QueueError, QueueName, Receipt, ReceivedTask, StoreError, StoredResponse, TaskEnvelope, TaskQueue,
    TaskSource, WebhookStore,
};
use cashout_core::provider::ProviderName;
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use time::OffsetDateTime;

use crate::codec::{AttemptPosition, page_size, parse_request_cursor, request_cursor};
use crate::inspect::{DeadLetter, QueueDepth, QueueInspect};
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

/// Checks what every change must satisfy before anything is written.
fn check_change(change: &Change, creation: bool) -> Result<(), StoreError> {
    let id = change.request.id();
    if creation != (change.expected_version == 0) {
        return Err(StoreError::invalid(if creation {
            "a creation must expect version 0"
        } else {
            "a change to an existing request cannot expect version 0"
        }));
    }
    if change.request.version() != change.expected_version + 1 {
        return Err(StoreError::invalid(format!(
            "the new version {} does not follow {}",
            change.request.version(),
            change.expected_version
        )));
    }
    if let Some(e) = change.events.iter().find(|e| e.cashout_request_id != id) {
        return Err(StoreError::invalid(format!(
            "event {} belongs to another request",
            e.id
        )));
    }
    Ok(())
}

fn insert_events(state: &mut State, events: &[StatusEvent]) -> Result<(), StoreError> {
    if let Some(e) = events.iter().find(|e| state.events.contains_key(&e.id)) {
        return Err(StoreError::Corrupt {
            message: format!("event {} is already stored", e.id),
            source: None,
        });
    }
    for e in events {
        state.events.insert(e.id, (e.clone(), false));
    }
    Ok(())
}

impl CashoutStore for MemoryStore {
    async fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        check_change(change, true)?;
        idempotency.check_creation(&change.request)?;
        let now = self.clock.now();
        let mut state = self.state();
        let key = (idempotency.merchant_id.clone(), idempotency.key.clone());
        if let Some(existing) = state.idempotency.get(&key).filter(|r| r.is_live(now)) {
            return Ok(CreateOutcome::Existing(existing.clone()));
        }
        let id = change.request.id();
        if state.requests.contains_key(&id) {
            return Err(StoreError::Conflict { expected: 0 });
        }
        let keys = change.request.invoice_keys();
        for key in &keys {
            let Some(&(holder, claimed_at)) = state.claims.get(&key.storage_key()) else {
                continue;
            };
            let claim = InvoiceClaim {
                key: key.clone(),
                holder,
                claimed_at,
            };
            if !released.contains(&claim) {
                return Ok(CreateOutcome::InvoiceHeld(claim));
            }
        }
        insert_events(&mut state, &change.events)?;
        for key in &keys {
            state
                .claims
                .insert(key.storage_key(), (id, change.request.updated_at()));
        }
        state.requests.insert(id, change.request.clone());
        state.idempotency.insert(key, idempotency.clone());
        Ok(CreateOutcome::Created)
    }

    async fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        new_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let IdempotencyState::InProgress { until } = observed.state else {
            return Ok(false);
        };
        let mut state = self.state();
        let key = (observed.merchant_id.clone(), observed.key.clone());
        match state.idempotency.get_mut(&key) {
            Some(record)
                if record.state == (IdempotencyState::InProgress { until })
                    && record.cashout_request_id == observed.cashout_request_id =>
            {
                record.state = IdempotencyState::InProgress { until: new_until };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let record = state
            .idempotency
            .get_mut(&(merchant_id.clone(), key.clone()))
            .ok_or(StoreError::NotFound)?;
        record.state = IdempotencyState::Completed {
            response: response.clone(),
        };
        Ok(())
    }

    async fn get_request(&self, id: CashoutRequestId) -> Result<Option<CashoutRequest>, StoreError> {
        Ok(self.state().requests.get(&id).cloned())
    }

    async fn list_requests(
        &self,
        merchant_id: &MerchantId,
        query: &ListQuery,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(query.limit)?;
        let after = query.cursor.as_ref().map(parse_request_cursor).transpose()?;
        let state = self.state();
        let mut items: Vec<CashoutRequest> = state
            .requests
            .values()
            .rev()
            .filter(|r| r.merchant_id() == merchant_id)
            .filter(|r| query.status.is_none_or(|s| r.status() == s))
            .filter(|r| after.is_none_or(|a| r.id() < a))
            .take(limit + 1)
            .cloned()
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| request_cursor(r.id()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        check_change(change, false)?;
        let id = change.request.id();
        let mut state = self.state();
        let stored = state.requests.get(&id).ok_or(StoreError::NotFound)?;
        if stored.version() != change.expected_version {
            return Err(StoreError::Conflict {
                expected: change.expected_version,
            });
        }
        if let Some((provider, payout_id)) = &change.new_provider_reference
            && state
                .provider_refs
                .get(&(*provider, payout_id.clone()))
                .is_some_and(|holder| *holder != id)
        {
            return Err(StoreError::invalid(format!(
                "{provider} payout {payout_id} already belongs to another request"
            )));
        }
        insert_events(&mut state, &change.events)?;
        if let Some((provider, payout_id)) = &change.new_provider_reference {
            state.provider_refs.entry((*provider, payout_id.clone())).or_insert(id);
        }
        state.requests.insert(id, change.request.clone());
        Ok(())
    }

    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        let state = self.state();
        Ok(state
            .events
            .range(EventId::new(id, 0)..=EventId::new(id, u64::MAX))
            .map(|(_, (e, _))| e.clone())
            .collect())
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StatusEvent>, StoreError> {
        Ok(self.state().events.get(&id).map(|(e, _)| e.clone()))
    }

    async fn unpublished_events(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<StatusEvent>, StoreError> {
        let state = self.state();
        let mut events: Vec<&StatusEvent> = state
            .events
            .values()
            .filter(|(e, published)| !published && e.occurred_at < before)
            .map(|(e, _)| e)
            .collect();
        events.sort_by_key(|e| (e.occurred_at, e.cashout_request_id, e.sequence));
        Ok(events.into_iter().take(limit).cloned().collect())
    }

    async fn mark_published(&self, id: EventId) -> Result<(), StoreError> {
        let mut state = self.state();
        let (_, published) = state.events.get_mut(&id).ok_or(StoreError::NotFound)?;
        *published = true;
        Ok(())
    }

    async fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> Result<Option<CashoutRequestId>, StoreError> {
        Ok(self.state().provider_refs.get(&(provider, payout_id.clone())).copied())
    }

    async fn due_requests(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<DueRequest>, StoreError> {
        let state = self.state();
        let mut due: Vec<DueRequest> = state
            .requests
            .values()
            .filter_map(|r| {
                r.next_check_at().filter(|at| *at <= now).map(|at| DueRequest {
                    id: r.id(),
                    next_check_at: at,
                })
            })
            .collect();
        due.sort_by_key(|d| (d.next_check_at, d.id));
        due.truncate(limit);
        Ok(due)
    }
}

impl WebhookStore for MemoryStore {
    async fn put_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        self.state()
            .endpoints
            .insert((endpoint.merchant_id.clone(), endpoint.id), endpoint.clone());
        Ok(())
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.state().endpoints.get(&(merchant_id.clone(), id)).cloned())
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let state = self.state();
        let mut list: Vec<WebhookEndpoint> = state
            .endpoints
            .iter()
            .filter(|((m, _), _)| m == merchant_id)
            .map(|(_, e)| e.clone())
            .collect();
        list.sort_by_key(|e| (e.created_at, e.id));
        Ok(list)
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        Ok(self.state().endpoints.remove(&(merchant_id.clone(), id)).is_some())
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.state().attempts.insert(
            (attempt.event_id, attempt.endpoint_id, attempt.attempt),
            attempt.clone(),
        );
        Ok(())
    }

    async fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(AttemptPosition::from_cursor).transpose()?;
        let position = |a: &DeliveryAttempt| (a.attempted_at.unix_timestamp_nanos(), a.event_id.to_string(), a.attempt);
        let after = after.map(|p| (i128::from(p.attempted_at_ns), p.event_id.to_string(), p.attempt));
        let state = self.state();
        let mut items: Vec<DeliveryAttempt> = state
            .attempts
            .values()
            .filter(|a| &a.merchant_id == merchant_id && a.endpoint_id == endpoint_id)
            .filter(|a| after.as_ref().is_none_or(|after| position(a) < *after))
            .cloned()
            .collect();
        items.sort_by_key(|a| std::cmp::Reverse(position(a)));
        items.truncate(limit + 1);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().and_then(|a| {
                Some(
                    AttemptPosition {
                        attempted_at_ns: i64::try_from(a.attempted_at.unix_timestamp_nanos()).ok()?,
                        event_id: a.event_id,
                        attempt: a.attempt,
                    }
                    .cursor(),
                )
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let state = self.state();
        let mut list: Vec<DeliveryAttempt> = state
            .attempts
            .range((event_id, EndpointId::from_uuid(uuid::Uuid::nil()), 0)..)
            .take_while(|((e, _, _), _)| *e == event_id)
            .map(|(_, a)| a.clone())
            .collect();
        list.sort_by_key(|a| (a.attempted_at, a.endpoint_id, a.attempt));
        Ok(list)
    }
}

impl ApiKeyStore for MemoryStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.state().api_keys.insert(record.hash.clone(), record.clone());
        Ok(())
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.state().api_keys.get(hash).cloned())
    }
}

/// `now + delay`, saturating instead of overflowing.
fn later(now: OffsetDateTime, delay: Duration) -> OffsetDateTime {
    time::Duration::try_from(delay)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT))
}

fn receipt(id: u64, count: u32) -> Receipt {
    Receipt(format!("{id}.{count}"))
}

fn parse_receipt(receipt: &Receipt) -> Result<(u64, u32), QueueError> {
    let (id, count) = receipt.0.split_once('.').ok_or(QueueError::InvalidReceipt)?;
    Ok((
        id.parse().map_err(|_| QueueError::InvalidReceipt)?,
        count.parse().map_err(|_| QueueError::InvalidReceipt)?,
    ))
}

impl TaskQueue for MemoryStore {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        let now = self.clock.now();
        let mut state = self.state();
        let id = state.next_message;
        state.next_message += 1;
        state.messages.insert(
            id,
            Message {
                queue: envelope.queue(),
                body: envelope.to_json(),
                visible_at: envelope.not_before.max(now),
                receive_count: 0,
            },
        );
        Ok(())
    }
}

impl TaskSource for MemoryStore {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        let now = self.clock.now();
        let hidden_until = later(now, visibility);
        let limit = self.max_receives.get(&queue).copied().unwrap_or(u32::MAX);
        let mut state = self.state();
        let mut visible: Vec<(OffsetDateTime, u64)> = state
            .messages
            .iter()
            .filter(|(_, m)| m.queue == queue && m.visible_at <= now)
            .map(|(id, m)| (m.visible_at, *id))
            .collect();
        visible.sort();
        let mut received = Vec::new();
        for (_, id) in visible {
            if received.len() >= max {
                break;
            }
            let Some(message) = state.messages.get_mut(&id) else {
                continue;
            };
            if message.receive_count >= limit {
                let dead = DeadLetter {
                    body: message.body.clone(),
                    receive_count: message.receive_count,
                };
                state.messages.remove(&id);
                state.dead_letters.push((queue, dead));
                continue;
            }
            message.receive_count += 1;
            message.visible_at = hidden_until;
            received.push(ReceivedTask {
                receipt: receipt(id, message.receive_count),
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
        }
        Ok(received)
    }

    async fn ack(&self, queue: QueueName, receipt: &Receipt) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let mut state = self.state();
        match state.messages.get(&id) {
            Some(m) if m.queue == queue && m.receive_count == count => {
                state.messages.remove(&id);
                Ok(())
            }
            _ => Err(QueueError::InvalidReceipt),
        }
    }

    async fn release(&self, queue: QueueName, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let at = later(self.clock.now(), delay);
        let mut state = self.state();
        match state.messages.get_mut(&id) {
            Some(m) if m.queue == queue && m.receive_count == count => {
                m.visible_at = at;
                Ok(())
            }
            _ => Err(QueueError::InvalidReceipt),
        }
    }
}

impl QueueInspect for MemoryStore {
    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, QueueError> {
        let now = self.clock.now();
        let state = self.state();
        let mut depth = QueueDepth::default();
        for m in state.messages.values().filter(|m| m.queue == queue) {
            if m.visible_at <= now {
                depth.visible += 1;
            } else if m.receive_count > 0 {
                depth.in_flight += 1;
            } else {
                depth.delayed += 1;
            }
        }
        Ok(depth)
    }

    async fn dead_letters(&self, queue: QueueName, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .state()
            .dead_letters
            .iter()
            .filter(|(q, _)| *q == queue)
            .take(max)
            .map(|(_, d)| d.clone())
            .collect())
    }
}
