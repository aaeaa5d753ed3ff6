//! Cascad payout invoice statuses and what each means for a request.
//!
//! Cascad documents the statuses below (final ones marked F in `PROVIDERS.md`); its list may be
//! longer. A status this table does not know is [`CascadStatus::Unknown`]: it moves nothing and
//! is logged by the caller.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::provider::PayoutState;

/// A Cascad payout invoice status (`data.attributes.status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CascadStatus {
    /// Created, not yet processed (we create then process, or use `auto_process`).
    Created,
    /// Being processed.
    Processing,
    /// Processing waits on the payment system.
    ProcessPending,
    /// A processing attempt failed; Cascad retries up to its attempt limit.
    ProcessError,
    /// F: every processing attempt failed.
    ProcessFailed,
    /// F: paid (may still be reversed).
    Processed,
    /// F: only part of the amount was paid.
    PartiallyProcessed,
    /// F: not processed in time.
    Expired,
    /// F: stopped at Cascad.
    Terminated,
    /// A cancellation is under way.
    Canceling,
    /// A cancellation waits on the payment system.
    CancelPending,
    /// A cancellation attempt failed (the payout continues).
    CancelError,
    /// F: the cancellation failed for good.
    CancelFailed,
    /// A status not in the documented list.
    Unknown(String),
}

impl CascadStatus {
    /// The wire word (`process_failed`).
    pub fn as_str(&self) -> &str {
        match self {
            CascadStatus::Created => "created",
            CascadStatus::Processing => "processing",
            CascadStatus::ProcessPending => "process_pending",
            CascadStatus::ProcessError => "process_error",
            CascadStatus::ProcessFailed => "process_failed",
            CascadStatus::Processed => "processed",
            CascadStatus::PartiallyProcessed => "partially_processed",
            CascadStatus::Expired => "expired",
            CascadStatus::Terminated => "terminated",
            CascadStatus::Canceling => "canceling",
            CascadStatus::CancelPending => "cancel_pending",
            CascadStatus::CancelError => "cancel_error",
            CascadStatus::CancelFailed => "cancel_failed",
            CascadStatus::Unknown(s) => s,
        }
    }

    /// Whether Cascad documents the status as final.
    pub fn is_final(&self) -> bool {
        match self {
            CascadStatus::ProcessFailed
            | CascadStatus::Processed
            | CascadStatus::PartiallyProcessed
            | CascadStatus::Expired
            | CascadStatus::Terminated
            | CascadStatus::CancelFailed => true,
            CascadStatus::Created
            | CascadStatus::Processing
            | CascadStatus::ProcessPending
            | CascadStatus::ProcessError
            | CascadStatus::Canceling
            | CascadStatus::CancelPending
            | CascadStatus::CancelError
            | CascadStatus::Unknown(_) => false,
        }
    }
}

impl FromStr for CascadStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "created" => CascadStatus::Created,
            "processing" => CascadStatus::Processing,
            "process_pending" => CascadStatus::ProcessPending,
            "process_error" => CascadStatus::ProcessError,
            "process_failed" => CascadStatus::ProcessFailed,
            "processed" => CascadStatus::Processed,
            "partially_processed" => CascadStatus::PartiallyProcessed,
            "expired" => CascadStatus::Expired,
            "terminated" => CascadStatus::Terminated,
            "canceling" => CascadStatus::Canceling,
            "cancel_pending" => CascadStatus::CancelPending,
            "cancel_error" => CascadStatus::CancelError,
            "cancel_failed" => CascadStatus::CancelFailed,
            other => CascadStatus::Unknown(other.chars().take(64).collect()),
        })
    }
}

impl fmt::Display for CascadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a Cascad status means for a request. One decision per row:
pub fn payout_state(
    status: &CascadStatus,
    resolution: Option<&str>,
    processed_at: Option<OffsetDateTime>,
    processed_amount: Option<Decimal>,
) -> PayoutState {
    let rejected = |why: &str| PayoutState::Rejected {
        code: Some(status.as_str().to_owned()),
        reason: Some(match resolution {
            Some(r) if r != "ok" => format!("{why} ({r})"),
            _ => why.to_owned(),
        }),
    };
    match status {
        // The invoice exists and Cascad holds it: in flight.
        CascadStatus::Created | CascadStatus::Processing | CascadStatus::ProcessPending => PayoutState::Pending,
        // Not final: Cascad retries processing up to its attempt limit.
        CascadStatus::ProcessError => PayoutState::Pending,
        // Final and nothing paid after every attempt: the bank or the method refused it.
        CascadStatus::ProcessFailed => rejected("processing failed"),
        // Final and paid when `resolution` is `ok` (or absent). Any other resolution on a
        // `processed` invoice is not a confirmed payment: a person must check it with Cascad
        // before the merchant is told PAID (or told anything final).
        CascadStatus::Processed => match resolution {
            None | Some("ok") => PayoutState::Paid {
                paid_at: processed_at,
                amount: processed_amount,
            },
            Some(other) => PayoutState::NeedsAttention {
                reason: format!(
                    "processed with resolution {:?}, not ok: confirm the payout with Cascad",
                    other.chars().take(64).collect::<String>()
                ),
            },
        },
        // Final with part of the amount paid: we never ask for partial payouts, so a person must
        // reconcile it; it cannot be retried (the reference is used).
        CascadStatus::PartiallyProcessed => PayoutState::NeedsAttention {
            reason: "partially processed: reconcile by hand".to_owned(),
        },
        // Final, never processed in time: nothing paid, and the reference is spent.
        CascadStatus::Expired => rejected("expired before processing"),
        // Final, stopped at Cascad: nothing paid.
        CascadStatus::Terminated => rejected("terminated by the provider"),
        // A cancellation in flight or a failed attempt: the payout itself is still in flight.
        CascadStatus::Canceling | CascadStatus::CancelPending | CascadStatus::CancelError => PayoutState::Pending,
        // Final, and the documentation does not say where the money is: a person must look.
        CascadStatus::CancelFailed => PayoutState::NeedsAttention {
            reason: "cancellation failed at the provider: check the payout by hand".to_owned(),
        },
        // Unknown: move nothing; the caller logs it.
        CascadStatus::Unknown(_) => PayoutState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CashoutStatus;

    fn target(s: &str) -> Option<CashoutStatus> {
        payout_state(&s.parse().unwrap(), Some("ok"), None, None).target_status()
    }

    #[test]
    fn every_documented_status_has_a_decision() {
        use CashoutStatus::*;
        let table = [
            ("created", Some(PendingPayment)),
            ("processing", Some(PendingPayment)),
            ("process_pending", Some(PendingPayment)),
            ("process_error", Some(PendingPayment)),
            ("process_failed", Some(Rejected)),
            ("processed", Some(Paid)),
            ("partially_processed", Some(PaymentProcessorError)),
            ("expired", Some(Rejected)),
            ("terminated", Some(Rejected)),
            ("canceling", Some(PendingPayment)),
            ("cancel_pending", Some(PendingPayment)),
            ("cancel_error", Some(PendingPayment)),
            ("cancel_failed", Some(PaymentProcessorError)),
        ];
        for (status, expected) in table {
            assert_eq!(target(status), expected, "{status}");
            let parsed: CascadStatus = status.parse().unwrap();
            assert!(!matches!(parsed, CascadStatus::Unknown(_)), "{status}");
            assert_eq!(parsed.as_str(), status);
        }
    }

    #[test]
    fn unknown_statuses_change_nothing() {
        assert_eq!(target("refunded"), None);
        assert_eq!(target(""), None);
        assert_eq!(
            "Processed".parse::<CascadStatus>().unwrap(),
            CascadStatus::Unknown("Processed".into())
        );
    }

    #[test]
    fn finality_follows_the_documentation() {
        for s in [
            "process_failed",
            "processed",
            "partially_processed",
            "expired",
            "terminated",
            "cancel_failed",
        ] {
            assert!(s.parse::<CascadStatus>().unwrap().is_final(), "{s}");
        }
        for s in ["created", "processing", "process_error", "canceling", "whatever"] {
            assert!(!s.parse::<CascadStatus>().unwrap().is_final(), "{s}");
        }
    }

    #[test]
    fn processed_keeps_the_processing_time_and_amount() {
        let at = OffsetDateTime::from_unix_timestamp(1_597_835_933).unwrap();
        assert_eq!(
            payout_state(&CascadStatus::Processed, Some("ok"), Some(at), Some(Decimal::TEN)),
            PayoutState::Paid {
                paid_at: Some(at),
                amount: Some(Decimal::TEN)
            }
        );
    }

    #[test]
    fn processed_with_a_resolution_other_than_ok_is_not_paid_but_held_for_a_person() {
        for resolution in ["bank_error", "unclear", "declined", ""] {
            let state = payout_state(&CascadStatus::Processed, Some(resolution), None, None);
            assert!(
                matches!(state, PayoutState::NeedsAttention { .. }),
                "{resolution}: {state:?}"
            );
            assert_ne!(state.target_status(), Some(crate::status::CashoutStatus::Paid));
        }
        assert!(matches!(
            payout_state(&CascadStatus::Processed, None, None, None),
            PayoutState::Paid { .. }
        ));
    }
}
