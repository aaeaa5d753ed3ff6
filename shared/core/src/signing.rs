//! Signatures: D24's `Payload-Signature`, Cascad's callback `X-Signature`, and Standard Webhooks
//! for what we send to merchants. Keys are secret types whose `Debug` redacts them; every
//! comparison is constant-time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// A secret shared with a provider (D24 "API Signature", Cascad callback secret).
#[derive(Clone)]
pub struct ProviderSecret(SecretString);

impl ProviderSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    /// The secret bytes, for signing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProviderSecret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for ProviderSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ProviderSecret::new)
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// D24 `Payload-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes sent, keyed with
/// the API Signature secret (an empty body signs the empty string).
pub fn d24_payload_signature(secret: &ProviderSecret, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.expose().as_bytes(), body))
}

/// Checks a D24 `Payload-Signature` in constant time (hex case is ignored).
pub fn verify_d24_payload_signature(secret: &ProviderSecret, body: &[u8], signature: &str) -> bool {
    let expected = d24_payload_signature(secret, body);
    let given = signature.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Cascad callback `X-Signature`: base64 of SHA-1 over `secret ‖ raw body ‖ secret`.
pub fn cascad_signature(secret: &ProviderSecret, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(secret.expose().as_bytes());
    h.update(body);
    h.update(secret.expose().as_bytes());
    BASE64.encode(h.finalize())
}

/// Checks a Cascad `X-Signature` in constant time.
pub fn verify_cascad_signature(secret: &ProviderSecret, body: &[u8], signature: &str) -> bool {
    let expected = cascad_signature(secret, body);
    expected.as_bytes().ct_eq(signature.trim().as_bytes()).into()
}

/// A Standard Webhooks signing secret (`whsec_` + base64 of the key bytes). `Debug` redacts it.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

/// A text that is not a `whsec_` secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by the base64 of 24 to 64 bytes")]
pub struct InvalidWebhookSecret;

impl WebhookSecret {
    /// The secret for raw key bytes (use 32 random bytes).
    pub fn from_key_bytes(key: &[u8]) -> Self {
        Self(SecretString::from(format!("whsec_{}", BASE64.encode(key))))
    }

    /// Parses `whsec_…`.
    pub fn parse(text: &str) -> Result<Self, InvalidWebhookSecret> {
        let body = text.strip_prefix("whsec_").ok_or(InvalidWebhookSecret)?;
        let key = BASE64.decode(body).map_err(|_| InvalidWebhookSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidWebhookSecret);
        }
        Ok(Self(SecretString::from(text.to_owned())))
    }

    /// The `whsec_…` text: shown to the merchant once, stored, never logged.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn signer(&self) -> Result<standardwebhooks::Webhook, InvalidWebhookSecret> {
        standardwebhooks::Webhook::new(self.expose()).map_err(|_| InvalidWebhookSecret)
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        self.signer()
            .map_err(|_| SignError::InvalidSecret)?
            .sign(msg_id, timestamp, body)
            .map_err(|_| SignError::BodyNotUtf8)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose().as_bytes().ct_eq(other.expose().as_bytes()).into()
    }
}
impl Eq for WebhookSecret {}

/// Stored with the endpoint (the store is the only place it is written in clear).
impl Serialize for WebhookSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WebhookSecret::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Why a webhook could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The secret is not valid base64.
    #[error("the webhook secret is invalid")]
    InvalidSecret,
    /// Standard Webhooks signs text bodies only.
    #[error("the webhook body is not UTF-8")]
    BodyNotUtf8,
}

/// The `webhook-signature` header value for a delivery signed with every active secret
/// (several during a rotation's grace period), space-separated.
pub fn webhook_signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignError> {
    let signatures = secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Standard Webhooks header names.
pub mod headers {
    /// Stable id of the message across retries.
    pub const WEBHOOK_ID: &str = "webhook-id";
    /// Unix seconds when this attempt was signed.
    pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
    /// `v1,…` signatures, space-separated.
    pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
}

/// Why a Standard Webhooks message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is not readable (not ASCII, not a number).
    #[error("invalid header {0}")]
    InvalidHeader(&'static str),
    /// Older than the tolerance.
    #[error("the timestamp is too old")]
    TimestampTooOld,
    /// Further in the future than the tolerance.
    #[error("the timestamp is too far in the future")]
    TimestampInFuture,
    /// No `v1` signature matches.
    #[error("no signature matches")]
    InvalidSignature,
    /// The verifying secret is invalid.
    #[error("the secret is invalid")]
    InvalidSecret,
}

/// Verifies Standard Webhooks messages against one secret, with a clock supplied by the caller.
pub struct WebhookVerifier {
    secret: WebhookSecret,
    tolerance: time::Duration,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secret", &self.secret)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// The standard tolerance: ±300 s.
    pub const DEFAULT_TOLERANCE: time::Duration = time::Duration::seconds(300);

    /// A verifier with the standard tolerance.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secret,
            tolerance: Self::DEFAULT_TOLERANCE,
        }
    }

    /// Verifies `body` against the three headers at time `now`.
    pub fn verify(&self, headers: &http::HeaderMap, body: &[u8], now: OffsetDateTime) -> Result<(), VerifyError> {
        let get = |name: &'static str| -> Result<&str, VerifyError> {
            headers
                .get(name)
                .ok_or(VerifyError::MissingHeader(name))?
                .to_str()
                .map_err(|_| VerifyError::InvalidHeader(name))
        };
        let msg_id = get(headers::WEBHOOK_ID)?;
        let signatures = get(headers::WEBHOOK_SIGNATURE)?;
        let timestamp: i64 = get(headers::WEBHOOK_TIMESTAMP)?
            .parse()
            .map_err(|_| VerifyError::InvalidHeader(headers::WEBHOOK_TIMESTAMP))?;
        let now = now.unix_timestamp();
        let tolerance = self.tolerance.whole_seconds();
        if now.saturating_sub(timestamp) > tolerance {
            return Err(VerifyError::TimestampTooOld);
        }
        if timestamp.saturating_sub(now) > tolerance {
            return Err(VerifyError::TimestampInFuture);
        }
        let expected = self.secret.sign(msg_id, timestamp, body).map_err(|e| match e {
            SignError::InvalidSecret => VerifyError::InvalidSecret,
            SignError::BodyNotUtf8 => VerifyError::InvalidSignature,
        })?;
        let expected = expected.split_once(',').map(|(_, sig)| sig).unwrap_or_default();
        let mut matched = subtle::Choice::from(0);
        for candidate in signatures.split(' ') {
            if let Some(("v1", sig)) = candidate.split_once(',') {
                matched |= sig.as_bytes().ct_eq(expected.as_bytes());
            }
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(VerifyError::InvalidSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn at(ts: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(ts).unwrap()
    }

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::WEBHOOK_ID, id.parse().unwrap());
        h.insert(headers::WEBHOOK_TIMESTAMP, ts.to_string().parse().unwrap());
        h.insert(headers::WEBHOOK_SIGNATURE, sig.parse().unwrap());
        h
    }

    /// The two official Standard Webhooks test vectors.
    const VECTORS: [(&str, &str, i64, &str, &str); 2] = [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];

    #[test]
    fn official_vectors_sign() {
        for (key, id, ts, body, expected) in VECTORS {
            let secret = WebhookSecret::parse(key).unwrap();
            assert_eq!(secret.sign(id, ts, body.as_bytes()).unwrap(), expected);
        }
    }

    #[test]
    fn official_vectors_verify_with_an_injected_clock() {
        for (key, id, ts, body, sig) in VECTORS {
            let v = WebhookVerifier::new(WebhookSecret::parse(key).unwrap());
            assert_eq!(v.verify(&headers(id, ts, sig), body.as_bytes(), at(ts)), Ok(()));
            assert_eq!(v.verify(&headers(id, ts, sig), body.as_bytes(), at(ts + 300)), Ok(()));
            assert_eq!(v.verify(&headers(id, ts, sig), body.as_bytes(), at(ts - 300)), Ok(()));
            assert_eq!(
                v.verify(&headers(id, ts, sig), body.as_bytes(), at(ts + 301)),
                Err(VerifyError::TimestampTooOld)
            );
            assert_eq!(
                v.verify(&headers(id, ts, sig), body.as_bytes(), at(ts - 301)),
                Err(VerifyError::TimestampInFuture)
            );
        }
    }

    #[test]
    fn tampering_is_detected() {
        let (key, id, ts, body, sig) = VECTORS[1];
        let v = WebhookVerifier::new(WebhookSecret::parse(key).unwrap());
        let now = at(ts);
        assert_eq!(
            v.verify(&headers(id, ts, sig), b"{\"email\":\"x\"}", now),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            v.verify(&headers("msg_other", ts, sig), body.as_bytes(), now),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            v.verify(&headers(id, ts + 1, sig), body.as_bytes(), now),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            v.verify(&headers(id, ts, "v1,"), body.as_bytes(), now),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            v.verify(&headers(id, ts, &sig.replace("v1,", "v2,")), body.as_bytes(), now),
            Err(VerifyError::InvalidSignature)
        );
        let mut h = headers(id, ts, sig);
        h.remove(headers::WEBHOOK_ID);
        assert_eq!(
            v.verify(&h, body.as_bytes(), now),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        let h = headers(id, ts, sig);
        let mut h2 = h.clone();
        h2.insert(headers::WEBHOOK_TIMESTAMP, "soon".parse().unwrap());
        assert_eq!(
            v.verify(&h2, body.as_bytes(), now),
            Err(VerifyError::InvalidHeader("webhook-timestamp"))
        );
    }

    #[test]
    fn any_of_several_signatures_verifies_for_rotation() {
        let (key, id, ts, body, sig) = VECTORS[1];
        let old = WebhookSecret::parse(key).unwrap();
        let new = WebhookSecret::from_key_bytes(&[7u8; 32]);
        let header = webhook_signature_header(&[&new, &old], id, ts, body.as_bytes()).unwrap();
        assert!(header.ends_with(sig));
        assert_eq!(header.split(' ').count(), 2);
        for secret in [old, new] {
            assert_eq!(
                WebhookVerifier::new(secret).verify(&headers(id, ts, &header), body.as_bytes(), at(ts)),
                Ok(())
            );
        }
        let stranger = WebhookSecret::from_key_bytes(&[9u8; 32]);
        assert_eq!(
            WebhookVerifier::new(stranger).verify(&headers(id, ts, &header), body.as_bytes(), at(ts)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = WebhookSecret::parse(VECTORS[0].0).unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret([REDACTED])");
        assert!(!format!("{:?}", WebhookVerifier::new(s)).contains("MfKQ9"));
        let p = ProviderSecret::new("hunter2");
        assert_eq!(format!("{p:?}"), "ProviderSecret([REDACTED])");
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_AAAA").is_err());
    }

    /// Self-computed vectors: D24 publishes none. Computed with an independent implementation
    /// (`printf %s BODY | openssl dgst -sha256 -hmac SECRET`).
    #[test]
    fn d24_payload_signature_self_computed_vectors() {
        let secret = ProviderSecret::new("cashout_secret_key");
        let body = br#"{"login":"cashout_login","pass":"cashout_pass","cashout_id":11954}"#;
        let sig = d24_payload_signature(&secret, body);
        assert_eq!(sig, "db96878e3d4066e680a1dbebc977546276e1427aefbe14ead1b410a76d45cc60");
        assert!(verify_d24_payload_signature(&secret, body, &sig));
        assert!(verify_d24_payload_signature(&secret, body, &sig.to_uppercase()));
        assert!(!verify_d24_payload_signature(&secret, b"{}", &sig));
        assert_eq!(
            d24_payload_signature(&secret, b""),
            "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c"
        );
    }

    /// Self-computed: `printf %s SECRET BODY SECRET | openssl dgst -sha1 -binary | base64`.
    #[test]
    fn cascad_signature_self_computed_vector() {
        let secret = ProviderSecret::new("cascad_secret");
        let body = br#"{"data":{"id":"cpoi_VdHYVxq4RsLEebAQ","attributes":{"status":"processed"}}}"#;
        let sig = cascad_signature(&secret, body);
        assert_eq!(sig, "pVtrWkbhv6C8+04Q4dcholx40gg=");
        assert!(verify_cascad_signature(&secret, body, &sig));
        assert!(!verify_cascad_signature(&ProviderSecret::new("other"), body, &sig));
    }
}
