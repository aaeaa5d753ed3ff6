//! The task queues on SQS: each task goes to its queue's URL as its JSON envelope, with message
//! attributes for tracing (`task_type`, `task_version`). Delays are SQS delays, at
//! most 900 s: a task due later is sent with 900 s and its consumer sends it on again (the
//! envelope's `not_before` says when it is really due). Redelivery and dead-lettering are SQS's
//! own (the redrive policy of `infra/template.yaml`). A receive returns at most 10 messages (the
//! SQS limit), whatever `max` asks.
//!
//! Throttling, 5xx and timeouts are retried by the SDK (standard mode, 4 attempts, bounded
//! timeouts), then surface as [`QueueError::Unavailable`]. Request counts are kept per API call
//! ([`SqsRequests`]) for the cost model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use cashout_core::ports::{Clock, QueueError, QueueName, Receipt, ReceivedTask, TaskEnvelope, TaskQueue, TaskSource};

use crate::inspect::{DeadLetter, QueueDepth, QueueInspect};

/// The longest delay SQS takes.
pub const MAX_DELAY: Duration = cashout_core::ports::MAX_TASK_DELAY;
/// The longest visibility timeout SQS takes (12 h).
const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);
/// The most messages one receive returns.
const MAX_BATCH: usize = 10;

/// The URL of every queue and of its dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls {
    main: BTreeMap<QueueName, String>,
    dead_letter: BTreeMap<QueueName, String>,
}

impl QueueUrls {
    /// Records a queue's URL and its dead-letter queue's.
    pub fn insert(&mut self, queue: QueueName, url: String, dead_letter_url: String) {
        self.main.insert(queue, url);
        self.dead_letter.insert(queue, dead_letter_url);
    }

    /// A queue's URL.
    pub fn url(&self, queue: QueueName) -> Option<&str> {
        self.main.get(&queue).map(String::as_str)
    }

    /// A queue's dead-letter queue URL.
    pub fn dead_letter_url(&self, queue: QueueName) -> Option<&str> {
        self.dead_letter.get(&queue).map(String::as_str)
    }
}

/// SQS API requests made so far (each is one billed request; a receive that returned nothing
/// is counted apart, as it is the cost of polling an idle queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqsRequests {
    /// `SendMessage`.
    pub send: u64,
    /// `ReceiveMessage` that returned messages.
    pub receive: u64,
    /// `ReceiveMessage` that returned none.
    pub empty_receive: u64,
    /// `DeleteMessage`.
    pub delete: u64,
    /// `ChangeMessageVisibility`.
    pub change_visibility: u64,
    /// `GetQueueAttributes` and dead-letter reads.
    pub other: u64,
}

impl SqsRequests {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.send + self.receive + self.empty_receive + self.delete + self.change_visibility + self.other
    }

    /// What was requested between `earlier` and this snapshot.
    pub fn since(&self, earlier: &SqsRequests) -> SqsRequests {
        SqsRequests {
            send: self.send.saturating_sub(earlier.send),
            receive: self.receive.saturating_sub(earlier.receive),
            empty_receive: self.empty_receive.saturating_sub(earlier.empty_receive),
            delete: self.delete.saturating_sub(earlier.delete),
            change_visibility: self.change_visibility.saturating_sub(earlier.change_visibility),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    send: AtomicU64,
    receive: AtomicU64,
    empty_receive: AtomicU64,
    delete: AtomicU64,
    change_visibility: AtomicU64,
    other: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The SQS queues. Cheap to clone; clones share the client and the counters.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    urls: Arc<QueueUrls>,
    clock: Arc<dyn Clock>,
    counters: Arc<Counters>,
    wait_time: Duration,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// Whole seconds, rounded up (never earlier than asked), capped.
fn ceil_seconds(d: Duration, cap: Duration) -> i32 {
    let d = d.min(cap);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{what}: {c}: {m}"),
        (Some(c), None) => format!("{what}: {c}"),
        _ => what.to_owned(),
    };
    QueueError::unavailable(message, e)
}

/// The error codes SQS gives for a receipt that is unknown, malformed or no longer in flight.
fn is_bad_receipt(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ReceiptHandleIsInvalid"
                | "InvalidParameterValue"
                | "MessageNotInflight"
                | "AWS.SimpleQueueService.MessageNotInflight"
                | "AWS.SimpleQueueService.ReceiptHandleIsInvalid"
        )
    )
}

impl SqsQueue {
    /// The queues at `urls`. The client's retry policy is replaced by the adapter's own
    /// (standard mode, 4 attempts, backoff from 50 ms) and its timeouts bounded.
    pub fn new(client: aws_sdk_sqs::Client, urls: QueueUrls, clock: Arc<dyn Clock>) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_secs(2)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(25))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build();
        SqsQueue {
            client: aws_sdk_sqs::Client::from_conf(config),
            urls: Arc::new(urls),
            clock,
            counters: Arc::new(Counters::default()),
            wait_time: Duration::ZERO,
        }
    }

    /// Receives wait up to `wait` (at most 20 s) for a message instead of answering at once:
    /// fewer empty receives when a poller loops on an idle queue.
    pub fn with_long_polling(mut self, wait: Duration) -> Self {
        self.wait_time = wait.min(Duration::from_secs(20));
        self
    }

    /// The URLs in use.
    pub fn urls(&self) -> &QueueUrls {
        &self.urls
    }

    /// Requests made by this queue (and its clones) so far.
    pub fn requests(&self) -> SqsRequests {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SqsRequests {
            send: get(&c.send),
            receive: get(&c.receive),
            empty_receive: get(&c.empty_receive),
            delete: get(&c.delete),
            change_visibility: get(&c.change_visibility),
            other: get(&c.other),
        }
    }

    fn url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.urls.url(queue).ok_or_else(|| QueueError::Unavailable {
            message: format!("no URL configured for queue {queue}"),
            source: None,
        })
    }

    fn dead_letter_url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.urls.dead_letter_url(queue).ok_or_else(|| QueueError::Unavailable {
            message: format!("no dead-letter URL configured for queue {queue}"),
            source: None,
        })
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.min(MAX_BATCH)).unwrap_or(1))
            .visibility_timeout(ceil_seconds(visibility, MAX_VISIBILITY))
            .wait_time_seconds(ceil_seconds(wait, Duration::from_secs(20)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error("receive", e))?;
        let messages = out.messages.unwrap_or_default();
        bump(if messages.is_empty() {
            &self.counters.empty_receive
        } else {
            &self.counters.receive
        });
        messages
            .into_iter()
            .map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Ok(ReceivedTask {
                    receipt: Receipt(m.receipt_handle.ok_or_else(|| QueueError::Malformed {
                        message: "a message without a receipt handle".into(),
                    })?),
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect()
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::unavailable("message attribute", e))
}

/// The task's `type` tag (`dispatch`, `poll`, …), as serialised.
fn task_type(envelope: &TaskEnvelope) -> String {
    serde_json::to_value(&envelope.task)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

impl TaskQueue for SqsQueue {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        let queue = envelope.queue();
        let delay = ceil_seconds(envelope.remaining_delay(self.clock.now()), MAX_DELAY);
        let request = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(envelope.to_json())
            .delay_seconds(delay)
            .message_attributes("task_type", string_attribute(&task_type(envelope))?)
            .message_attributes("task_version", string_attribute(&envelope.v.to_string())?);
        request.send().await.map_err(|e| sdk_error("send", e))?;
        bump(&self.counters.send);
        Ok(())
    }
}

impl TaskSource for SqsQueue {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.receive_from(self.url(queue)?, max, visibility, self.wait_time)
            .await
    }

    async fn ack(&self, queue: QueueName, receipt: &Receipt) -> Result<(), QueueError> {
        let sent = self
            .client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(&receipt.0)
            .send()
            .await;
        bump(&self.counters.delete);
        match sent {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(e.code()) => Err(QueueError::InvalidReceipt),
            Err(e) => Err(sdk_error("delete", e)),
        }
    }

    async fn release(&self, queue: QueueName, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let sent = self
            .client
            .change_message_visibility()
            .queue_url(self.url(queue)?)
            .receipt_handle(&receipt.0)
            .visibility_timeout(ceil_seconds(delay, MAX_VISIBILITY))
            .send()
            .await;
        bump(&self.counters.change_visibility);
        match sent {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(e.code()) => Err(QueueError::InvalidReceipt),
            Err(e) => Err(sdk_error("change visibility", e)),
        }
    }
}

impl QueueInspect for SqsQueue {
    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(self.url(queue)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| sdk_error("queue attributes", e))?;
        bump(&self.counters.other);
        let attrs = out.attributes.unwrap_or_default();
        let get = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn dead_letters(&self, queue: QueueName, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let got = self
            .receive_from(
                self.dead_letter_url(queue)?,
                max,
                Duration::from_secs(30),
                Duration::ZERO,
            )
            .await?;
        Ok(got
            .into_iter()
            .map(|t| DeadLetter {
                body: t.body,
                // Receiving from the dead-letter queue counted once more.
                receive_count: t.receive_count.saturating_sub(1),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_seconds_and_cap_at_fifteen_minutes() {
        assert_eq!(ceil_seconds(Duration::ZERO, MAX_DELAY), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1), MAX_DELAY), 1);
        assert_eq!(ceil_seconds(Duration::from_millis(2_001), MAX_DELAY), 3);
        assert_eq!(ceil_seconds(Duration::from_secs(3_600), MAX_DELAY), 900);
    }
}
