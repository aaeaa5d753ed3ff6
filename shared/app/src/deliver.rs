//! Delivering status events to merchant endpoints: signed per Standard Webhooks, retried on a
//! schedule (honouring `Retry-After`), every attempt recorded, 410 disabling the endpoint, and
//! exhausted deliveries dead-lettered in the attempt log, replayable by event.

use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::ids::{EndpointId, EventId};
use cashout_core::notice::Notice;
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
    /// The `deliver` task: one attempt to deliver one event to one endpoint, unless the endpoint
    /// already has it (see `docs/webhooks.md`: once each, against retries and recoveries alike).
    #[tracing::instrument(skip(self), fields(event_id = %event_id, endpoint_id = %endpoint_id, attempt))]
    pub async fn deliver(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
        attempt: u32,
    ) -> Result<TaskOutcome, AppError> {
        self.deliver_status_event(event_id, endpoint_id, attempt, false).await
    }

    /// The `replay` task: one more attempt, even if the endpoint had the event already.
    #[tracing::instrument(skip(self), fields(event_id = %event_id, endpoint_id = %endpoint_id, attempt))]
    pub async fn replay(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
        attempt: u32,
    ) -> Result<TaskOutcome, AppError> {
        self.deliver_status_event(event_id, endpoint_id, attempt, true).await
    }

    async fn deliver_status_event(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
        attempt: u32,
        replay: bool,
    ) -> Result<TaskOutcome, AppError> {
        let Some(event) = self.store.get_event(event_id).await? else {
            tracing::warn!("event to deliver not found");
            return Ok(TaskOutcome::Done);
        };
        let Some(endpoint) = self.store.get_endpoint(&event.merchant_id, endpoint_id).await? else {
            return Ok(TaskOutcome::Done);
        };
        let now = self.now();
        if !endpoint.receives(event.event_type()) {
            let record = DeliveryAttempt {
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
            self.store.record_attempt(&record).await?;
            self.wake_next_in_order(&endpoint, &event).await?;
            return Ok(TaskOutcome::Done);
        }
        let history = self.pair_attempts(event_id, endpoint_id).await?;
        if !replay && history.iter().any(|a| a.outcome == AttemptOutcome::Delivered) {
            tracing::debug!("the endpoint has this event already");
            return Ok(TaskOutcome::Done);
        }
        if endpoint.is_ordered() && self.earlier_event_pending(&endpoint, &event).await? {
            return Ok(TaskOutcome::RetryAfter(crate::ordering::ORDER_WAIT));
        }
        if let Some(wait) = self.throttle.take(&endpoint, now) {
            return Ok(TaskOutcome::RetryAfter(wait));
        }
        let body = event.webhook_body();
        let Some((record, next)) = self
            .attempt_once(&endpoint, event_id, &event.merchant_id, &body, attempt, !replay)
            .await?
        else {
            let task = Task::Deliver {
                event_id,
                endpoint_id,
                attempt: attempt + 1,
            };
            return self.claim_lost(event_id, endpoint_id, attempt, task).await;
        };
        if matches!(
            record.outcome,
            AttemptOutcome::Delivered | AttemptOutcome::Exhausted | AttemptOutcome::Gone
        ) {
            self.wake_next_in_order(&endpoint, &event).await?;
        }
        if let Some(delay) = next {
            let task = Task::Deliver {
                event_id,
                endpoint_id,
                attempt: attempt + 1,
            };
            self.enqueue(task, delay).await?;
        }
        Ok(TaskOutcome::Done)
    }

    /// The `deliver_notice` task: one attempt to deliver an operational event to one endpoint,
    /// retried on the same schedule.
    #[tracing::instrument(skip(self, notice), fields(event_id = %notice.id, endpoint_id = %endpoint_id, attempt))]
    pub async fn deliver_notice(
        &self,
        notice: Notice,
        endpoint_id: EndpointId,
        attempt: u32,
    ) -> Result<TaskOutcome, AppError> {
        let Some(endpoint) = self.store.get_endpoint(&notice.merchant_id, endpoint_id).await? else {
            return Ok(TaskOutcome::Done);
        };
        if !endpoint.receives(notice.event_type()) {
            return Ok(TaskOutcome::Done);
        }
        let history = self.pair_attempts(notice.id, endpoint_id).await?;
        if history.iter().any(|a| a.outcome == AttemptOutcome::Delivered) {
            return Ok(TaskOutcome::Done);
        }
        if let Some(wait) = self.throttle.take(&endpoint, self.now()) {
            return Ok(TaskOutcome::RetryAfter(wait));
        }
        let body = notice.webhook_body();
        let Some((_, next)) = self
            .attempt_once(&endpoint, notice.id, &notice.merchant_id, &body, attempt, true)
            .await?
        else {
            let task = Task::DeliverNotice {
                notice: notice.clone(),
                endpoint_id,
                attempt: attempt + 1,
            };
            return self.claim_lost(notice.id, endpoint_id, attempt, task).await;
        };
        if let Some(delay) = next {
            let task = Task::DeliverNotice {
                notice,
                endpoint_id,
                attempt: attempt + 1,
            };
            self.enqueue(task, delay).await?;
        }
        Ok(TaskOutcome::Done)
    }

    /// Every attempt of one event to one endpoint, in number order.
    pub(crate) async fn pair_attempts(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
    ) -> Result<Vec<DeliveryAttempt>, AppError> {
        let mut attempts: Vec<DeliveryAttempt> = self
            .store
            .list_event_attempts(event_id)
            .await?
            .into_iter()
            .filter(|a| a.endpoint_id == endpoint_id)
            .collect();
        attempts.sort_by_key(|a| a.attempt);
        Ok(attempts)
    }

    /// Another sender holds this attempt number. If it is still sending, look again once its
    /// claim could have lapsed (so a sender that died does not end the chain). If it finished
    /// with a failure and the next attempt is not there, the task that queues it may have been
    /// lost (the queue failed after the record): queue `next` again, at its time (a duplicate
    /// of it meets the claim). Otherwise this task has nothing left to do.
    async fn claim_lost(
        &self,
        event_id: EventId,
        endpoint_id: EndpointId,
        attempt: u32,
        next: Task,
    ) -> Result<TaskOutcome, AppError> {
        let attempts = self.pair_attempts(event_id, endpoint_id).await?;
        let Some(held) = attempts.iter().find(|a| a.attempt == attempt) else {
            return Ok(TaskOutcome::Done);
        };
        if held.outcome == AttemptOutcome::Sending {
            return Ok(TaskOutcome::RetryAfter(CLAIM_LEASE));
        }
        let later_exists = attempts.iter().any(|a| a.attempt > attempt);
        if let (AttemptOutcome::Failed, Some(at), false) = (held.outcome, held.next_attempt_at, later_exists) {
            let delay = crate::schedule::bounded_wait(at - self.now(), Duration::MAX);
            self.enqueue(next, delay).await?;
        }
        Ok(TaskOutcome::Done)
    }

    /// Claims attempt `attempt` of the pair, sends, and records the answer (with its next
    /// attempt, when `retry` and the schedule allows one), updating the endpoint's health.
    /// `None`: another sender holds that number.
    pub(crate) async fn attempt_once(
        &self,
        endpoint: &WebhookEndpoint,
        event_id: EventId,
        merchant_id: &cashout_core::ids::MerchantId,
        body: &str,
        attempt: u32,
        retry: bool,
    ) -> Result<Option<(DeliveryAttempt, Option<Duration>)>, AppError> {
        let now = self.now();
        let mut record = DeliveryAttempt {
            event_id,
            endpoint_id: endpoint.id,
            merchant_id: merchant_id.clone(),
            attempt,
            attempted_at: now,
            outcome: AttemptOutcome::Sending,
            status_code: None,
            duration_ms: 0,
            response_excerpt: None,
            next_attempt_at: None,
        };
        let stale_before = now - time::Duration::try_from(CLAIM_LEASE).unwrap_or(time::Duration::MINUTE);
        if !self.store.claim_attempt(&record, stale_before).await? {
            return Ok(None);
        }
        let request = signed_request(endpoint, &event_id.to_string(), body, now)?;
        let retry_after = self.send_and_record(&request, &mut record).await;
        let next = if retry {
            self.next_attempt(&mut record, retry_after)
        } else {
            if record.outcome == AttemptOutcome::Failed {
                record.outcome = AttemptOutcome::Exhausted;
            }
            None
        };
        log_outcome(&record);
        self.store.record_attempt(&record).await?;
        if record.outcome == AttemptOutcome::Gone {
            self.disable_endpoint(endpoint.clone(), DisabledReason::Gone).await?;
        } else if !event_id.is_operational() || record.outcome == AttemptOutcome::Delivered {
            self.note_health(endpoint, &record).await?;
        }
        Ok(Some((record, next)))
    }

    /// Disables an endpoint (it answered 410, or kept failing), conditionally on the version
    /// read: a rotation that came first is kept (the endpoint is re-read and disabled as it now
    /// is). The merchant's other endpoints are told by a `webhook_endpoint.disabled` event.
    pub(crate) async fn disable_endpoint(
        &self,
        mut endpoint: WebhookEndpoint,
        reason: DisabledReason,
    ) -> Result<(), AppError> {
        let mut attempt = 1;
        loop {
            if endpoint.disabled.is_some() {
                return Ok(());
            }
            let disabled = endpoint.disable(reason);
            match self.store.replace_endpoint(&disabled, endpoint.version).await {
                Ok(()) => {
                    tracing::warn!(url = %endpoint.url, reason = reason.as_str(), "endpoint disabled");
                    self.announce_disabled(&disabled).await?;
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

/// How long a claimed attempt number stays its sender's: past it (the sender died between its
/// claim and its record) another sender may take the number over. Longer than a send (15 s).
pub(crate) const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// The body as a Standard Webhooks request to the endpoint, signed with every live secret,
/// with the endpoint's custom headers (which cannot name ours: see `CustomHeaders`).
pub(crate) fn signed_request(
    endpoint: &WebhookEndpoint,
    msg_id: &str,
    body: &str,
    now: time::OffsetDateTime,
) -> Result<OutgoingWebhook, AppError> {
    let timestamp = now.unix_timestamp();
    let signature = webhook_signature_header(&endpoint.signing_secrets(now), msg_id, timestamp, body.as_bytes())
        .map_err(|e| AppError::Internal(format!("signing a webhook: {e}")))?;
    let mut headers: Vec<(String, String)> = endpoint
        .headers
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    headers.extend([
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), USER_AGENT.into()),
        (headers::WEBHOOK_ID.into(), msg_id.to_owned()),
        (headers::WEBHOOK_TIMESTAMP.into(), timestamp.to_string()),
        (headers::WEBHOOK_SIGNATURE.into(), signature),
    ]);
    Ok(OutgoingWebhook {
        url: endpoint.url.clone(),
        headers,
        body: body.to_owned(),
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
    /// last, even to an endpoint that had it: a replay; a failure is not retried further).
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
                Task::Replay {
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
