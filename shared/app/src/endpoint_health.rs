//! Endpoint health: an endpoint whose deliveries fail without a single success for
//! `endpoint_failure_window` (5 days) is disabled (reason `failing`), and the merchant's other
//! endpoints that receive `webhook_endpoint.disabled` are told. The bookkeeping is one field,
//! `failing_since`, written (conditionally on the endpoint's version) only when it changes: at
//! the first failure after a success, and at the first success after failures. The success rate
//! and the last success shown in the endpoint's view are read from its latest attempts.

use cashout_core::event::EventType;
use cashout_core::ids::EventId;
use cashout_core::notice::{Notice, NoticePayload};
use cashout_core::ports::{Store, StoreError, Task, TaskQueue, WebhookSender};
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt, DisabledReason, WebhookEndpoint};
use time::OffsetDateTime;

use crate::App;
use crate::endpoints::ENDPOINT_WRITE_ATTEMPTS;
use crate::error::AppError;

/// How many of an endpoint's latest attempts its success rate is computed over.
pub const HEALTH_SAMPLE: u32 = 100;

/// An endpoint's health, as its view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// Delivered ÷ attempts (0 to 1) over its latest [`HEALTH_SAMPLE`] attempts (claims in
    /// flight and skips left out); `None` without any.
    pub success_rate: Option<f64>,
    /// Its latest success among those attempts.
    pub last_success_at: Option<OffsetDateTime>,
    /// Its first failure since its last success.
    pub failing_since: Option<OffsetDateTime>,
}

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// Folds an attempt's outcome into the endpoint's health: writes only on a change of state,
    /// and disables an endpoint failing for the whole window.
    pub(crate) async fn note_health(
        &self,
        endpoint: &WebhookEndpoint,
        record: &DeliveryAttempt,
    ) -> Result<(), AppError> {
        let delivered = match record.outcome {
            AttemptOutcome::Delivered => true,
            AttemptOutcome::Failed | AttemptOutcome::Exhausted => false,
            AttemptOutcome::Gone | AttemptOutcome::Skipped | AttemptOutcome::Sending => return Ok(()),
        };
        let window = time::Duration::try_from(self.config.endpoint_failure_window).unwrap_or(time::Duration::days(5));
        let mut current = endpoint.clone();
        for _ in 0..ENDPOINT_WRITE_ATTEMPTS {
            let next = match (delivered, current.failing_since) {
                (true, None) => return Ok(()),
                (false, Some(since)) => {
                    if record.attempted_at - since >= window {
                        return self.disable_endpoint(current, DisabledReason::Failing).await;
                    }
                    return Ok(());
                }
                (true, Some(_)) => WebhookEndpoint {
                    failing_since: None,
                    version: current.version + 1,
                    ..current.clone()
                },
                (false, None) => WebhookEndpoint {
                    failing_since: Some(record.attempted_at),
                    version: current.version + 1,
                    ..current.clone()
                },
            };
            match self.store.replace_endpoint(&next, current.version).await {
                Ok(()) => return Ok(()),
                Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::Conflict { .. }) => {
                    match self.store.get_endpoint(&current.merchant_id, current.id).await? {
                        Some(fresh) => current = fresh,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Lost every race: another writer moved the endpoint each time; the next attempt's
        // outcome folds in again.
        Ok(())
    }

    /// Tells the merchant's other enabled endpoints that receive `webhook_endpoint.disabled`.
    pub(crate) async fn announce_disabled(&self, disabled: &WebhookEndpoint) -> Result<(), AppError> {
        let Some(reason) = disabled.disabled else {
            return Ok(());
        };
        let now = self.now();
        let notice = Notice {
            id: EventId::operational(self.ids.uuid_v7(now)),
            merchant_id: disabled.merchant_id.clone(),
            occurred_at: now,
            payload: NoticePayload::Disabled {
                endpoint_id: disabled.id,
                reason,
                since: disabled
                    .failing_since
                    .filter(|_| reason == DisabledReason::Failing)
                    .unwrap_or(now),
            },
        };
        for other in self.store.list_endpoints(&disabled.merchant_id).await? {
            if other.id != disabled.id && other.receives(EventType::EndpointDisabled) {
                let task = Task::DeliverNotice {
                    notice: notice.clone(),
                    endpoint_id: other.id,
                    attempt: 1,
                };
                self.enqueue(task, std::time::Duration::ZERO).await?;
            }
        }
        Ok(())
    }
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// The endpoint's health from its latest attempts.
    pub async fn endpoint_health(&self, endpoint: &WebhookEndpoint) -> Result<EndpointHealth, AppError> {
        let page = self
            .store
            .list_attempts(&endpoint.merchant_id, endpoint.id, HEALTH_SAMPLE, None)
            .await?;
        let counted: Vec<&DeliveryAttempt> = page
            .items
            .iter()
            .filter(|a| !matches!(a.outcome, AttemptOutcome::Sending | AttemptOutcome::Skipped))
            .collect();
        let delivered = counted
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Delivered)
            .count();
        let success_rate = (!counted.is_empty()).then(|| {
            // Counts of at most 100: exact in f64.
            let (d, n) = (
                u32::try_from(delivered).unwrap_or(0),
                u32::try_from(counted.len()).unwrap_or(1),
            );
            // A ratio shown to people, not an amount: floating point is what it is read as.
            #[allow(clippy::float_arithmetic)]
            let rate = f64::from(d) / f64::from(n);
            rate
        });
        let last_success_at = counted
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Delivered)
            .map(|a| a.attempted_at)
            .max();
        Ok(EndpointHealth {
            success_rate,
            last_success_at,
            failing_since: endpoint.failing_since,
        })
    }
}
