//! The SQS side of the Lambda consumers: run every message of a batch concurrently, each in its
//! own span, and report the ones that failed (`batchItemFailures`) so that only those are
//! delivered again.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use tracing::Instrument;

use cashout_core::ports::{PayoutProvider, Store, TaskQueue, WebhookSender};

use crate::App;
use crate::error::AppError;

/// Runs `handler` on the body of each message; failed (or body-less) messages are reported.
pub async fn handle_batch<F, Fut>(event: SqsEvent, handler: F) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), AppError>>,
{
    let runs = event.records.into_iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("sqs_message", message_id = %id, receive_count = record.attributes.get("ApproximateReceiveCount").map(String::as_str).unwrap_or("?"));
        let body = record.body;
        let run = async {
            match body {
                Some(body) => handler(body).await,
                None => Err(AppError::Internal("an SQS message without a body".into())),
            }
        };
        async move {
            let result = run.await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, retryable = e.is_retryable(), "message failed; it will be delivered again");
            }
            (id, result.is_ok())
        }
        .instrument(span)
    });
    let results = join_all(runs).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = results
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The poller receives two kinds of events: SQS batches (the `poll` and `provider-events`
/// queues) and the scheduled sweep (EventBridge).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum PollerEvent {
    /// An SQS batch.
    Sqs(SqsEvent),
    /// An EventBridge scheduled event.
    Schedule(ScheduledEvent),
}

/// The parts of an EventBridge event the poller reads.
#[derive(Debug, serde::Deserialize)]
pub struct ScheduledEvent {
    /// `Scheduled Event`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// `aws.events` (or `aws.scheduler`).
    pub source: String,
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// The dispatcher function: a batch from the `dispatch` queue.
    pub async fn dispatcher_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        handle_batch(event, |body| async move {
            self.process_message(&body, |task| self.handle_dispatch_task(task))
                .await
        })
        .await
    }

    /// The poller function: a batch from the `poll` or `provider-events` queue, or the scheduled
    /// sweep. Answers the batch response, or the sweep's report.
    pub async fn poller_event(&self, event: PollerEvent) -> Result<serde_json::Value, AppError> {
        match event {
            PollerEvent::Sqs(batch) => {
                let response = handle_batch(batch, |body| async move {
                    self.process_message(&body, |task| self.handle_poll_task(task)).await
                })
                .await;
                serde_json::to_value(response).map_err(|e| AppError::Internal(format!("the batch response: {e}")))
            }
            PollerEvent::Schedule(s) => {
                tracing::debug!(source = %s.source, detail_type = %s.detail_type, "scheduled sweep");
                let report = self.sweep().await?;
                Ok(serde_json::json!({
                    "reviewed": report.reviewed, "dispatches": report.dispatches,
                    "polls": report.polls, "events": report.events,
                }))
            }
        }
    }
}

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// The callbacks function: a batch from the `callbacks` queue.
    pub async fn callbacks_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        handle_batch(event, |body| async move {
            self.process_message(&body, |task| self.handle_callbacks_task(task))
                .await
        })
        .await
    }
}
