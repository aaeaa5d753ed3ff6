//! What every backend checks of an endpoint write before it writes (the endpoint half of the
//! `WebhookStore` port of `cashout-core`).

use cashout_core::ports::StoreError;
use cashout_core::webhook::WebhookEndpoint;

use crate::codec::to_json;
use crate::routing::check_version;

/// An endpoint's stored JSON, once its version follows `expected` (0 for a creation).
pub(crate) fn endpoint_body(endpoint: &WebhookEndpoint, expected: u64) -> Result<String, StoreError> {
    check_version("webhook endpoint", endpoint.version, expected)?;
    to_json(endpoint, "webhook endpoint")
}
