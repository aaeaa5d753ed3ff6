//! What merchants and operators decide: review, approve, retry, reject, cancel, exclude an
//! invoice. Ending a request a provider may hold asks the provider first (the `_confirmed` forms).

use time::OffsetDateTime;

use super::{CashoutRequest, Change, DispatchState, TransitionError};
use crate::event::{EventPayload, StatusReason};
use crate::ids::InvoiceId;
use crate::review::{ReviewDecision, ReviewPolicy};
use crate::routing::RoutingChoice;
use crate::status::{CashoutStatus, InvoiceStatus};

impl CashoutRequest {
    /// Applies the merchant's review rules to a `REQUESTED` request: `APPROVED` at or under
    /// the auto-approve limit, `UNDER_REVIEW` above it.
    /// Approving, it records `routing` (see [`Self::approve`]).
    pub fn review(
        &self,
        policy: &ReviewPolicy,
        routing: Option<RoutingChoice>,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested], "review")?;
        match policy.decide(self) {
            ReviewDecision::Approve => self.change(now, |r, ev| {
                r.set_routing(routing);
                r.step(CashoutStatus::Approved, StatusReason::AutoApproved, now, ev)
            }),
            ReviewDecision::ManualReview { limit } => self.change(now, |r, ev| {
                r.step(
                    CashoutStatus::UnderReview,
                    StatusReason::ManualReviewRequired { limit },
                    now,
                    ev,
                )
            }),
        }
    }

    /// An operator approves a `REQUESTED` or `UNDER_REVIEW` request. `routing` is the choice of
    /// providers made now ([`RoutingChoice::choose`]); `None` keeps the provider chosen at
    /// creation as the only one (a pinned provider, or nothing else can pay it).
    pub fn approve(&self, routing: Option<RoutingChoice>, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested, CashoutStatus::UnderReview], "approve")?;
        self.change(now, |r, ev| {
            r.set_routing(routing);
            r.step(CashoutStatus::Approved, StatusReason::ApprovedByOperator, now, ev)
        })
    }

    /// An operator sends a `PAYMENT_PROCESSOR_ERROR` request back to dispatch. What is known
    /// about the provider is kept (dispatch looks the payout up before any create, and a create
    /// that may have reached the provider still counts); only the attempt count starts again.
    pub fn retry(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::PaymentProcessorError], "retry")?;
        self.change(now, |r, ev| {
            r.dispatch = r.dispatch.map(|d| DispatchState {
                attempts: 0,
                lease_until: None,
                unresolved: d.unresolved || d.lease_until.is_some(),
                ..d
            });
            r.step(CashoutStatus::Approved, StatusReason::OperatorRetry, now, ev)
        })
    }

    /// An operator rejects a request that is not at the provider: `REQUESTED`, `UNDER_REVIEW`,
    /// or `APPROVED` / `PAYMENT_PROCESSOR_ERROR` while no provider can hold a payout. Once one
    /// may, [`TransitionError::ProviderMayHold`]: look the payout up, and reject with
    /// [`Self::reject_confirmed`] only if the provider holds none.
    pub fn reject(&self, reason: String, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.ending(CashoutStatus::Rejected, "reject", now)?;
        self.reject_confirmed(reason, now)
    }

    /// [`Self::reject`] after the provider was asked, with this request's version, and holds no
    /// payout for it. Refused while a dispatcher holds the lease.
    pub fn reject_confirmed(&self, reason: String, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.confirmable(CashoutStatus::Rejected, "reject", now)?;
        self.change(now, |r, ev| {
            r.step(
                CashoutStatus::Rejected,
                StatusReason::RejectedByOperator { reason },
                now,
                ev,
            )
        })
    }

    /// The merchant cancels. Immediate while no provider can hold a payout; once one may,
    /// [`TransitionError::ProviderMayHold`]: look the payout up and cancel it at the provider
    /// (recording its answer with [`Self::record_provider_payout`]), or, if the provider holds
    /// none, cancel with [`Self::cancel_confirmed`].
    pub fn cancel(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.ending(CashoutStatus::Cancelled, "cancel", now)?;
        self.cancel_confirmed(now)
    }

    /// [`Self::cancel`] after the provider was asked, with this request's version, and holds no
    /// payout for it. Refused while a dispatcher holds the lease.
    pub fn cancel_confirmed(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.confirmable(CashoutStatus::Cancelled, "cancel", now)?;
        self.change(now, |r, ev| {
            r.step(CashoutStatus::Cancelled, StatusReason::CancelledByMerchant, now, ev)
        })
    }

    /// Whether a person may end the request (cancel, reject) without asking the provider.
    fn ending(&self, to: CashoutStatus, action: &'static str, now: OffsetDateTime) -> Result<(), TransitionError> {
        self.confirmable(to, action, now)?;
        if self.provider_may_hold() {
            return Err(TransitionError::ProviderMayHold);
        }
        Ok(())
    }

    /// Whether a person may end the request once the provider has confirmed it holds nothing.
    fn confirmable(&self, to: CashoutStatus, action: &'static str, now: OffsetDateTime) -> Result<(), TransitionError> {
        match self.status {
            CashoutStatus::Requested | CashoutStatus::UnderReview => Ok(()),
            CashoutStatus::Approved | CashoutStatus::PaymentProcessorError => match self.dispatch {
                Some(d) if d.is_leased(now) => Err(TransitionError::DispatchLeased {
                    until: d.lease_until.unwrap_or(now),
                }),
                _ => Ok(()),
            },
            CashoutStatus::PendingPayment if to == CashoutStatus::Cancelled => Err(TransitionError::ProviderMayHold),
            CashoutStatus::PendingPayment => Err(TransitionError::WrongStatus {
                status: self.status,
                action,
            }),
            CashoutStatus::Paid | CashoutStatus::Rejected | CashoutStatus::Cancelled => {
                Err(TransitionError::NotAllowed { from: self.status, to })
            }
        }
    }

    /// An operator takes one invoice out of a request under review (`REQUESTED` or
    /// `UNDER_REVIEW`). The requested amount stays; the payable and paid amounts drop.
    pub fn exclude_invoice(&self, invoice_id: &InvoiceId, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(
            &[CashoutStatus::Requested, CashoutStatus::UnderReview],
            "exclude an invoice of",
        )?;
        let invoice = self
            .invoices
            .iter()
            .find(|i| &i.invoice_id == invoice_id)
            .ok_or_else(|| TransitionError::InvoiceNotFound(invoice_id.clone()))?;
        if !invoice.is_included() {
            return Err(TransitionError::InvoiceAlreadyExcluded(invoice_id.clone()));
        }
        if self.included_invoice_count() == 1 {
            return Err(TransitionError::LastInvoice(invoice_id.clone()));
        }
        self.change(now, |r, ev| {
            let previous_status = invoice.status;
            if let Some(inv) = r.invoices.iter_mut().find(|i| &i.invoice_id == invoice_id) {
                inv.status = InvoiceStatus::Excluded;
            }
            r.push_event(
                now,
                EventPayload::InvoiceStatusUpdate {
                    cashout_request_id: r.id,
                    invoice_id: invoice_id.clone(),
                    status: InvoiceStatus::Excluded,
                    previous_status,
                },
                ev,
            );
            Ok(())
        })
    }
}
