//! Endpoint signing secrets sealed at rest: envelope encryption inside the store adapters (the
//! application keeps handling clear `WebhookSecret`s in memory).
//!
//! Every seal draws a fresh 256-bit data key, encrypts the secret with it (AES-256-GCM, a random
//! 96-bit nonce), and keeps the data key only wrapped by a key-encryption key: the embedded
//! store's key file ([`key_file`]) or a KMS key on AWS ([`kms`]). The sealed text, stored where
//! the `whsec_…` text was:
//!
//! ```text
//! v1.<kind>.<key id>.<wrapped data key>.<nonce>.<ciphertext and tag>
//! ```
//!
//! `kind` is `file` or `kms`; the other fields are base64url without padding. The associated data
//! of the encryption is the header (`v1.<kind>.<key id>.<wrapped data key>`) and the endpoint id,
//! so a sealed secret copied to another endpoint, or given another wrapped key, does not open.
//!
//! The key file wraps data keys too, rather than encrypting secrets directly: one format and one
//! code path for both backends, and the file's key only ever encrypts 32-byte random keys (a
//! change of key file rewraps data keys without touching the secrets).

pub mod key_file;
pub mod kms;

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use cashout_core::ports::StoreError;
use zeroize::Zeroizing;

pub use key_file::KeyFile;
pub use kms::Kms;

/// The format version written by this code.
const VERSION: &str = "v1";
/// The nonce of AES-GCM.
const NONCE_LEN: usize = 12;

/// A future of KMS, boxed.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A 256-bit data key, wiped from memory when dropped.
pub(crate) type DataKey = Zeroizing<[u8; 32]>;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The key file could not be read, created or trusted.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// KMS refused or could not be reached.
    #[error("KMS {operation}: {message}")]
    Kms {
        /// `GenerateDataKey` or `Decrypt`.
        operation: &'static str,
        /// What KMS (or the SDK) said.
        message: String,
        /// Whether trying again later may succeed (throttling, timeouts).
        retryable: bool,
    },
    /// The stored text is not a sealed secret of a known version.
    #[error("a stored signing secret is neither sealed in a known format nor a `whsec_` secret")]
    Malformed,
    /// Sealed with another key than this store's.
    #[error("a signing secret is sealed with {found}, but this store holds {held}")]
    OtherKey {
        /// The key that sealed it.
        found: String,
        /// The key this store has.
        held: String,
    },
    /// The authentication failed: another endpoint's secret, an altered blob, or a wrong key.
    #[error("a sealed signing secret does not open: altered, bound to another endpoint, or a wrong key")]
    DoesNotOpen,
}

impl From<SealingError> for StoreError {
    fn from(e: SealingError) -> Self {
        match e {
            SealingError::Kms { retryable: true, .. } => StoreError::unavailable("sealing a signing secret", e),
            SealingError::Kms { .. } | SealingError::KeyFile { .. } => StoreError::Invalid {
                message: "sealing a signing secret".into(),
                source: Some(e.into()),
            },
            SealingError::Malformed | SealingError::OtherKey { .. } | SealingError::DoesNotOpen => {
                StoreError::corrupt("a sealed signing secret", e)
            }
        }
    }
}

/// Seals and opens endpoint signing secrets. Cheap to clone; clones share the key and, with
/// KMS, the cache of unwrapped data keys.
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<Keys>,
}

enum Keys {
    File(KeyFile),
    Kms(Kms),
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("key", &self.key_id()).finish()
    }
}

impl From<KeyFile> for Sealer {
    fn from(key: KeyFile) -> Self {
        Sealer {
            keys: Arc::new(Keys::File(key)),
        }
    }
}

impl From<Kms> for Sealer {
    fn from(kms: Kms) -> Self {
        Sealer {
            keys: Arc::new(Keys::Kms(kms)),
        }
    }
}

/// The parts of a sealed text.
struct Sealed {
    header: String,
    kind: String,
    key_id: String,
    wrapped: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl Sealed {
    fn parse(text: &str) -> Result<Sealed, SealingError> {
        let parts: Vec<&str> = text.split('.').collect();
        let [version, kind, key_id, wrapped, nonce, ciphertext] = parts[..] else {
            return Err(SealingError::Malformed);
        };
        if version != VERSION || !matches!(kind, "file" | "kms") {
            return Err(SealingError::Malformed);
        }
        let decode = |part: &str| B64.decode(part).map_err(|_| SealingError::Malformed);
        Ok(Sealed {
            header: format!("{version}.{kind}.{key_id}.{wrapped}"),
            kind: kind.to_owned(),
            key_id: String::from_utf8(decode(key_id)?).map_err(|_| SealingError::Malformed)?,
            wrapped: decode(wrapped)?,
            nonce: decode(nonce)?.try_into().map_err(|_| SealingError::Malformed)?,
            ciphertext: decode(ciphertext)?,
        })
    }
}

/// Whether a stored secret text is sealed (rather than a `whsec_` secret from before sealing).
pub(crate) fn is_sealed(text: &str) -> bool {
    text.starts_with("v1.")
}

/// The key id a sealed text names, if it is one.
pub(crate) fn sealed_key_id(text: &str) -> Option<String> {
    Sealed::parse(text).ok().map(|s| format!("{}:{}", s.kind, s.key_id))
}

fn header(kind: &str, key_id: &str, wrapped: &[u8]) -> String {
    format!("{VERSION}.{kind}.{}.{}", B64.encode(key_id), B64.encode(wrapped))
}

/// The associated data: the header and the endpoint the secret belongs to.
fn associated_data(header: &str, bound_to: &str) -> Vec<u8> {
    format!("cashout webhook secret|{header}|{bound_to}").into_bytes()
}

fn encrypt(header: String, data_key: &DataKey, plaintext: &str, bound_to: &str) -> Result<String, SealingError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_slice()));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = associated_data(&header, bound_to);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        // Only for inputs of gigabytes.
        .map_err(|_| SealingError::Malformed)?;
    Ok(format!("{header}.{}.{}", B64.encode(nonce), B64.encode(ciphertext)))
}

fn decrypt(sealed: &Sealed, data_key: &DataKey, bound_to: &str) -> Result<Zeroizing<String>, SealingError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_slice()));
    let aad = associated_data(&sealed.header, bound_to);
    let clear = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealingError::DoesNotOpen)?,
    );
    String::from_utf8(clear.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| SealingError::DoesNotOpen)
}

impl Sealer {
    /// A sealer whose key lives in this process only (tests and benchmarks): what it seals is
    /// lost with it.
    pub fn in_memory() -> Sealer {
        Sealer::from(KeyFile::in_memory())
    }

    /// The key, as sealed texts name it: `file:<fingerprint>` or `kms:<key id>`.
    pub fn key_id(&self) -> String {
        match &*self.keys {
            Keys::File(key) => format!("file:{}", key.id()),
            Keys::Kms(kms) => format!("kms:{}", kms.key_id()),
        }
    }

    /// KMS requests made so far (`GenerateDataKey` and `Decrypt`; 0 with a key file).
    pub fn kms_requests(&self) -> u64 {
        match &*self.keys {
            Keys::File(_) => 0,
            Keys::Kms(kms) => kms.requests(),
        }
    }

    /// Seals `plaintext` for the endpoint `bound_to`.
    pub async fn seal(&self, plaintext: &str, bound_to: &str) -> Result<String, SealingError> {
        match &*self.keys {
            Keys::File(key) => key.seal(plaintext, bound_to),
            Keys::Kms(kms) => {
                // Boxed and erased: the SDK's future is deep, and every store future holds this one.
                let generated: BoxFuture<'_, _> = Box::pin(kms.new_data_key(bound_to));
                let (key_id, wrapped, data_key) = generated.await?;
                encrypt(header("kms", &key_id, &wrapped), &data_key, plaintext, bound_to)
            }
        }
    }

    /// Opens what [`Self::seal`] sealed for the same endpoint.
    pub async fn open(&self, sealed: &str, bound_to: &str) -> Result<Zeroizing<String>, SealingError> {
        let parsed = Sealed::parse(sealed)?;
        match (&*self.keys, parsed.kind.as_str()) {
            (Keys::File(key), "file") => key.open(&parsed, bound_to),
            (Keys::Kms(kms), "kms") => {
                let unwrapped: BoxFuture<'_, _> = Box::pin(kms.unwrap(&parsed.key_id, &parsed.wrapped, bound_to));
                let data_key = unwrapped.await?;
                decrypt(&parsed, &data_key, bound_to)
            }
            _ => Err(SealingError::OtherKey {
                found: format!("{}:{}", parsed.kind, parsed.key_id),
                held: self.key_id(),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[tokio::test]
    async fn a_sealed_secret_opens_for_its_endpoint_and_shows_nothing_of_the_secret() {
        let sealer = Sealer::in_memory();
        let sealed = sealer.seal(SECRET, "ep_1").await.unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("whsec_") && !sealed.contains("MfKQ9r8GKYqrTwjUPD8"));
        assert_eq!(sealer.open(&sealed, "ep_1").await.unwrap().as_str(), SECRET);
        assert_eq!(sealed_key_id(&sealed), Some(sealer.key_id()));
    }

    #[tokio::test]
    async fn two_seals_of_one_secret_differ() {
        let sealer = Sealer::in_memory();
        assert_ne!(
            sealer.seal(SECRET, "ep_1").await.unwrap(),
            sealer.seal(SECRET, "ep_1").await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_secret_sealed_for_one_endpoint_does_not_open_for_another() {
        let sealer = Sealer::in_memory();
        let sealed = sealer.seal(SECRET, "ep_1").await.unwrap();
        assert!(matches!(
            sealer.open(&sealed, "ep_2").await,
            Err(SealingError::DoesNotOpen)
        ));
    }

    #[tokio::test]
    async fn an_altered_blob_does_not_open() {
        let sealer = Sealer::in_memory();
        let sealed = sealer.seal(SECRET, "ep_1").await.unwrap();
        let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        let mut ciphertext = B64.decode(&parts[5]).unwrap();
        ciphertext[0] ^= 1;
        parts[5] = B64.encode(ciphertext);
        assert!(matches!(
            sealer.open(&parts.join("."), "ep_1").await,
            Err(SealingError::DoesNotOpen)
        ));
        // Another secret's wrapped data key in this header: the header is authenticated too.
        let other: Vec<String> = sealer
            .seal(SECRET, "ep_1")
            .await
            .unwrap()
            .split('.')
            .map(str::to_owned)
            .collect();
        let mut swapped: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        swapped[3] = other[3].clone();
        assert!(sealer.open(&swapped.join("."), "ep_1").await.is_err());
    }

    #[tokio::test]
    async fn a_secret_sealed_with_another_key_names_both_keys() {
        let (one, two) = (Sealer::in_memory(), Sealer::in_memory());
        let sealed = one.seal(SECRET, "ep_1").await.unwrap();
        match two.open(&sealed, "ep_1").await {
            Err(SealingError::OtherKey { found, held }) => {
                assert_eq!(found, one.key_id());
                assert_eq!(held, two.key_id());
            }
            other => panic!("expected OtherKey, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn text_that_is_not_a_sealed_secret_is_malformed() {
        let sealer = Sealer::in_memory();
        for text in [
            "",
            "v1.file.x",
            "v2.file.a.b.c.d",
            "v1.zip.a.b.c.d",
            "v1.file.a.b.AAAA.d",
        ] {
            assert!(
                matches!(sealer.open(text, "ep_1").await, Err(SealingError::Malformed)),
                "{text}"
            );
        }
    }
}
