//! API keys: who is calling. Keys are stored only as SHA-256 hashes; the clear key is shown
//! once and never logged.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::MerchantId;

/// A bearer API key as presented by a caller.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a presented key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(SecretString::from(key.into()))
    }

    /// The hash under which the key is stored and looked up.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.0.expose_secret().as_bytes())))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Lowercase hex SHA-256 of an API key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a stored hash.
    pub fn from_hex(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }
}

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Principal {
    /// A merchant: sees and acts on its own requests and endpoints only.
    Merchant {
        /// Which merchant.
        merchant_id: MerchantId,
    },
    /// An operator: reviews requests of every merchant.
    Operator,
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The key's hash.
    pub hash: ApiKeyHash,
    /// Whose key it is.
    pub principal: Principal,
    /// A name for people (`"production"`).
    pub label: Option<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_and_never_print() {
        let k = ApiKey::new("sk_local_merchant");
        assert_eq!(k.hash().as_str().len(), 64);
        assert_eq!(k.hash(), ApiKey::new("sk_local_merchant").hash());
        assert_ne!(k.hash(), ApiKey::new("sk_local_operator").hash());
        assert_eq!(format!("{k:?}"), "ApiKey([REDACTED])");
    }
}
