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
    /// An operator: a named person who reviews requests of every merchant (`reviewer`), and
    /// also manages routing, policies, keys and retries (`admin`).
    Operator {
        /// Who (a key stored before operators were named is the admin `operator`).
        #[serde(default = "legacy_operator")]
        name: OperatorName,
        /// What they may do. Authentication takes it from the operator's record, so a change of
        /// role or a revocation applies to every key at once.
        #[serde(default = "OperatorRole::admin", rename = "operator_role")]
        role: OperatorRole,
    },
}

fn legacy_operator() -> OperatorName {
    OperatorName::new("operator").expect("a valid name")
}

impl Principal {
    /// An operator with this name and role.
    pub fn operator(name: OperatorName, role: OperatorRole) -> Self {
        Principal::Operator { name, role }
    }

    /// An admin operator named `name` (tests, the local runner). Panics on an invalid name.
    pub fn admin(name: &str) -> Self {
        Principal::Operator {
            name: OperatorName::new(name).expect("a valid operator name"),
            role: OperatorRole::Admin,
        }
    }

    /// A reviewer named `name` (tests). Panics on an invalid name.
    pub fn reviewer(name: &str) -> Self {
        Principal::Operator {
            name: OperatorName::new(name).expect("a valid operator name"),
            role: OperatorRole::Reviewer,
        }
    }

    /// Who acts, as named in events and views.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Merchant { merchant_id } => Actor::Merchant {
                id: merchant_id.to_string(),
            },
            Principal::Operator { name, .. } => Actor::Operator { id: name.clone() },
        }
    }
}

/// An operator's name: 1 to 64 lowercase letters, digits, `.`, `_` or `-` (`alice`, `ops.bob`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OperatorName(String);

/// A text refused as an operator name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an operator name is 1 to 64 lowercase letters, digits, `.`, `_` or `-`")]
pub struct InvalidOperatorName;

impl OperatorName {
    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidOperatorName> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if ok { Ok(Self(name)) } else { Err(InvalidOperatorName) }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for OperatorName {
    type Err = InvalidOperatorName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for OperatorName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Approve, reject, exclude invoices, hold and release.
    Reviewer,
    /// All a reviewer does, and routing rules, approval policies, operators and their keys,
    /// retries, redeliveries and reconciliations.
    Admin,
}

impl OperatorRole {
    fn admin() -> Self {
        OperatorRole::Admin
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Reviewer => "reviewer",
            OperatorRole::Admin => "admin",
        }
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OperatorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reviewer" => Ok(OperatorRole::Reviewer),
            "admin" => Ok(OperatorRole::Admin),
            other => Err(format!("`{other}` is not a role (reviewer or admin)")),
        }
    }
}

/// A named operator. Its keys are [`ApiKeyRecord`]s whose principal names it; revoking the
/// operator refuses every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    /// The operator.
    pub name: OperatorName,
    /// What they may do.
    pub role: OperatorRole,
    /// When the record was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it (`cashout-admin`, the local runner's flags, or an admin's name).
    pub created_by: String,
    /// Set once revoked: no key of theirs signs in any more.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Bumped by every change; writes are conditional on it.
    #[serde(default)]
    pub version: u64,
}

impl OperatorRecord {
    /// A new operator (version 1), created by `created_by`.
    pub fn new(name: OperatorName, role: OperatorRole, created_by: &str, now: OffsetDateTime) -> Self {
        OperatorRecord {
            name,
            role,
            created_at: now,
            created_by: created_by.to_owned(),
            revoked_at: None,
            version: 1,
        }
    }

    /// The record to write to revoke an operator that `stored` says is there (or is not: keys
    /// from before operators had records name an admin with none, and a revoked record is what
    /// stops them), with the version it must replace. `None` when it is revoked already.
    pub fn revocation(
        name: &OperatorName,
        stored: Option<&OperatorRecord>,
        by: &str,
        now: OffsetDateTime,
    ) -> Option<(OperatorRecord, u64)> {
        match stored {
            Some(op) if op.revoked_at.is_some() => None,
            Some(op) => Some((
                OperatorRecord {
                    revoked_at: Some(now),
                    version: op.version + 1,
                    ..op.clone()
                },
                op.version,
            )),
            None => Some((
                OperatorRecord {
                    revoked_at: Some(now),
                    ..OperatorRecord::new(name.clone(), OperatorRole::Admin, by, now)
                },
                0,
            )),
        }
    }
}

/// Who made a decision, as events and views name them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// An operator, by name.
    Operator {
        /// The operator's name.
        id: OperatorName,
    },
    /// The merchant, through its API key.
    Merchant {
        /// The merchant's id.
        id: String,
    },
}

/// A signed-in browser session (operator console or merchant portal). The cookie holds a
/// random token; the store keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Lowercase hex SHA-256 of the session token.
    pub token_hash: String,
    /// Who is signed in (the operator's role is read again from its record on every use).
    pub principal: Principal,
    /// The key signed in with (the session ends with the key or its operator).
    pub key_hash: ApiKeyHash,
    /// The form token every state-changing request of this session must carry.
    pub csrf_token: String,
    /// When it began.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it ends (absolute).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The hash under which a session token (or any bearer secret) is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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

    #[test]
    fn keys_stored_before_operators_had_names_read_as_the_admin_operator() {
        let old: Principal = serde_json::from_str(r#"{"role":"operator"}"#).unwrap();
        assert_eq!(old, Principal::admin("operator"));
        let named = Principal::reviewer("alice");
        let json = serde_json::to_string(&named).unwrap();
        assert_eq!(json, r#"{"role":"operator","name":"alice","operator_role":"reviewer"}"#);
        assert_eq!(serde_json::from_str::<Principal>(&json).unwrap(), named);
    }

    #[test]
    fn operator_names_are_bounded_slugs() {
        assert!(OperatorName::new("ops.alice-2").is_ok());
        for bad in ["", "Alice", "a b", "é", &"a".repeat(65)] {
            assert!(OperatorName::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<OperatorName>(r#""Bob""#).is_err());
    }
}
