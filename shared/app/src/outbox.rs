//! Writing changes and publishing their events.
//!
//! Every change goes through [`App::mutate`]: load, decide, write on the version just read, and
//! on a lost race load again and decide again. The events of a change are written in the same
//! atomic write (the outbox); publishing them — one delivery task per subscribed endpoint — comes
//! after, and the sweep republishes whatever a crash left unpublished.

use std::time::Duration;

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, EventId};
use cashout_core::ports::{Store, StoreError, Task, TaskEnvelope, TaskQueue};
use time::OffsetDateTime;

use crate::App;
use crate::error::AppError;
use crate::tasks::TaskOutcome;

/// How many times a change is recomputed after losing a race before giving up.
const MAX_RACES: usize = 8;

/// The result of [`App::mutate`].
pub(crate) struct Mutation {
    /// The request after the write (or as loaded, when nothing changed).
    pub request: CashoutRequest,
    /// The change written, if any.
    pub change: Option<Change>,
}

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
    /// Loads the request, asks `decide` for a change, and writes it conditionally; a lost race
    /// reloads and asks again. `decide` returning `Ok(None)` writes nothing.
    pub(crate) async fn mutate<F>(&self, id: CashoutRequestId, decide: F) -> Result<Mutation, AppError>
    where
        F: FnMut(&CashoutRequest, OffsetDateTime) -> Result<Option<Change>, AppError>,
    {
        let request = self.store.get_request(id).await?.ok_or(AppError::NotFound)?;
        self.mutate_from(request, decide).await
    }

    /// [`App::mutate`] starting from a snapshot the caller has just read or written, which saves
    /// a read: the write is conditional on the snapshot's version, so a stale one only costs a
    /// lost race and a reload.
    pub(crate) async fn mutate_from<F>(&self, snapshot: CashoutRequest, mut decide: F) -> Result<Mutation, AppError>
    where
        F: FnMut(&CashoutRequest, OffsetDateTime) -> Result<Option<Change>, AppError>,
    {
        let id = snapshot.id();
        let mut loaded = Some(snapshot);
        for _ in 0..MAX_RACES {
            let request = match loaded.take() {
                Some(request) => request,
                None => self.store.get_request(id).await?.ok_or(AppError::NotFound)?,
            };
            let now = self.now();
            let Some(change) = decide(&request, now)? else {
                return Ok(Mutation { request, change: None });
            };
            if self.write(&change).await? {
                return Ok(Mutation {
                    request: change.request.clone(),
                    change: Some(change),
                });
            }
        }
        Err(AppError::Contended)
    }

    /// Writes one change on its expected version: `false` if another writer changed the request
    /// first (nothing was written). After the write, its events are published and its attention
    /// notes raised as alerts.
    pub(crate) async fn write(&self, change: &Change) -> Result<bool, AppError> {
        let id = change.request.id();
        match self.store.apply_change(change).await {
            Ok(()) => {
                for e in &change.events {
                    tracing::info!(cashout_request_id = %id, sequence = e.sequence, event = %e.event_type(), status = %change.request.status(), "status event");
                }
                for note in &change.new_attention {
                    tracing::error!(alert = true, cashout_request_id = %id, status = %change.request.status(), reason = ?note.reason, "cashout request needs a person");
                }
                self.publish(&change.events).await;
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => {
                tracing::debug!(cashout_request_id = %id, "lost a write race; deciding again");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

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
