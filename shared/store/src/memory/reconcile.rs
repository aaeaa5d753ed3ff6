//! Reconciliation runs and their differences in memory.

use cashout_core::ids::ReconciliationId;
use cashout_core::ports::{Cursor, Page, ReconciliationStore, StoreError};
use cashout_core::reconcile::{Difference, Reconciliation};

use super::MemoryStore;
use crate::codec::{difference_cursor, differences_by_key, page_size, parse_difference_cursor};
use crate::routing::reconciliation_body;

impl ReconciliationStore for MemoryStore {
    async fn put_reconciliation(&self, run: &Reconciliation, expected_version: u64) -> Result<(), StoreError> {
        // The durable stores' checks; the JSON itself is not kept here.
        let _body = reconciliation_body(run, expected_version)?;
        let mut state = self.state();
        let stored = state.reconciliations.get(&run.id).map(|r| r.version);
        if stored != (expected_version > 0).then_some(expected_version) {
            return Err(StoreError::Conflict {
                expected: expected_version,
            });
        }
        state.reconciliations.insert(run.id, run.clone());
        Ok(())
    }

    async fn get_reconciliation(&self, id: ReconciliationId) -> Result<Option<Reconciliation>, StoreError> {
        Ok(self.state().reconciliations.get(&id).cloned())
    }

    async fn put_differences(&self, id: ReconciliationId, differences: &[Difference]) -> Result<(), StoreError> {
        let by_key = differences_by_key(differences)?;
        let mut state = self.state();
        for (key, d) in by_key {
            state.differences.insert((id, key), d.clone());
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
        let state = self.state();
        let mut items: Vec<Difference> = state
            .differences
            .range((id, String::new())..)
            .take_while(|((run, _), _)| *run == id)
            .filter(|((_, key), _)| after.as_ref().is_none_or(|a| key > a))
            .take(limit + 1)
            .map(|(_, d)| d.clone())
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| difference_cursor(&d.key()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
