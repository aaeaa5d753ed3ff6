//! Attention notes: why a request needs a person although its status may look settled.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CashoutRequest, Change, TransitionError};
use crate::ids::{ProviderPayoutId, ReconciliationId};
use crate::money::Amount;
use crate::provider::ProviderName;
use crate::reconcile::DifferenceKind;
use crate::status::CashoutStatus;

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
    /// A provider the request left after a failover (or never used) reports a live or paid
    /// payout for it: it must not happen (the request left only once that provider provably
    /// held nothing). Never adopted: a person settles it with that provider.
    PayoutAtLeftProvider {
        /// Who reports it.
        provider: ProviderName,
        /// Its payout id there.
        payout_id: ProviderPayoutId,
        /// Its status words.
        provider_status: String,
    },
    /// A reconciliation found our record and the provider's apart (see the run's differences).
    ReconciliationDifference {
        /// The run that found it.
        reconciliation_id: ReconciliationId,
        /// What kind of difference.
        difference: DifferenceKind,
        /// What differs, in words.
        detail: String,
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

impl CashoutRequest {
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

    /// Adds an attention note (deduplicated; the oldest goes beyond [`MAX_ATTENTION_NOTES`]).
    pub(super) fn note_attention(&mut self, reason: AttentionReason, now: OffsetDateTime) {
        if self.attention.iter().any(|a| a.reason == reason) {
            return;
        }
        if self.attention.len() >= MAX_ATTENTION_NOTES {
            self.attention.remove(0);
        }
        self.attention.push(Attention { reason, since: now });
    }
}
