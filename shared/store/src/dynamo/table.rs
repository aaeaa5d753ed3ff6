//! The calls every port of the DynamoDB store is made of: consistent reads by key, queries of a
//! partition or an index (its shards merged), batch reads, plain and conditional writes (a lone
//! conditional put recognises its own retried write), and transactions with their cancellation
//! reasons read back. Each counts its capacity.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use cashout_core::ports::StoreError;

use super::items::{
    DUE, DUE_AT, DUE_PK, Item, OUTBOX, OUTBOX_AT, OUTBOX_PK, PK, SHARDS, SK, WRITE_TOKEN, due_pk, get_s, n, outbox_pk,
    s,
};
use super::{DynamoStore, TRANSACTION_ATTEMPTS, backoff, sdk_error};

pub(super) const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

/// The most items DynamoDB takes in one transaction.
pub(super) const MAX_TRANSACTION_ITEMS: usize = 100;

/// Why a transaction was cancelled, per item, as DynamoDB reports it.
pub(super) enum Cancelled {
    /// Item `index` failed its condition; its current value if it exists.
    Condition { index: usize, item: Option<Item> },
    /// A concurrent transaction or throttling: try again.
    Retry(String),
    /// Something else: the error as it came.
    Other(StoreError),
}

/// What a conditional put came to.
pub(super) enum Written {
    /// The item is written: by this call, or by the SDK's retry of it.
    Yes,
    /// The condition failed; the item as it stands, if there is one.
    Refused(Option<Item>),
}

pub(super) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(super) fn put(
    table: &str,
    item: Item,
    condition: &str,
    vals: Option<HashMap<String, AttributeValue>>,
) -> Result<TransactWriteItem, StoreError> {
    let put = transaction_item(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(vals)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction item as built, or why the SDK refused to build it.
fn transaction_item<T, E: std::error::Error + Send + Sync + 'static>(built: Result<T, E>) -> Result<T, StoreError> {
    built.map_err(|e| StoreError::Invalid {
        message: "transaction item".into(),
        source: Some(e.into()),
    })
}

/// A conditional update in a transaction.
pub(super) fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: Option<&str>,
    names: HashMap<String, String>,
    vals: HashMap<String, AttributeValue>,
) -> Result<TransactWriteItem, StoreError> {
    let update = transaction_item(
        Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(vals))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A conditional delete in a transaction.
pub(super) fn delete(table: &str, key: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
    let delete = transaction_item(
        Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(condition)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

impl DynamoStore {
    /// Runs a transaction, retrying conflicts with concurrent transactions (bounded).
    pub(super) async fn transact(&self, what: &str, items: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
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

    pub(super) async fn get_item(&self, what: &str, key: Item) -> Result<Option<Item>, StoreError> {
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

    pub(super) async fn put_plain(&self, what: &str, item: Item) -> Result<(), StoreError> {
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

    /// Puts `item` if `condition` holds. The item carries a token unique to this call (`w`): a
    /// condition that fails on an item carrying it met this call's own write, committed by an
    /// SDK retry after a lost answer, which is success (a transaction gets the same from its
    /// `ClientRequestToken`).
    pub(super) async fn put_if(
        &self,
        what: &str,
        mut item: Item,
        condition: &str,
        vals: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Written, StoreError> {
        let token = format!("{:016x}", rand::random::<u64>());
        item.insert(WRITE_TOKEN.into(), s(token.clone()));
        let sent = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(vals)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match sent {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(Written::Yes)
            }
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    self.meter.failed_write();
                    let current = c.item.clone();
                    let ours = current
                        .as_ref()
                        .is_some_and(|i| get_s(i, WRITE_TOKEN).is_ok_and(|w| w == token));
                    Ok(if ours { Written::Yes } else { Written::Refused(current) })
                }
                _ => Err(sdk_error(what, e)),
            },
        }
    }

    /// Every item of a partition (optionally of a sort-key prefix), in key order, consistently.
    pub(super) async fn query_partition(
        &self,
        what: &str,
        pk: String,
        sk_prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_partition_up_to(what, pk, sk_prefix, usize::MAX).await
    }

    /// Like [`Self::query_partition`], but reads at most `max` + 1 items: a caller that finds
    /// more than `max` knows the partition holds more than it should, without reading them all.
    pub(super) async fn query_partition_up_to(
        &self,
        what: &str,
        pk: String,
        sk_prefix: &str,
        max: usize,
    ) -> Result<Vec<Item>, StoreError> {
        // DynamoDB refuses an empty prefix: without one, the key condition names the partition only.
        let (condition, mut vals) = if sk_prefix.is_empty() {
            ("pk = :pk", values([]))
        } else {
            (
                "pk = :pk AND begins_with(sk, :prefix)",
                values([(":prefix", s(sk_prefix))]),
            )
        };
        vals.insert(":pk".into(), s(pk));
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let left = max.saturating_add(1).saturating_sub(items.len());
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(vals.clone()))
                .consistent_read(true)
                .set_limit(i32::try_from(left).ok())
                .set_exclusive_start_key(start)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            self.meter.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || items.len() > max {
                return Ok(items);
            }
        }
    }

    /// Up to `limit` index entries of partition `pk` (newest first unless `forward`), strictly
    /// after `after` in that order when given.
    pub(super) async fn query_index(
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
    pub(super) async fn batch_get(&self, what: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
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

    /// Sends a conditional update (`update` names the key, the expressions and the condition):
    /// `true` if it was written, `false` if its condition failed.
    pub(super) async fn update_if(&self, what: &str, update: UpdateItemFluentBuilder) -> Result<bool, StoreError> {
        let sent = update
            .table_name(&*self.table)
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
            Err(e) => Err(sdk_error(what, e)),
        }
    }

    /// Queries every shard of a sparse index for entries whose sort key is `op bound_ns`,
    /// oldest first; the caller merges and cuts to `limit`.
    pub(super) async fn query_shards(
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
pub(super) struct ShardedIndex {
    name: &'static str,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: fn(u8) -> String,
}

pub(super) const DUE_INDEX: ShardedIndex = ShardedIndex {
    name: DUE,
    pk_attr: DUE_PK,
    sk_attr: DUE_AT,
    pk: due_pk,
};
pub(super) const OUTBOX_INDEX: ShardedIndex = ShardedIndex {
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

pub(super) fn cancelled_error(what: &str, c: Cancelled) -> StoreError {
    match c {
        Cancelled::Other(e) => e,
        Cancelled::Retry(r) => StoreError::unavailable(format!("{what}: {r}"), std::io::Error::other(r.clone())),
        Cancelled::Condition { index, .. } => StoreError::Corrupt {
            message: format!("{what}: unexpected condition failure on item {index}"),
            source: None,
        },
    }
}
