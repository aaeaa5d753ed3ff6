//! [`Change`], what every operation returns, and the internals every operation goes through:
//! the status check, the one transition step (table, invoices, event), bookkeeping-only changes.

use time::OffsetDateTime;

use super::{Attention, AttentionReason, CashoutRequest};
use crate::auth::{Actor, OperatorName};
use crate::event::{EventPayload, StatusEvent, StatusReason};
use crate::ids::{EventId, InvoiceId, ProviderPayoutId};
use crate::provider::ProviderName;
use crate::status::CashoutStatus;

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
    /// Names the person behind the change on its events, and, when it changed the status, on
    /// the request (`status_actor`).
    pub fn by(mut self, actor: &Actor) -> Self {
        let mut status_changed = false;
        for event in &mut self.events {
            event.payload.set_actor(actor);
            status_changed |= matches!(event.payload, EventPayload::StatusUpdate { .. });
        }
        if status_changed {
            self.request.status_actor = Some(actor.clone());
        }
        self
    }

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
    /// This operator has already approved the request: a second approval must come from
    /// another operator.
    #[error("operator `{0}` has already approved this request; another operator must approve it")]
    AlreadyApproved(OperatorName),
    /// The invoice was already excluded.
    #[error("invoice `{0}` is already excluded")]
    InvoiceAlreadyExcluded(InvoiceId),
    /// A create whose outcome was unknown may still land at the provider: no failover before
    /// `until`.
    #[error("a create sent to the provider may still land there: no failover before {until}")]
    Unsettled {
        /// When the provider has had time to process it.
        until: OffsetDateTime,
    },
    /// Failover to a provider that is not one of the request's untried routes.
    #[error("{0} is not one of this request's untried providers")]
    NoSuchRoute(ProviderName),
    /// Excluding it would leave nothing to pay: reject the request instead.
    #[error("invoice `{0}` is the last included invoice: reject the request instead")]
    LastInvoice(InvoiceId),
}

impl CashoutRequest {
    pub(super) fn require(&self, allowed: &[CashoutStatus], action: &'static str) -> Result<(), TransitionError> {
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
    pub(super) fn touch(&self, now: OffsetDateTime, f: impl FnOnce(&mut CashoutRequest)) -> Change {
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

    /// Clones, applies `f`, and bumps the version once.
    pub(super) fn change(
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
    pub(super) fn step(
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
        self.status_actor = None;
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
            provider: self.routing.as_ref().map(|_| self.provider),
            provider_attempts: self.provider_attempts.clone(),
            routing_rule_id: self.routing.as_ref().and_then(|c| c.rule_id),
            actor: None,
        };
        self.push_event(now, payload, events);
        Ok(())
    }

    pub(super) fn push_event(&mut self, now: OffsetDateTime, payload: EventPayload, events: &mut Vec<StatusEvent>) {
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
