//! Rate-limit buckets in memory: the process is the whole store, so its buckets are exact.

use cashout_core::limit::{Decision, LimitKey, RateLimit};
use cashout_core::ports::{RateLimitStore, StoreError};
use time::OffsetDateTime;

use super::MemoryStore;

impl RateLimitStore for MemoryStore {
    async fn take_token(&self, key: &LimitKey, now: OffsetDateTime, limit: RateLimit) -> Result<Decision, StoreError> {
        Ok(self.limits.take(key, now, limit))
    }
}
