//! The webhook sender port: one HTTP POST to a merchant endpoint.

use std::future::Future;
use std::time::Duration;

use crate::ports::{Classify, ErrorClass};

/// A signed delivery, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingWebhook {
    /// The endpoint URL.
    pub url: String,
    /// Headers (`content-type`, `webhook-id`, `webhook-timestamp`, `webhook-signature`).
    pub headers: Vec<(String, String)>,
    /// The JSON body, exactly as signed.
    pub body: String,
}

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// HTTP status (redirects are not followed, so 3xx comes back as is).
    pub status: u16,
    /// A `Retry-After` given in seconds or as a date.
    pub retry_after: Option<Duration>,
    /// The start of the body (at most 1 KiB).
    pub body_excerpt: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// How a delivery failed before any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    /// No answer within the timeout (15 s).
    Timeout,
    /// No connection (refused, reset, DNS failure).
    Connect,
    /// The destination resolves to a private, loopback or link-local address.
    ForbiddenDestination,
    /// The URL cannot be used.
    InvalidUrl,
}

/// A delivery that got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What kind of failure.
    pub kind: SendErrorKind,
    /// Details for the attempt record (no secrets).
    pub message: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl Classify for SendError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            // A timed-out delivery may have been processed: receivers dedupe by `webhook-id`.
            SendErrorKind::Timeout | SendErrorKind::Connect => ErrorClass::Retryable,
            SendErrorKind::ForbiddenDestination | SendErrorKind::InvalidUrl => ErrorClass::Permanent,
        }
    }
}

/// Sends one webhook.
pub trait WebhookSender: Send + Sync {
    /// POSTs `request`, without following redirects, within the sender's timeout.
    fn send(&self, request: &OutgoingWebhook) -> impl Future<Output = Result<WebhookResponse, SendError>> + Send;
}

/// The sender of a process that delivers nothing (the poller, the dispatcher, the provider
/// notifications): every send fails at once with nothing sent.
impl WebhookSender for () {
    async fn send(&self, _: &OutgoingWebhook) -> Result<WebhookResponse, SendError> {
        Err(SendError {
            kind: SendErrorKind::Connect,
            message: "this process does not deliver webhooks".into(),
            elapsed: Duration::ZERO,
        })
    }
}
