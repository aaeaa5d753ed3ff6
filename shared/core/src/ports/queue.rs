//! The task queue port: small typed, versioned JSON tasks on four queues.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{CashoutRequestId, EndpointId, EventId, PayoutReference, ProviderPayoutId, ReconciliationId};
use crate::ports::ProviderNotification;
use crate::ports::{BoxError, Classify, ErrorClass};
use crate::provider::{ProviderName, ProviderPayout};

crate::named::named_enum! {
    /// The four queues (each with a dead-letter queue), by the name in their URLs and tables.
    pub enum QueueName / UnknownQueue(32) {
        /// Approved requests to send to their provider.
        Dispatch = "dispatch",
        /// Provider status checks.
        Poll = "poll",
        /// Verified provider notifications, for the poller.
        ProviderEvents = "provider-events",
        /// Status events to publish and webhook deliveries.
        Callbacks = "callbacks",
    }
}

/// A text that names no queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a queue (dispatch, poll, provider-events, callbacks)")]
pub struct UnknownQueue(pub String);

/// A unit of work. Consumers are idempotent: any task may be delivered more than once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Send an `APPROVED` request to its provider.
    Dispatch {
        /// The request.
        cashout_request_id: CashoutRequestId,
    },
    /// Ask the provider for the request's payout status.
    Poll {
        /// The request.
        cashout_request_id: CashoutRequestId,
        /// The `next_check_at` this poll was scheduled for; a poll whose request has since been
        /// rescheduled is stale and dropped, so that at most one polling chain lives per request.
        /// `None`: an on-demand poll (a provider hinted at a change), which never reschedules.
        #[serde(default, with = "time::serde::rfc3339::option")]
        due_at: Option<OffsetDateTime>,
    },
    /// A provider told us something about a payout.
    ProviderEvent(ProviderEvent),
    /// Fan a status event out to the merchant's endpoints.
    PublishEvent {
        /// The event.
        event_id: EventId,
    },
    /// Deliver an event to one endpoint.
    Deliver {
        /// The event.
        event_id: EventId,
        /// The endpoint.
        endpoint_id: EndpointId,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Deliver an event again to one endpoint, even if it was delivered before (a replay the
    /// merchant or an operator asked for); a failure is not retried.
    Replay {
        /// The event.
        event_id: EventId,
        /// The endpoint.
        endpoint_id: EndpointId,
        /// Attempt number (after every earlier one).
        attempt: u32,
    },
    /// Deliver an operational event (it carries its body: it is stored nowhere else).
    DeliverNotice {
        /// The event.
        notice: crate::notice::Notice,
        /// The endpoint.
        endpoint_id: EndpointId,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Compare a period of our records with the providers' own: one bounded step, sent again
    /// until the run is done (so no consumer holds it longer than its timeout).
    Reconcile {
        /// The run.
        reconciliation_id: ReconciliationId,
        /// The run's version this step was queued for: a copy whose run has moved on since (a
        /// duplicate delivery, a redelivery after a lost acknowledgement) is stale and dropped,
        /// so that copies never multiply. `None`: any version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
}

impl Task {
    /// The queue the task travels on.
    pub const fn queue(&self) -> QueueName {
        match self {
            Task::Dispatch { .. } => QueueName::Dispatch,
            Task::Poll { .. } | Task::Reconcile { .. } => QueueName::Poll,
            Task::ProviderEvent { .. } => QueueName::ProviderEvents,
            Task::PublishEvent { .. } | Task::Deliver { .. } | Task::Replay { .. } | Task::DeliverNotice { .. } => {
                QueueName::Callbacks
            }
        }
    }
}

/// What a provider told us about a payout, for the poller: a hint to look it up (D24
/// notifications carry no status on purpose) or a verified status (Cascad callbacks).
///
/// On the wire it keeps the four fields tasks in flight were written with (`provider`,
/// `reference`, `payout_id`, `payout`), so that a deployment reads what the previous one queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ProviderEventWire", into = "ProviderEventWire")]
pub struct ProviderEvent {
    /// Which provider.
    pub provider: ProviderName,
    /// What it said.
    pub notification: ProviderNotification,
}

impl ProviderEvent {
    /// Our reference, when the notification carries it.
    pub fn reference(&self) -> Option<PayoutReference> {
        match &self.notification {
            ProviderNotification::Hint { reference, .. } => *reference,
            ProviderNotification::Status(payout) => payout.reference,
        }
    }

    /// The provider's payout id, when the notification carries it.
    pub fn payout_id(&self) -> Option<&ProviderPayoutId> {
        match &self.notification {
            ProviderNotification::Hint { payout_id, .. } => payout_id.as_ref(),
            ProviderNotification::Status(payout) => Some(&payout.payout_id),
        }
    }
}

/// [`ProviderEvent`] as queued: a status when `payout` is set, a hint otherwise.
#[derive(Serialize, Deserialize)]
struct ProviderEventWire {
    provider: ProviderName,
    reference: Option<PayoutReference>,
    payout_id: Option<ProviderPayoutId>,
    payout: Option<ProviderPayout>,
}

impl From<ProviderEventWire> for ProviderEvent {
    fn from(wire: ProviderEventWire) -> Self {
        let notification = match wire.payout {
            // Every version wrote the payout's own reference beside it; keep whichever is set.
            Some(mut payout) => {
                payout.reference = payout.reference.or(wire.reference);
                ProviderNotification::Status(payout)
            }
            None => ProviderNotification::Hint {
                reference: wire.reference,
                payout_id: wire.payout_id,
            },
        };
        ProviderEvent {
            provider: wire.provider,
            notification,
        }
    }
}

impl From<ProviderEvent> for ProviderEventWire {
    fn from(event: ProviderEvent) -> Self {
        let reference = event.reference();
        let payout_id = event.payout_id().cloned();
        let payout = match event.notification {
            ProviderNotification::Status(payout) => Some(payout),
            ProviderNotification::Hint { .. } => None,
        };
        ProviderEventWire {
            provider: event.provider,
            reference,
            payout_id,
            payout,
        }
    }
}

/// A task on the wire: versioned, with the time before which it must not run (queues cap native
/// delays, SQS at 900 s; a consumer that receives a task early sends it on again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEnvelope {
    /// Format version (1).
    pub v: u32,
    /// The work.
    pub task: Task,
    /// Do not run before this.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
}

impl TaskEnvelope {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// A task to run after `delay` from `now`.
    pub fn new(task: Task, now: OffsetDateTime, delay: Duration) -> Self {
        TaskEnvelope {
            v: Self::VERSION,
            task,
            not_before: super::clock::after(now, delay),
        }
    }

    /// The queue it travels on.
    pub fn queue(&self) -> QueueName {
        self.task.queue()
    }

    /// How long to wait at `now` before it may run (zero when due).
    pub fn remaining_delay(&self, now: OffsetDateTime) -> Duration {
        let left = self.not_before - now;
        if left.is_positive() {
            Duration::try_from(left).unwrap_or_default()
        } else {
            Duration::ZERO
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a body; a version this build does not know is an error.
    pub fn from_json(body: &str) -> Result<Self, QueueError> {
        let env: TaskEnvelope =
            serde_json::from_str(body).map_err(|e| QueueError::Malformed { message: e.to_string() })?;
        if env.v != Self::VERSION {
            return Err(QueueError::Malformed {
                message: format!("task format version {} is not supported", env.v),
            });
        }
        Ok(env)
    }
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Throttled, timed out or unreachable, after the adapter's bounded retries.
    #[error("the queue is unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A message body that is not a task this build understands.
    #[error("malformed task: {message}")]
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// A receipt that is unknown or no longer valid.
    #[error("unknown or expired receipt")]
    InvalidReceipt,
}

impl QueueError {
    /// An [`QueueError::Unavailable`] with its source.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        QueueError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::Unavailable { .. } => ErrorClass::Retryable,
            QueueError::Malformed { .. } | QueueError::InvalidReceipt => ErrorClass::Permanent,
        }
    }
}

/// The longest delay a task queue holds a task for (SQS's maximum, 15 minutes). A task due later
/// is sent on again when it arrives early; work due much later is better left to the sweep.
pub const MAX_TASK_DELAY: Duration = Duration::from_secs(900);

/// Sends tasks.
pub trait TaskQueue: Send + Sync {
    /// Enqueues a task on its queue, delayed until `not_before` (as far as the queue allows).
    fn send(&self, envelope: &TaskEnvelope) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Enqueues several tasks, each on its own queue: one write on the embedded queue; a
    /// backend without a batch sends them one by one. On an error some may have been sent
    /// (consumers are idempotent, so sending them all again is safe).
    fn send_batch(&self, envelopes: &[TaskEnvelope]) -> impl Future<Output = Result<(), QueueError>> + Send {
        async move {
            for envelope in envelopes {
                self.send(envelope).await?;
            }
            Ok(())
        }
    }
}

/// A handle to acknowledge or release a received message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(pub String);

/// A message taken from a queue, invisible to others until acknowledged or its visibility
/// timeout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTask {
    /// Acknowledge or release with this.
    pub receipt: Receipt,
    /// The raw body (decode with [`TaskEnvelope::from_json`]; a body that does not decode is
    /// released until it dead-letters).
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Pulls tasks (the embedded runner and the local SQS pump; on AWS, Lambda pulls).
pub trait TaskSource: Send + Sync {
    /// Up to `max` visible messages, hidden for `visibility`. Messages received more times than
    /// the queue's redrive limit are moved to its dead-letter queue instead of returned.
    fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<ReceivedTask>, QueueError>> + Send;

    /// Deletes a processed message.
    fn ack(&self, queue: QueueName, receipt: &Receipt) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Deletes several processed messages of `queue`: one write on the embedded queue. Returns
    /// how many the backend reports deleted (on SQLite a lapsed or repeated receipt deletes
    /// nothing; SQS accepts a repeated delete of a receipt it issued).
    fn ack_batch(
        &self,
        queue: QueueName,
        receipts: &[Receipt],
    ) -> impl Future<Output = Result<usize, QueueError>> + Send {
        async move {
            let mut held = 0;
            for receipt in receipts {
                match self.ack(queue, receipt).await {
                    Ok(()) => held += 1,
                    Err(QueueError::InvalidReceipt) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(held)
        }
    }

    /// Makes a message visible again after `delay` (a failed attempt).
    fn release(
        &self,
        queue: QueueName,
        receipt: &Receipt,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}
