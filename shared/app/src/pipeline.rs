//! What the in-process workers share besides the ports: a wake-up per queue (a task sent by
//! this process wakes the worker pulling its queue at once, instead of after its idle wait),
//! the channel of the background publisher (the outbox published off the write path), and the
//! backlog gauge behind the API's backpressure.
//!
//! On AWS each function is its own process and nothing here is shared: Lambda's pollers pull
//! the queues, events are published inline after their write (a Lambda may be frozen as soon as
//! it answers, so nothing may be left to a background task), and the gauge is never set, so the
//! API never pushes back (SQS absorbs bursts and Lambda scales out).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cashout_core::event::StatusEvent;
use cashout_core::ports::QueueName;
use tokio::sync::{Notify, mpsc};

/// Shared by every clone of an [`crate::App`].
#[derive(Debug, Default)]
pub struct Pipeline {
    wake: [Notify; QueueName::ALL.len()],
    backlog: AtomicU64,
    publisher: OnceLock<mpsc::Sender<StatusEvent>>,
}

impl Pipeline {
    fn slot(queue: QueueName) -> usize {
        QueueName::ALL.iter().position(|q| *q == queue).unwrap_or(0)
    }

    /// A task was sent to `queue`: wake its worker (or let its next wait return at once).
    pub(crate) fn sent(&self, queue: QueueName) {
        self.wake[Self::slot(queue)].notify_one();
    }

    /// Waits for a send to `queue` by this process, or `max_wait`.
    pub(crate) async fn wait(&self, queue: QueueName, max_wait: std::time::Duration) {
        let _ = tokio::time::timeout(max_wait, self.wake[Self::slot(queue)].notified()).await;
    }

    /// Hands committed events to the background publisher, if one runs (see [`HandOff`] for
    /// what the caller does otherwise).
    pub(crate) fn hand_off(&self, events: &[StatusEvent]) -> HandOff {
        let Some(tx) = self.publisher.get() else {
            return HandOff::NoPublisher;
        };
        for event in events {
            if tx.try_send(event.clone()).is_err() {
                return HandOff::Full;
            }
        }
        HandOff::Queued
    }

    /// Installs the background publisher's channel (once per process); `None` if one is
    /// already installed.
    pub(crate) fn install_publisher(&self, capacity: usize) -> Option<mpsc::Receiver<StatusEvent>> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.publisher.set(tx).ok().map(|()| rx)
    }

    /// Events handed to the background publisher and not yet taken by it.
    pub fn events_waiting(&self) -> u64 {
        self.publisher
            .get()
            .map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64)
    }

    /// Sets the work waiting in the queues (tasks visible and not yet taken), as last measured
    /// by the runner's monitor.
    pub fn set_backlog(&self, tasks: u64) {
        self.backlog.store(tasks, Ordering::Relaxed);
    }

    /// The work waiting, as last measured.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }
}

/// What [`Pipeline::hand_off`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOff {
    /// Every event is with the publisher.
    Queued,
    /// No background publisher runs here: publish inline.
    NoPublisher,
    /// The publisher's channel is full: the events not handed off stay unpublished in the
    /// store, and the sweep publishes them.
    Full,
}

impl<S, Q, P, W> crate::App<S, Q, P, W> {
    /// Backpressure: refuses new work while the backlog measured last is over the configured
    /// bound ([`crate::AppConfig::max_backlog`]), so that accepted work is work the workers
    /// finish soon. A replay of an earlier create is refused too; the client retries it later
    /// with the same key and gets the same answer.
    pub(crate) fn admit(&self) -> Result<(), crate::AppError> {
        let Some(limit) = self.config.max_backlog else {
            return Ok(());
        };
        let backlog = self.pipeline.backlog();
        if backlog <= limit {
            return Ok(());
        }
        Err(crate::AppError::Overloaded {
            backlog,
            limit,
            retry_after_s: 1,
        })
    }
}
