//! The pull loop for queues the process reads itself (the embedded runner; on AWS, Lambda pulls):
//! receive a batch, run each task, acknowledge what succeeded, release what failed with a
//! back-off (the queue dead-letters it after its redrive limit). Also the periodic sweep.

use std::sync::Arc;
use std::time::Duration;

use cashout_core::ports::{
    PayoutProvider, QueueName, Receipt, ReceivedTask, Store, TaskQueue, TaskSource, WebhookSender,
};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::App;

/// How a queue is pulled.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The most messages taken per receive (SQS gives at most 10).
    pub batch: usize,
    /// The most tasks running at once: a new receive is made as soon as one finishes, so a slow
    /// task (a provider timing out, a receiver taking seconds) holds one slot, not a batch.
    pub concurrency: usize,
    /// How long a received message stays hidden; must exceed the longest task (provider calls
    /// time out well before).
    pub visibility: Duration,
    /// The longest pause after an empty receive (a task sent by this process ends it at once).
    pub idle_wait: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 10,
            concurrency: 10,
            visibility: Duration::from_secs(120),
            idle_wait: Duration::from_millis(50),
        }
    }
}

impl WorkerOptions {
    /// The options of `queue` in a process that runs every worker (the local runner): slots
    /// sized from the sustained benchmark (`BENCHMARKS.md`). Webhook deliveries wait on the
    /// merchant's receiver and are the most numerous (four per request), so they get the most.
    pub fn for_queue(queue: QueueName) -> WorkerOptions {
        let (batch, concurrency) = match queue {
            QueueName::Callbacks => (128, 1024),
            QueueName::Dispatch | QueueName::Poll | QueueName::ProviderEvents => (64, 256),
        };
        WorkerOptions {
            batch,
            concurrency,
            ..WorkerOptions::default()
        }
    }
}

/// The most receipts acknowledged together.
const ACK_BATCH: usize = 256;

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
    /// Runs one message; a success's receipt goes to `acks` (acknowledged in batches by
    /// [`Self::ack_loop`]), a failure is released at once with its back-off.
    async fn run_one(&self, queue: QueueName, message: ReceivedTask, acks: mpsc::UnboundedSender<Receipt>) {
        let span = tracing::info_span!("task", queue = %queue, receive_count = message.receive_count);
        async {
            let result = self.process_message(&message.body, |task| self.handle_task(task)).await;
            let settled = match result {
                Ok(()) => {
                    // The channel closes only after every task has finished.
                    let _ = acks.send(message.receipt);
                    Ok(())
                }
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

    /// Acknowledges the receipts of finished tasks in batches (one write on the embedded queue
    /// for everything finished meanwhile), until every sender is gone. A receipt that lapsed
    /// meanwhile deletes nothing: its message runs again (tasks are idempotent).
    async fn ack_loop(&self, queue: QueueName, mut receipts: mpsc::UnboundedReceiver<Receipt>) {
        let mut batch = Vec::with_capacity(ACK_BATCH);
        while receipts.recv_many(&mut batch, ACK_BATCH).await > 0 {
            match self.queue.ack_batch(queue, &batch).await {
                Ok(held) if held < batch.len() => {
                    tracing::warn!(queue = %queue, lapsed = batch.len() - held, "receipts lapsed before their acknowledgement; those messages will run again");
                }
                Ok(_) => {}
                // The messages reappear after their visibility timeout.
                Err(e) => tracing::warn!(queue = %queue, error = %e, "could not acknowledge messages"),
            }
            batch.clear();
        }
    }

    /// Pulls `queue` until `shutdown` turns true; in-flight tasks finish first. Up to
    /// `options.concurrency` tasks run at once, each on its own Tokio task; their
    /// acknowledgements are batched ([`Self::ack_loop`]).
    pub async fn run_queue(&self, queue: QueueName, options: WorkerOptions, mut shutdown: watch::Receiver<bool>) {
        tracing::debug!(queue = %queue, "worker started");
        let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut running = JoinSet::new();
        let (acks, receipts) = mpsc::unbounded_channel();
        let acker = {
            let app = self.clone();
            tokio::spawn(async move { app.ack_loop(queue, receipts).await })
        };
        loop {
            while running.try_join_next().is_some() {}
            if *shutdown.borrow() {
                break;
            }
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = running.join_next() => {}
                    changed = shutdown.changed() => if changed.is_err() { break },
                }
                continue;
            }
            match self
                .queue
                .receive(queue, free.min(options.batch.max(1)), options.visibility)
                .await
            {
                Ok(batch) if batch.is_empty() => {
                    tokio::select! {
                        () = self.pipeline.wait(queue, options.idle_wait) => {}
                        changed = shutdown.changed() => if changed.is_err() { break },
                    }
                }
                Ok(batch) => {
                    for message in batch {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            // Cannot happen (we asked for no more than the free slots); the
                            // message reappears after its visibility timeout.
                            tracing::error!(queue = %queue, "a message was received without a free slot");
                            continue;
                        };
                        let (app, acks) = (self.clone(), acks.clone());
                        running.spawn(async move {
                            app.run_one(queue, message, acks).await;
                            drop(slot);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "receive failed");
                    if pause(&mut shutdown, Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
        drop(acks);
        let _ = acker.await;
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
