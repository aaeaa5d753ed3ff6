//! Deterministic outcomes, like test card numbers: the last two digits of the beneficiary's
//! `bank_account` (D24 family) or of the `account` field (Cascad) choose what happens. Every
//! delay below is divided by the time scale.

use std::time::Duration;

/// The trigger table, as printed by `provider-sim --help` and in `tests/sim/README.md`.
pub const TRIGGERS_HELP: &str = "\
TEST TRIGGERS (last two digits of the beneficiary account: D24 `bank_account`, Cascad the service's
  account field: `fields.account` for test_*, `card_number`, `account_number`)
  any other   success. D24/Onspot/Tupay: PENDING -> DELIVERED (1 s) -> COMPLETED (2 s).
              Cascad: created -> (process) -> processing (0.5 s) -> processed (1.5 s)
  ...13       rejected by the bank. D24: DELIVERED -> REJECTED, rejection_code 800
              ERROR_ACCOUNT_INCORRECT. Cascad: processing -> process_error -> process_failed
  ...08       unclear outcome. D24: DELIVERED -> REJECTED, rejection_code 808 ERROR_OTHER (seed 001's
              example). Cascad: processing -> processed with resolution `error` (not `ok`: not paid)
  ...26       reversal. D24: COMPLETED, then REJECTED 826 WITHDRAWAL_REVERSED 10 s later.
              Cascad: processed (Cascad's docs do not say what a reversal looks like)
  ...30       declined create (data error), nothing created. D24: HTTP 412
              {\"code\":300,\"message\":\"Invalid params: ...\"}. Cascad: HTTP 422 {\"errors\":{\"fields.account\":...}}
  ...55       on hold. D24/Onspot: created ON_HOLD (as with `on_hold: true`) until released with
              PUT /v3/cashout/status PENDING. Tupay (no ON_HOLD): success.
              Cascad: processing -> process_error -> processing -> processed (a retried attempt)
  ...77       slow bank: DELIVERED / processing for 10 minutes, then COMPLETED / processed
  ...44       paid short. D24 family: success (its answers carry no amount). Cascad: processed (ok)
              with processed_amount 1% below amount, rounded down to the cent
  Cascad test mode (service test_*), as documented: fields `test_details_payout_status`
  (final status, e.g. `terminated`, `process failed`; spaces and '-' read as '_'; an
  undocumented word such as `refunded` is served as is), `test_details_payout_resolution`,
  `test_details_success_rate` (0-100, drawn from the seeded generator).
  An unprocessed Cascad invoice expires after 24 hours.";

/// The documented base delays (before scaling).
pub mod delays {
    use super::Duration;
    /// D24: PENDING → DELIVERED.
    pub const D24_DELIVER: Duration = Duration::from_secs(1);
    /// D24: → COMPLETED / REJECTED.
    pub const D24_SETTLE: Duration = Duration::from_secs(2);
    /// D24: COMPLETED → REJECTED 826.
    pub const D24_REVERSAL_AFTER: Duration = Duration::from_secs(10);
    /// Slow bank: how long the payout stays with the bank.
    pub const SLOW_BANK: Duration = Duration::from_secs(600);
    /// Cascad: process → processing.
    pub const CASCAD_START: Duration = Duration::from_millis(500);
    /// Cascad: a failed attempt.
    pub const CASCAD_ERROR: Duration = Duration::from_millis(1000);
    /// Cascad: final.
    pub const CASCAD_SETTLE: Duration = Duration::from_millis(1500);
    /// Cascad failure path: final.
    pub const CASCAD_FAIL: Duration = Duration::from_millis(2000);
    /// Cascad: an invoice never processed expires. The delay is not documented; seed 003's list
    /// sample shows an invoice processed 3 h 40 min after it was created (lines 717 and 724:
    /// `created` 1595841296, `processed` 1595854491), so it is longer than that: one day.
    pub const CASCAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);
    /// Reordered notifications are held back this long.
    pub const REORDER_HOLD: Duration = Duration::from_secs(3);
    /// D24 notification retries: "up to 5 more times" (gap not documented; we use 1 minute).
    pub const D24_RETRY_GAP: Duration = Duration::from_secs(60);
    /// Cascad callback retries: 1, 2, 3… minutes.
    pub const CASCAD_RETRY_UNIT: Duration = Duration::from_secs(60);
}

/// What the account number asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Success,
    /// `…13`: rejected by the bank.
    BankRejects,
    /// `…08`: D24 REJECTED 808 ERROR_OTHER (seed 001's response example); Cascad `processed`
    /// with a `resolution` that is not `ok`.
    UnclearOutcome,
    /// `…26`: reversal after completion.
    Reversal,
    /// `…30`: declined at create.
    DeclinedCreate,
    /// `…55`: on hold (D24/Onspot), a retried attempt (Cascad).
    OnHold,
    /// `…77`: slow bank.
    SlowBank,
    /// `…44`: Cascad pays less than the invoice amount (`processed_amount` < `amount`).
    PaidShort,
}

impl Trigger {
    /// The trigger for an account number (`None`: success).
    pub fn of(account: Option<&str>) -> Trigger {
        let Some(a) = account else {
            return Trigger::Success;
        };
        if a.ends_with("13") {
            Trigger::BankRejects
        } else if a.ends_with("08") {
            Trigger::UnclearOutcome
        } else if a.ends_with("26") {
            Trigger::Reversal
        } else if a.ends_with("30") {
            Trigger::DeclinedCreate
        } else if a.ends_with("55") {
            Trigger::OnHold
        } else if a.ends_with("77") {
            Trigger::SlowBank
        } else if a.ends_with("44") {
            Trigger::PaidShort
        } else {
            Trigger::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_read_the_last_two_digits() {
        assert_eq!(Trigger::of(Some("000113")), Trigger::BankRejects);
        assert_eq!(Trigger::of(Some("11954008")), Trigger::UnclearOutcome);
        assert_eq!(Trigger::of(Some("1326")), Trigger::Reversal);
        assert_eq!(Trigger::of(Some("30")), Trigger::DeclinedCreate);
        assert_eq!(Trigger::of(Some("12355")), Trigger::OnHold);
        assert_eq!(Trigger::of(Some("977")), Trigger::SlowBank);
        assert_eq!(Trigger::of(Some("1044")), Trigger::PaidShort);
        assert_eq!(Trigger::of(Some("131")), Trigger::Success);
        assert_eq!(Trigger::of(None), Trigger::Success);
    }
}
