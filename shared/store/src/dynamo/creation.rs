//! The steps of a creation on DynamoDB: the transaction's items (the idempotency record, the
//! request, its events, and its invoice claims when they fit), the claims in steps when they do
//! not, and what a refused transaction means.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use cashout_core::cashout::Change;
use cashout_core::claim::{InvoiceClaim, InvoiceKey};
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{CreateOutcome, IdempotencyRecord, StoreError};

use super::items::{
    CLAIM_AT, CLAIM_HOLDER, claim_from_item, claim_item, claim_key, event_item, idempotency_from_item,
    idempotency_item, idempotency_key, n, request_item, s,
};
use super::table::{Cancelled, MAX_TRANSACTION_ITEMS, TOTAL, cancelled_error, put, values};
use super::{DynamoStore, sdk_error};
use crate::codec::to_ns;

/// The items every creation writes in one transaction: the idempotency record (unless a live
/// one holds the key at `now`), the request, and its events; the claims come after them.
pub(super) fn creation_items(
    table: &str,
    change: &Change,
    idempotency: &IdempotencyRecord,
    now: i64,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut items = vec![
        put(
            table,
            idempotency_item(idempotency)?,
            "attribute_not_exists(pk) OR expires_at <= :now",
            Some(values([(":now", n(now))])),
        )?,
        put(table, request_item(&change.request)?, "attribute_not_exists(pk)", None)?,
    ];
    for e in &change.events {
        items.push(put(table, event_item(e)?, "attribute_not_exists(pk)", None)?);
    }
    Ok(items)
}

/// What a refused creation transaction means: the key is taken (item 0: its record is the
/// answer), the request exists (item 1), an invoice is held (when `in_one`, the claims were
/// the transaction's items from `first_claim` on, one per `keys`), or stored data is
/// inconsistent.
pub(super) fn refused_creation(
    change: &Change,
    cancelled: Cancelled,
    in_one: bool,
    first_claim: usize,
    keys: &[InvoiceKey],
) -> Result<CreateOutcome, StoreError> {
    match cancelled {
        Cancelled::Condition {
            index: 0,
            item: Some(item),
        } => {
            // (An SDK retry of our own committed transaction is answered as a success by
            // DynamoDB through its ClientRequestToken: this is someone else's record.)
            Ok(CreateOutcome::Existing(idempotency_from_item(&item)?))
        }
        Cancelled::Condition { index: 1, .. } => Err(StoreError::Conflict { expected: 0 }),
        Cancelled::Condition {
            index,
            item: Some(item),
        } if in_one && index >= first_claim => {
            let k = keys.get(index - first_claim).ok_or_else(|| StoreError::Corrupt {
                message: format!("a cancelled transaction named item {index}"),
                source: None,
            })?;
            Ok(CreateOutcome::InvoiceHeld(claim_from_item(k, &item)?))
        }
        Cancelled::Condition { index, .. } if index >= 2 => Err(StoreError::Corrupt {
            message: format!("an event of new request {} already exists", change.request.id()),
            source: None,
        }),
        other => Err(cancelled_error("create a request", other)),
    }
}

/// The conditional write of one invoice claim: absent, or still exactly the released claim
/// the caller named, or already ours (a step of our own create written before).
pub(super) fn claim_put(
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
    /// Before a creation whose claims do not fit its transaction: a replay must not meet its
    /// own claims, so the key's live record is read first (and answers, if there is one); then
    /// the invoices are claimed in steps (a held one answers). `None`: go on and create.
    pub(super) async fn claim_before_creating(
        &self,
        idempotency: &IdempotencyRecord,
        keys: &[InvoiceKey],
        holder: CashoutRequestId,
        claimed_at: i64,
        released: &[InvoiceClaim],
    ) -> Result<Option<CreateOutcome>, StoreError> {
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
            return Ok(Some(CreateOutcome::Existing(record)));
        }
        Ok(self
            .claim_in_steps(keys, holder, claimed_at, released)
            .await?
            .map(CreateOutcome::InvoiceHeld))
    }

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
    pub(super) async fn unclaim(&self, keys: &[InvoiceKey], holder: CashoutRequestId) -> Result<(), StoreError> {
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
