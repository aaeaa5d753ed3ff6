//! The ports: what the use cases need from the outside world, as traits. Adapters implement
//! them (DynamoDB, SQS, SQLite, HTTP providers, reqwest); tests implement them in memory.
//!
//! Methods return `impl Future + Send` (no macro); handlers are generic over the traits and each
//! binary picks one implementation. Every error says whether retrying can help
//! ([`ErrorClass`]).

mod clock;
mod limits;
mod provider;
mod queue;
mod sender;
mod store;

pub use clock::{Clock, IdGenerator, MAX_DELAY, ManualClock, SequentialIds, SystemClock, SystemIds, after};
pub use limits::RateLimitStore;
pub use provider::{
    HoldAction, InboundNotification, MethodField, PayoutMethod, PayoutMethodQuery, PayoutOrder, PayoutProvider,
    ProviderError, ProviderErrorKind, ProviderNotification, ProviderRecordPage,
};
pub use queue::{
    MAX_TASK_DELAY, ProviderEvent, QueueError, QueueName, Receipt, ReceivedTask, Task, TaskEnvelope, TaskQueue,
    TaskSource,
};
pub use sender::{OutgoingWebhook, SendError, SendErrorKind, WebhookResponse, WebhookSender};
pub use store::EventQuery;
pub use store::{
    ApiKeyStore, CashoutStore, ChangedQuery, CreateOutcome, Cursor, DayUsageCount, DueRequest, IdempotencyRecord,
    IdempotencyState, ListQuery, Page, PeopleStore, ReconciliationStore, RoutingStore, Store, StoreError,
    StoredResponse, WebhookStore, WorkList, WorkStore, check_change,
};

/// Whether an operation that failed may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing happened; the same call may succeed later (throttling, timeouts before sending,
    /// version conflicts after a reload).
    Retryable,
    /// It may or may not have happened (a timeout or 5xx after a create was sent). Find out
    /// before doing it again.
    Ambiguous,
    /// It did not happen and will not happen by retrying.
    Permanent,
}

/// Errors that know their [`ErrorClass`].
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
}

/// A boxed source error, kept for the `source()` chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
