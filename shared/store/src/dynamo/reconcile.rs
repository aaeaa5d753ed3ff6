//! Reconciliation runs and their differences on DynamoDB.
//!
//! A run is one item `RECON#{id}`/`RECON`, written by a put conditional on its version
//! (`attribute_not_exists` for the first), with the write token of lone puts. Its differences
//! live beside it, `RECON#{id}`/`DIFF#{key}`: recorded with `BatchWriteItem` (at most 25 a
//! call, unprocessed items sent again with backoff), listed by a `Query` of the partition in
//! sort-key order, which is key order.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use cashout_core::ids::ReconciliationId;
use cashout_core::ports::{Cursor, Page, ReconciliationStore, StoreError};
use cashout_core::reconcile::{Difference, Reconciliation};

use super::items::*;
use super::table::{TOTAL, Written, values};
use super::{DynamoStore, TRANSACTION_ATTEMPTS, backoff, sdk_error};
use crate::codec::{difference_cursor, differences_by_key, page_size, parse_difference_cursor};
use crate::routing::reconciliation_body;

impl ReconciliationStore for DynamoStore {
    async fn put_reconciliation(&self, run: &Reconciliation, expected_version: u64) -> Result<(), StoreError> {
        let item = reconciliation_item(run, reconciliation_body(run, expected_version)?);
        let (condition, expected) = if expected_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("v = :expected", Some(values([(":expected", n(expected_version))])))
        };
        match self.put_if("write a reconciliation", item, condition, expected).await? {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
        }
    }

    async fn get_reconciliation(&self, id: ReconciliationId) -> Result<Option<Reconciliation>, StoreError> {
        self.get_item("read a reconciliation", reconciliation_key(id))
            .await?
            .map(|item| reconciliation_from_item(&item))
            .transpose()
    }

    async fn put_differences(&self, id: ReconciliationId, differences: &[Difference]) -> Result<(), StoreError> {
        let mut pending = differences_by_key(differences)?
            .into_iter()
            .map(|(key_, d)| {
                let put = PutRequest::builder()
                    .set_item(Some(difference_item(id, &key_, d)?))
                    .build()
                    .map_err(|e| StoreError::Invalid {
                        message: "a difference's put".into(),
                        source: Some(e.into()),
                    })?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut attempt = 1;
        while !pending.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.table, pending)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error("record differences", e))?;
            self.meter.write(out.consumed_capacity());
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&*self.table))
                .unwrap_or_default();
            if !pending.is_empty() {
                // Unprocessed items mean throttling: back off, bounded.
                if attempt >= TRANSACTION_ATTEMPTS {
                    return Err(StoreError::Unavailable {
                        message: format!("record differences: items still unprocessed after {attempt} attempts"),
                        source: None,
                    });
                }
                backoff(attempt).await;
                attempt += 1;
            }
        }
        Ok(())
    }

    async fn list_differences(
        &self,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Difference>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(parse_difference_cursor).transpose()?;
        // From the cursor's key (inclusive: skipped below) or the first difference, to the end of
        // the differences (`$` follows `#`).
        let low = format!("{DIFFERENCE_SK_PREFIX}{}", after.as_deref().unwrap_or_default());
        let high = "DIFF$".to_owned();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .set_expression_attribute_values(Some(values([
                    (":pk", s(reconciliation_pk(id))),
                    (":low", s(low.clone())),
                    (":high", s(high.clone())),
                ])))
                .consistent_read(true)
                .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| sdk_error("list differences", e))?;
            self.meter.read(out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                if after.is_some() && get_s(&item, SK)? == low {
                    continue;
                }
                items.push(difference_from_item(&item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || items.len() > limit {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| difference_cursor(&d.key()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
