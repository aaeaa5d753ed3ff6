//! The operators' work lists and the dead letters on DynamoDB: sparse indexes.
//!
//! A request item carries `work_pk`/`work_sk` while under review or in processor error (index
//! `work`, one partition per list) and `attn_pk`/`attn_sk` while flagged (index `attention`),
//! both sorted by `{request_date ns}#{id}`; the put that writes a change writes or drops them,
//! so a request leaves a list with the change that ends its reason to be there. The indexes are
//! keys only: a page is one `Query` and one `BatchGetItem` of the bodies, which decide (an index
//! lags its table). A given-up attempt carries `dead_pk`/`dead_sk` (index `dead-letters`, all
//! attributes projected: a page is one `Query`).

use cashout_core::cashout::CashoutRequest;
use cashout_core::ports::{Cursor, Page, StoreError, WorkList, WorkStore};
use cashout_core::webhook::DeliveryAttempt;

use super::DynamoStore;
use super::items::*;
use crate::codec::{DeadLetterPosition, WorkPosition, page_size};
use crate::work::in_work_list;

impl WorkStore for DynamoStore {
    async fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(WorkPosition::from_cursor).transpose()?;
        let index = work_index(list);
        let mut entries = self
            .query_index(
                "list a work list",
                index.name,
                (index.pk_attr, index.partition.to_owned()),
                (index.sk_attr, after.map(|p| s(p.sort_key())), ">"),
                true,
                limit + 1,
            )
            .await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = match (more, entries.last()) {
            (true, Some(last)) => Some(WorkPosition::from_sort_key(get_s(last, index.sk_attr)?)?.cursor()),
            _ => None,
        };
        let keys = entries
            .iter()
            .map(|k| Ok(key(get_s(k, PK)?.to_owned(), REQUEST_SK)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut items = self
            .batch_get("read listed work", keys)
            .await?
            .iter()
            .map(request_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        // The index may lag a change: the consistent body decides.
        items.retain(|r| in_work_list(r, list));
        Ok(Page { items, next_cursor })
    }

    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(DeadLetterPosition::from_cursor).transpose()?;
        let mut entries = self
            .query_index(
                "list dead letters",
                DEAD_LETTERS,
                (DEAD_PK, DEAD_PARTITION.to_owned()),
                (DEAD_SK, after.map(|p| s(p.sort_key())), "<"),
                false,
                limit + 1,
            )
            .await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let items = entries.iter().map(attempt_from_item).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => Some(DeadLetterPosition::of(last)?.cursor()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }
}
