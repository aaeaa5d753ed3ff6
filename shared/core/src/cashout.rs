//! The cashout request: one or more invoices advanced at a percentage, paid out as one payout.
//!
//! A request is changed only through the operations below. Each returns a [`Change`]: the new
//! state (version + 1) and the status events it appends, to be written atomically on the
//! condition that the stored version is still [`Change::expected_version`]. Nothing here writes;
//! a lost race is the store's typed conflict, and the caller reloads and decides again.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::claim::InvoiceKey;
use crate::event::{EventPayload, StatusEvent, StatusReason};
use crate::ids::{CashoutRequestId, EventId, InvoiceId, MerchantId, ProviderPayoutId};
use crate::input::CashoutDraft;
use crate::money::{Amount, Currency, Percentage};
use crate::party::{Beneficiary, Country, Payer};
use crate::provider::{PayoutState, ProviderName, ProviderPayout};
use crate::review::{ReviewDecision, ReviewPolicy};
use crate::routing::PayoutMethodKind;
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

/// Dispatch bookkeeping: once a dispatcher has claimed a request, the provider may hold a payout
/// for it, so a cancel or a reject must ask the provider first.
///
/// The claim is a **lease**: while `lease_until` is in the future, one dispatcher owns the
/// request and no other dispatcher, cancel or reject acts on it. A dispatcher ends its attempt by
/// releasing the lease; one that crashed leaves it set, and the next claim (after it lapses)
/// counts that attempt as one that may have created a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchState {
    /// When the first dispatcher claimed it.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Claims since the request was last approved (more than one after a crash or a retryable
    /// provider error; every attempt looks the payout up by reference before creating).
    pub attempts: u32,
    /// Until when the current dispatcher owns the request (`None`: no attempt in flight).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    /// A create may have reached the provider and no lookup since has shown the payout absent:
    /// the request must not end without a payout until a lookup answers. Records written before
    /// this field existed read as `true`, the safe side.
    #[serde(default = "unresolved_by_default")]
    pub unresolved: bool,
}

fn unresolved_by_default() -> bool {
    true
}

impl DispatchState {
    /// Whether a dispatcher owns the request at `now`.
    pub fn is_leased(&self, now: OffsetDateTime) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }
}

/// What a dispatch attempt learnt about the provider before it ended without a payout to adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKnowledge {
    /// A lookup in this attempt showed no payout and nothing was created since.
    NothingThere,
    /// No create was sent and no lookup answered: what was known at the claim stands.
    Unchanged,
    /// A create was sent, its outcome is unknown, and no lookup has answered since.
    MayExist,
}

/// Why a request needs a person, although its status may look settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttentionReason {
    /// Dispatch cannot tell whether the provider holds a payout (a create may have been sent and
    /// every lookup since failed); it keeps asking, and the request must not be given up.
    UnresolvedDispatch {
        /// Claims so far.
        attempts: u32,
        /// The last provider error.
        last_error: String,
    },
    /// The provider reports a live or paid payout for a request we had ended (cancelled,
    /// rejected, or given up as a processor error).
    PayoutAfterEnd {
        /// The provider's payout id.
        payout_id: ProviderPayoutId,
        /// The provider's status words.
        provider_status: String,
        /// Our status when the report came.
        status: CashoutStatus,
    },
    /// The provider reports a second payout id for our reference: the signature of a double
    /// payout.
    ConflictingPayout {
        /// The payout id we hold.
        known: ProviderPayoutId,
        /// The other one the provider reported.
        reported: ProviderPayoutId,
        /// Its status words.
        provider_status: String,
    },
    /// The provider ended the payout in a state that needs a person (partly processed, a failed
    /// cancellation).
    ProviderNeedsAttention {
        /// What the provider said.
        reason: String,
    },
    /// The provider reports the payout paid for an amount other than the one we asked it to pay
    /// (the request is PAID with the provider's amount when that is a valid amount).
    PaidAmountDiffers {
        /// What we asked the provider to pay.
        requested: Amount,
        /// What the provider says it paid, as it said it.
        #[serde(with = "crate::money::decimal_text")]
        paid: Decimal,
    },
}

/// One reason a request needs a person, and when it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// What is wrong.
    pub reason: AttentionReason,
    /// When it was found.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// The most attention notes a request keeps (the oldest are dropped first).
pub const MAX_ATTENTION_NOTES: usize = 16;

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attention: Vec<Attention>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    hint_poll_at: Option<OffsetDateTime>,
    /// The payout is to be created on hold (the merchant asked for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    hold: bool,
    /// How the payout reaches the beneficiary (absent on requests made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payout_method: Option<PayoutMethodKind>,
    /// The provider's service chosen at creation (Cascad's `card`), whose fields the
    /// beneficiary was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payout_service: Option<String>,
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
    /// The attention notes this change adds (for the alert log).
    pub new_attention: Vec<Attention>,
}

impl Change {
    /// Sets when the request should next be looked at by the poller's sweep (ignored, and
    /// cleared, once the request is final).
    pub fn with_next_check(mut self, at: Option<OffsetDateTime>) -> Self {
        self.request.next_check_at = if self.request.status.is_final() { None } else { at };
        self
    }

    /// Adds an attention note to the change (nothing if the request already has it).
    pub fn noting(mut self, reason: AttentionReason, now: OffsetDateTime) -> Self {
        let before = self.request.attention.len();
        self.request.note_attention(reason, now);
        if self.request.attention.len() != before
            && let Some(added) = self.request.attention.last()
        {
            self.new_attention.push(added.clone());
        }
        self
    }

    /// This change followed by `next`, computed from this change's request, as one write: the
    /// state `next` leaves, the events of both in order, on this change's expected version
    /// (one version step, since it is one write). Used to review a request in the write that
    /// creates it. `None` when `next` was not computed from this change's request.
    pub fn then(self, next: Change) -> Option<Change> {
        if next.expected_version != self.request.version || next.request.id != self.request.id {
            return None;
        }
        let mut request = next.request;
        request.version = self.request.version;
        let mut events = self.events;
        events.extend(next.events);
        let mut new_attention = self.new_attention;
        new_attention.extend(next.new_attention);
        Some(Change {
            expected_version: self.expected_version,
            request,
            events,
            new_provider_reference: next.new_provider_reference.or(self.new_provider_reference),
            new_attention,
        })
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
    /// A dispatcher has claimed the request (or the provider reported a payout), so the provider
    /// may hold a payout: ask it first (look the payout up, cancel it there), then use the
    /// `_confirmed` operation or record the provider's answer.
    #[error("the payout may already be at the provider: ask the provider first")]
    ProviderMayHold,
    /// A dispatcher is sending the request to its provider right now.
    #[error("the request is being sent to its provider until {until}")]
    DispatchLeased {
        /// When the dispatcher's lease ends at the latest.
        until: OffsetDateTime,
    },
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
            hold: draft.hold,
            payout_method: draft.payout_method,
            payout_service: draft.payout_service,
            version: 1,
            last_sequence: 1,
            updated_at: now,
            dispatch: None,
            next_check_at: None,
            checks_since_change: 0,
            attention: Vec::new(),
            hint_poll_at: None,
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
            new_attention: Vec::new(),
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
    /// Whether the merchant asked for the payout to be created on hold.
    pub fn hold(&self) -> bool {
        self.hold
    }
    /// How the payout reaches the beneficiary.
    pub fn payout_method(&self) -> Option<PayoutMethodKind> {
        self.payout_method
    }
    /// The provider's service chosen at creation (Cascad's `card`).
    pub fn payout_service(&self) -> Option<&str> {
        self.payout_service.as_deref()
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
    /// The invoices it claims at creation (every one of them).
    pub fn invoice_keys(&self) -> Vec<InvoiceKey> {
        self.invoices
            .iter()
            .map(|i| InvoiceKey {
                merchant_id: self.merchant_id.clone(),
                payer_tax_id: i.payer.tax_id.clone(),
                invoice_id: i.invoice_id.clone(),
            })
            .collect()
    }
    /// Whether it lets the invoice go (another request may advance it): it ended CANCELLED or
    /// REJECTED with nothing for a person to look at, or it excluded the invoice, or never had
    /// it. Each of these is final, so a released invoice stays released.
    pub fn releases(&self, key: &InvoiceKey) -> bool {
        if self.merchant_id != key.merchant_id {
            return true;
        }
        // A request ends CANCELLED or REJECTED only once the provider provably holds no live
        // payout for it; otherwise it is flagged for a person, and keeps its invoices.
        let ended =
            matches!(self.status, CashoutStatus::Cancelled | CashoutStatus::Rejected) && self.attention.is_empty();
        ended
            || !self
                .invoices
                .iter()
                .any(|i| i.is_included() && i.invoice_id == key.invoice_id && i.payer.tax_id == key.payer_tax_id)
    }
    /// Why a person should look at it (empty: nothing to look at).
    pub fn attention(&self) -> &[Attention] {
        &self.attention
    }
    /// Whether a person should look at it.
    pub fn needs_attention(&self) -> bool {
        !self.attention.is_empty()
    }
    /// Whether the provider may hold a payout for it: a dispatcher claimed it, or the provider
    /// reported one.
    pub fn provider_may_hold(&self) -> bool {
        self.dispatch.is_some() || self.provider_reference.is_some()
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

    /// A dispatcher claims an `APPROVED` request before calling the provider (no event): it takes
    /// the lease until `now + lease`. Refused while another dispatcher holds it. A previous
    /// attempt that never released its lease (it crashed) may have created a payout: the claim
    /// records that. From here on a cancel or a reject asks the provider first.
    pub fn begin_dispatch(&self, now: OffsetDateTime, lease: time::Duration) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "dispatch")?;
        if let Some(d) = self.dispatch.filter(|d| d.is_leased(now)) {
            return Err(TransitionError::DispatchLeased {
                until: d.lease_until.unwrap_or(now),
            });
        }
        let lease_until = now.checked_add(lease).unwrap_or(now);
        self.change(now, |r, _| {
            r.dispatch = Some(match r.dispatch {
                None => DispatchState {
                    started_at: now,
                    attempts: 1,
                    lease_until: Some(lease_until),
                    unresolved: false,
                },
                Some(d) => DispatchState {
                    attempts: d.attempts.saturating_add(1),
                    lease_until: Some(lease_until),
                    unresolved: d.unresolved || d.lease_until.is_some(),
                    ..d
                },
            });
            Ok(())
        })
    }

    /// A dispatcher ends its attempt without a payout to adopt (it will try again later): the
    /// lease is released and what it learnt about the provider recorded (no event).
    pub fn release_dispatch(
        &self,
        knowledge: ProviderKnowledge,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "release the dispatch of")?;
        Ok(self.touch(now, |r| {
            if let Some(d) = r.dispatch.as_mut() {
                d.lease_until = None;
                d.unresolved = match knowledge {
                    ProviderKnowledge::NothingThere => false,
                    ProviderKnowledge::Unchanged => d.unresolved,
                    ProviderKnowledge::MayExist => true,
                };
            }
        }))
    }

    /// The provider refused to create the payout and holds none (a lookup in the same attempt
    /// showed nothing, or no create was ever sent): `REJECTED` for a data problem,
    /// `PAYMENT_PROCESSOR_ERROR` otherwise. The caller must know that; while a payout may exist,
    /// the request waits instead (see [`ProviderKnowledge`]).
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
        self.change(now, |r, ev| {
            if let Some(d) = r.dispatch.as_mut() {
                d.lease_until = None;
                d.unresolved = false;
            }
            r.step(to, reason, now, ev)
        })
    }

    /// Applies what a provider says about the request's payout. Returns `None` when it changes
    /// nothing: a duplicate, a stale answer that would move the request backwards, an unknown
    /// provider status, or another provider's payout. A request still `APPROVED` (the provider
    /// answered before the dispatch was recorded) first becomes `PENDING_PAYMENT`, then moves on,
    /// each step with its own event.
    ///
    /// The provider's truth is never dropped: a live or paid payout reported for a request we
    /// ended (cancelled, rejected, or gave up as `PAYMENT_PROCESSOR_ERROR`), or a second payout id
    /// for our reference, flags the request for a person ([`Self::attention`]); a request in
    /// `PAYMENT_PROCESSOR_ERROR` moves on with its payout.
    pub fn record_provider_payout(&self, payout: &ProviderPayout, now: OffsetDateTime) -> Option<Change> {
        if payout.provider != self.provider {
            return None;
        }
        let target = payout.state.target_status()?;
        let live_or_paid = matches!(target, CashoutStatus::PendingPayment | CashoutStatus::Paid);
        if let Some(known) = &self.provider_reference
            && known != &payout.payout_id
            && !known.is_by_reference()
            && !payout.payout_id.is_by_reference()
        {
            // Two real ids for one reference: the provider made two payouts.
            return self.flag_attention(
                AttentionReason::ConflictingPayout {
                    known: known.clone(),
                    reported: payout.payout_id.clone(),
                    provider_status: payout.provider_status.clone(),
                },
                now,
            );
        }
        // A placeholder (`ext:…`) gives way to the provider's own id, never the reverse.
        let payout_id = match &self.provider_reference {
            Some(known) if payout.payout_id.is_by_reference() => known.clone(),
            _ => payout.payout_id.clone(),
        };
        let through_pending = match self.status {
            CashoutStatus::Approved => true,
            CashoutStatus::PaymentProcessorError => live_or_paid,
            CashoutStatus::PendingPayment | CashoutStatus::Paid => false,
            CashoutStatus::Requested
            | CashoutStatus::UnderReview
            | CashoutStatus::Rejected
            | CashoutStatus::Cancelled => {
                if !live_or_paid || self.ended_by_this_payout(&payout_id) {
                    return None;
                }
                return self.flag_attention(
                    AttentionReason::PayoutAfterEnd {
                        payout_id,
                        provider_status: payout.provider_status.clone(),
                        status: self.status,
                    },
                    now,
                );
            }
        };
        if target == self.status {
            // Same status: the provider's id and its own words (ON_HOLD, DELIVERED…) are kept
            // when they change, without an event.
            let news = self.provider_reference.as_ref() != Some(&payout_id)
                || self.provider_status.as_deref() != Some(payout.provider_status.as_str());
            return news.then(|| {
                self.touch(now, |r| {
                    if r.status == CashoutStatus::Paid
                        && r.provider_reference
                            .as_ref()
                            .is_some_and(ProviderPayoutId::is_by_reference)
                        && !payout_id.is_by_reference()
                    {
                        // Paid while known only by our reference: the provider's own id is
                        // the payment reference from now on.
                        r.payment_reference = Some(payout_id.to_string());
                    }
                    r.provider_reference = Some(payout_id.clone());
                    r.provider_status = Some(payout.provider_status.clone());
                })
            });
        }
        // From APPROVED (or a processor error) the provider's answer implies it accepted the
        // payout first.
        let from = if through_pending {
            CashoutStatus::PendingPayment
        } else {
            self.status
        };
        if target != from && !from.can_transition_to(target) {
            return None;
        }
        let after_end = self.status == CashoutStatus::PaymentProcessorError && live_or_paid;
        self.change(now, |r, ev| {
            r.provider_reference = Some(payout_id.clone());
            r.provider_status = Some(payout.provider_status.clone());
            if after_end {
                r.note_attention(
                    AttentionReason::PayoutAfterEnd {
                        payout_id: payout_id.clone(),
                        provider_status: payout.provider_status.clone(),
                        status: CashoutStatus::PaymentProcessorError,
                    },
                    now,
                );
            }
            if through_pending {
                r.step(CashoutStatus::PendingPayment, StatusReason::ProviderAccepted, now, ev)?;
            }
            if target == CashoutStatus::PendingPayment {
                return Ok(());
            }
            let was_paid = r.status == CashoutStatus::Paid;
            let reason = match &payout.state {
                PayoutState::Paid { paid_at, amount } => {
                    let requested = r.payable_amount();
                    r.paid_amount = Some(requested);
                    if let Some(paid) = *amount
                        && paid != requested.value()
                    {
                        if let Ok(valid) = Amount::new(paid, r.currency) {
                            r.paid_amount = Some(valid);
                        }
                        r.note_attention(AttentionReason::PaidAmountDiffers { requested, paid }, now);
                    }
                    r.paid_invoice_count = r.included_invoice_count();
                    r.payment_date = Some(paid_at.unwrap_or(now));
                    r.payment_reference = Some(payout_id.to_string());
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
                    r.note_attention(AttentionReason::ProviderNeedsAttention { reason: reason.clone() }, now);
                    StatusReason::ProviderNeedsAttention { reason: reason.clone() }
                }
                PayoutState::Pending | PayoutState::Unknown => return Ok(()),
            };
            r.step(target, reason, now, ev)
        })
        .ok()
    }

    /// Whether the request's final status came from this very payout's own end at the provider
    /// (rejected, reversed, cancelled there): a later live or paid report of it is stale.
    fn ended_by_this_payout(&self, payout_id: &ProviderPayoutId) -> bool {
        self.provider_reference.as_ref() == Some(payout_id)
            && matches!(
                self.status_reason,
                Some(
                    StatusReason::ProviderRejected { .. }
                        | StatusReason::ProviderReversed { .. }
                        | StatusReason::ProviderCancelled
                )
            )
    }

    /// Flags the request for a person (no event, no status change); `None` if this reason is
    /// already noted.
    pub fn flag_attention(&self, reason: AttentionReason, now: OffsetDateTime) -> Option<Change> {
        if self.attention.iter().any(|a| a.reason == reason) {
            return None;
        }
        Some(self.touch(now, |r| {
            if let AttentionReason::PayoutAfterEnd { payout_id, .. } = &reason
                && r.provider_reference.is_none()
            {
                // Indexed, so that the provider's later notifications find the request.
                r.provider_reference = Some(payout_id.clone());
            }
            r.note_attention(reason, now);
        }))
    }

    /// A person has dealt with what the request was flagged for: the notes are cleared (no
    /// event). Refused when there is nothing to clear.
    pub fn resolve_attention(&self, now: OffsetDateTime) -> Result<Change, TransitionError> {
        if self.attention.is_empty() {
            return Err(TransitionError::WrongStatus {
                status: self.status,
                action: "resolve the attention flag of (it is not flagged)",
            });
        }
        Ok(self.touch(now, |r| r.attention.clear()))
    }

    /// A provider hinted that the payout changed (a D24 notification, which anyone can forge):
    /// schedules one check at `now + window` (bookkeeping, no event), or `None` when one is
    /// already scheduled at or after now — it will see this change too. So however many hints
    /// arrive, the provider is asked at most once per window.
    pub fn accept_hint(&self, now: OffsetDateTime, window: time::Duration) -> Option<Change> {
        if self.hint_poll_at.is_some_and(|at| at >= now) {
            return None;
        }
        let at = now.checked_add(window).unwrap_or(now);
        Some(self.touch(now, |r| r.hint_poll_at = Some(at)))
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
        let new_provider_reference = self.new_reference(&next);
        let new_attention = self.new_attention(&next);
        Change {
            expected_version: self.version,
            request: next,
            events: Vec::new(),
            new_provider_reference,
            new_attention,
        }
    }

    /// The provider reference `next` adds (a first one, or the provider's id replacing a
    /// placeholder), to be indexed.
    fn new_reference(&self, next: &CashoutRequest) -> Option<(ProviderName, ProviderPayoutId)> {
        match (&self.provider_reference, &next.provider_reference) {
            (old, Some(id)) if old.as_ref() != Some(id) => Some((next.provider, id.clone())),
            _ => None,
        }
    }

    /// The attention notes `next` has and `self` has not.
    fn new_attention(&self, next: &CashoutRequest) -> Vec<Attention> {
        next.attention
            .iter()
            .filter(|a| !self.attention.contains(a))
            .cloned()
            .collect()
    }

    /// Adds an attention note (deduplicated; the oldest goes beyond [`MAX_ATTENTION_NOTES`]).
    fn note_attention(&mut self, reason: AttentionReason, now: OffsetDateTime) {
        if self.attention.iter().any(|a| a.reason == reason) {
            return;
        }
        if self.attention.len() >= MAX_ATTENTION_NOTES {
            self.attention.remove(0);
        }
        self.attention.push(Attention { reason, since: now });
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
        let new_provider_reference = self.new_reference(&next);
        let new_attention = self.new_attention(&next);
        Ok(Change {
            expected_version: self.version,
            request: next,
            events,
            new_provider_reference,
            new_attention,
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
        if let Some(d) = self.dispatch.as_mut() {
            // Only an APPROVED request is leased to a dispatcher.
            d.lease_until = None;
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
