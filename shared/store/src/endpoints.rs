//! What every backend checks of an endpoint write before it writes (the endpoint half of the
//! `WebhookStore` port of `cashout-core`), and the sealing of its signing secrets: the stored
//! JSON is the endpoint's, with each `secrets[].secret` sealed ([`crate::sealing`]) for the
//! endpoint's id. A `whsec_` text still found there was stored before sealing and reads as is.

use cashout_core::ports::StoreError;
use cashout_core::webhook::WebhookEndpoint;
use serde_json::Value;

use crate::codec::{from_json, to_json};
use crate::routing::check_version;
use crate::sealing::{Sealer, SealingError, is_sealed};

/// The checks of [`endpoint_body`] that need no key (the memory store keeps no JSON).
pub(crate) fn check_endpoint(endpoint: &WebhookEndpoint, expected: u64) -> Result<(), StoreError> {
    check_version("webhook endpoint", endpoint.version, expected)?;
    to_json(endpoint, "webhook endpoint").map(drop)
}

/// An endpoint's stored JSON, once its version follows `expected` (0 for a creation), with its
/// secrets sealed. Without a sealer an endpoint with secrets is refused, never stored in clear.
pub(crate) async fn endpoint_body(
    endpoint: &WebhookEndpoint,
    expected: u64,
    sealer: Option<&Sealer>,
) -> Result<String, StoreError> {
    check_version("webhook endpoint", endpoint.version, expected)?;
    let mut body = serde_json::to_value(endpoint).map_err(|e| StoreError::Invalid {
        message: "webhook endpoint cannot be serialised".into(),
        source: Some(e.into()),
    })?;
    let bound_to = bound_to(&body)?;
    for slot in secret_slots(&mut body)? {
        let Some(sealer) = sealer else {
            return Err(StoreError::invalid(
                "this store has no key to seal signing secrets with: refusing to store them in clear",
            ));
        };
        let clear = slot
            .as_str()
            .ok_or_else(|| StoreError::invalid("a secret is not a text"))?;
        *slot = Value::String(sealer.seal(clear, &bound_to).await?);
    }
    to_json(&body, "webhook endpoint")
}

/// An endpoint back from its stored JSON, its sealed secrets opened.
pub(crate) async fn read_endpoint(stored: &str, sealer: Option<&Sealer>) -> Result<WebhookEndpoint, StoreError> {
    let mut body: Value = from_json(stored, "webhook endpoint")?;
    let bound_to = bound_to(&body)?;
    for slot in secret_slots(&mut body)? {
        let Some(text) = slot.as_str().filter(|t| is_sealed(t)) else {
            continue;
        };
        let sealer = sealer.ok_or_else(|| {
            StoreError::invalid("this store has no key to open signing secrets with (sealed secrets are stored)")
        })?;
        let clear = sealer.open(text, &bound_to).await?;
        *slot = Value::String(clear.as_str().to_owned());
    }
    serde_json::from_value(body).map_err(|e| StoreError::corrupt("stored webhook endpoint", e))
}

/// The stored version of an endpoint, without opening its secrets.
pub(crate) fn stored_version(stored: &str) -> Result<u64, StoreError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        version: u64,
    }
    Ok(from_json::<Versioned>(stored, "webhook endpoint")?.version)
}

/// Seals the secrets of a stored body still in clear, with a sealer that needs no I/O (the key
/// file); `None` when there were none.
pub(crate) fn seal_stored_now(
    stored: &str,
    seal: impl Fn(&str, &str) -> Result<String, SealingError>,
) -> Result<Option<String>, StoreError> {
    let mut body: Value = from_json(stored, "webhook endpoint")?;
    let bound_to = bound_to(&body)?;
    let mut sealed = 0;
    for slot in secret_slots(&mut body)? {
        if let Some(clear) = slot.as_str().filter(|t| !is_sealed(t)) {
            *slot = Value::String(seal(clear, &bound_to)?);
            sealed += 1;
        }
    }
    if sealed == 0 {
        return Ok(None);
    }
    to_json(&body, "webhook endpoint").map(Some)
}

/// The texts of the stored secrets of a body (sealed or not).
pub(crate) fn stored_secrets(stored: &str) -> Result<Vec<String>, StoreError> {
    let mut body: Value = from_json(stored, "webhook endpoint")?;
    Ok(secret_slots(&mut body)?
        .into_iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect())
}

/// The endpoint id a body's secrets are bound to.
fn bound_to(body: &Value) -> Result<String, StoreError> {
    body.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::corrupt("stored webhook endpoint", "it has no id"))
}

/// The `secret` of each element of `secrets`.
fn secret_slots(body: &mut Value) -> Result<Vec<&mut Value>, StoreError> {
    let Some(secrets) = body.get_mut("secrets") else {
        return Ok(Vec::new());
    };
    let secrets = secrets
        .as_array_mut()
        .ok_or_else(|| StoreError::corrupt("stored webhook endpoint", "its secrets are not a list"))?;
    Ok(secrets.iter_mut().filter_map(|s| s.get_mut("secret")).collect())
}
