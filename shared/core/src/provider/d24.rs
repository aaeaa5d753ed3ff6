//! The D24 family (D24, Onspot, Tupay): status codes, rejection codes and error codes, and what
//! each means for a cashout request.
//!
//! Sources: the D24 cashout API v3 docs (status endpoint, API codes) as summarised in
//! `PROVIDERS.md`. A code this table does not know is classified by its hundreds family.

use std::fmt;

use crate::provider::PayoutState;

/// One of the three D24-family APIs. They share the wire format; they differ in credentials,
/// hosts and a few rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum D24Profile {
    /// Directa24.
    D24,
    /// Onspot (white-labelled D24).
    Onspot,
    /// Tupay (Peru): no `ON_HOLD`; currency, document type, CCI account and account type required.
    Tupay,
}

impl D24Profile {
    /// Whether the profile has the `ON_HOLD` status (5) and the hold/release operation.
    pub const fn supports_on_hold(self) -> bool {
        match self {
            D24Profile::D24 | D24Profile::Onspot => true,
            D24Profile::Tupay => false,
        }
    }
}

/// A cashout status code of the D24 status endpoint (`cashout_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum D24Status {
    /// 0: created, waiting to be sent to the bank. Can be cancelled or put on hold.
    Pending,
    /// 1: paid. Can still turn `REJECTED` days later (826 reversal).
    Completed,
    /// 2: cancelled by the merchant. Final.
    Cancelled,
    /// 3: rejected by the bank. Final.
    Rejected,
    /// 4: sent to the bank; can no longer be cancelled.
    Delivered,
    /// 5: held by the merchant until released (not on Tupay).
    OnHold,
}

/// A `cashout_status` code the profile does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cashout_status {code} is not a status of this D24 profile")]
pub struct UnknownD24Status {
    /// The code received.
    pub code: i64,
}

impl D24Status {
    /// Reads a status code for a profile (5 `ON_HOLD` does not exist on Tupay).
    pub fn from_code(code: i64, profile: D24Profile) -> Result<Self, UnknownD24Status> {
        match code {
            0 => Ok(D24Status::Pending),
            1 => Ok(D24Status::Completed),
            2 => Ok(D24Status::Cancelled),
            3 => Ok(D24Status::Rejected),
            4 => Ok(D24Status::Delivered),
            5 if profile.supports_on_hold() => Ok(D24Status::OnHold),
            _ => Err(UnknownD24Status { code }),
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u8 {
        match self {
            D24Status::Pending => 0,
            D24Status::Completed => 1,
            D24Status::Cancelled => 2,
            D24Status::Rejected => 3,
            D24Status::Delivered => 4,
            D24Status::OnHold => 5,
        }
    }

    /// The documented name (`ON_HOLD`).
    pub const fn name(self) -> &'static str {
        match self {
            D24Status::Pending => "PENDING",
            D24Status::Completed => "COMPLETED",
            D24Status::Cancelled => "CANCELLED",
            D24Status::Rejected => "REJECTED",
            D24Status::Delivered => "DELIVERED",
            D24Status::OnHold => "ON_HOLD",
        }
    }
}

impl fmt::Display for D24Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a D24 status means for a request. `PENDING`, `DELIVERED` and `ON_HOLD` all mean "the
/// provider holds it" (`PENDING_PAYMENT`, with the D24 status kept as detail); `COMPLETED` is
/// paid; `REJECTED` carries its rejection code (from `PAID` it is a reversal); `CANCELLED` is
/// cancelled.
pub fn payout_state(status: D24Status, rejection_code: Option<i64>, rejection_reason: Option<&str>) -> PayoutState {
    match status {
        D24Status::Pending | D24Status::Delivered | D24Status::OnHold => PayoutState::Pending,
        D24Status::Completed => PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
        D24Status::Rejected => {
            let known = rejection_code
                .and_then(|c| u16::try_from(c).ok())
                .and_then(RejectionCode::from_code);
            PayoutState::Rejected {
                code: rejection_code.map(|c| c.to_string()),
                reason: rejection_reason
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .or_else(|| known.map(|k| k.name().to_owned())),
            }
        }
        D24Status::Cancelled => PayoutState::Cancelled,
    }
}

macro_rules! rejection_codes {
    ($($name:ident = $code:literal),+ $(,)?) => {
        /// A bank rejection code (`rejection_code` of a `REJECTED` cashout).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum RejectionCode { $($name),+ }

        impl RejectionCode {
            /// Every known code.
            pub const ALL: &'static [RejectionCode] = &[$(RejectionCode::$name),+];

            /// The code for a number, if D24 documents it.
            pub const fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(RejectionCode::$name),)+ _ => None }
            }

            /// The number.
            pub const fn code(self) -> u16 {
                match self { $(RejectionCode::$name => $code),+ }
            }

            /// The documented name (`ERROR_ACCOUNT_INCORRECT`).
            pub const fn name(self) -> &'static str {
                match self { $(RejectionCode::$name => stringify!($name)),+ }
            }
        }
    };
}

rejection_codes! {
    ERROR_ACCOUNT_INCORRECT = 800,
    ERROR_ACCOUNT_CLOSED = 801,
    ERROR_AMOUNT_INCORRECT = 802,
    ERROR_BANK_INVALID = 803,
    ERROR_BANK_BRANCH_INCORRECT = 804,
    ERROR_BENEFICIARY_DOCUMENT_ID_INVALID = 805,
    ERROR_BENEFICIARY_NAME_INCORRECT = 806,
    ERROR_REJECTED_BY_BANK = 807,
    ERROR_OTHER = 808,
    WITHDRAWAL_EXPIRED = 809,
    LIMIT_EXCEEDED = 810,
    RISK_POLICY = 811,
    BLOCKED_FROZEN_ACCOUNT = 812,
    DOCUMENT_ACCOUNT_MISMATCH = 813,
    INVALID_PIX_KEY = 814,
    INVALID_IFSC_CODE = 815,
    INVALID_ACCOUNT_OR_IFSC_CODE = 816,
    INVALID_NBIN = 817,
    ACCOUNT_UNABLE = 818,
    INVALID_ACCOUNT_TYPE = 819,
    REJECTED_BY_MERCHANT_REQUEST = 820,
    MONTHLY_LIMIT_EXCEEDED_FOR_USER = 821,
    ACCOUNT_NAME_REQUIRED_TO_BE_IN_KATAKANA = 822,
    EMAIL_FIELD_CANNOT_BE_EMPTY = 823,
    REJECTED_BY_THIRD_PARTY_CONTROL = 824,
    WITHDRAWAL_REVERSED = 826,
}

/// What an error code of a D24 error body (`{"code": …, "message": …}`) means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum D24ErrorClass {
    /// The beneficiary or request data is wrong; nothing was created. A create answered so is
    /// `DECLINED`: the request becomes `REJECTED`.
    DataError,
    /// Our account or configuration is wrong (credentials, IP allow-list, signature, funds,
    /// merchant not enabled) or D24 failed internally; nothing was created. The request becomes
    /// `PAYMENT_PROCESSOR_ERROR` and someone must be alerted.
    MerchantConfig,
    /// Temporarily impossible; nothing was created; try again later.
    Retryable,
    /// The `external_id` is already used: the payout exists. Look it up; never create again.
    AlreadyExists,
    /// No such cashout (status and cancel calls).
    NotFound,
    /// The requested status change is not allowed now (cancel after `DELIVERED`, bad hold).
    InvalidTransition,
}

macro_rules! error_codes {
    ($($name:ident = $code:literal => $class:ident),+ $(,)?) => {
        /// An error code of a D24 error body. Codes the docs name are variants; any other code
        /// is [`D24ErrorCode::Other`] and classified by its hundreds family.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum D24ErrorCode { $($name,)+ /** A code not in the documented list. */ Other(u16) }

        impl D24ErrorCode {
            /// Every documented code.
            pub const KNOWN: &'static [D24ErrorCode] = &[$(D24ErrorCode::$name),+];

            /// Reads a code.
            pub const fn from_code(code: u16) -> Self {
                match code { $($code => D24ErrorCode::$name,)+ other => D24ErrorCode::Other(other) }
            }

            /// The number.
            pub const fn code(self) -> u16 {
                match self { $(D24ErrorCode::$name => $code,)+ D24ErrorCode::Other(c) => c }
            }

            /// What the code means for us.
            pub const fn class(self) -> D24ErrorClass {
                match self {
                    $(D24ErrorCode::$name => D24ErrorClass::$class,)+
                    D24ErrorCode::Other(code) => class_of_family(code),
                }
            }
        }
    };
}

error_codes! {
    InvalidParams = 300 => DataError,
    InvalidSignature = 302 => MerchantConfig,
    InvalidBankCode = 303 => DataError,
    InvalidCredentials = 401 => MerchantConfig,
    UnregisteredIp = 402 => MerchantConfig,
    MalformedJson = 502 => MerchantConfig,
    LimitExceeded = 508 => MerchantConfig,
    CashoutNotFound = 509 => NotFound,
    InvalidStatusTransition = 510 => InvalidTransition,
    ExternalIdAlreadyUsed = 511 => AlreadyExists,
    InsufficientFunds = 514 => MerchantConfig,
    UserBlocked = 515 => DataError,
    CountryNotAvailable = 518 => MerchantConfig,
    MerchantNotEnabled = 519 => MerchantConfig,
    InvalidCredentialsAlt = 524 => MerchantConfig,
    InvalidCurrency = 526 => DataError,
    BelowMinimumAmount = 533 => DataError,
    CouldNotMakeCashout = 537 => Retryable,
    AccountBlacklisted = 538 => DataError,
    PayoutMethodUnavailable = 539 => Retryable,
    CouldNotCancel = 702 => InvalidTransition,
    CouldNotMakeCashoutAlt = 703 => Retryable,
}

/// Families of undocumented codes: 1xx header and 2xx merchant/request problems are ours;
/// 3xx user data and 4xx bank problems are the beneficiary's; 5xx and above are D24-internal
/// and, since nothing was created, need a person to decide.
const fn class_of_family(code: u16) -> D24ErrorClass {
    match code {
        300..=499 => D24ErrorClass::DataError,
        _ => D24ErrorClass::MerchantConfig,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CashoutStatus;

    #[test]
    fn status_codes_map_to_request_statuses() {
        let target =
            |code, profile| payout_state(D24Status::from_code(code, profile).unwrap(), None, None).target_status();
        for p in [D24Profile::D24, D24Profile::Onspot, D24Profile::Tupay] {
            assert_eq!(target(0, p), Some(CashoutStatus::PendingPayment));
            assert_eq!(target(1, p), Some(CashoutStatus::Paid));
            assert_eq!(target(2, p), Some(CashoutStatus::Cancelled));
            assert_eq!(target(3, p), Some(CashoutStatus::Rejected));
            assert_eq!(target(4, p), Some(CashoutStatus::PendingPayment));
        }
        assert_eq!(target(5, D24Profile::D24), Some(CashoutStatus::PendingPayment));
        assert_eq!(target(5, D24Profile::Onspot), Some(CashoutStatus::PendingPayment));
    }

    #[test]
    fn tupay_has_no_on_hold_and_unknown_codes_are_refused() {
        assert_eq!(
            D24Status::from_code(5, D24Profile::Tupay),
            Err(UnknownD24Status { code: 5 })
        );
        assert!(D24Status::from_code(6, D24Profile::D24).is_err());
        assert!(D24Status::from_code(-1, D24Profile::D24).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..=5 {
            assert_eq!(
                i64::from(D24Status::from_code(code, D24Profile::D24).unwrap().code()),
                code
            );
        }
        for r in RejectionCode::ALL {
            assert_eq!(RejectionCode::from_code(r.code()), Some(*r));
        }
        assert_eq!(RejectionCode::from_code(825), None);
        for e in D24ErrorCode::KNOWN {
            assert_eq!(D24ErrorCode::from_code(e.code()), *e);
        }
    }

    #[test]
    fn rejections_keep_code_and_reason() {
        let state = payout_state(D24Status::Rejected, Some(800), Some("ERROR_ACCOUNT_INCORRECT"));
        assert_eq!(
            state,
            PayoutState::Rejected {
                code: Some("800".into()),
                reason: Some("ERROR_ACCOUNT_INCORRECT".into())
            }
        );
        // A missing reason is filled from the table.
        let state = payout_state(D24Status::Rejected, Some(826), None);
        assert_eq!(
            state,
            PayoutState::Rejected {
                code: Some("826".into()),
                reason: Some("WITHDRAWAL_REVERSED".into())
            }
        );
        assert_eq!(RejectionCode::WITHDRAWAL_REVERSED.code(), 826);
        assert_eq!(RejectionCode::from_code(800).unwrap().name(), "ERROR_ACCOUNT_INCORRECT");
    }

    #[test]
    fn error_codes_are_classified() {
        use D24ErrorClass::*;
        let class = |c| D24ErrorCode::from_code(c).class();
        assert_eq!(class(511), AlreadyExists);
        assert_eq!(class(300), DataError);
        assert_eq!(class(303), DataError);
        assert_eq!(class(533), DataError);
        assert_eq!(class(402), MerchantConfig);
        assert_eq!(class(514), MerchantConfig);
        assert_eq!(class(519), MerchantConfig);
        assert_eq!(class(302), MerchantConfig);
        assert_eq!(class(401), MerchantConfig);
        assert_eq!(class(524), MerchantConfig);
        assert_eq!(class(509), NotFound);
        assert_eq!(class(510), InvalidTransition);
        assert_eq!(class(702), InvalidTransition);
        assert_eq!(class(537), Retryable);
        assert_eq!(class(703), Retryable);
        // Undocumented codes go by family.
        assert_eq!(class(150), MerchantConfig);
        assert_eq!(class(250), MerchantConfig);
        assert_eq!(class(399), DataError);
        assert_eq!(class(450), DataError);
        assert_eq!(class(599), MerchantConfig);
    }
}
