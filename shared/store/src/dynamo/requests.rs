//! The request store on DynamoDB: requests, their events and the outbox, idempotency records,
//! provider references and due checks. A creation's steps are in [`super::creation`].

use aws_sdk_dynamodb::types::AttributeValue;
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

use super::DynamoStore;
use super::creation::{claim_put, creation_items, refused_creation};
use super::items::*;
use super::table::{Cancelled, DUE_INDEX, MAX_TRANSACTION_ITEMS, OUTBOX_INDEX, Written, cancelled_error, put, values};
use crate::codec::{from_ns, page_size, parse_request_cursor, request_cursor, to_ns};
use cashout_core::ports::check_change;

impl CashoutStore for DynamoStore {
    async fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        check_change(change, true)?;
        idempotency.check_creation(&change.request)?;
        let now = to_ns(self.clock.now())?;
        let id = change.request.id();
        let keys = change.request.invoice_keys();
        let claimed_at = to_ns(change.request.updated_at())?;
        let mut items = creation_items(&self.table, change, idempotency, now)?;
        let first_claim = items.len();
        let in_one = first_claim + keys.len() <= MAX_TRANSACTION_ITEMS;
        if in_one {
            for k in &keys {
                items.push(claim_put(&self.table, k, id, claimed_at, released)?);
            }
        } else if let Some(outcome) = self
            .claim_before_creating(idempotency, &keys, id, claimed_at, released)
            .await?
        {
            return Ok(outcome);
        }
        let cancelled = match self.transact("create a request", items).await {
            Ok(()) => return Ok(CreateOutcome::Created),
            Err(cancelled) => cancelled,
        };
        let outcome = refused_creation(change, cancelled, in_one, first_claim, &keys);
        if !in_one {
            self.unclaim(&keys, id).await?;
        }
        outcome
    }

    async fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        new_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let IdempotencyState::InProgress { until } = observed.state else {
            return Ok(false);
        };
        let update = self
            .client
            .update_item()
            .set_key(Some(idempotency_key(&observed.merchant_id, &observed.key)))
            .update_expression("SET #u = :new")
            .condition_expression("#s = :in_progress AND #u = :observed AND #r = :request")
            .expression_attribute_names("#u", IDEM_UNTIL)
            .expression_attribute_names("#s", IDEM_STATE)
            .expression_attribute_names("#r", IDEM_REQUEST)
            .set_expression_attribute_values(Some(values([
                (":new", n(to_ns(new_until)?)),
                (":in_progress", s(IN_PROGRESS)),
                (":observed", n(to_ns(until)?)),
                (":request", s(observed.cashout_request_id.to_string())),
            ])));
        self.update_if("reclaim an idempotency record", update).await
    }

    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .set_key(Some(idempotency_key(merchant_id, key)))
            .update_expression("SET #s = :completed, #rs = :status, #rb = :body REMOVE #u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", IDEM_STATE)
            .expression_attribute_names("#rs", IDEM_RESPONSE_STATUS)
            .expression_attribute_names("#rb", IDEM_RESPONSE_BODY)
            .expression_attribute_names("#u", IDEM_UNTIL)
            .set_expression_attribute_values(Some(values([
                (":completed", s(COMPLETED)),
                (":status", n(response.status)),
                (":body", s(response.body.clone())),
            ])));
        if self.update_if("complete an idempotency record", update).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn get_request(&self, id: CashoutRequestId) -> Result<Option<CashoutRequest>, StoreError> {
        self.get_item("read a request", key(request_pk(id), REQUEST_SK))
            .await?
            .map(|item| request_from_item(&item))
            .transpose()
    }

    async fn list_requests(
        &self,
        merchant_id: &MerchantId,
        query: &ListQuery,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(query.limit)?;
        let after = query.cursor.as_ref().map(parse_request_cursor).transpose()?;
        let (index, pk, sk) = match query.status {
            None => (BY_OWNER, (GSI1PK, merchant_requests_pk(merchant_id)), GSI1SK),
            Some(status) => (BY_STATUS, (GSI2PK, merchant_status_pk(merchant_id, status)), GSI2SK),
        };
        let mut keys = self
            .query_index(
                "list requests",
                index,
                pk,
                (sk, after.map(|id| s(id.to_string())), "<"),
                false,
                limit + 1,
            )
            .await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let keys = keys
            .iter()
            .map(|k| Ok(key(get_s(k, PK)?.to_owned(), REQUEST_SK)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut items = self
            .batch_get("read listed requests", keys)
            .await?
            .iter()
            .map(request_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        // The index may lag a status change: the consistent body decides.
        if let Some(status) = query.status {
            items.retain(|r| r.status() == status);
        }
        let next_cursor = if more {
            items.last().map(|r| request_cursor(r.id()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        check_change(change, false)?;
        if change.events.is_empty() && change.new_provider_reference.is_none() {
            self.put_bookkeeping(change).await
        } else {
            self.transact_change(change).await
        }
    }

    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        self.query_partition("list events", request_pk(id), EVENT_SK_PREFIX)
            .await?
            .iter()
            .map(event_from_item)
            .collect()
    }

    async fn list_merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &cashout_core::ports::EventQuery,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.merchant_events(merchant_id, query).await
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StatusEvent>, StoreError> {
        self.get_item("read an event", event_key(id)?)
            .await?
            .map(|item| event_from_item(&item))
            .transpose()
    }

    async fn unpublished_events(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<StatusEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_shards("list unpublished events", &OUTBOX_INDEX, "<", to_ns(before)?, limit)
            .await?;
        let mut events = items.iter().map(event_from_item).collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| (e.occurred_at, e.cashout_request_id, e.sequence));
        events.truncate(limit);
        Ok(events)
    }

    async fn mark_published(&self, id: EventId) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .set_key(Some(event_key(id)?))
            .update_expression("SET published = :yes REMOVE outbox_pk, outbox_at")
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values([(":yes", AttributeValue::Bool(true))])));
        if self.update_if("mark an event published", update).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> Result<Option<CashoutRequestId>, StoreError> {
        self.get_item("read a provider reference", provider_ref_key(provider, payout_id))
            .await?
            .map(|item| {
                get_s(&item, "request_id")?
                    .parse()
                    .map_err(|e| StoreError::corrupt("provider reference", e))
            })
            .transpose()
    }

    async fn list_changed_requests(&self, query: &ChangedQuery) -> Result<Page<CashoutRequest>, StoreError> {
        self.changed_requests(query).await
    }

    async fn due_requests(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<DueRequest>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_shards("list due requests", &DUE_INDEX, "<=", to_ns(now)?, limit)
            .await?;
        let mut due = items
            .iter()
            .map(|item| {
                Ok(DueRequest {
                    id: request_id_of(item)?,
                    next_check_at: from_ns(get_n(item, DUE_AT)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        due.sort_by_key(|d| (d.next_check_at, d.id));
        due.truncate(limit);
        Ok(due)
    }
}

impl DynamoStore {
    /// Writes a change without events or a provider reference (bookkeeping: a dispatch claim, a
    /// poll that changed nothing) as one conditional put, half the cost of a transaction.
    async fn put_bookkeeping(&self, change: &Change) -> Result<(), StoreError> {
        let expected = Some(values([(":expected", n(change.expected_version))]));
        let written = self
            .put_if(
                "write a request",
                request_item(&change.request)?,
                "v = :expected",
                expected,
            )
            .await?;
        match written {
            Written::Yes => Ok(()),
            Written::Refused(current) => request_condition_failed(change, current.as_ref()),
        }
    }

    /// Writes a change with its events and its provider reference in one transaction.
    async fn transact_change(&self, change: &Change) -> Result<(), StoreError> {
        let table = &*self.table;
        let expected = Some(values([(":expected", n(change.expected_version))]));
        let mut items = vec![put(table, request_item(&change.request)?, "v = :expected", expected)?];
        for e in &change.events {
            items.push(put(table, event_item(e)?, "attribute_not_exists(pk)", None)?);
        }
        let reference_index = items.len();
        if let Some((provider, payout)) = &change.new_provider_reference {
            let mut item = provider_ref_key(*provider, payout);
            item.insert("request_id".into(), s(change.request.id().to_string()));
            items.push(put(
                table,
                item,
                "attribute_not_exists(pk) OR request_id = :id",
                Some(values([(":id", s(change.request.id().to_string()))])),
            )?);
        }
        match self.transact("apply a change", items).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition { index: 0, item }) => request_condition_failed(change, item.as_ref()),
            Err(Cancelled::Condition { index, item }) if index == reference_index => {
                let owner = item
                    .as_ref()
                    .and_then(|i| get_s(i, "request_id").ok())
                    .unwrap_or("?")
                    .to_owned();
                let (provider, payout) = change
                    .new_provider_reference
                    .as_ref()
                    .map(|(p, id)| (p.as_str(), id.to_string()))
                    .unwrap_or_default();
                Err(StoreError::invalid(format!(
                    "{provider} payout {payout} already belongs to request {owner}"
                )))
            }
            Err(Cancelled::Condition { index, .. }) => Err(StoreError::Corrupt {
                message: format!("event {index} of request {} is already stored", change.request.id()),
                source: None,
            }),
            Err(other) => Err(cancelled_error("apply a change", other)),
        }
    }
}

/// The outcome of a failed conditional write of the request item (other than our own write,
/// which the write recognised): a missing request, or a lost race.
fn request_condition_failed(change: &Change, current: Option<&Item>) -> Result<(), StoreError> {
    match current {
        None => Err(StoreError::NotFound),
        Some(_) => Err(StoreError::Conflict {
            expected: change.expected_version,
        }),
    }
}
