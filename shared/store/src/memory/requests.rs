//! The request store in memory: requests, their events and the outbox, idempotency records,
//! invoice claims, provider references and due checks.

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::InvoiceClaim;
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    CashoutStore, ChangedQuery, CreateOutcome, DueRequest, IdempotencyRecord, IdempotencyState, ListQuery, Page,
    StoreError, StoredResponse,
};
use cashout_core::provider::ProviderName;
use time::OffsetDateTime;

use super::{MemoryStore, State};
use crate::codec::{
    changed_cursor, changed_page_size, page_size, parse_changed_cursor, parse_request_cursor, request_cursor, to_ns,
};
use cashout_core::ports::check_change;

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

    async fn list_merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &cashout_core::ports::EventQuery,
    ) -> Result<cashout_core::ports::Page<StatusEvent>, StoreError> {
        use crate::events::{EventPosition, event_matches, event_page};
        let (limit, after) = event_page(query)?;
        let state = self.state();
        let mut items: Vec<(EventPosition, StatusEvent)> = state
            .events
            .values()
            .filter(|(e, _)| event_matches(merchant_id, query, e))
            .map(|(e, _)| Ok((EventPosition::of(e)?, e.clone())))
            .collect::<Result<_, StoreError>>()?;
        items.retain(|(p, _)| after.as_ref().is_none_or(|after| p < after));
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let next_cursor = (items.len() > limit).then(|| items[limit - 1].0.cursor());
        items.truncate(limit);
        Ok(cashout_core::ports::Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
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

    async fn list_changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = changed_page_size(query.limit)?;
        let after = query.cursor.as_ref().map(parse_changed_cursor).transpose()?;
        let state = self.state();
        // Each request at its first event in the range (events are in (request, sequence) order),
        // ordered like the embedded store: (that event's time, request id).
        let mut first: std::collections::BTreeMap<CashoutRequestId, OffsetDateTime> = std::collections::BTreeMap::new();
        for (e, _) in state.events.values() {
            if e.occurred_at >= query.from && e.occurred_at < query.to {
                first.entry(e.cashout_request_id).or_insert(e.occurred_at);
            }
        }
        let mut positions = first
            .into_iter()
            .filter(|(id, _)| {
                query
                    .merchant_id
                    .as_ref()
                    .is_none_or(|m| state.requests.get(id).is_some_and(|r| r.merchant_id() == m))
            })
            .map(|(id, at)| Ok((to_ns(at)?, id)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        positions.sort();
        let mut page: Vec<(i64, CashoutRequestId)> = positions
            .into_iter()
            .filter(|p| after.is_none_or(|a| *p > a))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next_cursor = if more {
            page.last().map(|(at, id)| changed_cursor(*at, *id))
        } else {
            None
        };
        let items = page
            .iter()
            .filter_map(|(_, id)| state.requests.get(id).cloned())
            .collect();
        Ok(Page { items, next_cursor })
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
