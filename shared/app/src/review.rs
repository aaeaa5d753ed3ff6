//! Review and the operator's and merchant's actions on a request: review rules, approve,
//! reject, exclude an invoice, retry after a processor error, cancel, hold and release.

use cashout_core::auth::Principal;
use cashout_core::cashout::{CashoutRequest, Change, TransitionError};
use cashout_core::ids::{CashoutRequestId, InvoiceId};
use cashout_core::ports::{HoldAction, PayoutProvider, ProviderErrorKind, Store, TaskQueue};
use cashout_core::provider::ProviderPayout;
use cashout_core::status::CashoutStatus;
use time::OffsetDateTime;

use crate::App;
use crate::access::{ensure_visible, require_admin, require_merchant, require_operator};
use crate::error::AppError;
use crate::views::CashoutRequestView;
use crate::write::Mutation;

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Applies the review rules to a `REQUESTED` request (after creation, or from the sweep when
    /// a crash interrupted it). A request already reviewed is returned as it is.
    #[tracing::instrument(skip(self, request), fields(cashout_request_id = %request.id()))]
    pub(crate) async fn finish_review(&self, request: CashoutRequest) -> Result<CashoutRequest, AppError> {
        if request.status() != CashoutStatus::Requested {
            return Ok(request);
        }
        let rules = self.routing_rules().await?;
        let policy = self.policy_for(request.merchant_id()).await?;
        let facts = self.review_facts(&policy, &request).await?;
        let m = self
            .mutate_from(request, |r, now| {
                if r.status() != CashoutStatus::Requested {
                    return Ok(None);
                }
                let routing = self.choose_routes(&rules, r);
                Ok(Some(self.scheduled(r.review(&policy, &facts, routing, now)?, now)))
            })
            .await?;
        if m.change.is_some() {
            self.follow_up(&m.request).await;
        }
        Ok(m.request)
    }

    /// Runs a principal's action on a request through [`App::mutate`], checking visibility on
    /// every load, and does the follow-up work of the change.
    async fn act<F>(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
        mut action: F,
    ) -> Result<CashoutRequestView, AppError>
    where
        F: FnMut(&CashoutRequest, OffsetDateTime) -> Result<Change, TransitionError>,
    {
        let actor = principal.actor();
        let m = self
            .mutate(id, |r, now| {
                ensure_visible(principal, r)?;
                Ok(Some(self.scheduled(action(r, now)?, now).by(&actor)))
            })
            .await?;
        self.follow_up(&m.request).await;
        Ok(CashoutRequestView::from(&m.request))
    }

    /// Operator: approve a request under review. The approval is recorded on the request; it
    /// moves to `APPROVED` once as many distinct operators as its policy asks for have approved
    /// (the same operator twice: 409 `already_approved`).
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn approve(&self, principal: &Principal, id: CashoutRequestId) -> Result<CashoutRequestView, AppError> {
        let operator = require_operator(principal)?;
        let rules = self.routing_rules().await?;
        let view = self
            .act(principal, id, |r, now| {
                r.approve(operator, self.choose_routes(&rules, r), now)
            })
            .await?;
        tracing::info!(%operator, status = %view.status, "approval recorded");
        Ok(view)
    }

    /// Operator: approves several requests, each on its own (one failing does not stop the
    /// others), at most [`MAX_BULK`].
    pub async fn bulk_approve(
        &self,
        principal: &Principal,
        ids: &[CashoutRequestId],
    ) -> Result<Vec<BulkApproveItem>, AppError> {
        require_operator(principal)?;
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(AppError::BadParameter(format!("give 1 to {MAX_BULK} request ids")));
        }
        let mut seen = std::collections::HashSet::new();
        let mut items = Vec::with_capacity(ids.len());
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            items.push(BulkApproveItem {
                id,
                result: self.approve(principal, id).await,
            });
        }
        Ok(items)
    }

    /// Operator: clear the attention flag once a person has dealt with what it says.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn resolve_attention(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
    ) -> Result<CashoutRequestView, AppError> {
        require_operator(principal)?;
        self.act(principal, id, |r, now| r.resolve_attention(now)).await
    }

    /// Operator: take an invoice out of a request under review.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id, invoice_id = %invoice))]
    pub async fn exclude_invoice(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
        invoice: &InvoiceId,
    ) -> Result<CashoutRequestView, AppError> {
        require_operator(principal)?;
        self.act(principal, id, |r, now| r.exclude_invoice(invoice, now)).await
    }

    /// Operator: send a request back to dispatch after a processor error. Safe even if the
    /// provider holds a payout: dispatch looks the payout up by reference before creating and
    /// adopts what it finds.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn retry(&self, principal: &Principal, id: CashoutRequestId) -> Result<CashoutRequestView, AppError> {
        require_admin(principal)?;
        self.act(principal, id, |r, now| r.retry(now)).await
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// Merchant: cancel a request. Immediate while no provider can hold the payout; otherwise
    /// the provider is asked first: holding none, the request is cancelled (on the version the
    /// provider was asked about); holding it, it is asked to cancel it (D24 only while
    /// `PENDING`/`ON_HOLD`) and its answer recorded. Refused while a dispatcher is sending it.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn cancel(&self, principal: &Principal, id: CashoutRequestId) -> Result<CashoutRequestView, AppError> {
        require_merchant(principal)?;
        let actor = principal.actor();
        for _ in 0..ASK_ROUNDS {
            let m = self
                .mutate(id, |r, now| {
                    ensure_visible(principal, r)?;
                    match r.cancel(now) {
                        Ok(change) => Ok(Some(self.scheduled(change, now).by(&actor))),
                        Err(TransitionError::ProviderMayHold) => Ok(None),
                        Err(e) => Err(e.into()),
                    }
                })
                .await?;
            if m.change.is_some() {
                return Ok(CashoutRequestView::from(&m.request));
            }
            let request = m.request;
            let payout = match self.ask_provider(&request).await? {
                None if request.status() == CashoutStatus::PendingPayment => {
                    tracing::error!(alert = true, provider = %request.provider(), "the provider has no payout for a request it accepted");
                    return Err(AppError::NotCancellable(
                        "the provider does not find the payout; try again later".into(),
                    ));
                }
                None => {
                    let now = self.now();
                    let change = self.scheduled(request.cancel_confirmed(now)?, now).by(&actor);
                    if self.write(&change).await? {
                        return Ok(CashoutRequestView::from(&change.request));
                    }
                    // Changed while the provider was asked: ask again.
                    continue;
                }
                Some(p) => p,
            };
            let answer = if payout.state.target_status() == Some(CashoutStatus::PendingPayment) {
                match self
                    .provider
                    .cancel_payout(request.provider(), &payout.payout_id, request.payout_reference())
                    .await
                {
                    Ok(p) => p,
                    Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                        self.record_answer(id, &payout).await?;
                        return Err(AppError::NotCancellable(e.message));
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                payout
            };
            let m = self.record_answer(id, &answer).await?;
            if m.request.status() != CashoutStatus::Cancelled {
                return Err(AppError::NotCancellable(format!(
                    "the provider reports the payout as {}",
                    answer.provider_status
                )));
            }
            return Ok(CashoutRequestView::from(&m.request));
        }
        Err(AppError::Contended)
    }

    /// Operator: reject a request that is not at the provider. Once the provider may hold its
    /// payout, the provider is asked first: the reject goes through only if it holds none (a
    /// payout it holds is recorded, and the reject refused).
    #[tracing::instrument(skip(self, principal, reason), fields(cashout_request_id = %id))]
    pub async fn reject(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
        reason: String,
    ) -> Result<CashoutRequestView, AppError> {
        require_operator(principal)?;
        let reason = reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AppError::BadParameter(
                "a reason of 1 to 500 characters is required".into(),
            ));
        }
        let actor = principal.actor();
        for _ in 0..ASK_ROUNDS {
            let m = self
                .mutate(id, |r, now| {
                    ensure_visible(principal, r)?;
                    match r.reject(reason.clone(), now) {
                        Ok(change) => Ok(Some(self.scheduled(change, now).by(&actor))),
                        Err(TransitionError::ProviderMayHold) => Ok(None),
                        Err(e) => Err(e.into()),
                    }
                })
                .await?;
            if m.change.is_some() {
                self.follow_up(&m.request).await;
                return Ok(CashoutRequestView::from(&m.request));
            }
            let request = m.request;
            match self.ask_provider(&request).await? {
                None => {
                    let now = self.now();
                    let change = self
                        .scheduled(request.reject_confirmed(reason.clone(), now)?, now)
                        .by(&actor);
                    if self.write(&change).await? {
                        return Ok(CashoutRequestView::from(&change.request));
                    }
                    // Changed while the provider was asked: ask again.
                }
                Some(payout) => {
                    let m = self.record_answer(id, &payout).await?;
                    if m.request.status().is_final() {
                        return Err(TransitionError::WrongStatus {
                            status: m.request.status(),
                            action: "reject",
                        }
                        .into());
                    }
                    return Err(AppError::ProviderHoldsPayout(format!(
                        "payout {} is {} at {}",
                        payout.payout_id, payout.provider_status, payout.provider
                    )));
                }
            }
        }
        Err(AppError::Contended)
    }

    /// Holds a payout the provider has not sent yet (`ON_HOLD`, D24 and Onspot), or releases a
    /// held one so that the provider pays it (operator). The provider's answer is recorded: the
    /// request stays `PENDING_PAYMENT`, its `provider_status` says `ON_HOLD` or `PENDING`.
    pub async fn set_hold(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
        action: HoldAction,
    ) -> Result<CashoutRequestView, AppError> {
        require_operator(principal)?;
        let request = self.store.get_request(id).await?.ok_or(AppError::NotFound)?;
        let provider = request.provider();
        if !provider.supports_hold() {
            return Err(AppError::HoldRefused(format!("{provider} cannot hold a payout")));
        }
        if request.status() != CashoutStatus::PendingPayment {
            return Err(AppError::HoldRefused(format!(
                "the request is {}; only a payout the provider has accepted (PENDING_PAYMENT) can be held or released",
                request.status()
            )));
        }
        let payout_id = match request.provider_reference() {
            Some(p) if !p.is_by_reference() => p.clone(),
            // Adopted by our reference after a lost answer: the provider's own id is needed.
            _ => match self.ask_provider(&request).await? {
                Some(p) if !p.payout_id.is_by_reference() => p.payout_id,
                _ => {
                    return Err(AppError::HoldRefused(
                        "the provider's id of this payout is not known yet; try again after its next notification"
                            .into(),
                    ));
                }
            },
        };
        let reference = request.payout_reference();
        let answer = match self.provider.set_hold(provider, &payout_id, reference, action).await {
            Ok(p) => p,
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                if let Some(now) = self.ask_provider(&request).await? {
                    self.record_answer(id, &now).await?;
                }
                return Err(AppError::HoldRefused(e.message));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(cashout_request_id = %id, %provider, ?action, provider_status = %answer.provider_status, "hold changed at the provider");
        let m = self.record_answer(id, &answer).await?;
        Ok(CashoutRequestView::from(&m.request))
    }

    /// What the provider holds for a request: by its payout id when known, else by our
    /// reference. `None`: nothing.
    async fn ask_provider(&self, request: &CashoutRequest) -> Result<Option<ProviderPayout>, AppError> {
        let provider = request.provider();
        let answer = match request.provider_reference() {
            Some(payout_id) if !payout_id.is_by_reference() => self
                .provider
                .payout_status(provider, payout_id, request.payout_reference())
                .await
                .map(Some),
            _ => self.provider.find_payout(provider, request.payout_reference()).await,
        };
        match answer {
            Err(e) if e.kind == ProviderErrorKind::NotFound => Ok(None),
            other => Ok(other?),
        }
    }

    /// Records a provider's answer about a request's payout, with its follow-up work.
    async fn record_answer(&self, id: CashoutRequestId, payout: &ProviderPayout) -> Result<Mutation, AppError> {
        let m = self
            .mutate(id, |r, now| {
                Ok(r.record_provider_payout(payout, now).map(|c| self.scheduled(c, now)))
            })
            .await?;
        if m.change.as_ref().is_some_and(|c| c.changed_status()) {
            self.follow_up(&m.request).await;
        }
        Ok(m)
    }
}

/// How many times a cancel or reject asks the provider when the request keeps changing meanwhile.
const ASK_ROUNDS: usize = 3;

/// The most requests one bulk approval takes.
pub const MAX_BULK: usize = 100;

/// One request of a bulk approval and what became of it.
#[derive(Debug)]
pub struct BulkApproveItem {
    /// The request.
    pub id: CashoutRequestId,
    /// Its view after the approval, or why it was refused.
    pub result: Result<CashoutRequestView, AppError>,
}
