//! The store port: everything cashout remembers.
//!
//! The rules every adapter keeps (the conformance suite in `cashout-store` checks them):
//! - a [`Change`] is written only if the stored version is still `expected_version`, together
//!   with its events, atomically; otherwise [`StoreError::Conflict`] and nothing is written;
//! - a creation writes the request, its first event and the idempotency record atomically, or,
//!   if a live record exists for the key, writes nothing and returns it;
//! - nothing is lost once a call returned `Ok`.

use std::future::Future;

use time::{Date, OffsetDateTime};

use crate::auth::{ApiKeyHash, ApiKeyRecord, OperatorName, OperatorRecord, SessionRecord};
use crate::cashout::{CashoutRequest, Change};
use crate::claim::InvoiceClaim;
use crate::event::StatusEvent;
use crate::health::ProviderHealth;
use crate::ids::{
    CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId, ReconciliationId,
    RoutingRuleId,
};
use crate::money::Currency;
use crate::ports::{BoxError, Classify, ErrorClass};
use crate::provider::ProviderName;
use crate::reconcile::{Difference, Reconciliation};
use crate::review::{ApprovalPolicy, PolicyScope};
use crate::routing::RoutingRule;
use crate::status::CashoutStatus;
use crate::webhook::{DeliveryAttempt, WebhookEndpoint};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The item does not exist.
    #[error("not found")]
    NotFound,
    /// Someone else changed the request first (its version is no longer the expected one).
    #[error("version conflict: the request is no longer at version {expected}")]
    Conflict {
        /// The version the change expected.
        expected: u64,
    },
    /// Throttled, timed out or unreachable, after the adapter's own bounded retries.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The call itself is invalid (a malformed cursor, an item over the size limit).
    #[error("invalid store call: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Stored data could not be read back.
    #[error("stored data is unreadable: {message}")]
    Corrupt {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// An [`StoreError::Unavailable`] with its source.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`StoreError::Invalid`] without a source.
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid {
            message: message.into(),
            source: None,
        }
    }

    /// A [`StoreError::Corrupt`] with its source.
    pub fn corrupt(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Corrupt {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Conflict { .. } | StoreError::Unavailable { .. } => ErrorClass::Retryable,
            StoreError::NotFound | StoreError::Invalid { .. } | StoreError::Corrupt { .. } => ErrorClass::Permanent,
        }
    }
}

/// The response first given to an idempotent request, replayed for the same key and body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// Where an idempotent create stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdempotencyState {
    /// A writer is finishing it. If the writer crashed, the record can be reclaimed after
    /// `until` (AWS Powertools semantics).
    InProgress {
        /// When a crashed writer's claim lapses.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    /// Finished: replay this response.
    Completed {
        /// What was answered.
        response: StoredResponse,
    },
}

/// The idempotency record of one (merchant, `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyRecord {
    /// The merchant (keys are per merchant).
    pub merchant_id: MerchantId,
    /// The client's key.
    pub key: IdempotencyKey,
    /// Hex SHA-256 of the canonical request body.
    pub body_hash: String,
    /// The request created under this key.
    pub cashout_request_id: CashoutRequestId,
    /// In progress or completed.
    pub state: IdempotencyState,
    /// After this the record is treated as absent (and deleted by TTL): 24 h after creation.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl IdempotencyRecord {
    /// How long a key is remembered.
    pub const TTL: time::Duration = time::Duration::hours(24);
    /// How long a writer's claim lasts before another may take over.
    pub const IN_PROGRESS_EXPIRY: time::Duration = time::Duration::seconds(60);

    /// The in-progress record a creation writes.
    pub fn begin(
        merchant_id: MerchantId,
        key: IdempotencyKey,
        body_hash: String,
        cashout_request_id: CashoutRequestId,
        now: OffsetDateTime,
    ) -> Self {
        IdempotencyRecord {
            merchant_id,
            key,
            body_hash,
            cashout_request_id,
            state: IdempotencyState::InProgress {
                until: now + Self::IN_PROGRESS_EXPIRY,
            },
            expires_at: now + Self::TTL,
        }
    }

    /// Whether the record still counts at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }

    /// The completed record a creation writes when its answer is known before the write (the
    /// review decided in the same step): a replay is answered from it at once, and no
    /// in-progress window exists.
    pub fn completed(
        merchant_id: MerchantId,
        key: IdempotencyKey,
        body_hash: String,
        cashout_request_id: CashoutRequestId,
        response: StoredResponse,
        now: OffsetDateTime,
    ) -> Self {
        IdempotencyRecord {
            merchant_id,
            key,
            body_hash,
            cashout_request_id,
            state: IdempotencyState::Completed { response },
            expires_at: now + Self::TTL,
        }
    }

    /// What every store checks before [`CashoutStore::create_request`] writes: the record is
    /// `request`'s (same id, same merchant). It may be in progress (the answer comes later,
    /// [`CashoutStore::complete_idempotency`]) or completed with the answer.
    pub fn check_creation(&self, request: &CashoutRequest) -> Result<(), StoreError> {
        if self.cashout_request_id != request.id() || &self.merchant_id != request.merchant_id() {
            return Err(StoreError::invalid("the idempotency record is not the request's"));
        }
        Ok(())
    }
}

/// What a creation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The request, its first event, the idempotency record and the request's invoice claims
    /// were written.
    Created,
    /// A live record already exists for the key; nothing was written.
    Existing(IdempotencyRecord),
    /// Another request holds one of the invoices (and was not named as releasing it); nothing
    /// was written. The caller decides whether the holder lets it go, and tries again naming it.
    InvoiceHeld(InvoiceClaim),
}

/// An opaque position in a listing, produced by the adapter that reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(pub String);

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<Cursor>,
}

/// A listing of a merchant's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only requests in this status.
    pub status: Option<CashoutStatus>,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// A listing of the requests that changed in a time range: those with at least one status
/// event whose `occurred_at` is in `[from, to)` (a creation is an event, so every request
/// created in the range is in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedQuery {
    /// The range's first instant.
    pub from: OffsetDateTime,
    /// The first instant after the range.
    pub to: OffsetDateTime,
    /// Only this merchant's requests (`None`: every merchant's).
    pub merchant_id: Option<MerchantId>,
    /// Page size, 1 to 1,000.
    pub limit: u32,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// A request whose next check is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRequest {
    /// The request.
    pub id: CashoutRequestId,
    /// When its check was due.
    pub next_check_at: OffsetDateTime,
}

/// A listing of a merchant's status events across its requests, newest first (`occurred_at`,
/// then request and sequence, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events of these types (every type when empty).
    pub types: Vec<crate::event::EventType>,
    /// Only this request's events.
    pub cashout_request_id: Option<CashoutRequestId>,
    /// Only events at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub until: Option<OffsetDateTime>,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// Requests, their events, idempotency records and the provider-reference index.
pub trait CashoutStore: Send + Sync {
    /// Writes a new request (a [`CashoutRequest::create`] change) with its first event, the
    /// in-progress idempotency record and a claim on each of its invoices
    /// ([`CashoutRequest::invoice_keys`]), atomically; or, if a live record exists for the key,
    /// nothing, returning the record. Records past `expires_at` count as absent and are
    /// replaced.
    ///
    /// An invoice is claimed if no claim exists, or if its claim is still exactly one of
    /// `released` (a holder the caller found letting it go: the claim is taken over on the
    /// condition that it did not move since). Otherwise nothing is written and the claim that
    /// stands in the way is returned. Two creates racing for one invoice: one wins.
    ///
    /// An adapter whose transactions cannot hold every claim (DynamoDB: 100 items) claims in
    /// steps, removes its claims when one is held, and leaves claims behind only if it dies
    /// between the steps; those name a request that never existed and lapse after
    /// [`ORPHAN_CLAIM_EXPIRY`](crate::claim::ORPHAN_CLAIM_EXPIRY).
    fn create_request(
        &self,
        change: &Change,
        idempotency: &IdempotencyRecord,
        released: &[InvoiceClaim],
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// Takes over an in-progress record whose writer's claim lapsed: succeeds (`true`) only if
    /// the record is still in progress with the same `until` as `observed`, and sets a new
    /// `until`. Two callers racing: one wins.
    fn reclaim_idempotency(
        &self,
        observed: &IdempotencyRecord,
        new_until: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a record completed with the response to replay.
    fn complete_idempotency(
        &self,
        merchant_id: &MerchantId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One request.
    fn get_request(
        &self,
        id: CashoutRequestId,
    ) -> impl Future<Output = Result<Option<CashoutRequest>, StoreError>> + Send;

    /// A merchant's requests, newest first, optionally of one status.
    fn list_requests(
        &self,
        merchant_id: &MerchantId,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Page<CashoutRequest>, StoreError>> + Send;

    /// Writes a change if the stored version is still `change.expected_version`, with its
    /// events (unpublished) and, when the change added a provider reference, the
    /// provider-reference index item; all or nothing. A lost race is
    /// [`StoreError::Conflict`].
    fn apply_change(&self, change: &Change) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A request's events in sequence order.
    fn list_events(&self, id: CashoutRequestId) -> impl Future<Output = Result<Vec<StatusEvent>, StoreError>> + Send;

    /// A merchant's events across its requests ([`EventQuery`]), newest first; a page holds at
    /// most `limit` events and may be short (or empty) with a next cursor when filters dropped
    /// what it read.
    fn list_merchant_events(
        &self,
        merchant_id: &MerchantId,
        query: &EventQuery,
    ) -> impl Future<Output = Result<Page<StatusEvent>, StoreError>> + Send;

    /// One event.
    fn get_event(&self, id: EventId) -> impl Future<Output = Result<Option<StatusEvent>, StoreError>> + Send;

    /// Events not yet published to the callbacks queue that occurred before `before`, oldest
    /// first (the outbox sweep).
    fn unpublished_events(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StatusEvent>, StoreError>> + Send;

    /// Marks an event published (idempotent).
    fn mark_published(&self, id: EventId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks several events published: one write on the embedded store; one by one elsewhere.
    fn mark_published_batch(&self, ids: &[EventId]) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for id in ids {
                self.mark_published(*id).await?;
            }
            Ok(())
        }
    }

    /// The request a provider payout belongs to.
    fn find_by_provider_reference(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
    ) -> impl Future<Output = Result<Option<CashoutRequestId>, StoreError>> + Send;

    /// The requests that changed in a time range ([`ChangedQuery`]): each exactly once over the
    /// whole listing, in an order of the adapter's choosing that does not change while it is
    /// paged, with the request as it is now. A page holds at most `limit` requests and reads a
    /// bounded amount, whatever the range's size (statements of a month stream through it).
    fn list_changed_requests(
        &self,
        query: &ChangedQuery,
    ) -> impl Future<Output = Result<Page<CashoutRequest>, StoreError>> + Send;

    /// Requests whose `next_check_at` is at or before `now`, earliest first.
    fn due_requests(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueRequest>, StoreError>> + Send;
}

/// Merchant webhook endpoints and the record of every delivery attempt.
pub trait WebhookStore: Send + Sync {
    /// Creates an endpoint (at version 1) if its merchant has fewer than `max`; otherwise writes
    /// nothing and answers [`EndpointCreated::LimitReached`](crate::webhook::EndpointCreated).
    /// Concurrent creations cannot pass `max` together. An endpoint with its id already stored
    /// is [`StoreError::Conflict`] (expected 0), and nothing is written.
    fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        max: usize,
    ) -> impl Future<Output = Result<crate::webhook::EndpointCreated, StoreError>> + Send;

    /// Replaces an endpoint whose stored version is `expected_version` (an endpoint stored
    /// before versions is at 0); `endpoint.version` must be `expected_version + 1`
    /// ([`StoreError::Invalid`] otherwise). [`StoreError::Conflict`] if another write came first,
    /// [`StoreError::NotFound`] if there is none; nothing is written then.
    fn replace_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One of a merchant's endpoints.
    fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> impl Future<Output = Result<Option<WebhookEndpoint>, StoreError>> + Send;

    /// A merchant's endpoints, oldest first.
    fn list_endpoints(
        &self,
        merchant_id: &MerchantId,
    ) -> impl Future<Output = Result<Vec<WebhookEndpoint>, StoreError>> + Send;

    /// Deletes an endpoint, freeing its place under the creation limit; `false` if there was
    /// none.
    fn delete_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Claims attempt number `attempt.attempt` of its event to its endpoint before sending
    /// (`attempt.outcome` is `Sending`): writes it if no attempt with that number is stored, or
    /// if the stored one is a claim (`Sending`) made before `stale_before` (its sender died
    /// before recording the answer). `true` if this call holds the claim; two callers racing:
    /// one wins.
    fn claim_attempt(
        &self,
        attempt: &DeliveryAttempt,
        stale_before: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records an attempt (idempotent per event, endpoint and attempt number).
    fn record_attempt(&self, attempt: &DeliveryAttempt) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An endpoint's attempts, newest first.
    fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page<DeliveryAttempt>, StoreError>> + Send;

    /// Every attempt of one event, to every endpoint, in attempt order.
    fn list_event_attempts(
        &self,
        event_id: EventId,
    ) -> impl Future<Output = Result<Vec<DeliveryAttempt>, StoreError>> + Send;
}

/// API keys, by hash.
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key (idempotent).
    fn put_api_key(&self, record: &ApiKeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Looks a key up by its hash.
    fn get_api_key(&self, hash: &ApiKeyHash) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;
}

/// Routing rules and provider health: small, shared by every function, read on every approval
/// and dispatch.
pub trait RoutingStore: Send + Sync {
    /// Every routing rule (at most [`crate::routing::rules::MAX_RULES`]), in no given order.
    fn list_routing_rules(&self) -> impl Future<Output = Result<Vec<RoutingRule>, StoreError>> + Send;

    /// One rule.
    fn get_routing_rule(
        &self,
        id: RoutingRuleId,
    ) -> impl Future<Output = Result<Option<RoutingRule>, StoreError>> + Send;

    /// Creates a rule (`expected_version` 0: none with its id may exist) or replaces one whose
    /// stored version is `expected_version`; `rule.version` is the version written.
    /// [`StoreError::Conflict`] otherwise. A creation beyond
    /// [`crate::routing::rules::MAX_RULES`] rules is [`StoreError::Invalid`].
    fn put_routing_rule(
        &self,
        rule: &RoutingRule,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a rule; `false` if there was none.
    fn delete_routing_rule(&self, id: RoutingRuleId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One provider's health, if it was ever written.
    fn get_provider_health(
        &self,
        provider: ProviderName,
    ) -> impl Future<Output = Result<Option<ProviderHealth>, StoreError>> + Send;

    /// Every provider's health that was ever written.
    fn list_provider_health(&self) -> impl Future<Output = Result<Vec<ProviderHealth>, StoreError>> + Send;

    /// Writes a provider's health if its stored version is `expected_version` (0: none stored);
    /// `health.version` is the version written. [`StoreError::Conflict`] otherwise.
    fn put_provider_health(
        &self,
        health: &ProviderHealth,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Reconciliation runs and the differences they found.
pub trait ReconciliationStore: Send + Sync {
    /// Creates a run (`expected_version` 0: none with its id may exist) or replaces one whose
    /// stored version is `expected_version`; `run.version` must be `expected_version + 1`.
    /// [`StoreError::Conflict`] otherwise.
    fn put_reconciliation(
        &self,
        run: &Reconciliation,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One run.
    fn get_reconciliation(
        &self,
        id: ReconciliationId,
    ) -> impl Future<Output = Result<Option<Reconciliation>, StoreError>> + Send;

    /// Records differences of a run, idempotent per [`Difference::key`] (the same key again
    /// replaces the earlier one). At most 25 per call.
    fn put_differences(
        &self,
        id: ReconciliationId,
        differences: &[Difference],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A run's differences in key order, paged (`limit` 1 to 100).
    fn list_differences(
        &self,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page<Difference>, StoreError>> + Send;
}

/// Operators, approval policies, review facts and browser sessions: the people side of cashout.
/// Small items, read on review, on every operator call and on every console page.
pub trait PeopleStore: Send + Sync {
    /// Creates an operator (`expected_version` 0: none with its name may exist) or replaces one
    /// whose stored version is `expected_version`; `record.version` must be
    /// `expected_version + 1`. [`StoreError::Conflict`] otherwise.
    fn put_operator(
        &self,
        record: &OperatorRecord,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One operator.
    fn get_operator(
        &self,
        name: &OperatorName,
    ) -> impl Future<Output = Result<Option<OperatorRecord>, StoreError>> + Send;

    /// Every operator (revoked ones too), by name. A deployment has tens, not thousands.
    fn list_operators(&self) -> impl Future<Output = Result<Vec<OperatorRecord>, StoreError>> + Send;

    /// Creates or replaces a policy on its version, as [`Self::put_operator`].
    fn put_policy(
        &self,
        policy: &ApprovalPolicy,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One policy.
    fn get_policy(
        &self,
        scope: &PolicyScope,
    ) -> impl Future<Output = Result<Option<ApprovalPolicy>, StoreError>> + Send;

    /// Every stored policy (at most one per merchant plus the default).
    fn list_policies(&self) -> impl Future<Output = Result<Vec<ApprovalPolicy>, StoreError>> + Send;

    /// Deletes a policy; `false` if there was none.
    fn delete_policy(&self, scope: &PolicyScope) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one more request of `merchant` on `day` with `amount_minor` (minor units of
    /// `currency`) atomically, and returns the day's totals with it: the count across every
    /// currency and the amount in `currency`. Two concurrent calls never read the same totals.
    fn add_day_usage(
        &self,
        merchant: &MerchantId,
        day: Date,
        currency: Currency,
        amount_minor: i64,
    ) -> impl Future<Output = Result<DayUsageCount, StoreError>> + Send;

    /// Whether a payout to this beneficiary fingerprint
    /// ([`CashoutRequest::beneficiary_fingerprint`]) was recorded as paid for this merchant.
    fn beneficiary_known(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that a payout to this fingerprint was paid (idempotent).
    fn remember_beneficiary(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new session (its `token_hash` must be new: [`StoreError::Conflict`] otherwise).
    /// Adapters with expiry (DynamoDB TTL) drop it some time after `expires_at`.
    fn put_session(&self, session: &SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A session by its token's hash, expired or not (the caller checks `expires_at`).
    fn get_session(&self, token_hash: &str) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Ends a session (idempotent): `true` when this call removed it, so that of concurrent
    /// calls exactly one learns it did (a single-use portal link is taken this way).
    fn delete_session(&self, token_hash: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A merchant's day totals after [`PeopleStore::add_day_usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayUsageCount {
    /// Requests counted that day, every currency, this one included.
    pub count: u64,
    /// Minor units counted that day in the call's currency, this one included.
    pub amount_minor: i64,
}

/// What operators work through, across every merchant: the requests waiting for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkList {
    /// `UNDER_REVIEW`, oldest request first.
    Review,
    /// `PAYMENT_PROCESSOR_ERROR`, oldest request first.
    ProcessorError,
    /// Flagged for a person (any status), oldest request first.
    Attention,
}

/// Cross-merchant listings for operators.
pub trait WorkStore: Send + Sync {
    /// The requests of a work list, oldest `request_date` first (ties by id), paged (`limit`
    /// 1 to 100). A request leaves the list with the change that ends its reason to be there.
    fn list_work(
        &self,
        list: WorkList,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page<CashoutRequest>, StoreError>> + Send;

    /// Deliveries given up: attempts that failed with no next attempt scheduled
    /// (`next_attempt_at` null and an outcome other than success), newest `attempted_at` first,
    /// every merchant, paged (`limit` 1 to 100). A later successful redelivery does not remove
    /// one; the caller checks the event's later attempts.
    fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> impl Future<Output = Result<Page<DeliveryAttempt>, StoreError>> + Send;
}

/// Everything a deployment's store provides.
pub trait Store:
    CashoutStore
    + WebhookStore
    + ApiKeyStore
    + RoutingStore
    + ReconciliationStore
    + PeopleStore
    + WorkStore
    + crate::ports::RateLimitStore
{
}

impl<T> Store for T where
    T: CashoutStore
        + WebhookStore
        + ApiKeyStore
        + RoutingStore
        + ReconciliationStore
        + PeopleStore
        + WorkStore
        + crate::ports::RateLimitStore
{
}

/// What every store checks of a change before it writes anything: a creation, and only a
/// creation, expects version 0; the new version follows the expected one; every event is the
/// request's.
pub fn check_change(change: &Change, creation: bool) -> Result<(), StoreError> {
    let id = change.request.id();
    if creation != (change.expected_version == 0) {
        return Err(StoreError::invalid(if creation {
            "a creation must expect version 0"
        } else {
            "a change to an existing request cannot expect version 0"
        }));
    }
    if change.request.version() != change.expected_version + 1 {
        return Err(StoreError::invalid(format!(
            "the new version {} does not follow {}",
            change.request.version(),
            change.expected_version
        )));
    }
    if let Some(e) = change.events.iter().find(|e| e.cashout_request_id != id) {
        return Err(StoreError::invalid(format!(
            "event {} belongs to another request",
            e.id
        )));
    }
    Ok(())
}
