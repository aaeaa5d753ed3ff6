//! The pull loop for queues the process reads itself (the embedded runner; on AWS, Lambda pulls):
//! receive a batch, run each task, acknowledge what succeeded, release what failed with a
//! back-off (the queue dead-letters it after its redrive limit). Also the periodic sweep.

use std::time::Duration;

use cashout_core::ports::{PayoutProvider, QueueName, ReceivedTask, Store, TaskQueue, TaskSource, WebhookSender};
use futures::future::join_all;
use tokio::sync::watch;
use tracing::Instrument;

use crate::App;

/// How a queue is pulled.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Messages per receive (and run concurrently).
    pub batch: usize,
    /// How long a received message stays hidden; must exceed the longest task (provider calls
    /// time out well before).
    pub visibility: Duration,
    /// Pause after an empty receive.
    pub idle_wait: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 10,
            visibility: Duration::from_secs(120),
            idle_wait: Duration::from_millis(50),
        }
    }
}

/// Back-off before a failed message is visible again: 1, 2, 4… seconds, at most a minute.
fn release_delay(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Waits for `wait`, or less if shutdown is asked. Returns whether to stop.
async fn pause(shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

impl<S, Q, P, W> App<S, Q, P, W>
where
    S: Store + 'static,
    Q: TaskQueue + TaskSource + 'static,
    P: PayoutProvider + 'static,
    W: WebhookSender + 'static,
{
    async fn run_one(&self, queue: QueueName, message: ReceivedTask) {
        let span = tracing::info_span!("task", queue = %queue, receive_count = message.receive_count);
        async {
            let result = self.process_message(&message.body, |task| self.handle_task(task)).await;
            let settled = match result {
                Ok(()) => self.queue.ack(queue, &message.receipt).await,
                Err(e) => {
                    let delay = release_delay(message.receive_count);
                    tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "task failed; it will run again");
                    self.queue.release(queue, &message.receipt, delay).await
                }
            };
            if let Err(e) = settled {
                // The message reappears after its visibility timeout.
                tracing::warn!(error = %e, "could not settle a message");
            }
        }
        .instrument(span)
        .await;
    }

    /// Pulls `queue` until `shutdown` turns true; in-flight tasks finish first.
    pub async fn run_queue(&self, queue: QueueName, options: WorkerOptions, mut shutdown: watch::Receiver<bool>) {
        tracing::debug!(queue = %queue, "worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.queue.receive(queue, options.batch, options.visibility).await {
                Ok(batch) if batch.is_empty() => {
                    if pause(&mut shutdown, options.idle_wait).await {
                        break;
                    }
                }
                Ok(batch) => {
                    join_all(batch.into_iter().map(|m| self.run_one(queue, m))).await;
                }
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "receive failed");
                    if pause(&mut shutdown, Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
        }
        tracing::debug!(queue = %queue, "worker stopped");
    }

    /// Runs the sweep every `interval` until `shutdown` turns true.
    pub async fn run_sweeper(&self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "sweep failed");
            }
            if pause(&mut shutdown, interval).await {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::release_delay;
    use std::time::Duration;

    #[test]
    fn failed_messages_back_off_up_to_a_minute() {
        assert_eq!(release_delay(1), Duration::from_secs(1));
        assert_eq!(release_delay(2), Duration::from_secs(2));
        assert_eq!(release_delay(4), Duration::from_secs(8));
        assert_eq!(release_delay(50), Duration::from_secs(60));
    }
}
