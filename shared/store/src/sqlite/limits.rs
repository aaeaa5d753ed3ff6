//! Rate-limit buckets of the embedded store, kept in the process, not in the file: one process
//! serves the whole system on it (a second one waits for the file), so its buckets are exact, and
//! a call costs no write. A restart forgets them, which only refills them.

use cashout_core::limit::{Decision, LimitKey, RateLimit};
use cashout_core::ports::{RateLimitStore, StoreError};
use time::OffsetDateTime;

use super::SqliteStore;

impl RateLimitStore for SqliteStore {
    async fn take_token(&self, key: &LimitKey, now: OffsetDateTime, limit: RateLimit) -> Result<Decision, StoreError> {
        Ok(self.inner.limits.take(key, now, limit))
    }
}
