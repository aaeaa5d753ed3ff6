//! What every backend checks of a people write before it writes (the `PeopleStore` port of
//! `cashout-core`), and how long the small expiring items are kept.

use cashout_core::auth::{OperatorRecord, SessionRecord};
use cashout_core::ports::StoreError;
use cashout_core::review::ApprovalPolicy;

use crate::codec::to_json;
use crate::routing::check_version;

/// How long a merchant's day usage is kept after its day ends (DynamoDB TTL): velocity looks at
/// the current UTC day only; a few days leave room for a late review and for reading them back.
pub(crate) const DAY_USAGE_KEPT_DAYS: i64 = 3;

/// How long a session is kept after it expires, before a backend with expiry drops it: the
/// console can still tell "expired" from "unknown" for a while.
pub(crate) const SESSION_KEPT_AFTER_EXPIRY: time::Duration = time::Duration::days(1);

/// An operator's stored JSON, once its version follows `expected`.
pub(crate) fn operator_body(record: &OperatorRecord, expected: u64) -> Result<String, StoreError> {
    check_version("operator", record.version, expected)?;
    to_json(record, "operator")
}

/// A policy's stored JSON, once its version follows `expected`.
pub(crate) fn policy_body(policy: &ApprovalPolicy, expected: u64) -> Result<String, StoreError> {
    check_version("approval policy", policy.version, expected)?;
    to_json(policy, "approval policy")
}

/// A session's stored JSON, once its token hash has the form of a key (see
/// [`check_token_hash`]).
pub(crate) fn session_body(session: &SessionRecord) -> Result<String, StoreError> {
    check_token_hash(&session.token_hash)?;
    to_json(session, "session")
}

/// A session key: 1 to 128 bytes (a hex SHA-256 is 64), so that it fits every backend's key.
pub(crate) fn check_token_hash(hash: &str) -> Result<(), StoreError> {
    if (1..=128).contains(&hash.len()) {
        Ok(())
    } else {
        Err(StoreError::invalid("a session's token hash is 1 to 128 bytes"))
    }
}

/// A beneficiary fingerprint to key by: not empty, at most 256 bytes, no `#` (DynamoDB sort
/// keys are built with it).
pub(crate) fn check_fingerprint(fingerprint: &str) -> Result<(), StoreError> {
    if fingerprint.is_empty() || fingerprint.len() > 256 || fingerprint.contains('#') {
        Err(StoreError::invalid(
            "a beneficiary fingerprint is 1 to 256 bytes without `#`",
        ))
    } else {
        Ok(())
    }
}
