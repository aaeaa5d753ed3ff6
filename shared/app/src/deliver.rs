//! Delivering status events to merchant endpoints: signed per Standard Webhooks, retried on a
//! schedule (honouring `Retry-After`), every attempt recorded, 410 disabling the endpoint, and
//! exhausted deliveries dead-lettered in the attempt log, replayable by event.

use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::event::StatusEvent;
use cashout_core::ids::{EndpointId, EventId};
use cashout_core::ports::{OutgoingWebhook, Store, StoreError, Task, TaskQueue, WebhookSender};
use cashout_core::signing::{headers, webhook_signature_header};
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt, DisabledReason, WebhookEndpoint, excerpt};

use crate::App;
use crate::access::require_admin;
use crate::endpoints::ENDPOINT_WRITE_ATTEMPTS;
use crate::error::AppError;
use crate::schedule::later;
use crate::tasks::TaskOutcome;

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("cashout-webhooks/", env!("CARGO_PKG_VERSION"));

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// The `deliver` task: one attempt to deliver one event to one endpoint.
    #[tracing::instrument(skip(self), fields(event_id = %event_id, endpoint_id = %endpoint_id, attempt))]
    pub async fn deliver(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
        attempt: u32,
    ) -> Result<TaskOutcome, AppError> {
        let Some(event) = self.store.get_event(event_id).await? else {
            tracing::warn!("event to deliver not found");
            return Ok(TaskOutcome::Done);
        };
        let Some(endpoint) = self.store.get_endpoint(&event.merchant_id, endpoint_id).await? else {
            return Ok(TaskOutcome::Done);
        };
        let now = self.now();
        let mut record = DeliveryAttempt {
            event_id,
            endpoint_id,
            merchant_id: event.merchant_id.clone(),
            attempt,
            attempted_at: now,
            outcome: AttemptOutcome::Skipped,
            status_code: None,
            duration_ms: 0,
            response_excerpt: None,
            next_attempt_at: None,
        };
        if !endpoint.receives(event.event_type()) {
            self.store.record_attempt(&record).await?;
            return Ok(TaskOutcome::Done);
        }

        let request = signed_request(&endpoint, &event, now)?;
        let retry_after = self.send_and_record(&request, &mut record).await;
        let next = self.next_attempt(&mut record, retry_after);
        log_outcome(&record);
        self.store.record_attempt(&record).await?;

        if record.outcome == AttemptOutcome::Gone {
            self.disable_endpoint(endpoint).await?;
        }
        if let Some(delay) = next {
            self.enqueue(
                Task::Deliver {
                    event_id,
                    endpoint_id,
                    attempt: attempt + 1,
                },
                delay,
            )
            .await?;
        }
        Ok(TaskOutcome::Done)
    }

    /// Disables an endpoint that answered 410, conditionally on the version read: a rotation
    /// that came first is kept (the endpoint is re-read and disabled as it now is).
    async fn disable_endpoint(&self, mut endpoint: WebhookEndpoint) -> Result<(), AppError> {
        let mut attempt = 1;
        loop {
            if endpoint.disabled.is_some() {
                return Ok(());
            }
            let disabled = endpoint.disable(DisabledReason::Gone);
            match self.store.replace_endpoint(&disabled, endpoint.version).await {
                Ok(()) => {
                    tracing::warn!(url = %endpoint.url, "endpoint answered 410 Gone; disabled");
                    return Ok(());
                }
                Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::Conflict { .. }) if attempt < ENDPOINT_WRITE_ATTEMPTS => {
                    attempt += 1;
                    match self.store.get_endpoint(&endpoint.merchant_id, endpoint.id).await? {
                        Some(fresh) => endpoint = fresh,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends the request and records what came back in `record`; the receiver's `Retry-After`,
    /// if it gave one.
    async fn send_and_record(&self, request: &OutgoingWebhook, record: &mut DeliveryAttempt) -> Option<Duration> {
        match self.sender.send(request).await {
            Ok(response) => {
                record.status_code = Some(response.status);
                record.duration_ms = u64::try_from(response.elapsed.as_millis()).unwrap_or(u64::MAX);
                record.response_excerpt = Some(excerpt(&response.body_excerpt));
                record.outcome = match response.status {
                    200..=299 => AttemptOutcome::Delivered,
                    410 => AttemptOutcome::Gone,
                    _ => AttemptOutcome::Failed,
                };
                response.retry_after
            }
            Err(e) => {
                record.duration_ms = u64::try_from(e.elapsed.as_millis()).unwrap_or(u64::MAX);
                record.response_excerpt = Some(excerpt(&e.message));
                record.outcome = AttemptOutcome::Failed;
                None
            }
        }
    }
}

impl<S, Q, P, W> App<S, Q, P, W> {
    /// After a failed attempt: when the next one is due (recorded in `record`), or, past the
    /// schedule, the attempt becomes `Exhausted` and `None` comes back.
    fn next_attempt(&self, record: &mut DeliveryAttempt, retry_after: Option<Duration>) -> Option<Duration> {
        if record.outcome != AttemptOutcome::Failed {
            return None;
        }
        let random = self.ids.secret_bytes();
        let jitter = u32::from(u16::from_be_bytes([random[0], random[1]]) % 1001);
        match self
            .config
            .webhook_retries
            .next_delay(record.attempt, retry_after, jitter)
        {
            Some(delay) => {
                record.next_attempt_at = Some(later(record.attempted_at, delay));
                Some(delay)
            }
            None => {
                record.outcome = AttemptOutcome::Exhausted;
                None
            }
        }
    }
}

/// The event as a Standard Webhooks request to the endpoint, signed with every live secret.
fn signed_request(
    endpoint: &WebhookEndpoint,
    event: &StatusEvent,
    now: time::OffsetDateTime,
) -> Result<OutgoingWebhook, AppError> {
    let body = event.webhook_body();
    let msg_id = event.id.to_string();
    let timestamp = now.unix_timestamp();
    let signature = webhook_signature_header(&endpoint.signing_secrets(now), &msg_id, timestamp, body.as_bytes())
        .map_err(|e| AppError::Internal(format!("signing a webhook: {e}")))?;
    Ok(OutgoingWebhook {
        url: endpoint.url.clone(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), USER_AGENT.into()),
            (headers::WEBHOOK_ID.into(), msg_id),
            (headers::WEBHOOK_TIMESTAMP.into(), timestamp.to_string()),
            (headers::WEBHOOK_SIGNATURE.into(), signature),
        ],
        body,
    })
}

fn log_outcome(record: &DeliveryAttempt) {
    tracing::Span::current().record("attempt", record.attempt);
    match record.outcome {
        AttemptOutcome::Delivered => tracing::debug!(status = ?record.status_code, "delivered"),
        AttemptOutcome::Exhausted => {
            tracing::warn!(status = ?record.status_code, "delivery exhausted its retries; dead-lettered (replay with /v1/events/{{id}}/redeliver)")
        }
        _ => {
            tracing::info!(status = ?record.status_code, outcome = ?record.outcome, "delivery not accepted")
        }
    }
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Merchant (its own events) or admin operator (a dead letter of any merchant): deliver an
    /// event again to each endpoint subscribed to it (one new attempt each, numbered after the
    /// last; a failure is not retried further).
    #[tracing::instrument(skip(self, principal), fields(event_id = %event_id))]
    pub async fn redeliver(&self, principal: &Principal, event_id: EventId) -> Result<usize, AppError> {
        if !matches!(principal, Principal::Merchant { .. }) {
            require_admin(principal)?;
        }
        let event = self.store.get_event(event_id).await?.ok_or(AppError::NotFound)?;
        if let Principal::Merchant { merchant_id } = principal
            && merchant_id != &event.merchant_id
        {
            return Err(AppError::NotFound);
        }
        let merchant = &event.merchant_id;
        let attempts = self.store.list_event_attempts(event_id).await?;
        let endpoints = self.store.list_endpoints(merchant).await?;
        let mut queued = 0;
        for ep in endpoints.iter().filter(|ep| ep.receives(event.event_type())) {
            let last = attempts
                .iter()
                .filter(|a| a.endpoint_id == ep.id)
                .map(|a| a.attempt)
                .max()
                .unwrap_or(0);
            let attempt = last.max(self.config.webhook_retries.max_attempts()) + 1;
            self.enqueue(
                Task::Deliver {
                    event_id,
                    endpoint_id: ep.id,
                    attempt,
                },
                Duration::ZERO,
            )
            .await?;
            queued += 1;
        }
        Ok(queued)
    }
}
