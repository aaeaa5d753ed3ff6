//! The cashout request: one or more invoices advanced at a percentage, paid out as one payout.
//!
//! A request is changed only through the operations below. Each returns a [`Change`]: the new
//! state (version + 1) and the status events it appends, to be written atomically on the
//! condition that the stored version is still [`Change::expected_version`]. Nothing here writes;
//! a lost race is the store's typed conflict, and the caller reloads and decides again.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{EventPayload, StatusEvent, StatusReason};
use crate::ids::{CashoutRequestId, EventId, InvoiceId, MerchantId, ProviderPayoutId};
use crate::input::CashoutDraft;
use crate::money::{Amount, Currency, Percentage};
use crate::party::{Beneficiary, Country, Payer};
use crate::provider::{PayoutState, ProviderName, ProviderPayout};
use crate::review::{ReviewDecision, ReviewPolicy};
use crate::status::{CashoutStatus, InvoiceStatus};

/// One invoice inside a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The merchant's invoice id, unique in the request.
    pub invoice_id: InvoiceId,
    /// Who owes it.
    pub payer: Payer,
    /// The invoice amount.
    pub amount: Amount,
    /// The advance percentage.
    pub advance_percentage: Percentage,
    /// `amount × advance_percentage / 100`, half-even to the minor unit.
    pub eligible_amount: Amount,
    /// Moves with the request unless `EXCLUDED`.
    pub status: InvoiceStatus,
}

impl Invoice {
    /// Whether the invoice is still part of the payout.
    pub fn is_included(&self) -> bool {
        self.status != InvoiceStatus::Excluded
    }
}

/// Dispatch bookkeeping of an `APPROVED` request: once a dispatcher has claimed it, the provider
/// may hold a payout for it, so a cancel must go through the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchState {
    /// When the first dispatcher claimed it.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// How many times a dispatcher claimed it (more than one after a crash or a retryable
    /// provider error; every attempt looks the payout up by reference before creating).
    pub attempts: u32,
}

/// A cashout request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashoutRequest {
    id: CashoutRequestId,
    merchant_id: MerchantId,
    currency: Currency,
    country: Country,
    requested_by: String,
    provider: ProviderName,
    beneficiary: Beneficiary,
    invoices: Vec<Invoice>,
    requested_amount: Amount,
    requested_invoice_count: u32,
    paid_invoice_count: u32,
    paid_amount: Option<Amount>,
    #[serde(with = "time::serde::rfc3339")]
    request_date: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    payment_date: Option<OffsetDateTime>,
    payment_reference: Option<String>,
    provider_reference: Option<ProviderPayoutId>,
    provider_status: Option<String>,
    status: CashoutStatus,
    status_reason: Option<StatusReason>,
    metadata: serde_json::Map<String, serde_json::Value>,
    version: u64,
    last_sequence: u64,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    dispatch: Option<DispatchState>,
    #[serde(with = "time::serde::rfc3339::option")]
    next_check_at: Option<OffsetDateTime>,
    checks_since_change: u32,
}

/// A change to write: the new state and the events it appends, on the condition that the stored
/// version is still `expected_version` (0 for a creation).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a change does nothing until it is written"]
pub struct Change {
    /// The version the change was computed from.
    pub expected_version: u64,
    /// The new state (`expected_version + 1`).
    pub request: CashoutRequest,
    /// The events appended, in sequence order (none for bookkeeping-only changes).
    pub events: Vec<StatusEvent>,
    /// Set when this change gave the request its provider payout id: the store indexes it so
    /// that provider notifications find the request.
    pub new_provider_reference: Option<(ProviderName, ProviderPayoutId)>,
}

impl Change {
    /// Sets when the request should next be looked at by the poller's sweep (ignored, and
    /// cleared, once the request is final).
    pub fn with_next_check(mut self, at: Option<OffsetDateTime>) -> Self {
        self.request.next_check_at = if self.request.status.is_final() { None } else { at };
        self
    }

    /// Whether the change moved the status.
    pub fn changed_status(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e.payload, EventPayload::StatusUpdate { .. }))
    }
}

/// Why an operation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The transition table does not allow it.
    #[error("a {from} cashout request cannot become {to}")]
    NotAllowed {
        /// Current status.
        from: CashoutStatus,
        /// Asked-for status.
        to: CashoutStatus,
    },
    /// The operation only applies in some statuses.
    #[error("cannot {action} a {status} cashout request")]
    WrongStatus {
        /// Current status.
        status: CashoutStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// A dispatcher has claimed the request, so the provider may hold a payout: cancelling must
    /// go through the provider.
    #[error("the payout may already be at the provider: cancel it there first")]
    NeedsProviderCancel,
    /// No invoice with that id in the request.
    #[error("no invoice `{0}` in this cashout request")]
    InvoiceNotFound(InvoiceId),
    /// The invoice was already excluded.
    #[error("invoice `{0}` is already excluded")]
    InvoiceAlreadyExcluded(InvoiceId),
    /// Excluding it would leave nothing to pay: reject the request instead.
    #[error("invoice `{0}` is the last included invoice: reject the request instead")]
    LastInvoice(InvoiceId),
}

/// Why a dispatch ended without a payout at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchFailure {
    /// The provider declined the data (D24 `DECLINED`, Cascad 422 on fields): `REJECTED`.
    Declined {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
    /// Configuration, funds or provider trouble: `PAYMENT_PROCESSOR_ERROR`.
    ProcessorError {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
}

impl CashoutRequest {
    /// Creates a request from a validated draft: status `REQUESTED`, version 1, and its
    /// `cashout_request.created` event (sequence 1).
    pub fn create(id: CashoutRequestId, merchant_id: MerchantId, draft: CashoutDraft, now: OffsetDateTime) -> Change {
        let requested_amount = draft.requested_amount();
        let invoices: Vec<Invoice> = draft
            .invoices
            .into_iter()
            .map(|i| Invoice {
                invoice_id: i.invoice_id,
                payer: i.payer,
                amount: i.amount,
                advance_percentage: i.advance_percentage,
                eligible_amount: i.eligible_amount,
                status: InvoiceStatus::Requested,
            })
            .collect();
        let request = CashoutRequest {
            id,
            merchant_id,
            currency: draft.currency,
            country: draft.country,
            requested_by: draft.requested_by,
            provider: draft.provider,
            beneficiary: draft.beneficiary,
            requested_invoice_count: u32::try_from(invoices.len()).unwrap_or(u32::MAX),
            invoices,
            requested_amount,
            paid_invoice_count: 0,
            paid_amount: None,
            request_date: now,
            payment_date: None,
            payment_reference: None,
            provider_reference: None,
            provider_status: None,
            status: CashoutStatus::Requested,
            status_reason: None,
            metadata: draft.metadata,
            version: 1,
            last_sequence: 1,
            updated_at: now,
            dispatch: None,
            next_check_at: None,
            checks_since_change: 0,
        };
        let event = StatusEvent {
            id: EventId::new(id, 1),
            cashout_request_id: id,
            merchant_id: request.merchant_id.clone(),
            sequence: 1,
            occurred_at: now,
            payload: EventPayload::Created {
                cashout_request_id: id,
                currency_code: request.currency,
                requested_amount,
                requested_invoice_count: request.requested_invoice_count,
                request_date: now,
                status: CashoutStatus::Requested,
            },
        };
        Change {
            expected_version: 0,
            request,
            events: vec![event],
            new_provider_reference: None,
        }
    }

    // ----- reading -----

    /// The request's id (also the provider's external/reference id).
    pub fn id(&self) -> CashoutRequestId {
        self.id
    }
    /// The merchant that owns it.
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }
    /// Its currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The beneficiary's country.
    pub fn country(&self) -> Country {
        self.country
    }
    /// Who asked for it.
    pub fn requested_by(&self) -> &str {
        &self.requested_by
    }
    /// The provider that pays it.
    pub fn provider(&self) -> ProviderName {
        self.provider
    }
    /// Who receives the money.
    pub fn beneficiary(&self) -> &Beneficiary {
        &self.beneficiary
    }
    /// Its invoices, included and excluded.
    pub fn invoices(&self) -> &[Invoice] {
        &self.invoices
    }
    /// Σ eligible amounts of every invoice at creation.
    pub fn requested_amount(&self) -> Amount {
        self.requested_amount
    }
    /// Number of invoices at creation.
    pub fn requested_invoice_count(&self) -> u32 {
        self.requested_invoice_count
    }
    /// Invoices paid (0 until `PAID`).
    pub fn paid_invoice_count(&self) -> u32 {
        self.paid_invoice_count
    }
    /// What was paid (`None` until `PAID`, and after a reversal).
    pub fn paid_amount(&self) -> Option<Amount> {
        self.paid_amount
    }
    /// When it was created.
    pub fn request_date(&self) -> OffsetDateTime {
        self.request_date
    }
    /// When it was paid.
    pub fn payment_date(&self) -> Option<OffsetDateTime> {
        self.payment_date
    }
    /// The provider's payout reference, once paid.
    pub fn payment_reference(&self) -> Option<&str> {
        self.payment_reference.as_deref()
    }
    /// The provider's payout id, once the provider holds it.
    pub fn provider_reference(&self) -> Option<&ProviderPayoutId> {
        self.provider_reference.as_ref()
    }
    /// The provider's own last status words, as detail.
    pub fn provider_status(&self) -> Option<&str> {
        self.provider_status.as_deref()
    }
    /// The current status.
    pub fn status(&self) -> CashoutStatus {
        self.status
    }
    /// Why it has its current status.
    pub fn status_reason(&self) -> Option<&StatusReason> {
        self.status_reason.as_ref()
    }
    /// The merchant's metadata.
    pub fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.metadata
    }
    /// Optimistic-lock version: +1 on every write.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Sequence number of the last event.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }
    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    /// Dispatch bookkeeping, once a dispatcher claimed it.
    pub fn dispatch(&self) -> Option<&DispatchState> {
        self.dispatch.as_ref()
    }
    /// When the poller's sweep should look at it next (`None`: nothing to do without an outside
    /// event, or final).
    pub fn next_check_at(&self) -> Option<OffsetDateTime> {
        self.next_check_at
    }
    /// Provider checks since the status last changed (drives the polling back-off).
    pub fn checks_since_change(&self) -> u32 {
        self.checks_since_change
    }

    /// What the provider must pay: Σ eligible amounts of the included invoices.
    pub fn payable_amount(&self) -> Amount {
        Amount::sum(self.included().map(|i| i.eligible_amount)).unwrap_or(self.requested_amount)
    }

    /// Number of included invoices.
    pub fn included_invoice_count(&self) -> u32 {
        u32::try_from(self.included().count()).unwrap_or(u32::MAX)
    }

    fn included(&self) -> impl Iterator<Item = &Invoice> {
        self.invoices.iter().filter(|i| i.is_included())
    }

    // ----- operations -----

    /// Applies the merchant's review rules to a `REQUESTED` request: `APPROVED` at or under
    /// the auto-approve limit, `UNDER_REVIEW` above it.
    pub fn review(&self, policy: &ReviewPolicy, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested], "review")?;
        match policy.decide(self) {
            ReviewDecision::Approve => self.change(now, |r, ev| {
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

    /// An operator approves a `REQUESTED` or `UNDER_REVIEW` request.
    pub fn approve(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Requested, CashoutStatus::UnderReview], "approve")?;
        self.change(now, |r, ev| {
            r.step(CashoutStatus::Approved, StatusReason::ApprovedByOperator, now, ev)
        })
    }

    /// An operator sends a `PAYMENT_PROCESSOR_ERROR` request back to dispatch. Call it only once
    /// the provider has confirmed it holds no payout for the request.
    pub fn retry(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::PaymentProcessorError], "retry")?;
        self.change(now, |r, ev| {
            r.dispatch = None;
            r.step(CashoutStatus::Approved, StatusReason::OperatorRetry, now, ev)
        })
    }

    /// An operator rejects a request that is not at the provider: `REQUESTED`, `UNDER_REVIEW`,
    /// `PAYMENT_PROCESSOR_ERROR`, or `APPROVED` before any dispatch.
    pub fn reject(&self, reason: String, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(
            &[
                CashoutStatus::Requested,
                CashoutStatus::UnderReview,
                CashoutStatus::Approved,
                CashoutStatus::PaymentProcessorError,
            ],
            "reject",
        )?;
        if self.status == CashoutStatus::Approved && self.dispatch.is_some() {
            return Err(TransitionError::WrongStatus {
                status: self.status,
                action: "reject (it is being dispatched)",
            });
        }
        self.change(now, |r, ev| {
            r.step(
                CashoutStatus::Rejected,
                StatusReason::RejectedByOperator { reason },
                now,
                ev,
            )
        })
    }

    /// The merchant cancels. Immediate while no provider can hold a payout; once a dispatcher
    /// claimed the request or the provider holds it, [`TransitionError::NeedsProviderCancel`]:
    /// cancel at the provider and record its answer with [`Self::record_provider_payout`].
    pub fn cancel(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        match self.status {
            CashoutStatus::Requested | CashoutStatus::UnderReview | CashoutStatus::PaymentProcessorError => {}
            CashoutStatus::Approved if self.dispatch.is_none() => {}
            CashoutStatus::Approved | CashoutStatus::PendingPayment => {
                return Err(TransitionError::NeedsProviderCancel);
            }
            CashoutStatus::Paid | CashoutStatus::Rejected | CashoutStatus::Cancelled => {
                return Err(TransitionError::NotAllowed {
                    from: self.status,
                    to: CashoutStatus::Cancelled,
                });
            }
        }
        self.change(now, |r, ev| {
            r.step(CashoutStatus::Cancelled, StatusReason::CancelledByMerchant, now, ev)
        })
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

    /// A dispatcher claims an `APPROVED` request before calling the provider (no event). From
    /// here on a cancel must go through the provider.
    pub fn begin_dispatch(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "dispatch")?;
        self.change(now, |r, _| {
            r.dispatch = Some(match r.dispatch {
                None => DispatchState {
                    started_at: now,
                    attempts: 1,
                },
                Some(d) => DispatchState {
                    attempts: d.attempts.saturating_add(1),
                    ..d
                },
            });
            Ok(())
        })
    }

    /// The provider refused to create the payout (nothing exists there): `REJECTED` for a data
    /// problem, `PAYMENT_PROCESSOR_ERROR` otherwise.
    pub fn record_dispatch_failure(
        &self,
        failure: DispatchFailure,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "record a dispatch failure of")?;
        let (to, reason) = match failure {
            DispatchFailure::Declined { code, message } => (
                CashoutStatus::Rejected,
                StatusReason::ProviderDeclined { code, message },
            ),
            DispatchFailure::ProcessorError { code, message } => (
                CashoutStatus::PaymentProcessorError,
                StatusReason::ProcessorError { code, message },
            ),
        };
        self.change(now, |r, ev| r.step(to, reason, now, ev))
    }

    /// Applies what a provider says about the request's payout. Returns `None` when it changes
    /// nothing: a duplicate, a stale answer that would move the request backwards, an unknown
    /// provider status, or a request that is not at the provider. A request still `APPROVED`
    /// (the provider answered before the dispatch was recorded) first becomes
    /// `PENDING_PAYMENT`, then moves on, each step with its own event.
    pub fn record_provider_payout(&self, payout: &ProviderPayout, now: OffsetDateTime) -> Option<Change> {
        let target = payout.state.target_status()?;
        if payout.provider != self.provider {
            return None;
        }
        if self
            .provider_reference
            .as_ref()
            .is_some_and(|known| known != &payout.payout_id)
        {
            return None;
        }
        let at_provider = matches!(
            self.status,
            CashoutStatus::Approved | CashoutStatus::PendingPayment | CashoutStatus::Paid
        );
        if !at_provider || target == self.status {
            return None;
        }
        // From APPROVED the provider's answer implies it accepted the payout first.
        let through_pending = self.status == CashoutStatus::Approved;
        let from = if through_pending {
            CashoutStatus::PendingPayment
        } else {
            self.status
        };
        if target != from && !from.can_transition_to(target) {
            return None;
        }
        self.change(now, |r, ev| {
            r.provider_reference = Some(payout.payout_id.clone());
            r.provider_status = Some(payout.provider_status.clone());
            if through_pending {
                r.step(CashoutStatus::PendingPayment, StatusReason::ProviderAccepted, now, ev)?;
            }
            if target == CashoutStatus::PendingPayment {
                return Ok(());
            }
            let was_paid = r.status == CashoutStatus::Paid;
            let reason = match &payout.state {
                PayoutState::Paid { paid_at } => {
                    r.paid_amount = Some(r.payable_amount());
                    r.paid_invoice_count = r.included_invoice_count();
                    r.payment_date = Some(paid_at.unwrap_or(now));
                    r.payment_reference = Some(payout.payout_id.to_string());
                    StatusReason::ProviderPaid
                }
                PayoutState::Rejected { code, reason } if was_paid => {
                    r.paid_amount = None;
                    r.paid_invoice_count = 0;
                    StatusReason::ProviderReversed {
                        code: code.clone(),
                        reason: reason.clone(),
                    }
                }
                PayoutState::Rejected { code, reason } => StatusReason::ProviderRejected {
                    code: code.clone(),
                    reason: reason.clone(),
                },
                PayoutState::Cancelled => StatusReason::ProviderCancelled,
                PayoutState::NeedsAttention { reason } => {
                    StatusReason::ProviderNeedsAttention { reason: reason.clone() }
                }
                PayoutState::Pending | PayoutState::Unknown => return Ok(()),
            };
            r.step(target, reason, now, ev)
        })
        .ok()
    }

    /// Bookkeeping after a provider check that changed nothing: counts the check and sets the
    /// next one (no event).
    pub fn record_check(&self, next_check_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Change {
        self.touch(now, |r| r.checks_since_change = r.checks_since_change.saturating_add(1))
            .with_next_check(next_check_at)
    }

    /// Sets the next check only (no event).
    pub fn reschedule(&self, next_check_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Change {
        self.touch(now, |_| {}).with_next_check(next_check_at)
    }

    // ----- internals -----

    fn require(&self, allowed: &[CashoutStatus], action: &'static str) -> Result<(), TransitionError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError::WrongStatus {
                status: self.status,
                action,
            })
        }
    }

    /// A bookkeeping-only change (no status, no event).
    fn touch(&self, now: OffsetDateTime, f: impl FnOnce(&mut CashoutRequest)) -> Change {
        let mut next = self.clone();
        f(&mut next);
        next.version = self.version + 1;
        next.updated_at = now;
        Change {
            expected_version: self.version,
            request: next,
            events: Vec::new(),
            new_provider_reference: None,
        }
    }

    /// Clones, applies `f`, and bumps the version once.
    fn change(
        &self,
        now: OffsetDateTime,
        f: impl FnOnce(&mut CashoutRequest, &mut Vec<StatusEvent>) -> Result<(), TransitionError>,
    ) -> Result<Change, TransitionError> {
        let mut next = self.clone();
        let mut events = Vec::new();
        f(&mut next, &mut events)?;
        next.version = self.version + 1;
        next.updated_at = now;
        if next.status.is_final() {
            next.next_check_at = None;
        }
        let new_provider_reference = match (&self.provider_reference, &next.provider_reference) {
            (None, Some(id)) => Some((next.provider, id.clone())),
            _ => None,
        };
        Ok(Change {
            expected_version: self.version,
            request: next,
            events,
            new_provider_reference,
        })
    }

    /// One status transition: checks the table, moves the included invoices, appends the event.
    fn step(
        &mut self,
        to: CashoutStatus,
        reason: StatusReason,
        now: OffsetDateTime,
        events: &mut Vec<StatusEvent>,
    ) -> Result<(), TransitionError> {
        let from = self.status;
        if !from.can_transition_to(to) {
            return Err(TransitionError::NotAllowed { from, to });
        }
        self.status = to;
        self.status_reason = Some(reason.clone());
        self.checks_since_change = 0;
        for inv in self.invoices.iter_mut().filter(|i| i.is_included()) {
            inv.status = to.into();
        }
        let payload = EventPayload::StatusUpdate {
            cashout_request_id: self.id,
            status: to,
            previous_status: from,
            paid_amount: self.paid_amount,
            paid_invoice_count: self.paid_invoice_count,
            payment_date: self.payment_date,
            payment_reference: self.payment_reference.clone(),
            reason,
        };
        self.push_event(now, payload, events);
        Ok(())
    }

    fn push_event(&mut self, now: OffsetDateTime, payload: EventPayload, events: &mut Vec<StatusEvent>) {
        self.last_sequence += 1;
        events.push(StatusEvent {
            id: EventId::new(self.id, self.last_sequence),
            cashout_request_id: self.id,
            merchant_id: self.merchant_id.clone(),
            sequence: self.last_sequence,
            occurred_at: now,
            payload,
        });
    }
}
