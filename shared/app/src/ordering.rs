//! Ordered delivery per request: an endpoint with `ordered: true` gets the events of one request
//! in sequence. A delivery whose nearest earlier event (of the same request, of a type the
//! endpoint subscribes to, after the endpoint existed) is not yet delivered or given up waits
//! ([`ORDER_WAIT`], then looks again); finishing a delivery wakes the next one at once. Other
//! requests are never held back: the wait is per request.

use std::time::Duration;

use cashout_core::event::StatusEvent;
use cashout_core::ids::EventId;
use cashout_core::ports::{Store, Task, TaskQueue, WebhookSender};
use cashout_core::webhook::{AttemptOutcome, WebhookEndpoint};

use crate::App;
use crate::error::AppError;

/// How long a delivery waiting for an earlier event sleeps before it looks again (finishing the
/// earlier one wakes it sooner).
pub(crate) const ORDER_WAIT: Duration = Duration::from_secs(5);

/// Whether an attempt ends its event's delivery to its endpoint.
fn is_final(outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Delivered | AttemptOutcome::Exhausted | AttemptOutcome::Gone | AttemptOutcome::Skipped => true,
        AttemptOutcome::Failed | AttemptOutcome::Sending => false,
    }
}

/// Whether the endpoint would have been sent `event` (its subscription, whatever its state).
fn subscribed(endpoint: &WebhookEndpoint, event: &StatusEvent) -> bool {
    event.occurred_at >= endpoint.created_at
        && (endpoint.event_types.is_empty() || endpoint.event_types.contains(&event.event_type()))
}

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// Whether the nearest earlier event of `event`'s request that the endpoint receives is still
    /// on its way to it (not delivered, not given up).
    pub(crate) async fn earlier_event_pending(
        &self,
        endpoint: &WebhookEndpoint,
        event: &StatusEvent,
    ) -> Result<bool, AppError> {
        if event.sequence <= 1 {
            return Ok(false);
        }
        let events = self.store.list_events(event.cashout_request_id).await?;
        let Some(earlier) = events
            .iter()
            .filter(|e| e.sequence < event.sequence && subscribed(endpoint, e))
            .max_by_key(|e| e.sequence)
        else {
            return Ok(false);
        };
        let attempts = self.pair_attempts(earlier.id, endpoint.id).await?;
        Ok(!attempts.iter().any(|a| is_final(a.outcome)))
    }

    /// After `event`'s delivery to an ordered endpoint ended: the next event of the request it
    /// receives, if not attempted yet, is queued now rather than at its next look.
    pub(crate) async fn wake_next_in_order(
        &self,
        endpoint: &WebhookEndpoint,
        event: &StatusEvent,
    ) -> Result<(), AppError> {
        if !endpoint.is_ordered() {
            return Ok(());
        }
        let events = self.store.list_events(event.cashout_request_id).await?;
        let Some(next) = events
            .iter()
            .filter(|e| e.sequence > event.sequence && subscribed(endpoint, e))
            .min_by_key(|e| e.sequence)
        else {
            return Ok(());
        };
        let next_id: EventId = next.id;
        if self.pair_attempts(next_id, endpoint.id).await?.is_empty() {
            // The waiting task and this one both ask for attempt 1: the claim lets one send.
            let task = Task::Deliver {
                event_id: next_id,
                endpoint_id: endpoint.id,
                attempt: 1,
            };
            self.enqueue(task, Duration::ZERO).await?;
        }
        Ok(())
    }
}
