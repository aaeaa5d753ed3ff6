//! Status events: the audit trail of a request and the webhook outbox. Every accepted change of
//! a request appends events with consecutive per-request sequence numbers, written in the same
//! atomic write as the change.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Actor;
use crate::cashout::{FailoverReason, ProviderAttempt};
use crate::ids::{CashoutRequestId, EventId, InvoiceId, MerchantId, RoutingRuleId};
use crate::money::{Amount, Currency};
use crate::provider::ProviderName;
use crate::status::{CashoutStatus, InvoiceStatus};

crate::named::named_enum! {
    /// The kind of an event, by its webhook name.
    pub enum EventType / UnknownEventType(64) {
        /// A request was created (`REQUESTED`).
        Created = "cashout_request.created",
        /// A request changed status.
        StatusUpdate = "cashout_request.status_update",
        /// An invoice inside a request changed status on its own (it was excluded). Invoices that
        /// move with their request are reported by the request's `status_update`, not one event
        /// per invoice.
        InvoiceStatusUpdate = "cashout_request.invoice_status_update",
        /// A request moved to its next provider (failover).
        ProviderFailover = "cashout_request.provider_failover",
        /// Operational: a test event a merchant asked to send to one endpoint.
        EndpointTest = "webhook_endpoint.test",
        /// Operational: one of the merchant's endpoints was disabled (sent to its other ones).
        EndpointDisabled = "webhook_endpoint.disabled",
    }
}

impl EventType {
    /// Whether the type is operational (about endpoints, not about a request).
    pub const fn is_operational(self) -> bool {
        match self {
            EventType::EndpointTest | EventType::EndpointDisabled => true,
            EventType::Created
            | EventType::StatusUpdate
            | EventType::InvoiceStatusUpdate
            | EventType::ProviderFailover => false,
        }
    }
}

/// A text that is not an event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event type")]
pub struct UnknownEventType(pub String);

/// Why a request changed status. Shown in status events and on the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatusReason {
    /// At or under the merchant's auto-approve limit.
    AutoApproved,
    /// Over the auto-approve limit: an operator must decide.
    ManualReviewRequired {
        /// The limit that was exceeded, in the request's currency.
        limit: String,
    },
    /// An operator approved it.
    ApprovedByOperator,
    /// An operator rejected it.
    RejectedByOperator {
        /// The operator's reason.
        reason: String,
    },
    /// The merchant cancelled it.
    CancelledByMerchant,
    /// An operator sent it back to dispatch after a processor error.
    OperatorRetry,
    /// The provider took the payout.
    ProviderAccepted,
    /// The provider paid it.
    ProviderPaid,
    /// The provider or the bank rejected it.
    ProviderRejected {
        /// Provider rejection code.
        code: Option<String>,
        /// Provider rejection reason.
        reason: Option<String>,
    },
    /// It had been paid and the bank returned the money (D24 826 `WITHDRAWAL_REVERSED`).
    ProviderReversed {
        /// Provider rejection code.
        code: Option<String>,
        /// Provider rejection reason.
        reason: Option<String>,
    },
    /// It was cancelled at the provider.
    ProviderCancelled,
    /// The provider ended it in a state that needs a person.
    ProviderNeedsAttention {
        /// What the provider said.
        reason: String,
    },
    /// The provider refused to create it because of the request's data (D24 `DECLINED`).
    ProviderDeclined {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
    /// The provider could not take it for a reason on our or its side (configuration, funds,
    /// outage); nothing was paid.
    ProcessorError {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
}

/// What an event says; its JSON form is the webhook body (Osigu's payloads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum EventPayload {
    /// `cashout_request.created`.
    #[serde(rename = "cashout_request.created")]
    Created {
        /// The request.
        cashout_request_id: CashoutRequestId,
        /// Its currency.
        currency_code: Currency,
        /// Σ eligible amounts.
        requested_amount: Amount,
        /// Number of invoices.
        requested_invoice_count: u32,
        /// When it was created.
        #[serde(with = "time::serde::rfc3339")]
        request_date: OffsetDateTime,
        /// Always `REQUESTED`.
        status: CashoutStatus,
    },
    /// `cashout_request.status_update`.
    #[serde(rename = "cashout_request.status_update")]
    StatusUpdate {
        /// The request.
        cashout_request_id: CashoutRequestId,
        /// The new status.
        status: CashoutStatus,
        /// The status before.
        previous_status: CashoutStatus,
        /// Set once paid (null before, and after a reversal).
        paid_amount: Option<Amount>,
        /// Invoices paid (0 until paid).
        paid_invoice_count: u32,
        /// When it was paid.
        #[serde(with = "time::serde::rfc3339::option")]
        payment_date: Option<OffsetDateTime>,
        /// The provider's payout reference.
        payment_reference: Option<String>,
        /// Why it changed.
        reason: StatusReason,
        /// The provider paying it, from its approval on (null before).
        #[serde(default)]
        provider: Option<ProviderName>,
        /// Every provider attempt so far, the current one last (empty before the first dispatch).
        #[serde(default)]
        provider_attempts: Vec<ProviderAttempt>,
        /// The routing rule that chose the providers at approval (null: pinned by the merchant,
        /// the default order, or before approval).
        #[serde(default)]
        routing_rule_id: Option<RoutingRuleId>,
        /// The person behind the change: the operator who approved, rejected or retried it, or
        /// the merchant who cancelled it (absent when cashout or a provider changed it).
        #[serde(default)]
        actor: Option<Actor>,
    },
    /// `cashout_request.provider_failover`: the request moved to its next provider (its status
    /// stays `APPROVED`), because the one it leaves provably holds nothing.
    #[serde(rename = "cashout_request.provider_failover")]
    ProviderFailover {
        /// The request.
        cashout_request_id: CashoutRequestId,
        /// The provider it leaves.
        from_provider: ProviderName,
        /// The provider it goes to.
        to_provider: ProviderName,
        /// Why.
        reason: FailoverReason,
        /// Every provider attempt so far; the last one is the new provider's.
        provider_attempts: Vec<ProviderAttempt>,
    },
    /// `cashout_request.invoice_status_update`.
    #[serde(rename = "cashout_request.invoice_status_update")]
    InvoiceStatusUpdate {
        /// The request.
        cashout_request_id: CashoutRequestId,
        /// The invoice.
        invoice_id: InvoiceId,
        /// Its new status.
        status: InvoiceStatus,
        /// Its status before.
        previous_status: InvoiceStatus,
        /// The operator who excluded it.
        #[serde(default)]
        actor: Option<Actor>,
    },
}

impl EventPayload {
    /// Names the person behind a status or invoice change.
    pub fn set_actor(&mut self, who: &Actor) {
        match self {
            EventPayload::StatusUpdate { actor, .. } | EventPayload::InvoiceStatusUpdate { actor, .. } => {
                *actor = Some(who.clone());
            }
            EventPayload::Created { .. } | EventPayload::ProviderFailover { .. } => {}
        }
    }

    /// The person behind the change, if one is named.
    pub fn actor(&self) -> Option<&Actor> {
        match self {
            EventPayload::StatusUpdate { actor, .. } | EventPayload::InvoiceStatusUpdate { actor, .. } => {
                actor.as_ref()
            }
            EventPayload::Created { .. } | EventPayload::ProviderFailover { .. } => None,
        }
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            EventPayload::Created { .. } => EventType::Created,
            EventPayload::StatusUpdate { .. } => EventType::StatusUpdate,
            EventPayload::InvoiceStatusUpdate { .. } => EventType::InvoiceStatusUpdate,
            EventPayload::ProviderFailover { .. } => EventType::ProviderFailover,
        }
    }
}

/// One entry of a request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// `evt_<request>_<sequence>`; the `webhook-id` of its deliveries.
    pub id: EventId,
    /// The request.
    pub cashout_request_id: CashoutRequestId,
    /// The request's merchant (whose endpoints receive it).
    pub merchant_id: MerchantId,
    /// Per-request, from 1, without gaps.
    pub sequence: u64,
    /// When the change was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// What happened.
    pub payload: EventPayload,
}

/// The JSON body delivered to merchant endpoints: the Osigu payload plus `event_id`,
/// `sequence` (so receivers can order events) and `occurred_at`.
#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(flatten)]
    payload: &'a EventPayload,
    event_id: EventId,
    sequence: u64,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
}

impl StatusEvent {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The webhook body, as sent (and signed) to merchants.
    pub fn webhook_body(&self) -> String {
        let body = WebhookBody {
            payload: &self.payload,
            event_id: self.id,
            sequence: self.sequence,
            occurred_at: self.occurred_at,
        };
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}
