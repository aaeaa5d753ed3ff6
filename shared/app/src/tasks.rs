//! Running queued tasks: decode the envelope, hold back a task that arrived early (queues cap
//! their delays, SQS at 900 s), run it, and re-send it later when it asks to be retried. Shared
//! by the Lambda consumers and the embedded runner.

use std::future::Future;
use std::time::Duration;

use cashout_core::ports::{PayoutProvider, QueueName, Store, Task, TaskEnvelope, TaskQueue, WebhookSender};

use crate::App;
use crate::error::AppError;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Done (including "nothing to do").
    Done,
    /// Run it again after this delay (the provider was unavailable, a race was lost…).
    RetryAfter(Duration),
}

/// A task that arrives less than this before its time runs anyway (clock skew, queue jitter).
const EARLY_TOLERANCE: Duration = Duration::from_secs(1);

impl<S, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Processes one message body with `handler`. `Ok` means the message can be deleted: the
    /// task is done, or was sent again for later. `Err` means the queue should deliver it again
    /// (and dead-letter it after its redrive limit).
    pub async fn process_message<F, Fut>(&self, body: &str, handler: F) -> Result<(), AppError>
    where
        F: FnOnce(Task) -> Fut,
        Fut: Future<Output = Result<TaskOutcome, AppError>>,
    {
        let envelope = TaskEnvelope::from_json(body)?;
        let now = self.now();
        if envelope.remaining_delay(now) > EARLY_TOLERANCE {
            // Not yet due: the queue's own delay was capped. Send it on for the rest.
            self.queue.send(&envelope).await?;
            return Ok(());
        }
        let task = envelope.task.clone();
        match handler(envelope.task).await {
            Ok(TaskOutcome::Done) => Ok(()),
            Ok(TaskOutcome::RetryAfter(delay)) => {
                self.queue.send(&TaskEnvelope::new(task, self.now(), delay)).await?;
                Ok(())
            }
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                // Retrying cannot help; the message goes (after the redrive limit) to the
                // dead-letter queue, where an alarm watches.
                tracing::error!(error = %e, task = ?task, "task failed permanently");
                Err(e)
            }
        }
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// Tasks of the `dispatch` queue.
    pub async fn handle_dispatch_task(&self, task: Task) -> Result<TaskOutcome, AppError> {
        match task {
            Task::Dispatch { cashout_request_id } => self.dispatch(cashout_request_id).await,
            other => Err(wrong_queue(QueueName::Dispatch, &other)),
        }
    }

    /// Tasks of the `poll` and `provider-events` queues.
    pub async fn handle_poll_task(&self, task: Task) -> Result<TaskOutcome, AppError> {
        match task {
            Task::Poll {
                cashout_request_id,
                due_at,
            } => self.poll(cashout_request_id, due_at).await,
            Task::ProviderEvent(event) => self.handle_provider_event(event).await,
            Task::Reconcile {
                reconciliation_id,
                version,
            } => self.reconcile_step(reconciliation_id, version).await,
            other => Err(wrong_queue(QueueName::Poll, &other)),
        }
    }
}

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// Tasks of the `callbacks` queue.
    pub async fn handle_callbacks_task(&self, task: Task) -> Result<TaskOutcome, AppError> {
        match task {
            Task::PublishEvent { event_id } => self.publish_event(event_id).await,
            Task::Deliver {
                event_id,
                endpoint_id,
                attempt,
            } => self.deliver(event_id, endpoint_id, attempt).await,
            Task::Replay {
                event_id,
                endpoint_id,
                attempt,
            } => self.replay(event_id, endpoint_id, attempt).await,
            Task::DeliverNotice {
                notice,
                endpoint_id,
                attempt,
            } => self.deliver_notice(notice, endpoint_id, attempt).await,
            other => Err(wrong_queue(QueueName::Callbacks, &other)),
        }
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W: WebhookSender> App<S, Q, P, W> {
    /// Any task, by its queue (the embedded runner).
    pub async fn handle_task(&self, task: Task) -> Result<TaskOutcome, AppError> {
        match task.queue() {
            QueueName::Dispatch => self.handle_dispatch_task(task).await,
            QueueName::Poll | QueueName::ProviderEvents => self.handle_poll_task(task).await,
            QueueName::Callbacks => self.handle_callbacks_task(task).await,
        }
    }
}

fn wrong_queue(consumer: QueueName, task: &Task) -> AppError {
    AppError::Internal(format!("a {} task reached the {consumer} consumer", task.queue()))
}
