//! Review and the operator's and merchant's actions on a request: review rules, approve,
//! reject, exclude an invoice, retry after a processor error, cancel.

use cashout_core::auth::Principal;
use cashout_core::cashout::{CashoutRequest, Change, TransitionError};
use cashout_core::ids::{CashoutRequestId, InvoiceId};
use cashout_core::ports::{PayoutProvider, ProviderErrorKind, Store, TaskQueue};
use cashout_core::status::CashoutStatus;
use time::OffsetDateTime;

use crate::App;
use crate::error::AppError;
use crate::views::CashoutRequestView;

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Applies the review rules to a `REQUESTED` request (after creation, or from the sweep when
    /// a crash interrupted it). A request already reviewed is returned as it is.
    #[tracing::instrument(skip(self, request), fields(cashout_request_id = %request.id()))]
    pub(crate) async fn finish_review(&self, request: CashoutRequest) -> Result<CashoutRequest, AppError> {
        if request.status() != CashoutStatus::Requested {
            return Ok(request);
        }
        let m = self
            .mutate_from(request, |r, now| {
                if r.status() != CashoutStatus::Requested {
                    return Ok(None);
                }
                let policy = self.config.review_for(r.merchant_id());
                Ok(Some(self.scheduled(r.review(policy, now)?, now)))
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
        let m = self
            .mutate(id, |r, now| {
                ensure_visible(principal, r)?;
                Ok(Some(self.scheduled(action(r, now)?, now)))
            })
            .await?;
        self.follow_up(&m.request).await;
        Ok(CashoutRequestView::from(&m.request))
    }

    /// Operator: approve a request under review.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn approve(&self, principal: &Principal, id: CashoutRequestId) -> Result<CashoutRequestView, AppError> {
        require_operator(principal)?;
        self.act(principal, id, |r, now| r.approve(now)).await
    }

    /// Operator: reject a request that is not at the provider.
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
        self.act(principal, id, |r, now| r.reject(reason.clone(), now)).await
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
        require_operator(principal)?;
        self.act(principal, id, |r, now| r.retry(now)).await
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// Merchant: cancel a request. Immediate while no provider can hold the payout; otherwise
    /// the provider is asked to cancel (D24 only while `PENDING`) and its answer recorded.
    #[tracing::instrument(skip(self, principal), fields(cashout_request_id = %id))]
    pub async fn cancel(&self, principal: &Principal, id: CashoutRequestId) -> Result<CashoutRequestView, AppError> {
        require_merchant(principal)?;
        let m = self
            .mutate(id, |r, now| {
                ensure_visible(principal, r)?;
                match r.cancel(now) {
                    Ok(change) => Ok(Some(self.scheduled(change, now))),
                    Err(TransitionError::NeedsProviderCancel) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        if m.change.is_some() {
            return Ok(CashoutRequestView::from(&m.request));
        }
        // The provider may hold the payout: cancel it there, then record its answer.
        let request = m.request;
        let provider = request.provider();
        let payout_id = match request.provider_reference() {
            Some(p) => p.clone(),
            None => match self.provider.find_payout(provider, id).await? {
                Some(p) => p.payout_id,
                None => return Err(AppError::DispatchInProgress),
            },
        };
        let payout = match self.provider.cancel_payout(provider, &payout_id, id).await {
            Ok(p) => p,
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                return Err(AppError::NotCancellable(e.message));
            }
            Err(e) => return Err(e.into()),
        };
        let m = self
            .mutate(id, |r, now| {
                Ok(r.record_provider_payout(&payout, now).map(|c| self.scheduled(c, now)))
            })
            .await?;
        self.follow_up(&m.request).await;
        if m.request.status() != CashoutStatus::Cancelled {
            return Err(AppError::NotCancellable(format!(
                "the provider reports the payout as {}",
                payout.provider_status
            )));
        }
        Ok(CashoutRequestView::from(&m.request))
    }
}

/// Merchants see their own requests; operators see all.
pub(crate) fn ensure_visible(principal: &Principal, request: &CashoutRequest) -> Result<(), AppError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::Merchant { merchant_id } if merchant_id == request.merchant_id() => Ok(()),
        Principal::Merchant { .. } => Err(AppError::NotFound),
    }
}

/// Only operators review.
pub(crate) fn require_operator(principal: &Principal) -> Result<(), AppError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::Merchant { .. } => Err(AppError::Forbidden("this action needs an operator key")),
    }
}

/// Only merchants create, cancel and manage endpoints.
pub(crate) fn require_merchant(principal: &Principal) -> Result<&cashout_core::ids::MerchantId, AppError> {
    match principal {
        Principal::Merchant { merchant_id } => Ok(merchant_id),
        Principal::Operator => Err(AppError::Forbidden("this action needs a merchant key")),
    }
}
