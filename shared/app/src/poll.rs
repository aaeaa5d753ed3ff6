//! Following a payout to its end: scheduled polls, on-demand polls, and the sweep that finds
//! work the queues lost.
//!
//! Each request has at most one polling chain: a scheduled poll carries the `next_check_at` it
//! was scheduled for, and is dropped if the request has been rescheduled since. On-demand polls
//! (a provider hinted at a change) never reschedule unless the status changed.

use std::time::Duration;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, ProviderPayoutId};
use cashout_core::ports::{PayoutProvider, ProviderErrorKind, Store, Task, TaskQueue};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::status::CashoutStatus;
use time::OffsetDateTime;

use crate::App;
use crate::error::AppError;
use crate::schedule::later;
use crate::tasks::TaskOutcome;

/// The longest a failed status check waits before the next (also the cap on a provider's
/// `Retry-After`).
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(300);

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Reviews finished for requests a crash left `REQUESTED`.
    pub reviewed: usize,
    /// Dispatch tasks re-sent.
    pub dispatches: usize,
    /// Poll tasks re-sent.
    pub polls: usize,
    /// Events republished.
    pub events: usize,
    /// Scheduled reconciliations started (the day before's, once a day).
    pub reconciliations: u32,
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// The `poll` task: asks the provider and records its answer. A scheduled poll checks a
    /// request at the provider (`PENDING_PAYMENT`, or `PAID` for reversals); an on-demand one (a
    /// provider's hint) checks any request the provider may hold, whatever its status, so that
    /// a payout reported for a request we ended is recorded and flagged, never dropped.
    pub async fn poll(&self, id: CashoutRequestId, due_at: Option<OffsetDateTime>) -> Result<TaskOutcome, AppError> {
        Box::pin(self.poll_hinted(id, due_at, None, None)).await
    }

    /// [`Self::poll`], with the provider's own id for the payout when a notification named one
    /// (D24's `cashout_id`). While we know the payout only by our reference (an `ext:`
    /// placeholder, after an adopted create), the check asks for that id together with our
    /// reference: an answer confirms the pair, and the provider's id replaces the placeholder,
    /// so that `payment_reference` and cancel work. An id the provider does not hold for our
    /// reference changes nothing (the check falls back to our reference).
    #[tracing::instrument(skip(self), fields(cashout_request_id = %id, scheduled = due_at.is_some()))]
    pub(crate) async fn poll_hinted(
        &self,
        id: CashoutRequestId,
        due_at: Option<OffsetDateTime>,
        hinted: Option<&ProviderPayoutId>,
        hinted_by: Option<ProviderName>,
    ) -> Result<TaskOutcome, AppError> {
        let Some(request) = self.store.get_request(id).await? else {
            return Ok(TaskOutcome::Done);
        };
        if let Some(left) = hinted_by.filter(|p| request.left_provider(*p)) {
            return Box::pin(self.check_left_provider(request, left)).await;
        }
        let request = if due_at.is_some() {
            Box::pin(self.check_left_providers(request)).await?
        } else {
            request
        };
        if due_at.is_some() && request.next_check_at() != due_at {
            tracing::debug!("stale poll: the request was rescheduled");
            return Ok(TaskOutcome::Done);
        }
        let at_provider = matches!(request.status(), CashoutStatus::PendingPayment | CashoutStatus::Paid);
        let wanted = match due_at {
            Some(_) => at_provider,
            None => at_provider || request.provider_may_hold(),
        };
        if !wanted {
            return Ok(TaskOutcome::Done);
        }
        let provider = request.provider();
        let reference = request.payout_reference();
        let answer = match (request.provider_reference(), hinted) {
            (Some(payout_id), _) if !payout_id.is_by_reference() => self
                .provider
                .payout_status(provider, payout_id, reference)
                .await
                .map(Some),
            (_, Some(hinted)) if !hinted.is_by_reference() => {
                match self.provider.payout_status(provider, hinted, reference).await {
                    Ok(p) if p.reference.is_none_or(|r| r == reference) => Ok(Some(p)),
                    Ok(p) => {
                        tracing::warn!(payout_id = %hinted, reported = ?p.reference, "a hinted payout id belongs to another reference: ignored");
                        self.provider.find_payout(provider, reference).await
                    }
                    Err(e) if e.kind == ProviderErrorKind::NotFound => {
                        tracing::warn!(payout_id = %hinted, "the provider holds no hinted payout id for our reference: ignored");
                        self.provider.find_payout(provider, reference).await
                    }
                    Err(e) => Err(e),
                }
            }
            _ => self.provider.find_payout(provider, reference).await,
        };
        let payout = match answer {
            Ok(Some(p)) => p,
            Ok(None) => {
                tracing::error!(alert = true, provider = %provider, "the provider has no payout for a request it accepted");
                return self.observe_from(request, None, due_at).await;
            }
            Err(e) if e.kind == ProviderErrorKind::NotFound => {
                tracing::error!(alert = true, provider = %provider, error = %e, "the provider does not know a payout it accepted");
                return self.observe_from(request, None, due_at).await;
            }
            Err(e) => match e.kind {
                ProviderErrorKind::Retryable { retry_after } => {
                    let wait = retry_after
                        .unwrap_or(Duration::from_secs(30))
                        .clamp(Duration::from_secs(1), MAX_POLL_BACKOFF);
                    return self.check_failed(request, due_at, wait, &e).await;
                }
                ProviderErrorKind::Ambiguous => {
                    return self.check_failed(request, due_at, Duration::from_secs(30), &e).await;
                }
                _ => {
                    tracing::error!(alert = true, error = %e, "status check refused");
                    return self.observe_from(request, None, due_at).await;
                }
            },
        };
        self.observe_from(request, Some(&payout), due_at).await
    }

    /// A provider the request left after a failover hinted at a payout for it: it must hold
    /// none. Its attempt's reference is looked up there; a live or paid payout is recorded as
    /// what it is — flagged for a person and alerted, never adopted.
    async fn check_left_provider(&self, request: CashoutRequest, left: ProviderName) -> Result<TaskOutcome, AppError> {
        let reference = request.reference_at(left);
        match self.provider.find_payout(left, reference).await {
            Ok(Some(payout)) => {
                tracing::error!(alert = true, provider = %left, payout_id = %payout.payout_id, %reference, provider_status = %payout.provider_status, "a provider this request left holds a payout for it");
                self.observe_from(request, Some(&payout), None).await
            }
            Ok(None) => Ok(TaskOutcome::Done),
            Err(e) => {
                tracing::warn!(provider = %left, error = %e, "could not look up a hint from a provider this request left; its next notification asks again");
                Ok(TaskOutcome::Done)
            }
        }
    }

    /// On a scheduled check: looks each reference the request left behind up once more, once a
    /// late create would have landed there ([`crate::AppConfig::failover_settle`] after leaving).
    /// A payout found is flagged (and alerted) through [`Self::check_left_provider`]; an answer
    /// either way is recorded so that each is asked once; no answer is asked at the next check.
    async fn check_left_providers(&self, request: CashoutRequest) -> Result<CashoutRequest, AppError> {
        let after = time::Duration::try_from(self.config.failover_settle).unwrap_or(time::Duration::MINUTE);
        let due = request.left_attempts_to_check(after, self.now());
        let mut request = request;
        for (left, reference) in due {
            let found = match self.provider.find_payout(left, reference).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(provider = %left, error = %e, "could not look up a provider this request left; asking at the next check");
                    continue;
                }
            };
            if let Some(payout) = &found {
                tracing::error!(alert = true, provider = %left, payout_id = %payout.payout_id, %reference, "a provider this request left holds a payout for it");
            }
            let m = self
                .mutate_from(request, |r, now| {
                    let checked = r.record_left_check(left, now);
                    Ok(Some(match &found {
                        Some(p) => checked
                            .request
                            .record_provider_payout(p, now)
                            .and_then(|flag| checked.clone().then(flag))
                            .unwrap_or(checked),
                        None => checked,
                    }))
                })
                .await?;
            if m.change.is_some() {
                self.follow_up(&m.request).await;
            }
            request = m.request;
        }
        Ok(request)
    }

    /// A status check got no answer. An on-demand check (a hint) is dropped: the request's own
    /// schedule checks it anyway. A scheduled one moves the request's next check (a write)
    /// instead of sending itself again, so that the sweep does not find the check overdue and
    /// send another copy, and copies already queued turn stale: however long the provider is
    /// down, each request keeps one chain of checks.
    async fn check_failed(
        &self,
        request: CashoutRequest,
        due_at: Option<OffsetDateTime>,
        wait: Duration,
        error: &cashout_core::ports::ProviderError,
    ) -> Result<TaskOutcome, AppError> {
        tracing::warn!(error = %error, retry_in_s = wait.as_secs(), "status check failed");
        let Some(due) = due_at else {
            return Ok(TaskOutcome::Done);
        };
        let m = self
            .mutate_from(request, |r, now| {
                if r.next_check_at() != Some(due) {
                    return Ok(None);
                }
                Ok(Some(r.record_check(Some(later(now, wait)), now)))
            })
            .await?;
        if m.change.is_some() {
            self.follow_up(&m.request).await;
        }
        Ok(TaskOutcome::Done)
    }

    /// Records a provider's answer (`None`: the check got no usable answer). Without a status
    /// change, a scheduled check is counted and the next one scheduled; an on-demand one changes
    /// nothing.
    pub(crate) async fn observe(
        &self,
        id: CashoutRequestId,
        payout: Option<&ProviderPayout>,
        due_at: Option<OffsetDateTime>,
    ) -> Result<TaskOutcome, AppError> {
        let Some(request) = self.store.get_request(id).await? else {
            tracing::warn!(cashout_request_id = %id, "a provider reported a payout for a request we do not know");
            return Ok(TaskOutcome::Done);
        };
        self.observe_from(request, payout, due_at).await
    }

    /// [`App::observe`] from the request the caller read before asking the provider (a change in
    /// between only costs a lost race and a reload).
    async fn observe_from(
        &self,
        request: CashoutRequest,
        payout: Option<&ProviderPayout>,
        due_at: Option<OffsetDateTime>,
    ) -> Result<TaskOutcome, AppError> {
        if let Some(p) = payout.filter(|p| p.state == PayoutState::Unknown) {
            tracing::warn!(provider = %p.provider, provider_status = %p.provider_status, "unknown provider status; nothing changes");
        }
        let m = self
            .mutate_from(request, |r, now| {
                if let Some(change) = payout.and_then(|p| r.record_provider_payout(p, now)) {
                    return Ok(Some(self.scheduled(change, now)));
                }
                if due_at.is_none() || r.next_check_at() != due_at {
                    return Ok(None);
                }
                let counted = r.record_check(None, now);
                let next = self.next_check_for(&counted.request, now);
                Ok(Some(counted.with_next_check(next)))
            })
            .await?;
        if m.change.is_some() {
            self.follow_up(&m.request).await;
        }
        Ok(TaskOutcome::Done)
    }

    /// The scheduled sweep: finishes interrupted reviews, re-sends dispatch and poll tasks the
    /// queues lost (requests overdue by more than the sweep lag), and republishes events a crash
    /// left unpublished.
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self) -> Result<SweepReport, AppError> {
        let mut report = SweepReport::default();
        let overdue = self.now() - self.config.sweep_lag;
        for due in self.store.due_requests(overdue, self.config.sweep_batch).await? {
            let Some(request) = self.store.get_request(due.id).await? else {
                continue;
            };
            match request.status() {
                CashoutStatus::Requested => {
                    self.finish_review(request).await?;
                    report.reviewed += 1;
                }
                CashoutStatus::Approved => {
                    self.enqueue(
                        Task::Dispatch {
                            cashout_request_id: due.id,
                        },
                        Duration::ZERO,
                    )
                    .await?;
                    report.dispatches += 1;
                }
                CashoutStatus::PendingPayment | CashoutStatus::Paid => {
                    self.enqueue(
                        Task::Poll {
                            cashout_request_id: due.id,
                            due_at: Some(due.next_check_at),
                        },
                        Duration::ZERO,
                    )
                    .await?;
                    report.polls += 1;
                }
                CashoutStatus::UnderReview
                | CashoutStatus::PaymentProcessorError
                | CashoutStatus::Rejected
                | CashoutStatus::Cancelled => {
                    // Nothing to do without a person; stop looking.
                    self.mutate(due.id, |r, now| {
                        Ok((r.next_check_at().is_some()).then(|| r.reschedule(None, now)))
                    })
                    .await?;
                }
            }
        }
        report.events = self.sweep_outbox().await?;
        match self.start_daily_reconciliation().await {
            Ok(started) => report.reconciliations = u32::from(started.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the daily reconciliation; the next sweep tries again")
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "sweep found work");
        }
        Ok(report)
    }
}
