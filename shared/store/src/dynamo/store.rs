//! The store ports on DynamoDB.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::{InvoiceClaim, InvoiceKey};
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{
    ApiKeyStore, CashoutStore, CreateOutcome, Cursor, DueRequest, IdempotencyRecord, IdempotencyState, ListQuery, Page,
    StoreError, StoredResponse, WebhookStore,
};
use cashout_core::provider::ProviderName;
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use time::OffsetDateTime;

use super::items::*;
use super::{DynamoStore, TRANSACTION_ATTEMPTS, backoff, sdk_error};
use crate::codec::{
    AttemptPosition, from_json, from_ns, page_size, parse_request_cursor, request_cursor, to_json, to_ns,
};

const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

/// Why a transaction was cancelled, per item, as DynamoDB reports it.
enum Cancelled {
    /// Item `index` failed its condition; its current value if it exists.
    Condition { index: usize, item: Option<Item> },
    /// A concurrent transaction or throttling: try again.
    Retry(String),
    /// Something else: the error as it came.
    Other(StoreError),
}

fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn put(
    table: &str,
    item: Item,
    condition: &str,
    vals: Option<HashMap<String, AttributeValue>>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(vals)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StoreError::Invalid {
            message: "transaction item".into(),
            source: Some(e.into()),
        })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    /// Runs a transaction, retrying conflicts with concurrent transactions (bounded).
    async fn transact(&self, what: &str, items: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(TOTAL)
                .send()
                .await;
            let cancelled = match sent {
                Ok(out) => {
                    self.meter.write(out.consumed_capacity());
                    return Ok(());
                }
                Err(e) => {
                    self.meter.failed_write();
                    classify_cancellation(what, e)
                }
            };
            match cancelled {
                Cancelled::Retry(reason) if attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(what, attempt, %reason, "transaction cancelled, retrying");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Cancelled::Retry(reason) => {
                    return Err(Cancelled::Other(StoreError::Unavailable {
                        message: format!("{what}: still cancelled after {attempt} attempts ({reason})"),
                        source: None,
                    }));
                }
                other => return Err(other),
            }
        }
    }

    async fn get_item(&self, what: &str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error(what, e))?;
        self.meter.read(out.consumed_capacity());
        Ok(out.item)
    }

    async fn put_plain(&self, what: &str, item: Item) -> Result<(), StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error(what, e))?;
        self.meter.write(out.consumed_capacity());
        Ok(())
    }

    /// Every item of a partition (optionally of a sort-key prefix), in key order, consistently.
    async fn query_partition(&self, what: &str, pk: String, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .set_expression_attribute_values(Some(values([(":pk", s(pk.clone())), (":prefix", s(sk_prefix))])))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            self.meter.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Up to `limit` index entries of partition `pk` (newest first unless `forward`), strictly
    /// after `after` in that order when given.
    async fn query_index(
        &self,
        what: &str,
        index: &str,
        pk: (&str, String),
        sk: (&str, Option<AttributeValue>, &str),
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_name, pk_value) = pk;
        let (sk_name, sk_value, op) = sk;
        let mut condition = format!("{pk_name} = :pk");
        let mut vals = values([(":pk", s(pk_value))]);
        if let Some(v) = sk_value {
            condition.push_str(&format!(" AND {sk_name} {op} :sk"));
            vals.insert(":sk".into(), v);
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let want = limit - items.len();
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(index)
                .key_condition_expression(&condition)
                .set_expression_attribute_values(Some(vals.clone()))
                .scan_index_forward(forward)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            self.meter.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || items.len() >= limit {
                items.truncate(limit);
                return Ok(items);
            }
        }
    }

    /// The items at `keys`, consistently, in the order of `keys` (missing ones left out).
    async fn batch_get(&self, what: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let wanted: Vec<(String, String)> = keys
            .iter()
            .map(|k| Ok((get_s(k, PK)?.to_owned(), get_s(k, SK)?.to_owned())))
            .collect::<Result<_, StoreError>>()?;
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let mut pending = keys;
        let mut attempt = 1;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Invalid {
                    message: what.to_owned(),
                    source: Some(e.into()),
                })?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&*self.table, request)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            self.meter.read(out.consumed_capacity());
            for item in out.responses.unwrap_or_default().into_values().flatten() {
                let k = (get_s(&item, PK)?.to_owned(), get_s(&item, SK)?.to_owned());
                found.insert(k, item);
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&*self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                // Unprocessed keys mean throttling or a response over 16 MB: back off, bounded.
                if attempt >= TRANSACTION_ATTEMPTS {
                    return Err(StoreError::Unavailable {
                        message: format!("{what}: keys still unprocessed after {attempt} attempts"),
                        source: None,
                    });
                }
                backoff(attempt).await;
                attempt += 1;
            }
        }
        Ok(wanted.into_iter().filter_map(|k| found.remove(&k)).collect())
    }

    /// The outcome of a failed conditional write of the request item: a missing request, our
    /// own write (committed by an SDK retry of this very call: the item carries our write
    /// token), or a lost race.
    fn request_condition_failed(
        change: &Change,
        current: Option<&Item>,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(current) = current else {
            return Err(StoreError::NotFound);
        };
        let ours = token.is_some_and(|t| get_s(current, WRITE_TOKEN).is_ok_and(|w| w == t));
        if ours {
            return Ok(());
        }
        Err(StoreError::Conflict {
            expected: change.expected_version,
        })
    }

    /// Queries every shard of a sparse index for entries whose sort key is `op bound_ns`,
    /// oldest first; the caller merges and cuts to `limit`.
    async fn query_shards(
        &self,
        what: &str,
        index: &ShardedIndex,
        op: &str,
        bound_ns: i64,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        for shard in 0..SHARDS {
            let items = self
                .query_index(
                    what,
                    index.name,
                    (index.pk_attr, (index.pk)(shard)),
                    (index.sk_attr, Some(n(bound_ns)), op),
                    true,
                    limit,
                )
                .await?;
            all.extend(items);
        }
        Ok(all)
    }
}

/// A sparse index written across [`SHARDS`] partitions.
struct ShardedIndex {
    name: &'static str,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: fn(u8) -> String,
}

const DUE_INDEX: ShardedIndex = ShardedIndex {
    name: DUE,
    pk_attr: DUE_PK,
    sk_attr: DUE_AT,
    pk: due_pk,
};
const OUTBOX_INDEX: ShardedIndex = ShardedIndex {
    name: OUTBOX,
    pk_attr: OUTBOX_PK,
    sk_attr: OUTBOX_AT,
    pk: outbox_pk,
};

fn classify_cancellation(
    what: &str,
    e: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Cancelled {
    if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
        let reasons = c.cancellation_reasons();
        if let Some((index, r)) = reasons
            .iter()
            .enumerate()
            .find(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
        {
            return Cancelled::Condition {
                index,
                item: r.item.clone(),
            };
        }
        if let Some(r) = reasons.iter().find(|r| {
            matches!(
                r.code(),
                Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
            )
        }) {
            return Cancelled::Retry(r.code().unwrap_or_default().to_owned());
        }
        if reasons.iter().any(|r| r.code() == Some("ValidationError")) {
            return Cancelled::Other(StoreError::Invalid {
                message: format!("{what}: refused as invalid (item too large?)"),
                source: Some(Box::new(e)),
            });
        }
    }
    let is_conflict = e
        .as_service_error()
        .is_some_and(|s| s.is_transaction_in_progress_exception());
    if is_conflict {
        return Cancelled::Retry("TransactionInProgress".into());
    }
    Cancelled::Other(sdk_error(what, e))
}

fn cancelled_error(what: &str, c: Cancelled) -> StoreError {
    match c {
        Cancelled::Other(e) => e,
        Cancelled::Retry(r) => StoreError::unavailable(format!("{what}: {r}"), std::io::Error::other(r.clone())),
        Cancelled::Condition { index, .. } => StoreError::Corrupt {
            message: format!("{what}: unexpected condition failure on item {index}"),
            source: None,
        },
    }
}

fn events_items(change: &Change) -> Result<Vec<Item>, StoreError> {
    let id = change.request.id();
    change
        .events
        .iter()
        .map(|e| {
            if e.cashout_request_id != id {
                return Err(StoreError::invalid(format!(
                    "event {} belongs to another request",
                    e.id
                )));
            }
            event_item(e)
        })
        .collect()
}

fn check_versions(change: &Change, creation: bool) -> Result<(), StoreError> {
    if creation != (change.expected_version == 0) || change.request.version() != change.expected_version + 1 {
        return Err(StoreError::invalid(format!(
            "version {} cannot follow {} here",
            change.request.version(),
            change.expected_version
        )));
    }
    Ok(())
}

/// The most items DynamoDB takes in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// The conditional write of one invoice claim: absent, or still exactly the released claim
/// the caller named, or already ours (a step of our own create written before).
fn claim_put(
    table: &str,
    key: &InvoiceKey,
    holder: CashoutRequestId,
    claimed_at: i64,
    released: &[InvoiceClaim],
) -> Result<TransactWriteItem, StoreError> {
    let item = claim_item(key, holder, claimed_at);
    match released.iter().find(|c| &c.key == key) {
        Some(free) => put(
            table,
            item,
            "attribute_not_exists(pk) OR (#h = :old AND #t = :old_at) OR #h = :me",
            Some(values([
                (":old", s(free.holder.to_string())),
                (":old_at", n(to_ns(free.claimed_at)?)),
                (":me", s(holder.to_string())),
            ])),
        )
        .map(|w| with_claim_names(w, true)),
        None => put(
            table,
            item,
            "attribute_not_exists(pk) OR #h = :me",
            Some(values([(":me", s(holder.to_string()))])),
        )
        .map(|w| with_claim_names(w, false)),
    }
}

/// Names the claim attributes a condition uses (DynamoDB refuses names a condition does not use).
fn with_claim_names(mut write: TransactWriteItem, with_time: bool) -> TransactWriteItem {
    if let Some(put) = write.put.as_mut() {
        let mut names = HashMap::from([("#h".to_owned(), CLAIM_HOLDER.to_owned())]);
        if with_time {
            names.insert("#t".to_owned(), CLAIM_AT.to_owned());
        }
        put.expression_attribute_names = Some(names);
    }
    write
}

impl DynamoStore {
    /// Claims the invoices in steps (more than one transaction holds), or returns the claim
    /// held by another; on the way out of a refusal it removes the claims it wrote.
    async fn claim_in_steps(
        &self,
        keys: &[InvoiceKey],
        holder: CashoutRequestId,
        claimed_at: i64,
        released: &[InvoiceClaim],
    ) -> Result<Option<InvoiceClaim>, StoreError> {
        let table = &*self.table;
        for (step, chunk) in keys.chunks(MAX_TRANSACTION_ITEMS).enumerate() {
            let items = chunk
                .iter()
                .map(|k| claim_put(table, k, holder, claimed_at, released))
                .collect::<Result<Vec<_>, _>>()?;
            match self.transact("claim invoices", items).await {
                Ok(()) => {}
                Err(Cancelled::Condition {
                    index,
                    item: Some(item),
                }) if index < chunk.len() => {
                    let held = claim_from_item(&chunk[index], &item)?;
                    self.unclaim(&keys[..step * MAX_TRANSACTION_ITEMS], holder).await?;
                    return Ok(Some(held));
                }
                Err(other) => {
                    self.unclaim(&keys[..step * MAX_TRANSACTION_ITEMS], holder).await?;
                    return Err(cancelled_error("claim invoices", other));
                }
            }
        }
        Ok(None)
    }

    /// Removes the claims `holder` wrote (each only if it is still `holder`'s).
    async fn unclaim(&self, keys: &[InvoiceKey], holder: CashoutRequestId) -> Result<(), StoreError> {
        for k in keys {
            let sent = self
                .client
                .delete_item()
                .table_name(&*self.table)
                .set_key(Some(claim_key(&k.storage_key())))
                .condition_expression("#h = :me")
                .expression_attribute_names("#h", CLAIM_HOLDER)
                .expression_attribute_values(":me", s(holder.to_string()))
                .return_consumed_capacity(TOTAL)
                .send()
                .await;
            match sent {
                Ok(out) => self.meter.write(out.consumed_capacity()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(sdk_error("remove an invoice claim", e)),
            }
        }
        Ok(())
    }
}

impl CashoutStore for DynamoStore {
    async fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> Result<CreateOutcome, StoreError> {
        check_versions(change, true)?;
        idempotency.check_creation(&change.request)?;
        let now = to_ns(self.clock.now())?;
        let table = &*self.table;
        let id = change.request.id();
        let keys = change.request.invoice_keys();
        let claimed_at = to_ns(change.request.updated_at())?;
        let mut items = vec![
            put(
                table,
                idempotency_item(idempotency)?,
                "attribute_not_exists(pk) OR expires_at <= :now",
                Some(values([(":now", n(now))])),
            )?,
            put(table, request_item(&change.request)?, "attribute_not_exists(pk)", None)?,
        ];
        for e in events_items(change)? {
            items.push(put(table, e, "attribute_not_exists(pk)", None)?);
        }
        let first_claim = items.len();
        let in_one = first_claim + keys.len() <= MAX_TRANSACTION_ITEMS;
        if in_one {
            for k in &keys {
                items.push(claim_put(table, k, id, claimed_at, released)?);
            }
        } else {
            // Too many claims for one transaction: a replay must not meet its own claims, so
            // the key is read first; then the claims in steps, then the request.
            let existing = self
                .get_item(
                    "read an idempotency record",
                    idempotency_key(&idempotency.merchant_id, &idempotency.key),
                )
                .await?
                .map(|item| idempotency_from_item(&item))
                .transpose()?
                .filter(|r| r.expires_at > self.clock.now());
            if let Some(record) = existing {
                return Ok(CreateOutcome::Existing(record));
            }
            if let Some(held) = self.claim_in_steps(&keys, id, claimed_at, released).await? {
                return Ok(CreateOutcome::InvoiceHeld(held));
            }
        }
        let outcome = match self.transact("create a request", items).await {
            Ok(()) => return Ok(CreateOutcome::Created),
            Err(Cancelled::Condition {
                index: 0,
                item: Some(item),
            }) => {
                // (An SDK retry of our own committed transaction is answered as a success by
                // DynamoDB through its ClientRequestToken: this is someone else's record.)
                Ok(CreateOutcome::Existing(idempotency_from_item(&item)?))
            }
            Err(Cancelled::Condition { index: 1, .. }) => Err(StoreError::Conflict { expected: 0 }),
            Err(Cancelled::Condition {
                index,
                item: Some(item),
            }) if in_one && index >= first_claim => {
                let k = keys.get(index - first_claim).ok_or_else(|| StoreError::Corrupt {
                    message: format!("a cancelled transaction named item {index}"),
                    source: None,
                })?;
                Ok(CreateOutcome::InvoiceHeld(claim_from_item(k, &item)?))
            }
            Err(Cancelled::Condition { index, .. }) if index >= 2 => Err(StoreError::Corrupt {
                message: format!("an event of new request {} already exists", change.request.id()),
                source: None,
            }),
            Err(other) => Err(cancelled_error("create a request", other)),
        };
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
        let sent = self
            .client
            .update_item()
            .table_name(&*self.table)
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
            ])))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.meter.failed_write();
                Ok(false)
            }
            Err(e) => Err(sdk_error("reclaim an idempotency record", e)),
        }
    }

    async fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&*self.table)
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
            ])))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(())
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.meter.failed_write();
                Err(StoreError::NotFound)
            }
            Err(e) => Err(sdk_error("complete an idempotency record", e)),
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
        check_versions(change, false)?;
        let table = &*self.table;
        let expected = Some(values([(":expected", n(change.expected_version))]));
        let mut request = request_item(&change.request)?;
        if change.events.is_empty() && change.new_provider_reference.is_none() {
            // A token unique to this call tells an SDK retry of our own committed write from a
            // competitor's write (a transaction gets the same from its ClientRequestToken).
            let token = format!("{:016x}", rand::random::<u64>());
            request.insert(WRITE_TOKEN.into(), s(token.clone()));
            // Bookkeeping (a dispatch claim, a poll that changed nothing): one conditional put,
            // half the cost of a transaction.
            let sent = self
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(request))
                .condition_expression("v = :expected")
                .set_expression_attribute_values(expected)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .return_consumed_capacity(TOTAL)
                .send()
                .await;
            return match sent {
                Ok(out) => {
                    self.meter.write(out.consumed_capacity());
                    Ok(())
                }
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        self.meter.failed_write();
                        Self::request_condition_failed(change, c.item.as_ref(), Some(&token))
                    }
                    _ => Err(sdk_error("write a request", e)),
                },
            };
        }
        let mut items = vec![put(table, request, "v = :expected", expected)?];
        for e in events_items(change)? {
            items.push(put(table, e, "attribute_not_exists(pk)", None)?);
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
            Err(Cancelled::Condition { index: 0, item }) => Self::request_condition_failed(change, item.as_ref(), None),
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

    async fn list_events(&self, id: CashoutRequestId) -> Result<Vec<StatusEvent>, StoreError> {
        self.query_partition("list events", request_pk(id), EVENT_SK_PREFIX)
            .await?
            .iter()
            .map(event_from_item)
            .collect()
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
        let sent = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(event_key(id)?))
            .update_expression("SET published = :yes REMOVE outbox_pk, outbox_at")
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values([(":yes", AttributeValue::Bool(true))])))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(())
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.meter.failed_write();
                Err(StoreError::NotFound)
            }
            Err(e) => Err(sdk_error("mark an event published", e)),
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

impl WebhookStore for DynamoStore {
    async fn put_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let mut item = endpoint_key(&endpoint.merchant_id, endpoint.id);
        item.insert("created_at".into(), n(to_ns(endpoint.created_at)?));
        item.insert(BODY.into(), s(to_json(endpoint, "webhook endpoint")?));
        self.put_plain("write an endpoint", item).await
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.get_item("read an endpoint", endpoint_key(merchant_id, id))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "webhook endpoint"))
            .transpose()
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut endpoints = self
            .query_partition("list endpoints", endpoint_pk(merchant_id), ENDPOINT_SK_PREFIX)
            .await?
            .iter()
            .map(|item| from_json::<WebhookEndpoint>(get_s(item, BODY)?, "webhook endpoint"))
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by_key(|e| (e.created_at, e.id));
        Ok(endpoints)
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(endpoint_key(merchant_id, id)))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("delete an endpoint", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.put_plain("record a delivery attempt", attempt_item(attempt)?)
            .await
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
        let mut keys = self
            .query_index(
                "list delivery attempts",
                BY_OWNER,
                (GSI1PK, endpoint_attempts_pk(merchant_id, endpoint_id)),
                (GSI1SK, after.map(|p| s(p.sort_key())), "<"),
                false,
                limit + 1,
            )
            .await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let keys = keys
            .iter()
            .map(|k| Ok(key(get_s(k, PK)?.to_owned(), get_s(k, SK)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let items = self
            .batch_get("read listed attempts", keys)
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(attempt_position(last)?.cursor()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let mut attempts = self
            .query_partition("list an event's attempts", attempts_pk(event_id), "EP#")
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        attempts.sort_by_key(|a| (a.attempted_at, a.endpoint_id, a.attempt));
        Ok(attempts)
    }
}

impl ApiKeyStore for DynamoStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut item = api_key_key(record.hash.as_str());
        item.insert(BODY.into(), s(to_json(record, "API key")?));
        self.put_plain("write an API key", item).await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_item("read an API key", api_key_key(hash.as_str()))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "API key"))
            .transpose()
    }
}
