//! The rate-limit port: the token buckets every instance of the API shares.

use std::future::Future;

use time::OffsetDateTime;

use crate::limit::{Decision, LimitKey, RateLimit};
use crate::ports::StoreError;

/// Token buckets ([`crate::limit`]), kept where every instance that serves a caller sees the
/// same one: in the table on DynamoDB, in the process for the embedded stores (one process is
/// the whole system there).
pub trait RateLimitStore: Send + Sync {
    /// Takes one token from `key`'s bucket of `limit` at `now`, or says how long until one is
    /// there. Atomic per key: of N concurrent takes from a full bucket, exactly `burst` are
    /// allowed. A store may forget a bucket once it is full again.
    fn take_token(
        &self,
        key: &LimitKey,
        now: OffsetDateTime,
        limit: RateLimit,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send;
}
