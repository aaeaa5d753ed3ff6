//! Dispatch: sending an `APPROVED` request to its provider, exactly once.
//!
//! 1. Claim the request with a versioned write (so a merchant cancel now goes through the
//!    provider, and a second dispatcher backs off).
//! 2. Look the payout up by our reference — always, before any create: a crash or a lost answer
//!    may have left one there. Found: adopt it.
//! 3. Create it. Success, or "already exists" (which the adapter turns into the existing
//!    payout): adopt. Ambiguous (timeout, 5xx after sending): look up again; still nothing:
//!    retry later, starting again from step 2. Declined data: `REJECTED`. Configuration or
//!    account trouble: `PAYMENT_PROCESSOR_ERROR` and an alert.

use std::time::Duration;

use cashout_core::cashout::{CashoutRequest, DispatchFailure};
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{
    PayoutOrder, PayoutProvider, ProviderError, ProviderErrorKind, Store, StoreError, TaskQueue,
};
use cashout_core::provider::{ProviderName, ProviderPayout};
use cashout_core::status::CashoutStatus;

use crate::App;
use crate::error::AppError;
use crate::schedule::later;
use crate::tasks::TaskOutcome;

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// The `dispatch` task.
    #[tracing::instrument(skip(self), fields(cashout_request_id = %id))]
    pub async fn dispatch(&self, id: CashoutRequestId) -> Result<TaskOutcome, AppError> {
        let Some(request) = self.store.get_request(id).await? else {
            tracing::warn!("dispatch of an unknown request");
            return Ok(TaskOutcome::Done);
        };
        if request.status() != CashoutStatus::Approved {
            return Ok(TaskOutcome::Done);
        }
        // Concurrent dispatchers (a duplicate task, the sweep) are safe: the claim is a versioned
        // write, every attempt looks the payout up before creating, and the provider refuses a
        // second payout for one reference (D24 511, Cascad 409), which is adopted. The claim
        // pushes the sweep's next look past this attempt's longest back-off.
        let now = self.now();
        let attempt = request.dispatch().map_or(1, |d| d.attempts + 1);
        let claim = request
            .begin_dispatch(now)?
            .with_next_check(Some(later(now, backoff(attempt) + self.config.dispatch_grace)));
        match self.store.apply_change(&claim).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Ok(TaskOutcome::RetryAfter(Duration::from_secs(1)));
            }
            Err(e) => return Err(e.into()),
        }
        let request = claim.request;
        let attempts = request.dispatch().map_or(1, |d| d.attempts);
        let provider = request.provider();

        match self.provider.find_payout(provider, id).await {
            Ok(Some(payout)) => {
                tracing::warn!(payout_id = %payout.payout_id, "the provider already holds a payout for this request; adopting it");
                return self.adopt(request, payout).await;
            }
            Ok(None) => {}
            Err(e) => return self.retry_later(id, provider, attempts, e).await,
        }

        let order = PayoutOrder::for_request(&request, self.notification_url(provider));
        match self.provider.create_payout(&order).await {
            Ok(payout) => {
                tracing::info!(payout_id = %payout.payout_id, provider = %provider, amount = %order.amount, "payout created");
                self.adopt(request, payout).await
            }
            Err(e) => match e.kind {
                ProviderErrorKind::Ambiguous => {
                    tracing::warn!(error = %e, "create outcome unknown; looking the payout up by reference");
                    match self.provider.find_payout(provider, id).await {
                        Ok(Some(payout)) => self.adopt(request, payout).await,
                        // Not there (yet): try again later, from the lookup. The provider's
                        // unique reference makes a second create safe (511/409 are adopted).
                        Ok(None) | Err(_) => Ok(TaskOutcome::RetryAfter(backoff(attempts))),
                    }
                }
                ProviderErrorKind::Retryable { .. } => self.retry_later(id, provider, attempts, e).await,
                ProviderErrorKind::Declined => {
                    tracing::info!(code = ?e.code, reason = %e.message, "the provider declined the payout data");
                    self.fail_dispatch(
                        id,
                        DispatchFailure::Declined {
                            code: e.code,
                            message: e.message,
                        },
                    )
                    .await
                }
                ProviderErrorKind::Configuration
                | ProviderErrorKind::NotFound
                | ProviderErrorKind::InvalidState
                | ProviderErrorKind::Protocol => {
                    tracing::error!(alert = true, provider = %provider, code = ?e.code, error = %e, "the provider refused the payout for a configuration or account reason");
                    self.fail_dispatch(
                        id,
                        DispatchFailure::ProcessorError {
                            code: e.code,
                            message: e.message,
                        },
                    )
                    .await
                }
            },
        }
    }

    /// Records what the provider says about the payout and schedules what follows.
    /// `request` is the claimed request, the starting point of the conditional write.
    pub(crate) async fn adopt(&self, request: CashoutRequest, payout: ProviderPayout) -> Result<TaskOutcome, AppError> {
        let m = self
            .mutate_from(request, |r, now| {
                Ok(r.record_provider_payout(&payout, now).map(|c| self.scheduled(c, now)))
            })
            .await?;
        if m.change.is_some() {
            self.follow_up(&m.request).await;
        }
        Ok(TaskOutcome::Done)
    }

    async fn fail_dispatch(&self, id: CashoutRequestId, failure: DispatchFailure) -> Result<TaskOutcome, AppError> {
        self.mutate(id, |r, now| {
            if r.status() != CashoutStatus::Approved {
                return Ok(None);
            }
            Ok(Some(
                self.scheduled(r.record_dispatch_failure(failure.clone(), now)?, now),
            ))
        })
        .await?;
        Ok(TaskOutcome::Done)
    }

    /// Nothing was created and the provider may accept later: back off, or give up into
    /// `PAYMENT_PROCESSOR_ERROR` after [`crate::AppConfig::dispatch_max_attempts`].
    async fn retry_later(
        &self,
        id: CashoutRequestId,
        provider: ProviderName,
        attempts: u32,
        error: ProviderError,
    ) -> Result<TaskOutcome, AppError> {
        let ambiguous = error.kind == ProviderErrorKind::Ambiguous;
        if attempts >= self.config.dispatch_max_attempts && !ambiguous {
            tracing::error!(alert = true, provider = %provider, attempts, error = %error, "giving up dispatch");
            return self
                .fail_dispatch(
                    id,
                    DispatchFailure::ProcessorError {
                        code: error.code.clone(),
                        message: format!("{} unavailable after {attempts} attempts: {}", provider, error.message),
                    },
                )
                .await;
        }
        let wait = match error.kind {
            ProviderErrorKind::Retryable {
                retry_after: Some(after),
            } => after.max(backoff(attempts)),
            _ => backoff(attempts),
        }
        .min(MAX_DISPATCH_BACKOFF);
        tracing::warn!(provider = %provider, attempts, error = %error, retry_in_s = wait.as_secs(), "dispatch will be retried");
        Ok(TaskOutcome::RetryAfter(wait))
    }

    /// Where providers send notifications about payouts.
    pub(crate) fn notification_url(&self, provider: ProviderName) -> Option<String> {
        self.config
            .notification_base_url
            .as_ref()
            .map(|base| format!("{}/webhooks/{provider}", base.trim_end_matches('/')))
    }
}

/// The longest a dispatch waits between attempts (also the cap on a provider's `Retry-After`).
const MAX_DISPATCH_BACKOFF: Duration = Duration::from_secs(300);

/// 2^attempts seconds, at most five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(8)).min(MAX_DISPATCH_BACKOFF)
}
