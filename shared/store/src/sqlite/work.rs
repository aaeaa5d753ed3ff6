//! The operators' work lists and the dead letters on SQLite: each list is a partial index walked
//! in order from the cursor's position (`requests_work`, `requests_attention`,
//! `attempts_dead`), so a page reads `limit + 1` rows whatever the table's size.

use cashout_core::cashout::CashoutRequest;
use cashout_core::ports::{Cursor, Page, StoreError, WorkList, WorkStore};
use cashout_core::webhook::DeliveryAttempt;
use rusqlite::params;

use super::SqliteStore;
use super::rows::{json_bodies, work_list_name};
use crate::codec::{DeadLetterPosition, WorkPosition, page_size};

impl WorkStore for SqliteStore {
    async fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CashoutRequest>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(WorkPosition::from_cursor).transpose()?;
        let (after_ns, after_id) = match after {
            Some(p) => (Some(p.request_date_ns), Some(p.id.to_string())),
            None => (None, None),
        };
        let rows = i64::try_from(limit + 1).unwrap_or(101);
        self.read(move |conn| {
            // Row values compare as the list sorts: (request_date, id).
            let mut items: Vec<CashoutRequest> = match list {
                WorkList::Review | WorkList::ProcessorError => json_bodies(
                    conn,
                    "SELECT body FROM requests INDEXED BY requests_work
                     WHERE work_list = ?1 AND (?2 IS NULL OR (request_date, id) > (?2, ?3))
                     ORDER BY request_date, id LIMIT ?4",
                    params![work_list_name(list), after_ns, after_id, rows],
                    "cashout request",
                )?,
                WorkList::Attention => json_bodies(
                    conn,
                    "SELECT body FROM requests INDEXED BY requests_attention
                     WHERE attention IS NOT NULL AND (?1 IS NULL OR (request_date, id) > (?1, ?2))
                     ORDER BY request_date, id LIMIT ?3",
                    params![after_ns, after_id, rows],
                    "cashout request",
                )?,
            };
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(WorkPosition::of).transpose()?.map(|p| p.cursor())
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(DeadLetterPosition::from_cursor).transpose()?;
        let rows = i64::try_from(limit + 1).unwrap_or(101);
        self.read(move |conn| {
            let (ns, event, endpoint, attempt) = match &after {
                Some(p) => (
                    Some(p.attempted_at_ns),
                    Some(p.event_id.as_str()),
                    Some(p.endpoint_id.as_str()),
                    Some(i64::from(p.attempt)),
                ),
                None => (None, None, None, None),
            };
            let mut items: Vec<DeliveryAttempt> = json_bodies(
                conn,
                "SELECT body FROM attempts INDEXED BY attempts_dead
                 WHERE dead IS NOT NULL
                   AND (?1 IS NULL OR (attempted_at, event_id, endpoint_id, attempt) < (?1, ?2, ?3, ?4))
                 ORDER BY attempted_at DESC, event_id DESC, endpoint_id DESC, attempt DESC LIMIT ?5",
                params![ns, event, endpoint, attempt, rows],
                "delivery attempt",
            )?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items
                    .last()
                    .map(DeadLetterPosition::of)
                    .transpose()?
                    .map(|p| p.cursor())
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }
}
