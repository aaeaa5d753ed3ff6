//! Webhook endpoints and delivery attempts in memory.

use cashout_core::ids::{EndpointId, EventId, MerchantId};
use cashout_core::ports::{Cursor, Page, StoreError, WebhookStore};
use cashout_core::webhook::{DeliveryAttempt, EndpointCreated, WebhookEndpoint};

use super::MemoryStore;
use crate::codec::{AttemptPosition, page_size};
use crate::endpoints::check_endpoint;

impl WebhookStore for MemoryStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint, max: usize) -> Result<EndpointCreated, StoreError> {
        // The durable stores' checks (version); the JSON itself is not kept here.
        check_endpoint(endpoint, 0)?;
        let mut state = self.state();
        let key = (endpoint.merchant_id.clone(), endpoint.id);
        if state.endpoints.contains_key(&key) {
            return Err(StoreError::Conflict { expected: 0 });
        }
        let stored = state
            .endpoints
            .keys()
            .filter(|(m, _)| m == &endpoint.merchant_id)
            .count();
        if stored >= max {
            return Ok(EndpointCreated::LimitReached);
        }
        state.endpoints.insert(key, endpoint.clone());
        Ok(EndpointCreated::Created)
    }

    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint, expected_version: u64) -> Result<(), StoreError> {
        check_endpoint(endpoint, expected_version)?;
        let mut state = self.state();
        let stored = state
            .endpoints
            .get_mut(&(endpoint.merchant_id.clone(), endpoint.id))
            .ok_or(StoreError::NotFound)?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict {
                expected: expected_version,
            });
        }
        *stored = endpoint.clone();
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

    async fn claim_attempt(
        &self,
        attempt: &DeliveryAttempt,
        stale_before: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let key = (attempt.event_id, attempt.endpoint_id, attempt.attempt);
        if !crate::events::may_claim(state.attempts.get(&key), stale_before) {
            return Ok(false);
        }
        state.attempts.insert(key, attempt.clone());
        Ok(true)
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
