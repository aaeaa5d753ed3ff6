//! What a provider reports about a request's payout, and when to ask it next (hints, checks).

use time::OffsetDateTime;

use super::{AttentionReason, CashoutRequest, Change};
use crate::event::StatusReason;
use crate::ids::ProviderPayoutId;
use crate::money::Amount;
use crate::provider::{PayoutState, ProviderPayout};
use crate::status::CashoutStatus;

impl CashoutRequest {
    /// Applies what a provider says about the request's payout. Returns `None` when it changes
    /// nothing: a duplicate, a stale answer that would move the request backwards, an unknown
    /// provider status, or another provider's payout. A request still `APPROVED` (the provider
    /// answered before the dispatch was recorded) first becomes `PENDING_PAYMENT`, then moves on,
    /// each step with its own event. A live or paid payout reported by a provider the request
    /// left after a failover is flagged, never adopted.
    ///
    /// The provider's truth is never dropped: a live or paid payout reported for a request we
    /// ended (cancelled, rejected, or gave up as `PAYMENT_PROCESSOR_ERROR`), or a second payout id
    /// for our reference, flags the request for a person ([`Self::attention`]); a request in
    /// `PAYMENT_PROCESSOR_ERROR` moves on with its payout.
    pub fn record_provider_payout(&self, payout: &ProviderPayout, now: OffsetDateTime) -> Option<Change> {
        if payout.provider != self.provider {
            return self.payout_at_left_provider(payout, now);
        }
        let target = payout.state.target_status()?;
        if let Some(conflict) = self.conflicting_payout(payout) {
            return self.flag_attention(conflict, now);
        }
        // A placeholder (`ext:…`) gives way to the provider's own id, never the reverse.
        let payout_id = match &self.provider_reference {
            Some(known) if payout.payout_id.is_by_reference() => known.clone(),
            _ => payout.payout_id.clone(),
        };
        let live_or_paid = matches!(target, CashoutStatus::PendingPayment | CashoutStatus::Paid);
        let through_pending = match self.status {
            CashoutStatus::Approved => true,
            CashoutStatus::PaymentProcessorError => live_or_paid,
            CashoutStatus::PendingPayment | CashoutStatus::Paid => false,
            CashoutStatus::Requested
            | CashoutStatus::UnderReview
            | CashoutStatus::Rejected
            | CashoutStatus::Cancelled => return self.payout_after_end(payout, payout_id, live_or_paid, now),
        };
        if target == self.status {
            return self.keep_provider_words(payout, payout_id, now);
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
            match r.apply_outcome(&payout.state, &payout_id, now) {
                Some(reason) => r.step(target, reason, now, ev),
                None => Ok(()),
            }
        })
        .ok()
    }

    /// Two real ids for one reference: the provider made two payouts.
    fn conflicting_payout(&self, payout: &ProviderPayout) -> Option<AttentionReason> {
        let known = self.provider_reference.as_ref()?;
        let conflict = known != &payout.payout_id && !known.is_by_reference() && !payout.payout_id.is_by_reference();
        conflict.then(|| AttentionReason::ConflictingPayout {
            known: known.clone(),
            reported: payout.payout_id.clone(),
            provider_status: payout.provider_status.clone(),
        })
    }

    /// A report for a request that never reached the provider or that we ended: a live or paid
    /// payout there is flagged for a person, unless it is this very payout's own (stale) end.
    fn payout_after_end(
        &self,
        payout: &ProviderPayout,
        payout_id: ProviderPayoutId,
        live_or_paid: bool,
        now: OffsetDateTime,
    ) -> Option<Change> {
        if !live_or_paid || self.ended_by_this_payout(&payout_id) {
            return None;
        }
        self.flag_attention(
            AttentionReason::PayoutAfterEnd {
                payout_id,
                provider_status: payout.provider_status.clone(),
                status: self.status,
            },
            now,
        )
    }

    /// Same status: the provider's id and its own words (ON_HOLD, DELIVERED…) are kept when they
    /// change, without an event.
    fn keep_provider_words(
        &self,
        payout: &ProviderPayout,
        payout_id: ProviderPayoutId,
        now: OffsetDateTime,
    ) -> Option<Change> {
        let news = self.provider_reference.as_ref() != Some(&payout_id)
            || self.provider_status.as_deref() != Some(payout.provider_status.as_str());
        news.then(|| {
            self.touch(now, |r| {
                if r.status == CashoutStatus::Paid
                    && r.provider_reference
                        .as_ref()
                        .is_some_and(ProviderPayoutId::is_by_reference)
                    && !payout_id.is_by_reference()
                {
                    // Paid while known only by our reference: the provider's own id is the
                    // payment reference from now on.
                    r.payment_reference = Some(payout_id.to_string());
                }
                r.provider_reference = Some(payout_id);
                r.provider_status = Some(payout.provider_status.clone());
            })
        })
    }

    /// Records what an ending report brings (the paid amount and date, a reversal, a note for a
    /// person) and gives the reason of the status step; `None` when the state moves nothing.
    fn apply_outcome(
        &mut self,
        state: &PayoutState,
        payout_id: &ProviderPayoutId,
        now: OffsetDateTime,
    ) -> Option<StatusReason> {
        let was_paid = self.status == CashoutStatus::Paid;
        let reason = match state {
            PayoutState::Paid { paid_at, amount } => {
                let requested = self.payable_amount();
                self.paid_amount = Some(requested);
                if let Some(paid) = *amount
                    && paid != requested.value()
                {
                    if let Ok(valid) = Amount::new(paid, self.currency) {
                        self.paid_amount = Some(valid);
                    }
                    self.note_attention(AttentionReason::PaidAmountDiffers { requested, paid }, now);
                }
                self.paid_invoice_count = self.included_invoice_count();
                self.payment_date = Some(paid_at.unwrap_or(now));
                self.payment_reference = Some(payout_id.to_string());
                StatusReason::ProviderPaid
            }
            PayoutState::Rejected { code, reason } if was_paid => {
                self.paid_amount = None;
                self.paid_invoice_count = 0;
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
                self.note_attention(AttentionReason::ProviderNeedsAttention { reason: reason.clone() }, now);
                StatusReason::ProviderNeedsAttention { reason: reason.clone() }
            }
            PayoutState::Pending | PayoutState::Unknown => return None,
        };
        Some(reason)
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
}
