//! The store on DynamoDB: one table, eight global secondary indexes (`docs/store.md` lists every
//! item shape, access pattern and its cost in capacity units).
//!
//! - Strongly consistent reads of items by key (a request read right after a write sees it);
//!   index queries are eventually consistent, as DynamoDB indexes are, and bodies found through
//!   an index are then read consistently.
//! - Every change is conditional on the version it was computed from; a change with events or a
//!   provider reference is one `TransactWriteItems` (the SDK gives it an idempotency token, so its
//!   own retries cannot apply it twice). A lone conditional `PutItem` whose retry finds its own
//!   write already there is recognised as done, not reported as a conflict.
//! - Throttling and timeouts are retried by the SDK (standard mode, bounded); transaction
//!   conflicts are retried here with jittered backoff, a bounded number of times; then
//!   `Unavailable`.
//! - Every call asks for its consumed capacity, counted in [`CapacityMeter`].

mod api_keys;
mod backfill;
mod capacity;
mod changed;
mod creation;
mod events;
mod items;
mod limits;
mod people;
mod reconcile;
mod requests;
mod routing;
mod table;
mod webhooks;
mod work;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use cashout_core::ports::{Clock, StoreError};

use crate::sealing::Sealer;

pub use backfill::BackfillReport;
pub use capacity::{CapacityMeter, ConsumedCapacity};

/// Attempts per call the SDK makes on throttling, 5xx and timeouts (the first included).
const SDK_MAX_ATTEMPTS: u32 = 4;
/// Attempts of a transaction cancelled by a conflicting concurrent transaction.
const TRANSACTION_ATTEMPTS: u32 = 8;

/// The DynamoDB store. Cheap to clone; clones share the client and the capacity meter.
#[derive(Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
    clock: Arc<dyn Clock>,
    meter: Arc<CapacityMeter>,
    /// Seals endpoint signing secrets; without one, endpoints with secrets are refused.
    sealer: Option<Sealer>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table_name`. The client's retry policy is replaced by the adapter's own
    /// (standard mode, 4 attempts, backoff from 50 ms) and its timeouts bounded (5 s a try,
    /// 20 s a call), so that every failure surfaces, as retryable, in bounded time.
    pub fn new(client: aws_sdk_dynamodb::Client, table_name: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(SDK_MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_secs(2)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .build();
        DynamoStore {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: Arc::from(table_name.into()),
            clock,
            meter: Arc::new(CapacityMeter::default()),
            sealer: None,
        }
    }

    /// The store sealing endpoint signing secrets with `sealer` (a KMS key on AWS). A store
    /// without one refuses to write endpoints with secrets rather than store them in clear.
    #[must_use]
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Capacity consumed by this store (and its clones) so far.
    pub fn consumed(&self) -> ConsumedCapacity {
        self.meter.snapshot()
    }
}

/// Error codes that no retry can fix: the call or the deployment is wrong.
const PERMANENT_CODES: [&str; 5] = [
    "ValidationException",
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "SerializationException",
];

/// An SDK failure as the port's error, keeping the SDK error as the source.
pub(crate) fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    let message = match (&code, e.message()) {
        (Some(c), Some(m)) => format!("{what}: {c}: {m}"),
        (Some(c), None) => format!("{what}: {c}"),
        _ => what.to_owned(),
    };
    if code.as_deref().is_some_and(|c| PERMANENT_CODES.contains(&c)) {
        StoreError::Invalid {
            message,
            source: Some(Box::new(e)),
        }
    } else {
        StoreError::unavailable(message, e)
    }
}

/// Sleeps before retry number `attempt` (from 1): 25 ms doubling, capped at 800 ms, with full
/// jitter so that racing writers spread out.
async fn backoff(attempt: u32) {
    let cap = 25u64.saturating_mul(1 << attempt.min(5));
    let ms = rand::random_range(cap / 2..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
