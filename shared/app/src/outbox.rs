//! Publishing the events of a written change, and sending tasks.
//!
//! The events of a change are written in the same atomic write as the change (the outbox, see
//! [`crate::write`]); publishing them — one delivery task per subscribed endpoint — comes after,
//! and the sweep republishes whatever a crash left unpublished.

use std::time::Duration;

use cashout_core::event::StatusEvent;
use cashout_core::ids::EventId;
use cashout_core::ports::{Store, Task, TaskEnvelope, TaskQueue};

use crate::App;
use crate::error::AppError;
use crate::tasks::TaskOutcome;

impl<S, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Sends a task now (`delay` zero) or later. Failures are the caller's to handle.
    pub(crate) async fn enqueue(&self, task: Task, delay: Duration) -> Result<(), AppError> {
        let envelope = TaskEnvelope::new(task, self.now(), delay);
        self.queue.send(&envelope).await.map_err(AppError::from)
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
    /// marked published. Failures are logged; unpublished events are republished by the sweep.
    pub(crate) async fn publish(&self, events: &[StatusEvent]) {
        let Some(first) = events.first() else { return };
        let endpoints = match self.store.list_endpoints(&first.merchant_id).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "could not list endpoints; the outbox sweep will publish later");
                return;
            }
        };
        for event in events {
            if let Err(e) = self.fan_out(event, &endpoints).await {
                tracing::warn!(event_id = %event.id, error = %e, "could not publish an event; the outbox sweep will retry");
            }
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
