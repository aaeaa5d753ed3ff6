//! Use-case errors. Each knows the HTTP status and the stable problem code it stands for, so the
//! routers map them without thinking; the `source()` chain is kept for the logs.

use cashout_core::cashout::TransitionError;
use cashout_core::ids::{CashoutRequestId, InvoiceId};
use cashout_core::ports::{Classify, ErrorClass, ProviderError, QueueError, StoreError};
use cashout_core::validation::ValidationErrors;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not of the expected shape (unknown field, wrong type).
    #[error("the body does not match the schema: {0}")]
    InvalidBody(String),
    /// The body is over the size limit (1 MiB).
    #[error("the body is larger than 1 MiB")]
    BodyTooLarge,
    /// Field-level problems.
    #[error("invalid fields: {0}")]
    Validation(ValidationErrors),
    /// A required header is missing or invalid.
    #[error("{0}")]
    BadHeader(&'static str),
    /// A query parameter or path segment is invalid.
    #[error("{0}")]
    BadParameter(String),
    /// No valid API key.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    /// The key may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A provider notification that does not parse or verify.
    #[error("invalid notification: {0}")]
    InvalidNotification(String),
    /// Nothing there (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The status machine refuses.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The provider refuses to cancel (the payout is past cancellation).
    #[error("the provider cannot cancel this payout any more: {0}")]
    NotCancellable(String),
    /// The payout cannot be held or released now (the provider has no hold, the payout is past
    /// it, or its provider id is not known yet).
    #[error("the payout cannot be held or released: {0}")]
    HoldRefused(String),
    /// The merchant already has the most webhook endpoints allowed.
    #[error("at most {0} webhook endpoints per merchant: delete one first")]
    EndpointLimit(usize),
    /// A dispatch is under way and its outcome is not known yet.
    #[error("the payout is being sent to the provider; try again in a minute")]
    DispatchInProgress,
    /// The provider holds a live payout for the request: it cannot be ended here.
    #[error("the provider holds a payout for this request ({0}); cancel it, or wait for its outcome")]
    ProviderHoldsPayout(String),
    /// One of the invoices is advanced by another request that has not let it go.
    #[error("invoice {invoice_id} of payer {payer_tax_id} is already advanced by cashout request {holder}")]
    InvoiceInUse {
        /// The merchant's invoice id.
        invoice_id: InvoiceId,
        /// Its payer's tax id.
        payer_tax_id: String,
        /// The request that holds it.
        holder: CashoutRequestId,
    },
    /// The same `Idempotency-Key` was used with another body.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    /// The first request with this `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    /// Another writer changed the request at the same moment, repeatedly.
    #[error("the cashout request changed concurrently; try again")]
    Contended,
    /// More work is waiting than the workers can finish soon: the create is refused before
    /// anything is written (backpressure); retry after `retry_after_s` seconds.
    #[error("cashout has {backlog} tasks waiting (limit {limit}); retry in {retry_after_s} s")]
    Overloaded {
        /// Tasks waiting, as last measured.
        backlog: u64,
        /// The configured bound.
        limit: u64,
        /// The `Retry-After` answered.
        retry_after_s: u64,
    },
    /// The caller is over its rate limit (or its address over its failed authentications):
    /// refused before anything is read or written; retry after `retry_after_s` seconds.
    #[error("too many requests: over the rate limit; retry in {retry_after_s} s")]
    RateLimited {
        /// The `Retry-After` answered (whole seconds, 1 to 60).
        retry_after_s: u64,
    },
    /// A store failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A queue failure.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// A provider failure.
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
    /// A fault of ours that no caller input explains (a response we cannot serialise, a task on
    /// the wrong queue, a signature we cannot compute): 500, details in the logs only.
    #[error("the routing rule is at version {actual}, not {expected}: read it again")]
    RuleChanged { expected: u64, actual: u64 },
    #[error("internal: {0}")]
    Internal(String),
    /// What is being created exists already, or changed since it was read.
    #[error("{0}")]
    Conflict(String),
}

impl AppError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            AppError::InvalidJson(_)
            | AppError::BadHeader(_)
            | AppError::BadParameter(_)
            | AppError::InvalidNotification(_) => 400,
            AppError::Unauthorized => 401,
            AppError::BodyTooLarge => 413,
            AppError::Forbidden(_) => 403,
            AppError::NotFound => 404,
            AppError::InvalidBody(_) | AppError::Validation(_) | AppError::IdempotencyMismatch => 422,
            AppError::Transition(_)
            | AppError::NotCancellable(_)
            | AppError::HoldRefused(_)
            | AppError::DispatchInProgress
            | AppError::ProviderHoldsPayout(_)
            | AppError::InvoiceInUse { .. }
            | AppError::IdempotencyInProgress
            | AppError::EndpointLimit(_)
            | AppError::RuleChanged { .. }
            | AppError::Conflict(_)
            | AppError::Contended => 409,
            AppError::Overloaded { .. } | AppError::RateLimited { .. } => 429,
            AppError::Store(StoreError::Invalid { .. }) => 400,
            AppError::Store(e) if e.class() == ErrorClass::Retryable => 503,
            AppError::Queue(QueueError::Unavailable { .. }) => 503,
            AppError::Provider(e) if e.class() != ErrorClass::Permanent => 503,
            AppError::Provider(_) => 502,
            AppError::Store(_) | AppError::Queue(_) | AppError::Internal(_) => 500,
        }
    }

    /// The stable problem code (also the last segment of the problem `type`).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidJson(_) => "invalid_json",
            AppError::InvalidBody(_) => "invalid_body",
            AppError::Validation(_) => "validation_failed",
            AppError::BadHeader(_) => "invalid_header",
            AppError::BadParameter(_) => "invalid_parameter",
            AppError::Unauthorized => "unauthorized",
            AppError::BodyTooLarge => "body_too_large",
            AppError::Forbidden(_) => "forbidden",
            AppError::InvalidNotification(_) => "invalid_notification",
            AppError::NotFound => "not_found",
            AppError::Transition(TransitionError::ProviderMayHold | TransitionError::DispatchLeased { .. }) => {
                "dispatch_in_progress"
            }
            AppError::Transition(TransitionError::AlreadyApproved(_)) => "already_approved",
            AppError::Transition(_) => "invalid_transition",
            AppError::NotCancellable(_) => "not_cancellable",
            AppError::HoldRefused(_) => "hold_refused",
            AppError::DispatchInProgress => "dispatch_in_progress",
            AppError::EndpointLimit(_) => "endpoint_limit_reached",
            AppError::ProviderHoldsPayout(_) => "provider_holds_payout",
            AppError::InvoiceInUse { .. } => "invoice_in_use",
            AppError::IdempotencyMismatch => "idempotency_key_reused",
            AppError::IdempotencyInProgress => "idempotency_in_progress",
            AppError::Contended => "concurrent_update",
            AppError::RuleChanged { .. } => "version_conflict",
            AppError::Conflict(_) => "conflict",
            AppError::Overloaded { .. } => "overloaded",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Store(StoreError::Invalid { .. }) => "invalid_parameter",
            AppError::Store(_) | AppError::Queue(_) => "unavailable",
            AppError::Provider(_) => "provider_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// Whether the failure is worth retrying (a task is redelivered).
    pub fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.class() == ErrorClass::Retryable,
            AppError::Queue(e) => e.class() == ErrorClass::Retryable,
            AppError::Provider(e) => e.class() != ErrorClass::Permanent,
            AppError::Contended
            | AppError::DispatchInProgress
            | AppError::IdempotencyInProgress
            | AppError::Overloaded { .. }
            | AppError::RateLimited { .. } => true,
            _ => false,
        }
    }

    /// Whether the details are safe and useful to show to the caller (internal failures show a
    /// generic text; their details go to the logs).
    pub fn is_client_error(&self) -> bool {
        self.status() < 500
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Data => AppError::InvalidBody(without_values(&e.to_string())),
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => AppError::InvalidJson(e.to_string()),
        }
    }
}

/// serde's message without the value it quotes (`invalid type: integer `987650001234567`, expected
/// a string` → `invalid type: integer, expected a string`): a body's values may be account
/// numbers, and problem details are echoed to clients and logs. The kind, the expectation and the
/// position stay.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "unknown variant "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, tail) = match rest.find(", expected") {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let kind = unexpected.split(['`', '"']).next().unwrap_or_default().trim_end();
            let prefix = prefix.trim_end();
            return if kind.is_empty() {
                format!("{prefix}{tail}")
            } else {
                format!("{prefix} {kind}{tail}")
            };
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_faults_are_500s_whose_details_stay_in_the_logs() {
        let e = AppError::Internal("a poll task reached the dispatch consumer".into());
        assert_eq!((e.status(), e.code()), (500, "internal_error"));
        assert!(!e.is_client_error(), "details are not shown to the caller");
        assert!(!e.is_retryable(), "the same task would fail the same way");
    }

    #[test]
    fn an_unknown_name_in_a_body_is_refused_without_echoing_it() {
        let e: AppError = serde_json::from_str::<cashout_core::provider::ProviderName>(r#""0001234567890""#)
            .unwrap_err()
            .into();
        assert_eq!(e.code(), "invalid_body");
        assert!(!e.to_string().contains("0001234567890"), "{e}");
        assert!(e.to_string().contains("expected one of `d24`"), "{e}");
    }

    fn schema_error(json: &str) -> String {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Kind {
            C,
            S,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            account: Option<String>,
            kind: Option<Kind>,
            n: Option<u8>,
        }
        let e = serde_json::from_str::<Body>(json).unwrap_err();
        AppError::from(e).to_string()
    }

    #[test]
    fn schema_errors_name_the_kind_and_position_but_never_the_value() {
        let m = schema_error(r#"{"account": 987650001234567}"#);
        assert_eq!(
            m,
            "the body does not match the schema: invalid type: integer, expected a string at line 1 column 27"
        );
        let m = schema_error(r#"{"kind": "987650001234567"}"#);
        assert!(m.contains("unknown variant, expected `C` or `S`"), "{m}");
        assert!(!m.contains("98765"), "{m}");
        let m = schema_error(r#"{"n": 987650001234567}"#);
        assert!(m.contains("invalid value: integer, expected u8"), "{m}");
        assert!(!m.contains("98765"), "{m}");
        let m = schema_error(r#"{"account": ["987650001234567"]}"#);
        assert!(!m.contains("98765"), "{m}");
    }
}
