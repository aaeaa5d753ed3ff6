//! What merchants and operators decide: review, approve, retry, reject, cancel, exclude an
//! invoice. Ending a request a provider may hold asks the provider first (the `_confirmed` forms).

use time::OffsetDateTime;

use super::{CashoutRequest, Change, DispatchState, TransitionError};
use crate::auth::OperatorName;
use crate::event::{EventPayload, StatusReason};
use crate::ids::InvoiceId;
use crate::review::{Approval, ApprovalPolicy, PolicyDecision, PolicyScope, ReviewFacts, ReviewState};
use crate::routing::RoutingChoice;
use crate::status::{CashoutStatus, InvoiceStatus};

impl CashoutRequest {
    /// Applies the approval policy's decision to a `REQUESTED` request: `APPROVED` when no rule
    /// fired, `UNDER_REVIEW` otherwise (the decision is kept on the request, with the approvals
    /// it needs). Approving, it records `routing` (see [`Self::approve`]).
    pub fn review(
        &self,
        policy: &ApprovalPolicy,
        facts: &ReviewFacts,
        routing: Option<RoutingChoice>,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested], "review")?;
        let decision = policy.decide(self, facts);
        if decision.required_approvals == 0 {
            self.change(now, |r, ev| {
                r.review = Some(ReviewState {
                    decision,
                    approvals: Vec::new(),
                });
                r.set_routing(routing);
                r.step(CashoutStatus::Approved, StatusReason::AutoApproved, now, ev)
            })
        } else {
            let limit = decision
                .fired
                .iter()
                .map(|f| f.detail.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            self.change(now, |r, ev| {
                r.review = Some(ReviewState {
                    decision,
                    approvals: Vec::new(),
                });
                r.step(
                    CashoutStatus::UnderReview,
                    StatusReason::ManualReviewRequired { limit },
                    now,
                    ev,
                )
            })
        }
    }

    /// How many distinct operators must approve this request (1 when the policy decided
    /// nothing, as for requests reviewed before policies).
    pub fn required_approvals(&self) -> u8 {
        self.review.as_ref().map_or(1, |r| r.decision.required_approvals).max(1)
    }

    /// An operator approves a `REQUESTED` or `UNDER_REVIEW` request. The approval is recorded;
    /// once the request has as many distinct approvals as its policy asks for, it becomes
    /// `APPROVED` with `routing`, the choice of providers made now ([`RoutingChoice::choose`];
    /// `None` keeps the provider chosen at creation as the only one). The same operator
    /// approving twice is [`TransitionError::AlreadyApproved`].
    pub fn approve(
        &self,
        operator: &OperatorName,
        routing: Option<RoutingChoice>,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested, CashoutStatus::UnderReview], "approve")?;
        let approvals = self.review.as_ref().map_or(&[][..], |r| &r.approvals[..]);
        if approvals.iter().any(|a| &a.operator == operator) {
            return Err(TransitionError::AlreadyApproved(operator.clone()));
        }
        let required = usize::from(self.required_approvals());
        let approval = Approval {
            operator: operator.clone(),
            at: now,
        };
        if approvals.len() + 1 < required {
            return Ok(self.touch(now, |r| r.record_approval(approval)));
        }
        self.change(now, |r, ev| {
            r.record_approval(approval);
            r.set_routing(routing);
            r.step(CashoutStatus::Approved, StatusReason::ApprovedByOperator, now, ev)
        })
    }

    fn record_approval(&mut self, approval: Approval) {
        match self.review.as_mut() {
            Some(review) => review.approvals.push(approval),
            None => {
                self.review = Some(ReviewState {
                    decision: PolicyDecision {
                        policy: PolicyScope::Default,
                        policy_version: 0,
                        fired: Vec::new(),
                        required_approvals: 1,
                    },
                    approvals: vec![approval],
                });
            }
        }
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
                    actor: None,
                },
                ev,
            );
            Ok(())
        })
    }
}
