//! What every backend checks of a routing write before it writes, and the errors it answers the
//! same way (the `RoutingStore` port of `cashout-core`).

use cashout_core::health::ProviderHealth;
use cashout_core::ports::StoreError;
use cashout_core::routing::RoutingRule;
use cashout_core::routing::rules::MAX_RULES;

use crate::codec::to_json;

/// The largest rule body stored, in bytes of JSON. A rule that passes `RoutingRuleSpec::check`
/// is at most about 8 KB (250 entries in each list, 200 characters of description); the bound
/// keeps the list every approval reads at most 500 × 16 KB whoever writes.
pub(crate) const MAX_RULE_BYTES: usize = 16 * 1024;

/// A rule's stored JSON, once its version follows `expected` and its size is within
/// [`MAX_RULE_BYTES`].
pub(crate) fn rule_body(rule: &RoutingRule, expected: u64) -> Result<String, StoreError> {
    check_version("routing rule", rule.version, expected)?;
    let body = to_json(rule, "routing rule")?;
    if body.len() > MAX_RULE_BYTES {
        return Err(StoreError::invalid(format!(
            "routing rule {} is {} bytes of JSON, over the {MAX_RULE_BYTES} stored",
            rule.id,
            body.len()
        )));
    }
    Ok(body)
}

/// A provider health's stored JSON, once its version follows `expected`.
pub(crate) fn health_body(health: &ProviderHealth, expected: u64) -> Result<String, StoreError> {
    check_version("provider health", health.version, expected)?;
    to_json(health, "provider health")
}

/// A reconciliation run's stored JSON, once its version follows `expected`.
pub(crate) fn reconciliation_body(
    run: &cashout_core::reconcile::Reconciliation,
    expected: u64,
) -> Result<String, StoreError> {
    check_version("reconciliation", run.version, expected)?;
    to_json(run, "reconciliation")
}

/// A write must carry the version that follows the one it expects (`+1`): a writer that kept
/// the version it read would let the next writer from that same version overwrite it unseen.
pub(crate) fn check_version(what: &str, written: u64, expected: u64) -> Result<(), StoreError> {
    if expected.checked_add(1) == Some(written) {
        Ok(())
    } else {
        Err(StoreError::invalid(format!(
            "{what}: the version written, {written}, does not follow the expected {expected}"
        )))
    }
}

/// A creation with [`MAX_RULES`] rules stored.
pub(crate) fn too_many_rules() -> StoreError {
    StoreError::invalid(format!("at most {MAX_RULES} routing rules can be stored"))
}
