//! The cashout request: one or more invoices advanced at a percentage, paid out as one payout.
//!
//! A request is changed only through the operations below. Each returns a [`Change`]: the new
//! state (version + 1) and the status events it appends, to be written atomically on the
//! condition that the stored version is still [`Change::expected_version`]. Nothing here writes;
//! a lost race is the store's typed conflict, and the caller reloads and decides again.
//!
//! The operations live beside what they concern: the decisions of merchants and operators
//! (review, approve, retry, reject, cancel, exclude) in `decisions.rs`; dispatch (the lease, its
//! release, a failure) in `dispatch.rs`; what a provider reports, and when to ask it next, in
//! `payout.rs`; attention notes in `attention.rs`; [`Change`] and the one transition step every
//! operation goes through in `change.rs`.

mod attention;
mod change;
mod decisions;
mod dispatch;
mod failover;
mod payout;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Actor;
use crate::claim::InvoiceKey;
use crate::event::{EventPayload, StatusEvent, StatusReason};
use crate::ids::{CashoutRequestId, EventId, InvoiceId, MerchantId, ProviderPayoutId};
use crate::input::CashoutDraft;
use crate::money::{Amount, Currency, Percentage};
use crate::party::{Beneficiary, Country, Payer};
use crate::provider::ProviderName;
use crate::review::ReviewState;
use crate::routing::{PayoutMethodKind, RoutingChoice};
use crate::status::{CashoutStatus, InvoiceStatus};

pub use attention::{Attention, AttentionReason, MAX_ATTENTION_NOTES};
pub use change::{Change, TransitionError};
pub use dispatch::{DispatchFailure, DispatchState, ProviderKnowledge};
pub use failover::{FailoverReason, ProviderAttempt};

/// One invoice inside a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The merchant's invoice id, unique in the request.
    pub invoice_id: InvoiceId,
    /// Who owes it.
    pub payer: Payer,
    /// The invoice amount.
    pub amount: Amount,
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
    /// The merchant named the provider. Requests made before routing rules read as pinned.
    #[serde(default = "pinned_by_default")]
    provider_pinned: bool,
    /// The providers chosen at approval, in the order they are tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing: Option<RoutingChoice>,
    /// Every provider attempt, the current one last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    provider_attempts: Vec<ProviderAttempt>,
    /// The approval policy's decision and the approvals so far (absent before the review, and
    /// on requests reviewed before policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    review: Option<ReviewState>,
    /// The person behind the current status (absent when cashout or a provider set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_actor: Option<Actor>,
}

fn pinned_by_default() -> bool {
    true
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
            provider_pinned: draft.provider_pinned,
            routing: None,
            provider_attempts: Vec::new(),
            review: None,
            status_actor: None,
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
    /// The approval policy's decision and the approvals so far.
    pub fn review_state(&self) -> Option<&ReviewState> {
        self.review.as_ref()
    }

    /// The person behind the current status (`None`: cashout or a provider set it).
    pub fn status_actor(&self) -> Option<&Actor> {
        self.status_actor.as_ref()
    }

    /// A fingerprint of where the money goes (the merchant, the country and every field that
    /// names the beneficiary's account, card or document), for the `new_beneficiary` rule: hex
    /// SHA-256, so that no account number is stored in clear with it.
    pub fn beneficiary_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let b = &self.beneficiary;
        let mut h = Sha256::new();
        let mut field = |name: &str, value: Option<&str>| {
            if let Some(v) = value {
                h.update(name.as_bytes());
                h.update([0]);
                h.update(v.trim().to_ascii_uppercase().as_bytes());
                h.update([0]);
            }
        };
        field("merchant", Some(self.merchant_id.as_str()));
        field("country", Some(self.country.code()));
        field("bank_code", b.bank_code.as_deref());
        field("bank_branch", b.bank_branch.as_deref());
        field("bank_account", b.bank_account.as_ref().map(|a| a.expose()));
        field("card_number", b.card_number.as_ref().map(|c| c.expose()));
        field("document_type", b.document_type.as_deref());
        field("document_id", b.document_id.as_deref());
        for (k, v) in &b.extra_fields {
            field(k, Some(v));
        }
        hex::encode(h.finalize())
    }

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
}
