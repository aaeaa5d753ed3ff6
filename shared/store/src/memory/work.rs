//! The operators' work lists and the dead letters in memory: a scan, sorted (the durable stores
//! read an index instead).

use cashout_core::cashout::CashoutRequest;
use cashout_core::ports::{Cursor, Page, StoreError, WorkList, WorkStore};
use cashout_core::webhook::DeliveryAttempt;

use super::MemoryStore;
use crate::codec::{DeadLetterPosition, WorkPosition, page_size};
use crate::work::{in_work_list, is_dead_letter};

impl WorkStore for MemoryStore {
    async fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(WorkPosition::from_cursor).transpose()?;
        let mut found = {
            let state = self.state();
            state
                .requests
                .values()
                .filter(|r| in_work_list(r, list))
                .map(|r| Ok((WorkPosition::of(r)?, r.clone())))
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        found.retain(|(p, _)| after.is_none_or(|a| *p > a));
        found.sort_by_key(|(p, _)| *p);
        let more = found.len() > limit;
        found.truncate(limit);
        let next_cursor = if more {
            found.last().map(|(p, _)| p.cursor())
        } else {
            None
        };
        Ok(Page {
            items: found.into_iter().map(|(_, r)| r).collect(),
            next_cursor,
        })
    }

    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(DeadLetterPosition::from_cursor).transpose()?;
        let mut found = {
            let state = self.state();
            state
                .attempts
                .values()
                .filter(|a| is_dead_letter(a))
                .map(|a| Ok((DeadLetterPosition::of(a)?, a.clone())))
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        found.retain(|(p, _)| after.as_ref().is_none_or(|a| p < a));
        found.sort_by(|(a, _), (b, _)| b.cmp(a));
        let more = found.len() > limit;
        found.truncate(limit);
        let next_cursor = if more {
            found.last().map(|(p, _)| p.cursor())
        } else {
            None
        };
        Ok(Page {
            items: found.into_iter().map(|(_, a)| a).collect(),
            next_cursor,
        })
    }
}
