//! Data keys from AWS KMS: `GenerateDataKey` for each seal, `Decrypt` to unwrap, and a bounded
//! in-process cache of unwrapped data keys so that a delivery does not call KMS each time.
//!
//! The encryption context (`cashout` = `webhook-secret`, `endpoint` = the endpoint id) binds each
//! wrapped data key to its endpoint and names it in CloudTrail. The cache holds at most
//! [`CACHE_ENTRIES`] keys, each for at most [`CACHE_TTL`]: a warm function decrypts a given
//! secret at most once an hour, and a key disabled in KMS stops opening secrets within that hour.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{DataKey, SealingError};

/// The most unwrapped data keys kept (one per sealed secret in use).
pub const CACHE_ENTRIES: usize = 1_000;
/// How long an unwrapped data key is kept.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);

/// KMS answers that no retry can change.
const PERMANENT_CODES: [&str; 9] = [
    "AccessDeniedException",
    "DisabledException",
    "IncorrectKeyException",
    "InvalidCiphertextException",
    "InvalidKeyUsageException",
    "KMSInvalidStateException",
    "NotFoundException",
    "ValidationException",
    "UnrecognizedClientException",
];

/// A KMS key that wraps data keys.
pub struct Kms {
    client: aws_sdk_kms::Client,
    key_id: String,
    cache: Mutex<DataKeyCache>,
    requests: AtomicU64,
}

impl Kms {
    /// Data keys of `key_id` (a key id, ARN or alias). The client's retries are bounded like the
    /// store's (standard mode, 4 attempts; 5 s a try, 20 s a call).
    pub fn new(client: &aws_sdk_kms::Client, key_id: impl Into<String>) -> Kms {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .build();
        Kms {
            client: aws_sdk_kms::Client::from_conf(config),
            key_id: key_id.into(),
            cache: Mutex::new(DataKeyCache::new(CACHE_ENTRIES, CACHE_TTL)),
            requests: AtomicU64::new(0),
        }
    }

    /// [`Self::new`] with a client of the standard AWS configuration `sdk`.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, key_id: impl Into<String>) -> Kms {
        Kms::new(&aws_sdk_kms::Client::new(sdk), key_id)
    }

    /// The configured key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A new data key for `bound_to`: the key id KMS reports (its ARN), the wrapped key, the key.
    pub(super) async fn new_data_key(&self, bound_to: &str) -> Result<(String, Vec<u8>, DataKey), SealingError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("cashout", "webhook-secret")
            .encryption_context("endpoint", bound_to)
            .send()
            .await
            .map_err(|e| kms_error("GenerateDataKey", e))?;
        let data_key = data_key(answer.plaintext().map(Blob::as_ref), "GenerateDataKey")?;
        let wrapped = answer
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| incomplete("GenerateDataKey"))?;
        let key_id = answer.key_id().unwrap_or(&self.key_id).to_owned();
        self.cache_insert(bound_to, &wrapped, &data_key);
        Ok((key_id, wrapped, data_key))
    }

    /// The data key `wrapped` (by `key_id`, for `bound_to`): from the cache, or from KMS.
    pub(super) async fn unwrap(&self, key_id: &str, wrapped: &[u8], bound_to: &str) -> Result<DataKey, SealingError> {
        let slot = cache_slot(bound_to, wrapped);
        if let Some(key) = self.cache_lock().get(&slot, Instant::now()) {
            return Ok(key);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context("cashout", "webhook-secret")
            .encryption_context("endpoint", bound_to)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("InvalidCiphertextException") => SealingError::DoesNotOpen,
                _ => kms_error("Decrypt", e),
            })?;
        let key = data_key(answer.plaintext().map(Blob::as_ref), "Decrypt")?;
        self.cache_insert(bound_to, wrapped, &key);
        Ok(key)
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, DataKeyCache> {
        // A panic while the lock was held leaves a consistent map: keep using it.
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_insert(&self, bound_to: &str, wrapped: &[u8], key: &DataKey) {
        self.cache_lock()
            .insert(cache_slot(bound_to, wrapped), key.clone(), Instant::now());
    }
}

fn cache_slot(bound_to: &str, wrapped: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(bound_to.as_bytes())
        .chain_update([0])
        .chain_update(wrapped)
        .finalize()
        .into()
}

fn data_key(plaintext: Option<&[u8]>, operation: &'static str) -> Result<DataKey, SealingError> {
    let bytes = plaintext.ok_or_else(|| incomplete(operation))?;
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(incomplete(operation));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

fn incomplete(operation: &'static str) -> SealingError {
    SealingError::Kms {
        operation,
        message: "the answer has no 256-bit data key".into(),
        retryable: false,
    }
}

fn kms_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> SealingError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    let message = match (&code, e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        _ => aws_sdk_kms::error::DisplayErrorContext(&e).to_string(),
    };
    SealingError::Kms {
        operation,
        message,
        retryable: !code.as_deref().is_some_and(|c| PERMANENT_CODES.contains(&c)),
    }
}

/// Unwrapped data keys by the hash of their endpoint and wrapped key, bounded in count and age.
/// A full cache first forgets expired keys, then the oldest: a scan of at most
/// [`CACHE_ENTRIES`], made only on a miss, which costs a KMS call anyway.
struct DataKeyCache {
    entries: HashMap<[u8; 32], (DataKey, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl DataKeyCache {
    fn new(capacity: usize, ttl: Duration) -> Self {
        DataKeyCache {
            entries: HashMap::new(),
            capacity,
            ttl,
        }
    }

    fn get(&mut self, slot: &[u8; 32], now: Instant) -> Option<DataKey> {
        match self.entries.get(slot) {
            Some((key, at)) if now.saturating_duration_since(*at) < self.ttl => Some(key.clone()),
            Some(_) => {
                self.entries.remove(slot);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, slot: [u8; 32], key: DataKey, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&slot) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self.entries.iter().min_by_key(|(_, (_, at))| *at).map(|(s, _)| *s)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(slot, (key, now));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        Zeroizing::new([byte; 32])
    }

    #[test]
    fn the_cache_forgets_a_key_after_its_time_to_live() {
        let t0 = Instant::now();
        let mut cache = DataKeyCache::new(10, Duration::from_secs(60));
        cache.insert([1; 32], key(1), t0);
        assert_eq!(*cache.get(&[1; 32], t0 + Duration::from_secs(59)).unwrap(), [1; 32]);
        assert!(cache.get(&[1; 32], t0 + Duration::from_secs(60)).is_none());
        assert!(cache.entries.is_empty());
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_key_first() {
        let t0 = Instant::now();
        let mut cache = DataKeyCache::new(2, Duration::from_secs(60));
        cache.insert([1; 32], key(1), t0);
        cache.insert([2; 32], key(2), t0 + Duration::from_secs(1));
        cache.insert([3; 32], key(3), t0 + Duration::from_secs(2));
        let now = t0 + Duration::from_secs(3);
        assert!(cache.get(&[1; 32], now).is_none());
        assert!(cache.get(&[2; 32], now).is_some());
        assert!(cache.get(&[3; 32], now).is_some());
        assert_eq!(cache.entries.len(), 2);
    }

    #[test]
    fn the_cache_is_keyed_by_endpoint_and_wrapped_key() {
        assert_ne!(cache_slot("ep_1", b"wrapped"), cache_slot("ep_2", b"wrapped"));
        assert_ne!(cache_slot("ep_1", b"wrapped"), cache_slot("ep_1", b"other"));
    }
}
