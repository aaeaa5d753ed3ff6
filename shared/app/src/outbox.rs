//! Publishing the events of a written change, and sending tasks.
//!
//! The events of a change are written in the same atomic write as the change (the outbox, see
//! [`crate::write`]); publishing them — one delivery task per subscribed endpoint, then the
//! event marked published — comes after, and the sweep republishes whatever a crash left
//! unpublished. Where a process runs its own workers (the local runner), a background publisher
//! ([`App::run_publisher`]) takes the events off the write path and publishes them in batches:
//! one endpoint listing per merchant and batch, every send and every mark of a batch issued at
//! once (one group commit on the embedded store). Elsewhere (the API Lambda) they are published
//! inline, before the answer.

use std::collections::HashMap;
use std::time::Duration;

use cashout_core::event::StatusEvent;
use cashout_core::ids::{EventId, MerchantId};
use cashout_core::ports::{QueueName, Store, Task, TaskEnvelope, TaskQueue};
use cashout_core::webhook::WebhookEndpoint;
use tokio::sync::watch;

use crate::pipeline::HandOff;

use crate::App;
use crate::error::AppError;
use crate::tasks::TaskOutcome;

/// Events waiting for the background publisher; past this the write path leaves them to the
/// sweep.
const PUBLISHER_CAPACITY: usize = 16_384;
/// Events published together.
const PUBLISH_BATCH: usize = 512;

impl<S, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Sends a task now (`delay` zero) or later. Failures are the caller's to handle.
    pub(crate) async fn enqueue(&self, task: Task, delay: Duration) -> Result<(), AppError> {
        let envelope = TaskEnvelope::new(task, self.now(), delay);
        self.queue.send(&envelope).await.map_err(AppError::from)?;
        if delay.is_zero() {
            self.pipeline.sent(envelope.queue());
        }
        Ok(())
    }

    /// Sends a follow-up task after a committed write. A failure is logged, not returned: the
    /// write stands, and the sweep finds the work through the request's `next_check_at`.
    pub(crate) async fn enqueue_after_commit(&self, task: Task, delay: Duration) {
        if let Err(e) = self.enqueue(task, delay).await {
            tracing::warn!(error = %e, "could not enqueue a follow-up task; the sweep will pick the work up");
        }
    }
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Publishes committed events: one delivery task per subscribed endpoint, then the event is
    /// marked published, through the background publisher where one runs, inline otherwise.
    /// Failures are logged; unpublished events are republished by the sweep.
    pub(crate) async fn publish(&self, events: &[StatusEvent]) {
        match self.pipeline.hand_off(events) {
            HandOff::Queued => {}
            HandOff::Full => tracing::debug!("the publisher is full; the sweep will publish the rest"),
            HandOff::NoPublisher => self.publish_batch(events).await,
        }
    }

    async fn fan_out(
        &self,
        event: &StatusEvent,
        endpoints: &[cashout_core::webhook::WebhookEndpoint],
    ) -> Result<(), AppError> {
        for ep in endpoints.iter().filter(|ep| ep.receives(event.event_type())) {
            self.enqueue(
                Task::Deliver {
                    event_id: event.id,
                    endpoint_id: ep.id,
                    attempt: 1,
                },
                Duration::ZERO,
            )
            .await?;
        }
        self.store.mark_published(event.id).await?;
        Ok(())
    }

    /// Publishes the events handed off by the write path, in batches, until `shutdown` turns
    /// true (then what is already in the channel is published, and the rest is the sweep's).
    /// At most one runs per process; a second call returns at once.
    pub async fn run_publisher(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut events) = self.pipeline.install_publisher(PUBLISHER_CAPACITY) else {
            tracing::warn!("a publisher already runs in this process");
            return;
        };
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        loop {
            let stopping = *shutdown.borrow()
                || tokio::select! {
                    n = events.recv_many(&mut batch, PUBLISH_BATCH) => n == 0,
                    changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
                };
            if stopping {
                while let Ok(event) = events.try_recv() {
                    batch.push(event);
                }
            }
            if !batch.is_empty() {
                self.publish_batch(&batch).await;
                batch.clear();
            }
            if stopping {
                break;
            }
        }
    }

    /// Publishes `events` together: one endpoint listing per merchant, every delivery task in
    /// one batch, every mark in one batch. A merchant whose endpoints cannot be listed, or a
    /// batch that fails, leaves its events unpublished for the sweep.
    async fn publish_batch(&self, events: &[StatusEvent]) {
        let mut endpoints: HashMap<&MerchantId, Vec<WebhookEndpoint>> = HashMap::new();
        for event in events {
            if endpoints.contains_key(&event.merchant_id) {
                continue;
            }
            match self.store.list_endpoints(&event.merchant_id).await {
                Ok(list) => {
                    endpoints.insert(&event.merchant_id, list);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not list endpoints; the outbox sweep will publish later");
                }
            }
        }
        let now = self.now();
        let mut tasks = Vec::new();
        let mut published = Vec::new();
        for event in events {
            let Some(list) = endpoints.get(&event.merchant_id) else {
                continue;
            };
            for ep in list.iter().filter(|ep| ep.receives(event.event_type())) {
                let task = Task::Deliver {
                    event_id: event.id,
                    endpoint_id: ep.id,
                    attempt: 1,
                };
                tasks.push(TaskEnvelope::new(task, now, Duration::ZERO));
            }
            published.push(event.id);
        }
        if let Err(e) = self.queue.send_batch(&tasks).await {
            tracing::warn!(error = %e, events = published.len(), "could not publish a batch of events; the outbox sweep will retry");
            return;
        }
        if !tasks.is_empty() {
            self.pipeline.sent(QueueName::Callbacks);
        }
        if let Err(e) = self.store.mark_published_batch(&published).await {
            tracing::warn!(error = %e, events = published.len(), "could not mark events published; the sweep will publish them again");
        }
    }

    /// The `publish_event` task: publishes one stored event (idempotent but for duplicates of
    /// deliveries, which receivers dedupe by `webhook-id`).
    #[tracing::instrument(skip(self), fields(event_id = %event_id))]
    pub async fn publish_event(&self, event_id: EventId) -> Result<TaskOutcome, AppError> {
        let Some(event) = self.store.get_event(event_id).await? else {
            tracing::warn!("event to publish not found");
            return Ok(TaskOutcome::Done);
        };
        let endpoints = self.store.list_endpoints(&event.merchant_id).await?;
        self.fan_out(&event, &endpoints).await?;
        Ok(TaskOutcome::Done)
    }

    /// Republishes events a crash left unpublished (older than the outbox lag).
    pub(crate) async fn sweep_outbox(&self) -> Result<usize, AppError> {
        let before = self.now() - self.config.outbox_lag;
        let events = self.store.unpublished_events(before, self.config.sweep_batch).await?;
        let count = events.len();
        for event in events {
            tracing::warn!(event_id = %event.id, "republishing an event left unpublished");
            let endpoints = self.store.list_endpoints(&event.merchant_id).await?;
            self.fan_out(&event, &endpoints).await?;
        }
        Ok(count)
    }
}
