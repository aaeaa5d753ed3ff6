//! The two signature schemes, written from the providers' docs (not shared with the adapters):
//!
//! - D24 family `Payload-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes, keyed
//!   with the merchant's "API Signature" secret. Seed 001 ("Request Payload Signature": "hashing
//!   the whole JSON payload of the request using HMAC256 and your secret key (API Signature)");
//!   the digest (PROVIDERS.md, D24 family, "Auth") adds lowercase hex, UTF-8 and the empty body.
//! - Cascad `X-Signature`: base64(SHA1(secret ‖ raw_body ‖ secret)) (PROVIDERS.md, Cascad,
//!   "Callbacks").
//!
//! No provider publishes a test vector; the vectors in the tests below are self-computed with
//! Python's `hmac`/`hashlib` and OpenSSL, independently of the crates used here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn d24_mac(secret: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
}

/// `Payload-Signature` of `body`: lowercase hex HMAC-SHA256 keyed with the API Signature secret.
pub(crate) fn d24_payload_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(d24_mac(secret, body).finalize().into_bytes())
}

/// Checks a `Payload-Signature` in constant time. Upper-case hex is accepted (a hex digit's case
/// carries no information); anything that is not 64 hex digits is refused.
pub(crate) fn verify_d24_payload_signature(secret: &str, body: &[u8], given: &str) -> bool {
    let Ok(bytes) = hex::decode(given.trim()) else {
        return false;
    };
    d24_mac(secret, body).verify_slice(&bytes).is_ok()
}

/// `X-Signature` of a Cascad callback body: base64(SHA1(secret ‖ body ‖ secret)).
pub(crate) fn cascad_signature(secret: &str, body: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(secret.as_bytes());
    sha.update(body);
    sha.update(secret.as_bytes());
    BASE64.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 001's status request body, byte for byte (trailing spaces included).
    const SEED_001_STATUS_BODY: &str =
        "{ \n    \"login\": \"cashout_login\", \n    \"pass\": \"cashout_pass\", \n    \"cashout_id\": 11954 \n}";

    #[test]
    fn d24_signatures_match_self_computed_vectors() {
        // Self-computed (Python hmac + OpenSSL); seed 001's own signature uses a secret it does
        // not give.
        assert_eq!(
            d24_payload_signature("d24_secret", SEED_001_STATUS_BODY.as_bytes()),
            "5414692776b03d80fd421618216e323bdc5c6f60583b26f09ef4b239c0ba4147"
        );
        assert_eq!(
            d24_payload_signature("d24_secret", b""),
            "ad3600c92e3af571bd92fe184eddf1a8e6909f093d1d1e25a8d8cc1f1d29e2a3"
        );
    }

    #[test]
    fn d24_verification_refuses_other_bodies_secrets_and_garbage() {
        let body = SEED_001_STATUS_BODY.as_bytes();
        let sig = d24_payload_signature("d24_secret", body);
        assert!(verify_d24_payload_signature("d24_secret", body, &sig));
        assert!(verify_d24_payload_signature("d24_secret", body, &sig.to_uppercase()));
        assert!(!verify_d24_payload_signature("other", body, &sig));
        assert!(!verify_d24_payload_signature("d24_secret", b"{}", &sig));
        assert!(!verify_d24_payload_signature("d24_secret", body, "not hex"));
        assert!(!verify_d24_payload_signature("d24_secret", body, &sig[..62]));
        // Seed 001's example signature was made with a secret the seed does not give.
        assert!(!verify_d24_payload_signature(
            "d24_secret",
            body,
            "2e5023770760ea0a02230bff1a6dab934fe3b47a5e3d43854b58676600ee3868"
        ));
    }

    #[test]
    fn cascad_signature_matches_a_self_computed_vector() {
        assert_eq!(
            cascad_signature("cascad_callback_secret", br#"{"data":{"id":"cpoi_VdHYVxq4RsLEebAQ"}}"#),
            "iDY+tc201n4RzXWnN5cApdi2OMc="
        );
    }
}
