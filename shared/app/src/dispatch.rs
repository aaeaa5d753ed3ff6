//! Dispatch: sending an `APPROVED` request to its provider, at most once.
//!
//! 1. **Claim** the request: a versioned write that takes a lease
//!    ([`AppConfig::dispatch_lease`](crate::AppConfig::dispatch_lease)). While it is held no
//!    other dispatcher (a duplicate task, the sweep), cancel or reject acts on the request; a
//!    second dispatcher backs off until it lapses. A claim after a lapsed, unreleased lease (the
//!    dispatcher crashed) counts that attempt as one that may have created a payout.
//! 2. **Look the payout up** by our reference — always, before any create: a crash or a lost
//!    answer may have left one there. Found: adopt it.
//! 3. **Fence**: create only while enough of the lease is left for the create to finish
//!    ([`AppConfig::dispatch_fence`](crate::AppConfig::dispatch_fence)).
//! 4. **Create** it. Success, or "already exists" (which the adapter turns into the existing
//!    payout): adopt. Outcome unknown (timeout, 5xx, an unreadable answer): look up again;
//!    found: adopt; none: try again later from step 1. Declined data: `REJECTED`.
//!    Configuration or account trouble: `PAYMENT_PROCESSOR_ERROR` and an alert.
//! 5. An attempt that ends without a payout **releases** the lease, recording what it learnt
//!    ([`ProviderKnowledge`]). After
//!    [`AppConfig::dispatch_max_attempts`](crate::AppConfig::dispatch_max_attempts) the request
//!    gives up into `PAYMENT_PROCESSOR_ERROR` only if the provider provably holds nothing;
//!    while a create may have reached it and lookups fail, it keeps asking and is flagged for a
//!    person instead.
//!
//! **Failover.** A request approved with several routes ([`RoutingChoice`]) moves to its next
//! untried provider instead of failing — only when the current one provably holds nothing:
//! its circuit is open and nothing unresolved was sent to it (no call is made), or it refused
//! the create for a configuration reason, or it stayed unavailable through every attempt with
//! a lookup answering "none". A create with an unknown outcome never fails over: the request
//! keeps looking its payout up there, through an open circuit too. Every provider call is
//! counted in the provider's health ([`crate::health`]).
//!
//! [`RoutingChoice`]: cashout_core::routing::RoutingChoice

use std::ops::ControlFlow;
use std::time::Duration;

use cashout_core::cashout::{
    AttentionReason, CashoutRequest, DispatchFailure, DispatchState, FailoverReason, ProviderKnowledge, TransitionError,
};
use cashout_core::health::{Admission, CallOutcome, CircuitState};
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{
    PayoutOrder, PayoutProvider, ProviderError, ProviderErrorKind, Store, StoreError, TaskQueue,
};
use cashout_core::provider::{ProviderName, ProviderPayout};
use cashout_core::status::CashoutStatus;

use crate::App;
use crate::error::AppError;
use crate::schedule::{bounded_wait, later};
use crate::tasks::TaskOutcome;

/// The longest a dispatch waits between attempts (also the cap on a provider's `Retry-After`).
pub(crate) const MAX_DISPATCH_BACKOFF: Duration = Duration::from_secs(300);

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// The `dispatch` task: rounds of [`Self::dispatch_round`], one per provider the request
    /// fails over to.
    #[tracing::instrument(skip(self), fields(cashout_request_id = %id))]
    pub async fn dispatch(&self, id: CashoutRequestId) -> Result<TaskOutcome, AppError> {
        for _ in 0..=ProviderName::ALL.len() {
            // Boxed: a round holds every provider call of one claim, and tasks run many of them.
            match Box::pin(self.dispatch_round(id)).await? {
                Round::Finished(outcome) => return Ok(outcome),
                Round::FailedOver => continue,
            }
        }
        Ok(TaskOutcome::RetryAfter(Duration::from_secs(1)))
    }

    /// One claim of the request at its current provider.
    async fn dispatch_round(&self, id: CashoutRequestId) -> Result<Round, AppError> {
        let Some(request) = self.store.get_request(id).await? else {
            tracing::warn!("dispatch of an unknown request");
            return Ok(Round::Finished(TaskOutcome::Done));
        };
        if request.status() != CashoutStatus::Approved {
            return Ok(Round::Finished(TaskOutcome::Done));
        }
        if let Some(wait) = self.nothing_to_do_while_open(&request).await {
            return Ok(Round::Finished(TaskOutcome::RetryAfter(wait)));
        }
        let request = match self.claim(request).await? {
            ControlFlow::Continue(claimed) => claimed,
            ControlFlow::Break(outcome) => return Ok(Round::Finished(outcome)),
        };
        let provider = request.provider();
        let reference = request.payout_reference();
        let admission = self.circuit_admits(provider).await;
        let closed_until = match admission {
            Admission::Refused { until } => Some(until),
            Admission::Allowed | Admission::Probe => None,
        };
        let unresolved = request.dispatch().is_some_and(|d| d.unresolved);
        if let Some(until) = closed_until
            && !unresolved
        {
            // Nothing unresolved was ever sent to it: leave without a call.
            tracing::info!(provider = %provider, %until, "the provider's circuit is open");
            return self
                .leave_or_wait(
                    request,
                    FailoverReason::CircuitOpen,
                    ProviderKnowledge::Unchanged,
                    until,
                )
                .await;
        }

        match self.lookup(provider, reference).await {
            Ok(Some(payout)) => {
                tracing::warn!(payout_id = %payout.payout_id, "the provider already holds a payout for this request; adopting it");
                return self.adopt(request, payout).await.map(Round::Finished);
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(until) = closed_until {
                    let wait = bounded_wait(until - self.now(), MAX_DISPATCH_BACKOFF);
                    tracing::warn!(provider = %provider, error = %e, "a create may be at a provider whose circuit is open, and the lookup failed: waiting");
                    return self
                        .release(request, ProviderKnowledge::Unchanged, None, wait)
                        .await
                        .map(Round::Finished);
                }
                return self.retry_later(request, ProviderKnowledge::Unchanged, e).await;
            }
        }
        if let Some(until) = closed_until {
            // The lookup shows nothing there: it provably holds nothing.
            return self
                .leave_or_wait(
                    request,
                    FailoverReason::CircuitOpen,
                    ProviderKnowledge::NothingThere,
                    until,
                )
                .await;
        }

        let lease_left = request
            .dispatch()
            .and_then(|d| d.lease_until)
            .map_or(Duration::ZERO, |until| bounded_wait(until - self.now(), Duration::MAX));
        if lease_left < self.config.dispatch_fence {
            tracing::warn!(
                lease_left_s = lease_left.as_secs(),
                "too little of the lease is left to create the payout; trying again"
            );
            return self
                .release(request, ProviderKnowledge::NothingThere, None, Duration::ZERO)
                .await
                .map(Round::Finished);
        }

        let order = PayoutOrder::for_request(&request, self.notification_url(provider));
        let error = match self.call(provider, self.provider.create_payout(&order)).await {
            Ok(payout) => {
                tracing::info!(payout_id = %payout.payout_id, provider = %provider, %reference, amount = %order.amount, "payout created");
                return self.adopt(request, payout).await.map(Round::Finished);
            }
            Err(e) => e,
        };
        self.after_failed_create(request, error).await
    }

    /// How long to wait, without claiming the request, when its provider's circuit is open and
    /// a claim could do nothing: no create may be unresolved there (nothing to look up) and no
    /// untried route admits it (nowhere to go). Such a wait spends none of the request's
    /// dispatch attempts, so a pinned request outlives its provider's outage.
    async fn nothing_to_do_while_open(&self, request: &CashoutRequest) -> Option<Duration> {
        let now = self.now();
        let until = match self.health_of(request.provider()).await.circuit_at(now) {
            CircuitState::Open { until } => until,
            CircuitState::HalfOpen {
                probe_until: Some(until),
                ..
            } if until > now => until,
            CircuitState::Closed | CircuitState::HalfOpen { .. } => return None,
        };
        let may_hold = request
            .dispatch()
            .is_some_and(|d| d.unresolved || d.lease_until.is_some());
        if may_hold || self.failover_target(request).await.is_some() {
            return None;
        }
        tracing::debug!(provider = %request.provider(), %until, "the provider's circuit is open and the request has nowhere else to go: waiting");
        Some(self.wait_until(until))
    }

    /// A create, counted in the provider's health.
    async fn call<T>(
        &self,
        provider: ProviderName,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = self.now();
        let result = call.await;
        let latency = bounded_wait(self.now() - started, Duration::from_secs(3600));
        self.record_call(provider, crate::health::outcome_of(&result), latency)
            .await;
        result
    }

    /// A lookup: its failures count in the provider's health, its answers do not (a provider
    /// that answers lookups but fails every create must still open its circuit, and only a
    /// create may close a half-open one).
    async fn lookup(
        &self,
        provider: ProviderName,
        reference: cashout_core::ids::PayoutReference,
    ) -> Result<Option<ProviderPayout>, ProviderError> {
        let started = self.now();
        let result = self.provider.find_payout(provider, reference).await;
        let outcome = crate::health::outcome_of(&result);
        if !matches!(outcome, CallOutcome::Success | CallOutcome::Decline) {
            let latency = bounded_wait(self.now() - started, Duration::from_secs(3600));
            self.record_call(provider, outcome, latency).await;
        }
        result
    }

    /// The first untried route whose provider's circuit is not open.
    async fn failover_target(&self, request: &CashoutRequest) -> Option<ProviderName> {
        let now = self.now();
        for route in request.untried_routes() {
            let health = self.health_of(route.provider).await;
            if !matches!(health.circuit_at(now), CircuitState::Open { .. }) {
                return Some(route.provider);
            }
        }
        None
    }

    /// Leaves a provider that provably holds nothing for the next route whose circuit admits;
    /// with none, waits until `until` (the circuit's reopening) at this provider.
    async fn leave_or_wait(
        &self,
        request: CashoutRequest,
        reason: FailoverReason,
        knowledge: ProviderKnowledge,
        until: time::OffsetDateTime,
    ) -> Result<Round, AppError> {
        let until = match self.fail_over(&request, reason, knowledge).await? {
            Failover::Moved => return Ok(Round::FailedOver),
            Failover::NoRoute => until,
            Failover::TooSoon(settled) => settled.min(until),
        };
        let wait = self.wait_until(until);
        self.release(request, knowledge, None, wait).await.map(Round::Finished)
    }

    /// [`Self::fail_over`] where the request has somewhere else to end up: moved, or waiting
    /// for a create with an unknown outcome to settle (the lease released); `None` when there is
    /// no route, for the caller to end the dispatch its own way.
    async fn fail_over_or_settle(
        &self,
        request: &CashoutRequest,
        reason: FailoverReason,
        knowledge: ProviderKnowledge,
    ) -> Result<Option<Round>, AppError> {
        match self.fail_over(request, reason, knowledge).await? {
            Failover::Moved => Ok(Some(Round::FailedOver)),
            Failover::TooSoon(at) => {
                let wait = self.wait_until(at);
                let outcome = self.release(request.clone(), knowledge, None, wait).await?;
                Ok(Some(Round::Finished(outcome)))
            }
            Failover::NoRoute => Ok(None),
        }
    }

    /// How long to wait for `at`, from one second to [`MAX_DISPATCH_BACKOFF`].
    fn wait_until(&self, at: time::OffsetDateTime) -> Duration {
        bounded_wait(at - self.now(), MAX_DISPATCH_BACKOFF).max(Duration::from_secs(1))
    }

    /// Moves the request to its next provider, if it has one whose circuit admits and the
    /// provider it leaves has had time to process any create whose outcome was unknown.
    async fn fail_over(
        &self,
        request: &CashoutRequest,
        reason: FailoverReason,
        knowledge: ProviderKnowledge,
    ) -> Result<Failover, AppError> {
        let Some(to) = self.failover_target(request).await else {
            return Ok(Failover::NoRoute);
        };
        let from = request.provider();
        let claim = request.dispatch().copied();
        let settle = time::Duration::try_from(self.config.failover_settle).unwrap_or(time::Duration::MINUTE);
        let moved = self
            .mutate_from(request.clone(), |r, now| {
                if r.status() != CashoutStatus::Approved || !still_ours(claim, r) {
                    return Ok(None);
                }
                let change = r
                    .fail_over(to, reason.clone(), knowledge, settle, now)?
                    .with_next_check(Some(later(now, self.config.dispatch_grace)));
                Ok(Some(change))
            })
            .await;
        let m = match moved {
            Ok(m) => m,
            Err(AppError::Transition(TransitionError::Unsettled { until })) => {
                tracing::info!(provider = %from, %until, "a create with an unknown outcome may still land: failover waits");
                return Ok(Failover::TooSoon(until));
            }
            Err(e) => return Err(e),
        };
        if m.change.is_none() {
            return Ok(Failover::NoRoute);
        }
        tracing::warn!(alert = true, from = %from, to = %to, reason = ?reason, "failover: the request moves to its next provider");
        self.follow_up(&m.request).await;
        Ok(Failover::Moved)
    }

    /// Claims the request for this dispatcher (the lease) and writes the claim; breaks with
    /// when to try again when another dispatcher holds it or the write lost a race.
    async fn claim(&self, request: CashoutRequest) -> Result<ControlFlow<TaskOutcome, CashoutRequest>, AppError> {
        let now = self.now();
        let lease = time::Duration::try_from(self.config.dispatch_lease).unwrap_or(time::Duration::MINUTE);
        let claim = match request.begin_dispatch(now, lease) {
            Ok(claim) => claim,
            Err(TransitionError::DispatchLeased { until }) => {
                tracing::debug!(%until, "another dispatcher holds the request");
                return Ok(ControlFlow::Break(TaskOutcome::RetryAfter(bounded_wait(
                    until - now,
                    MAX_DISPATCH_BACKOFF,
                ))));
            }
            Err(e) => return Err(e.into()),
        };
        // The sweep looks again only once the lease has lapsed.
        let claim = claim.with_next_check(Some(later(
            now,
            self.config.dispatch_lease + self.config.dispatch_grace,
        )));
        match self.store.apply_change(&claim).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Ok(ControlFlow::Break(TaskOutcome::RetryAfter(Duration::from_secs(1))));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(ControlFlow::Continue(claim.request))
    }

    /// A create that did not answer with a payout: retried later, failed for good, or, when it
    /// may have been made, looked up by reference first.
    async fn after_failed_create(&self, request: CashoutRequest, error: ProviderError) -> Result<Round, AppError> {
        let provider = request.provider();
        let reference = request.payout_reference();
        match error.kind {
            ProviderErrorKind::Retryable { .. } => {
                self.retry_later(request, ProviderKnowledge::NothingThere, error).await
            }
            ProviderErrorKind::Declined => {
                tracing::info!(code = ?error.code, reason = %error.message, "the provider declined the payout data");
                if request.fails_over_on_decline() {
                    let reason = FailoverReason::Declined {
                        code: error.code.clone(),
                        message: error.message.clone(),
                    };
                    if let Some(round) = self
                        .fail_over_or_settle(&request, reason, ProviderKnowledge::NothingThere)
                        .await?
                    {
                        return Ok(round);
                    }
                }
                let failure = DispatchFailure::Declined {
                    code: error.code,
                    message: error.message,
                };
                self.fail_dispatch(request, failure).await.map(Round::Finished)
            }
            ProviderErrorKind::Configuration => {
                tracing::error!(alert = true, provider = %provider, code = ?error.code, error = %error, "the provider refused the payout for a configuration or account reason");
                self.refused(request, error).await
            }
            // The create may have been made (a lost or unreadable answer): find out first.
            ProviderErrorKind::Ambiguous
            | ProviderErrorKind::Protocol
            | ProviderErrorKind::NotFound
            | ProviderErrorKind::InvalidState => {
                tracing::warn!(error = %error, "create outcome unknown; looking the payout up by reference");
                match self.lookup(provider, reference).await {
                    Ok(Some(payout)) => self.adopt(request, payout).await.map(Round::Finished),
                    Ok(None) if error.kind == ProviderErrorKind::Ambiguous => {
                        self.retry_later(request, ProviderKnowledge::NoneSoFar, error).await
                    }
                    Ok(None) => {
                        tracing::error!(alert = true, provider = %provider, code = ?error.code, error = %error, "the provider refused the payout and holds none");
                        self.refused(request, error).await
                    }
                    Err(lookup) => {
                        tracing::warn!(error = %lookup, "the lookup after an unknown create failed");
                        self.retry_later(request, ProviderKnowledge::MayExist, error).await
                    }
                }
            }
        }
    }

    /// The provider refused the payout and provably holds none: the next provider, or
    /// `PAYMENT_PROCESSOR_ERROR` without one.
    async fn refused(&self, request: CashoutRequest, error: ProviderError) -> Result<Round, AppError> {
        let reason = FailoverReason::Refused {
            code: error.code.clone(),
            message: error.message.clone(),
        };
        if let Some(round) = self
            .fail_over_or_settle(&request, reason, ProviderKnowledge::NothingThere)
            .await?
        {
            return Ok(round);
        }
        let failure = DispatchFailure::ProcessorError {
            code: error.code,
            message: error.message,
        };
        self.fail_dispatch(request, failure).await.map(Round::Finished)
    }

    /// Records what the provider says about the payout and schedules what follows.
    /// `request` is the claimed request, the starting point of the conditional write. A payout
    /// in a state we cannot act on (an unknown status) releases the lease and is asked about
    /// again later: it exists, so it is never created again.
    pub(crate) async fn adopt(&self, request: CashoutRequest, payout: ProviderPayout) -> Result<TaskOutcome, AppError> {
        let wait = backoff(request.dispatch().map_or(1, |d| d.attempts));
        let claim = request.dispatch().copied();
        let m = self
            .mutate_from(request, |r, now| {
                if let Some(change) = r.record_provider_payout(&payout, now) {
                    return Ok(Some(self.scheduled(change, now)));
                }
                if r.status() != CashoutStatus::Approved || !still_ours(claim, r) {
                    return Ok(None);
                }
                let release = r.release_dispatch(ProviderKnowledge::MayExist, now)?;
                Ok(Some(
                    release.with_next_check(Some(later(now, wait + self.config.dispatch_grace))),
                ))
            })
            .await?;
        if m.change.as_ref().is_some_and(|c| c.changed_status()) {
            self.follow_up(&m.request).await;
            return Ok(TaskOutcome::Done);
        }
        if m.request.status() == CashoutStatus::Approved {
            tracing::warn!(provider_status = %payout.provider_status, "the provider holds the payout in a state cashout cannot act on; asking again later");
            return Ok(TaskOutcome::RetryAfter(wait));
        }
        Ok(TaskOutcome::Done)
    }

    /// Ends the dispatch without a payout at the provider (`REJECTED` or
    /// `PAYMENT_PROCESSOR_ERROR`). Only called when the provider provably holds none.
    async fn fail_dispatch(&self, request: CashoutRequest, failure: DispatchFailure) -> Result<TaskOutcome, AppError> {
        let claim = request.dispatch().copied();
        let m = self
            .mutate_from(request, |r, now| {
                if r.status() != CashoutStatus::Approved || !still_ours(claim, r) {
                    return Ok(None);
                }
                Ok(Some(
                    self.scheduled(r.record_dispatch_failure(failure.clone(), now)?, now),
                ))
            })
            .await?;
        if m.change.is_some() {
            self.follow_up(&m.request).await;
        }
        Ok(TaskOutcome::Done)
    }

    /// Nothing to adopt and the provider may accept later: release the lease and back off. After
    /// [`crate::AppConfig::dispatch_max_attempts`] claims, give up into
    /// `PAYMENT_PROCESSOR_ERROR` if the provider provably holds nothing; otherwise keep asking
    /// and flag the request for a person.
    async fn retry_later(
        &self,
        request: CashoutRequest,
        knowledge: ProviderKnowledge,
        error: ProviderError,
    ) -> Result<Round, AppError> {
        let provider = request.provider();
        let dispatch = request.dispatch().copied();
        let attempts = dispatch.map_or(1, |d| d.attempts);
        let nothing_there = match knowledge {
            ProviderKnowledge::NothingThere | ProviderKnowledge::NoneSoFar => true,
            ProviderKnowledge::Unchanged => dispatch.is_none_or(|d| !d.unresolved),
            ProviderKnowledge::MayExist => false,
        };
        let wait = match error.kind {
            ProviderErrorKind::Retryable {
                retry_after: Some(after),
            } => after.max(backoff(attempts)),
            _ => backoff(attempts),
        }
        .min(MAX_DISPATCH_BACKOFF);
        if attempts < self.config.dispatch_max_attempts {
            tracing::warn!(provider = %provider, attempts, error = %error, retry_in_s = wait.as_secs(), "dispatch will be retried");
            return self.release(request, knowledge, None, wait).await.map(Round::Finished);
        }
        if nothing_there {
            let message = format!("{provider} unavailable after {attempts} attempts: {}", error.message);
            let reason = FailoverReason::Unavailable {
                message: message.clone(),
            };
            if let Some(round) = self.fail_over_or_settle(&request, reason, knowledge).await? {
                return Ok(round);
            }
            tracing::error!(alert = true, provider = %provider, attempts, error = %error, "giving up dispatch: the provider holds no payout");
            let failure = DispatchFailure::ProcessorError {
                code: error.code.clone(),
                message,
            };
            return self.fail_dispatch(request, failure).await.map(Round::Finished);
        }
        tracing::warn!(provider = %provider, attempts, error = %error, "dispatch cannot tell whether the provider holds a payout; it keeps asking");
        let flagged = request
            .attention()
            .iter()
            .any(|a| matches!(a.reason, AttentionReason::UnresolvedDispatch { .. }));
        let attention = (!flagged).then(|| AttentionReason::UnresolvedDispatch {
            attempts,
            last_error: error.to_string(),
        });
        self.release(request, knowledge, attention, MAX_DISPATCH_BACKOFF)
            .await
            .map(Round::Finished)
    }

    /// Releases the lease with what the attempt learnt, optionally flags the request for a
    /// person, and asks for another attempt after `wait` (the sweep sends one if the queue loses
    /// it).
    async fn release(
        &self,
        request: CashoutRequest,
        knowledge: ProviderKnowledge,
        attention: Option<AttentionReason>,
        wait: Duration,
    ) -> Result<TaskOutcome, AppError> {
        let claim = request.dispatch().copied();
        let m = self
            .mutate_from(request, |r, now| {
                if r.status() != CashoutStatus::Approved || !still_ours(claim, r) {
                    return Ok(None);
                }
                let mut release = r
                    .release_dispatch(knowledge, now)?
                    .with_next_check(Some(later(now, wait + self.config.dispatch_grace)));
                if let Some(reason) = &attention {
                    release = release.noting(reason.clone(), now);
                }
                Ok(Some(release))
            })
            .await?;
        if m.request.status() != CashoutStatus::Approved {
            // Someone else settled it meanwhile (a provider notification).
            return Ok(TaskOutcome::Done);
        }
        if m.change.is_none() {
            tracing::warn!("this dispatcher's lease lapsed and another claimed the request; it stops");
            return Ok(TaskOutcome::Done);
        }
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

/// What a failover attempt came to.
enum Failover {
    /// The request is at its next provider.
    Moved,
    /// No untried route admits it (or another writer changed the request first).
    NoRoute,
    /// A create with an unknown outcome may still land at the current provider until then.
    TooSoon(time::OffsetDateTime),
}

/// How one dispatch round ended.
enum Round {
    /// The task is done, or asks to run again later.
    Finished(TaskOutcome),
    /// The request moved to its next provider: claim it there now.
    FailedOver,
}

/// Whether `current` still carries the lease of the claim this dispatcher made: a dispatcher
/// that outlived its lease (another claimed the request since, or it was released) must not
/// write what it learnt over what the next one learnt.
fn still_ours(claim: Option<DispatchState>, current: &CashoutRequest) -> bool {
    match (claim, current.dispatch()) {
        (Some(mine), Some(now)) => {
            mine.lease_until.is_some() && now.lease_until == mine.lease_until && now.attempts == mine.attempts
        }
        _ => false,
    }
}

/// 2^attempts seconds, at most five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(8)).min(MAX_DISPATCH_BACKOFF)
}
