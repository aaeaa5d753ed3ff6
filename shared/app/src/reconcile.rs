//! Statements and the reconciler.
//!
//! - [`App::statement_page`] reads one page of a statement: the requests that changed in a
//!   period ([`CashoutStore::list_changed_requests`]), filtered, as lines. The HTTP layer streams
//!   pages one after the other and adds the totals up as it goes, so a statement of any size
//!   holds one page in memory.
//! - A reconciliation compares a period of our records with each provider's own, in bounded
//!   steps ([`App::reconcile_step`], one `reconcile` task each, sent again until the run is
//!   done): first every provider attempt of every request that changed in the period (a lookup
//!   by our reference, paced by [`ReconcileConfig::calls_per_second`]), then every provider's
//!   own listing (Cascad; the D24 family has none) for payouts under our references that we do
//!   not know. Each difference is recorded on the run, logged as an alert and flags the request;
//!   nothing is changed except through the normal status path (a reversal we missed, or a
//!   provider's final status we lag behind, is recorded as a poll would record it, with its
//!   event).

use std::sync::Mutex;
use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::cashout::{AttentionReason, CashoutRequest};
use cashout_core::ids::{MerchantId, ReconciliationId};
use cashout_core::money::Currency;
use cashout_core::ports::{
    ChangedQuery, Classify, Cursor, ErrorClass, Page, PayoutProvider, ProviderError, Store, StoreError, Task, TaskQueue,
};
use cashout_core::provider::{PayoutState, ProviderName};
use cashout_core::reconcile::{
    AttemptToCheck, Difference, DifferenceKind, OurSide, Period, ProviderRecord, Reconciliation,
    ReconciliationProgress, ReconciliationStatus, ReconciliationTrigger, StatementLine, TheirSide, attempts_to_check,
    compare, our_reference, provider_ahead,
};
use time::Time;

use crate::App;
use crate::access::{require_admin, require_operator};
use crate::error::AppError;
use crate::tasks::TaskOutcome;

/// How the reconciler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// How long a provider may be ahead of us (it ended a payout we still hold open) before it
    /// counts as a `status_lag` difference.
    pub lag: Duration,
    /// The most provider calls per second one run makes (lookups and list pages), so that a
    /// reconciliation never starves dispatch of the provider's rate limit. 0: no pacing.
    pub calls_per_second: u32,
    /// How long one step may run before it saves its place and sends itself again (below a
    /// Lambda's timeout).
    pub step_budget: Duration,
    /// When the daily run of the day before starts (UTC), through the sweep; `None`: never.
    pub daily_at: Option<Time>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            lag: Duration::from_secs(3600),
            calls_per_second: 10,
            step_budget: Duration::from_secs(20),
            daily_at: Some(Time::from_hms(2, 0, 0).unwrap_or(Time::MIDNIGHT)),
        }
    }
}

/// Requests read per page by the reconciler.
const REQUESTS_PER_PAGE: u32 = 100;
/// Provider payouts asked for per list page.
const PAYOUTS_PER_PAGE: u32 = 100;
/// The most lines a statement page holds.
pub const MAX_STATEMENT_PAGE: u32 = 1000;

/// What a statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFilter {
    /// The days.
    pub period: Period,
    /// One merchant (a merchant key: always its own); `None`: every merchant (operators only).
    pub merchant_id: Option<MerchantId>,
    /// Only requests whose current provider is this one.
    pub provider: Option<ProviderName>,
    /// Only this currency.
    pub currency: Option<Currency>,
}

impl StatementFilter {
    fn keeps(&self, r: &CashoutRequest) -> bool {
        self.provider.is_none_or(|p| r.provider() == p) && self.currency.is_none_or(|c| r.currency() == c)
    }
}

/// The process's memory of the daily run it already started (one store read a day).
#[derive(Debug, Default)]
pub(crate) struct DailyMemo(Mutex<Option<time::Date>>);

/// One step's running figures, added to the run when the step saves.
#[derive(Default)]
struct StepCounts {
    requests: u64,
    calls: u64,
    listed: u64,
    failed: u64,
    differences: Vec<Difference>,
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Who may read which statement: a merchant its own (another merchant's id is refused with
    /// 403); an operator any merchant's or everyone's.
    pub fn statement_filter(
        &self,
        principal: &Principal,
        mut filter: StatementFilter,
    ) -> Result<StatementFilter, AppError> {
        if let Principal::Merchant { merchant_id } = principal {
            match &filter.merchant_id {
                Some(m) if m != merchant_id => {
                    return Err(AppError::Forbidden("a merchant key reads only its own statement"));
                }
                _ => filter.merchant_id = Some(merchant_id.clone()),
            }
        }
        Ok(filter)
    }

    /// One page of a statement (a filter from [`App::statement_filter`]): its lines (possibly
    /// fewer than `limit`, even none, when the provider or currency filter drops some) and where
    /// the next page starts.
    pub async fn statement_page(
        &self,
        filter: &StatementFilter,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<StatementLine>, Option<Cursor>), AppError> {
        let page = self
            .store
            .list_changed_requests(&ChangedQuery {
                from: filter.period.start(),
                to: filter.period.end(),
                merchant_id: filter.merchant_id.clone(),
                limit: limit.clamp(1, MAX_STATEMENT_PAGE),
                cursor,
            })
            .await
            .map_err(|e| match e {
                StoreError::Invalid { message, .. } => AppError::BadParameter(format!("cursor: {message}")),
                other => other.into(),
            })?;
        let lines = page
            .items
            .iter()
            .filter(|r| filter.keeps(r))
            .map(StatementLine::of)
            .collect();
        Ok((lines, page.next_cursor))
    }

    /// One reconciliation and a page of its differences (operators).
    pub async fn get_reconciliation(
        &self,
        principal: &Principal,
        id: ReconciliationId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<(Reconciliation, Page<Difference>), AppError> {
        require_operator(principal)?;
        let run = self.store.get_reconciliation(id).await?.ok_or(AppError::NotFound)?;
        let differences = self
            .store
            .list_differences(id, limit.clamp(1, 100), cursor)
            .await
            .map_err(|e| match e {
                StoreError::Invalid { message, .. } => AppError::BadParameter(format!("cursor: {message}")),
                other => other.into(),
            })?;
        Ok((run, differences))
    }
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Starts a reconciliation of `period` (operators): the run is recorded `running` and its
    /// first step queued.
    pub async fn start_reconciliation(
        &self,
        principal: &Principal,
        period: Period,
    ) -> Result<Reconciliation, AppError> {
        require_admin(principal)?;
        let id = ReconciliationId::from_uuid(self.ids.uuid_v7(self.now()));
        self.begin_run(Reconciliation::start(
            id,
            period,
            ReconciliationTrigger::Operator,
            self.now(),
        ))
        .await
    }

    async fn begin_run(&self, mut run: Reconciliation) -> Result<Reconciliation, AppError> {
        run.version = 1;
        self.store.put_reconciliation(&run, 0).await?;
        self.enqueue(
            Task::Reconcile {
                reconciliation_id: run.id,
                version: Some(run.version),
            },
            Duration::ZERO,
        )
        .await?;
        tracing::info!(reconciliation_id = %run.id, from = %run.period.from, to = %run.period.to, trigger = ?run.trigger, "reconciliation started");
        Ok(run)
    }

    /// From the sweep: once a day after [`ReconcileConfig::daily_at`], starts the run of the day
    /// before, once across every process (its id is the day's).
    pub(crate) async fn start_daily_reconciliation(&self) -> Result<Option<ReconciliationId>, AppError> {
        let Some(at) = self.config.reconcile.daily_at else {
            return Ok(None);
        };
        let now = self.now();
        let today = now.date();
        if now.time() < at {
            return Ok(None);
        }
        if *self.daily.0.lock().unwrap_or_else(|p| p.into_inner()) == Some(today) {
            return Ok(None);
        }
        let Some(day) = today.previous_day() else {
            return Ok(None);
        };
        let id = Reconciliation::scheduled_id(day);
        let started = if self.store.get_reconciliation(id).await?.is_some() {
            None
        } else {
            let period = Period::new(day, day).map_err(|e| AppError::Internal(e.to_string()))?;
            match self
                .begin_run(Reconciliation::start(id, period, ReconciliationTrigger::Schedule, now))
                .await
            {
                Ok(run) => Some(run.id),
                // Another process started it first.
                Err(AppError::Store(StoreError::Conflict { .. })) => None,
                Err(e) => return Err(e),
            }
        };
        *self.daily.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(today);
        Ok(started)
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// One bounded step of a run, queued for the run's `version`: compares pages until the step
    /// budget is spent, saving the run's place (and version) after each page, then queues the
    /// next step for the version it leaves. A copy of the task for an older version (a duplicate
    /// delivery, a redelivery after a lost acknowledgement) is stale and dropped, and two copies
    /// racing on one version meet on the run's version: one goes on, the other stops. So copies
    /// never multiply, even when a provider outage makes every step end early.
    pub async fn reconcile_step(&self, id: ReconciliationId, version: Option<u64>) -> Result<TaskOutcome, AppError> {
        let Some(mut run) = self.store.get_reconciliation(id).await? else {
            tracing::warn!(reconciliation_id = %id, "a reconcile task for a run we do not know");
            return Ok(TaskOutcome::Done);
        };
        if run.status != ReconciliationStatus::Running {
            return Ok(TaskOutcome::Done);
        }
        if version.is_some_and(|v| v != run.version) {
            tracing::debug!(reconciliation_id = %id, ?version, stored = run.version, "a stale reconcile task; dropped");
            return Ok(TaskOutcome::Done);
        }
        let started = self.now();
        let mut pacer = Pacer::new(self.config.reconcile.calls_per_second);
        loop {
            let mut counts = StepCounts::default();
            let next = match self.reconcile_page(&run, &mut counts, &mut pacer).await {
                Ok(next) => next,
                Err(StepError::Retry(e)) => {
                    tracing::warn!(reconciliation_id = %id, error = %e, "reconciliation step interrupted; it resumes from its last page in 5 s");
                    return self.continue_later(run, Duration::from_secs(5)).await;
                }
                Err(StepError::Fatal(e)) => {
                    tracing::error!(alert = true, reconciliation_id = %id, error = %e, "reconciliation failed");
                    run.status = ReconciliationStatus::Failed;
                    run.error = Some(e.to_string());
                    return self.save_run(run, counts).await.map(|_| TaskOutcome::Done);
                }
            };
            if next == ReconciliationProgress::Done {
                run.status = ReconciliationStatus::Completed;
                run.completed_at = Some(self.now());
            }
            run.progress = next;
            let Some(saved) = self.save_run(run, counts).await? else {
                return Ok(TaskOutcome::Done);
            };
            run = saved;
            if run.status != ReconciliationStatus::Running {
                tracing::info!(
                    reconciliation_id = %id,
                    requests = run.requests_checked,
                    provider_calls = run.provider_calls,
                    differences = run.differences,
                    lookups_failed = run.lookups_failed,
                    "reconciliation completed"
                );
                return Ok(TaskOutcome::Done);
            }
            let spent = (self.now() - started).unsigned_abs();
            if spent >= self.config.reconcile.step_budget {
                return self.continue_later(run, Duration::ZERO).await;
            }
        }
    }

    /// Queues the next step for the run's next version, then moves the run to it. If the move
    /// loses to another copy, the queued step is stale and will be dropped; if it fails, the
    /// error makes this task be delivered again, still for the stored version.
    async fn continue_later(&self, mut run: Reconciliation, delay: Duration) -> Result<TaskOutcome, AppError> {
        let expected = run.version;
        run.version += 1;
        run.updated_at = self.now();
        self.enqueue(
            Task::Reconcile {
                reconciliation_id: run.id,
                version: Some(run.version),
            },
            delay,
        )
        .await?;
        match self.store.put_reconciliation(&run, expected).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(TaskOutcome::Done),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a step's differences, then the run with its new place and counts; `None` when
    /// another worker moved the run first (this one stops).
    async fn save_run(&self, mut run: Reconciliation, counts: StepCounts) -> Result<Option<Reconciliation>, AppError> {
        for chunk in counts.differences.chunks(25) {
            self.store.put_differences(run.id, chunk).await?;
        }
        run.requests_checked += counts.requests;
        run.provider_calls += counts.calls;
        run.provider_payouts_listed += counts.listed;
        run.lookups_failed += counts.failed;
        run.differences += u64::try_from(counts.differences.len()).unwrap_or(u64::MAX);
        run.updated_at = self.now();
        let expected = run.version;
        run.version += 1;
        match self.store.put_reconciliation(&run, expected).await {
            Ok(()) => Ok(Some(run)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Compares one page where the run stands; returns where the next page starts.
    async fn reconcile_page(
        &self,
        run: &Reconciliation,
        counts: &mut StepCounts,
        pacer: &mut Pacer,
    ) -> Result<ReconciliationProgress, StepError> {
        match &run.progress {
            ReconciliationProgress::Requests { cursor } => {
                let page = self
                    .store
                    .list_changed_requests(&ChangedQuery {
                        from: run.period.start(),
                        to: run.period.end(),
                        merchant_id: None,
                        limit: REQUESTS_PER_PAGE,
                        cursor: cursor.clone().map(Cursor),
                    })
                    .await
                    .map_err(StepError::store)?;
                for request in &page.items {
                    counts.requests += 1;
                    for attempt in attempts_to_check(request) {
                        self.reconcile_attempt(run, request, attempt, counts, pacer).await?;
                    }
                }
                Ok(match page.next_cursor {
                    Some(c) => ReconciliationProgress::Requests { cursor: Some(c.0) },
                    None => listing_after(None),
                })
            }
            ReconciliationProgress::ProviderListing { provider, cursor } => {
                pacer.wait().await;
                counts.calls += 1;
                let page = match self
                    .provider
                    .list_payouts(*provider, cursor.as_deref(), PAYOUTS_PER_PAGE)
                    .await
                {
                    Ok(Some(page)) => page,
                    Ok(None) => return Ok(listing_after(Some(*provider))),
                    Err(e) => return Err(StepError::provider(e)),
                };
                let mut older = false;
                for record in &page.records {
                    counts.listed += 1;
                    if record.created_at.is_some_and(|c| c < run.period.start()) {
                        older = true;
                        continue;
                    }
                    if record.created_at.is_some_and(|c| c >= run.period.end()) {
                        continue;
                    }
                    self.check_listed(run, *provider, record, counts).await?;
                }
                Ok(match page.next {
                    // Listings are newest first: past the period's start, nothing more is in it.
                    Some(next) if !older => ReconciliationProgress::ProviderListing {
                        provider: *provider,
                        cursor: Some(next),
                    },
                    _ => listing_after(Some(*provider)),
                })
            }
            ReconciliationProgress::Done => Ok(ReconciliationProgress::Done),
        }
    }

    /// Looks one attempt up at its provider and compares.
    async fn reconcile_attempt(
        &self,
        run: &Reconciliation,
        request: &CashoutRequest,
        attempt: AttemptToCheck,
        counts: &mut StepCounts,
        pacer: &mut Pacer,
    ) -> Result<(), StepError> {
        pacer.wait().await;
        counts.calls += 1;
        let record = match self.provider.payout_record(attempt.provider, attempt.reference).await {
            Ok(record) => record,
            Err(e) if e.class() == ErrorClass::Permanent => {
                tracing::warn!(reconciliation_id = %run.id, cashout_request_id = %request.id(), provider = %attempt.provider, error = %e, "could not compare a payout: the provider refused the lookup");
                counts.failed += 1;
                return Ok(());
            }
            Err(e) => return Err(StepError::provider(e)),
        };
        let now = self.now();
        let status_since = match &record {
            // Only then does it matter, and it costs a read of the request's events.
            Some(r) if provider_ahead(request, r) => self
                .store
                .list_events(request.id())
                .await
                .map_err(StepError::store)?
                .last()
                .map_or(request.updated_at(), |e| e.occurred_at),
            _ => request.updated_at(),
        };
        let found = compare(
            request,
            attempt,
            record.as_ref(),
            time_duration(self.config.reconcile.lag),
            status_since,
            now,
        );
        for (kind, detail) in found {
            let applied = match (&record, kind) {
                (Some(r), DifferenceKind::StatusMismatch | DifferenceKind::StatusLag) if attempt.current => {
                    self.apply_provider_status(request, r).await?
                }
                _ => false,
            };
            let difference = Difference {
                kind,
                cashout_request_id: Some(request.id()),
                provider: attempt.provider,
                reference: attempt.reference.to_string(),
                ours: Some(OurSide::of(request)),
                theirs: record.as_ref().map(TheirSide::of),
                detail,
                applied,
                found_at: now,
            };
            self.note_difference(run, difference, counts).await?;
        }
        Ok(())
    }

    /// A payout from a provider's own listing: flags one under our reference that we do not
    /// know (no such request, or a request that never went there under that reference).
    async fn check_listed(
        &self,
        run: &Reconciliation,
        provider: ProviderName,
        record: &ProviderRecord,
        counts: &mut StepCounts,
    ) -> Result<(), StepError> {
        let Some(text) = record.reference.as_deref() else {
            return Ok(());
        };
        let Some(reference) = our_reference(text) else {
            return Ok(()); // not one of ours
        };
        let request = self
            .store
            .get_request(reference.request_id())
            .await
            .map_err(StepError::store)?;
        let known = request.as_ref().is_some_and(|r| {
            attempts_to_check(r)
                .iter()
                .any(|a| a.provider == provider && a.reference == reference)
        });
        if known {
            return Ok(());
        }
        let detail = match &request {
            None => format!(
                "{provider} holds payout {} under our reference {reference}; we have no such request",
                record.payout.payout_id
            ),
            Some(r) => format!(
                "{provider} holds payout {} under our reference {reference}; the request never went there under it (it is {} at {})",
                record.payout.payout_id,
                r.status(),
                r.provider()
            ),
        };
        let difference = Difference {
            kind: DifferenceKind::UnknownProviderPayout,
            cashout_request_id: request.as_ref().map(CashoutRequest::id),
            provider,
            reference: reference.to_string(),
            ours: request.as_ref().map(OurSide::of),
            theirs: Some(TheirSide::of(record)),
            detail,
            applied: false,
            found_at: self.now(),
        };
        self.note_difference(run, difference, counts).await
    }

    /// Alerts, flags the request and keeps the difference for the run.
    async fn note_difference(
        &self,
        run: &Reconciliation,
        difference: Difference,
        counts: &mut StepCounts,
    ) -> Result<(), StepError> {
        tracing::error!(
            alert = true,
            metric = "cashout.reconciliation_difference",
            reconciliation_id = %run.id,
            kind = difference.kind.as_str(),
            provider = %difference.provider,
            reference = %difference.reference,
            cashout_request_id = ?difference.cashout_request_id.map(|i| i.to_string()),
            applied = difference.applied,
            detail = %difference.detail,
            "reconciliation difference"
        );
        if let Some(id) = difference.cashout_request_id {
            let reason = AttentionReason::ReconciliationDifference {
                reconciliation_id: run.id,
                difference: difference.kind,
                detail: difference.detail.clone(),
            };
            match self
                .mutate(id, |r, now| Ok(r.flag_attention(reason.clone(), now)))
                .await
            {
                Ok(_) | Err(AppError::NotFound) => {}
                Err(e) => return Err(StepError::app(e)),
            }
        }
        counts.differences.push(difference);
        Ok(())
    }

    /// Records the provider's status as a poll would (the normal status path, with its event);
    /// `true` if the request's status moved.
    async fn apply_provider_status(
        &self,
        request: &CashoutRequest,
        record: &ProviderRecord,
    ) -> Result<bool, StepError> {
        if record.payout.state == PayoutState::Unknown {
            return Ok(false);
        }
        let before = request.status();
        self.observe(request.id(), Some(&record.payout), None)
            .await
            .map_err(StepError::app)?;
        let after = self
            .store
            .get_request(request.id())
            .await
            .map_err(StepError::store)?
            .map_or(before, |r| r.status());
        if after != before {
            tracing::warn!(cashout_request_id = %request.id(), from = %before, to = %after, provider_status = %record.payout.provider_status, "reconciliation applied the provider's status");
        }
        Ok(after != before)
    }
}

/// The listing phase of the provider after `after` (`None`: of the first), or done when none is left.
fn listing_after(after: Option<ProviderName>) -> ReconciliationProgress {
    let next = match after {
        None => ProviderName::ALL.first().copied(),
        Some(p) => ProviderName::ALL
            .iter()
            .position(|x| *x == p)
            .and_then(|i| ProviderName::ALL.get(i + 1).copied()),
    };
    match next {
        Some(provider) => ReconciliationProgress::ProviderListing { provider, cursor: None },
        None => ReconciliationProgress::Done,
    }
}

fn time_duration(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Why a step stopped.
enum StepError {
    /// Worth trying again from the last saved page (a provider or the store unavailable).
    Retry(String),
    /// The run cannot go on.
    Fatal(String),
}

impl StepError {
    fn store(e: StoreError) -> Self {
        Self::app(e.into())
    }

    fn app(e: AppError) -> Self {
        if e.is_retryable() {
            StepError::Retry(e.to_string())
        } else {
            StepError::Fatal(e.to_string())
        }
    }

    fn provider(e: ProviderError) -> Self {
        match e.class() {
            ErrorClass::Permanent => StepError::Fatal(e.to_string()),
            ErrorClass::Retryable | ErrorClass::Ambiguous => StepError::Retry(e.to_string()),
        }
    }
}

/// Spaces provider calls out to at most `per_second`.
struct Pacer {
    interval: Option<Duration>,
    next: Option<tokio::time::Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Self {
        Pacer {
            interval: (per_second > 0).then(|| Duration::from_secs(1) / per_second),
            next: None,
        }
    }

    async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = tokio::time::Instant::now();
        if let Some(next) = self.next
            && next > now
        {
            tokio::time::sleep_until(next).await;
        }
        self.next = Some(tokio::time::Instant::now() + interval);
    }
}
