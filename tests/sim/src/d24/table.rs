//! The D24 family's tables, written from the seeds and the digest (never from the adapters):
//! statuses with their codes and flow, bank rejection codes, the error codes the simulator
//! answers with and their HTTP statuses, and the countries each profile pays.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::Provider;
use crate::listed::listed_enum;

listed_enum! {
    /// A cashout status. Codes: PROVIDERS.md (D24 family, "Status codes": "0 PENDING, 1 COMPLETED,
    /// 2 CANCELLED, 3 REJECTED, 4 DELIVERED, 5 ON_HOLD (Tupay has no ON_HOLD)"); meanings: seed 001
    /// "Cashout Status Flow" items 2–7, seed 002 "Cashout Statuses" (no ON_HOLD).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub(crate) enum D24State {
        /// Seed 001 item 2: created, "will be send for processing soon, changing to DELIVERED".
        Pending,
        /// Seed 001 item 6: "Final status*" — the asterisk: it may still become REJECTED.
        Completed,
        /// Seed 001 item 4: "Final status".
        Cancelled,
        /// Seed 001 item 7: "Final status".
        Rejected,
        /// Seed 001 item 5: with the bank; "it can't be cancelled anymore".
        Delivered,
        /// Seed 001 item 3: held until set back to PENDING; "It can still be CANCELLED". Not Tupay.
        OnHold,
    }
    /// Every status, in code order.
    pub(crate) const ALL;
}

impl D24State {
    /// `cashout_status`.
    pub(crate) const fn code(self) -> u8 {
        match self {
            D24State::Pending => 0,
            D24State::Completed => 1,
            D24State::Cancelled => 2,
            D24State::Rejected => 3,
            D24State::Delivered => 4,
            D24State::OnHold => 5,
        }
    }

    /// The name the docs use (`ON_HOLD`).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            D24State::Pending => "PENDING",
            D24State::Completed => "COMPLETED",
            D24State::Cancelled => "CANCELLED",
            D24State::Rejected => "REJECTED",
            D24State::Delivered => "DELIVERED",
            D24State::OnHold => "ON_HOLD",
        }
    }

    /// The status named `name` as the docs write it (`ON_HOLD`), if there is one.
    pub(crate) fn from_name(name: &str) -> Option<D24State> {
        D24State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `cashout_status_description`. "Completed" and "Rejected": seed 001's response examples
    /// (lines 120–130); "Canceled": the digest's cancel answer. The others are not shown in
    /// any document: the simulator's own wording.
    pub(crate) const fn description(self) -> &'static str {
        match self {
            D24State::Pending => "Pending",
            D24State::Completed => "Completed",
            D24State::Cancelled => "Canceled",
            D24State::Rejected => "Rejected",
            D24State::Delivered => "Delivered",
            D24State::OnHold => "On hold",
        }
    }

    /// The documented flow (PROVIDERS.md, D24 family, "Flow"): PENDING → DELIVERED | ON_HOLD |
    /// CANCELLED; ON_HOLD → PENDING | CANCELLED; DELIVERED → COMPLETED | REJECTED; COMPLETED →
    /// REJECTED (seed 001: "after a few days, it gets rejected by the beneficiary's bank");
    /// CANCELLED and REJECTED final.
    pub(crate) const fn may_become(self, next: D24State) -> bool {
        matches!(
            (self, next),
            (
                D24State::Pending,
                D24State::Delivered | D24State::OnHold | D24State::Cancelled
            ) | (D24State::OnHold, D24State::Pending | D24State::Cancelled)
                | (D24State::Delivered, D24State::Completed | D24State::Rejected)
                | (D24State::Completed, D24State::Rejected)
        )
    }

    /// Whether the profile has this status: Tupay has no ON_HOLD (seed 002 lists six statuses
    /// without it; its PENDING "can also be manually changed to CANCELLED" only).
    pub(crate) const fn exists_on(self, p: Provider) -> bool {
        match self {
            D24State::OnHold => !matches!(p, Provider::Tupay),
            D24State::Pending
            | D24State::Completed
            | D24State::Cancelled
            | D24State::Rejected
            | D24State::Delivered => true,
        }
    }
}

/// Bank rejection codes (`rejection_code`, `rejection_reason`): PROVIDERS.md, D24 family,
/// "Rejection codes", 800–826. 823 is only in older docs ("email field cannot be empty"); it is
/// kept so that an old code is still named.
pub(crate) const REJECTION_CODES: &[(u16, &str)] = &[
    (800, "ERROR_ACCOUNT_INCORRECT"),
    (801, "ERROR_ACCOUNT_CLOSED"),
    (802, "ERROR_AMOUNT_INCORRECT"),
    (803, "ERROR_BANK_INVALID"),
    (804, "ERROR_BANK_BRANCH_INCORRECT"),
    (805, "ERROR_BENEFICIARY_DOCUMENT_ID_INVALID"),
    (806, "ERROR_BENEFICIARY_NAME_INCORRECT"),
    (807, "ERROR_REJECTED_BY_BANK"),
    (808, "ERROR_OTHER"),
    (809, "WITHDRAWAL_EXPIRED"),
    (810, "LIMIT_EXCEEDED"),
    (811, "RISK_POLICY"),
    (812, "BLOCKED_FROZEN_ACCOUNT"),
    (813, "DOCUMENT_ACCOUNT_MISMATCH"),
    (814, "INVALID_PIX_KEY"),
    (815, "INVALID_IFSC_CODE"),
    (816, "INVALID_ACCOUNT_OR_IFSC_CODE"),
    (817, "INVALID_NBIN"),
    (818, "ACCOUNT_UNABLE"),
    (819, "INVALID_ACCOUNT_TYPE"),
    (820, "REJECTED_BY_MERCHANT_REQUEST"),
    (821, "MONTHLY_LIMIT_EXCEEDED_FOR_USER"),
    (822, "ACCOUNT_NAME_REQUIRED_TO_BE_IN_KATAKANA"),
    (823, "EMAIL_FIELD_CANNOT_BE_EMPTY"),
    (824, "REJECTED_BY_THIRD_PARTY_CONTROL"),
    (826, "WITHDRAWAL_REVERSED"),
];

/// The name of a rejection code (`rejection_reason`), as seed 001's example pairs them
/// (`"rejection_code": 808, "rejection_reason": "ERROR_OTHER"`).
pub(crate) fn rejection_reason(code: u16) -> Option<&'static str> {
    REJECTION_CODES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The error codes the simulator answers with (`{"code", "message"}`): PROVIDERS.md, D24
/// family, "Error body" ("Ones that change our behaviour"). The header family (1xx) is named
/// there without a code list: 100 is the simulator's choice for a missing Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// 1xx: a required header is missing or wrong (seed 001: `Content-Type*` is required).
    InvalidHeader,
    /// 300 invalid params.
    InvalidParams,
    /// 302 invalid signature.
    InvalidSignature,
    /// 401 invalid credentials.
    InvalidCredentials,
    /// 402 unregistered IP: "caller IP must be whitelisted (error 402 otherwise)" (PROVIDERS.md,
    /// D24 family, "Auth"). The simulator checks no IP: only the `config_error` fault answers it.
    UnregisteredIp,
    /// 500 internal error.
    Internal,
    /// 502 malformed JSON.
    MalformedJson,
    /// 509 cashout not found.
    NotFound,
    /// 510 invalid status transition.
    InvalidTransition,
    /// 511 external_id already used.
    ExternalIdUsed,
    /// 518 country not available.
    CountryNotAvailable,
    /// 526 invalid currency.
    InvalidCurrency,
    /// 702 could not cancel.
    CouldNotCancel,
}

impl ErrorCode {
    /// The `code` of the body.
    pub(crate) const fn code(self) -> u16 {
        match self {
            ErrorCode::InvalidHeader => 100,
            ErrorCode::InvalidParams => 300,
            ErrorCode::InvalidSignature => 302,
            ErrorCode::InvalidCredentials => 401,
            ErrorCode::UnregisteredIp => 402,
            ErrorCode::Internal => 500,
            ErrorCode::MalformedJson => 502,
            ErrorCode::NotFound => 509,
            ErrorCode::InvalidTransition => 510,
            ErrorCode::ExternalIdUsed => 511,
            ErrorCode::CountryNotAvailable => 518,
            ErrorCode::InvalidCurrency => 526,
            ErrorCode::CouldNotCancel => 702,
        }
    }

    /// The HTTP status, by the digest's "HTTP 400 (KYC), 401 (auth), 412 (validation, also
    /// "cashout not found"), 500": every validation or state refusal is 412. A body the server
    /// cannot read at all (bad header, malformed JSON) is not "validation": 400.
    pub(crate) const fn http(self) -> StatusCode {
        match self {
            ErrorCode::InvalidSignature | ErrorCode::InvalidCredentials | ErrorCode::UnregisteredIp => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::InvalidParams
            | ErrorCode::NotFound
            | ErrorCode::InvalidTransition
            | ErrorCode::ExternalIdUsed
            | ErrorCode::CountryNotAvailable
            | ErrorCode::InvalidCurrency
            | ErrorCode::CouldNotCancel => StatusCode::PRECONDITION_FAILED,
            ErrorCode::InvalidHeader | ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// (country, currency) pairs D24 and Onspot pay. Neither the seeds nor the digest list D24's
/// countries: this is the simulator's own table of D24's Latin American markets in their local
/// currency, plus USD where it is the local currency. Tupay: Peru in PEN or USD
/// (PROVIDERS.md, "Tupay (Peru) also requires currency (PEN/USD)"). 518 and 526 answer the rest.
const D24_COUNTRIES: &[(&str, &str)] = &[
    ("AR", "ARS"),
    ("BO", "BOB"),
    ("BR", "BRL"),
    ("CL", "CLP"),
    ("CO", "COP"),
    ("CR", "CRC"),
    ("DO", "DOP"),
    ("EC", "USD"),
    ("GT", "GTQ"),
    ("MX", "MXN"),
    ("PA", "USD"),
    ("PE", "PEN"),
    ("PY", "PYG"),
    ("SV", "USD"),
    ("UY", "UYU"),
];

const TUPAY_COUNTRIES: &[(&str, &str)] = &[("PE", "PEN"), ("PE", "USD")];

/// The currencies `p` pays in `country` (empty: 518 country not available).
pub(crate) fn currencies(p: Provider, country: &str) -> Vec<&'static str> {
    let table = match p {
        Provider::Tupay => TUPAY_COUNTRIES,
        Provider::D24 | Provider::Onspot | Provider::Cascad => D24_COUNTRIES,
    };
    table
        .iter()
        .filter(|(c, _)| *c == country)
        .map(|(_, cur)| *cur)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<(u8, &str)> = D24State::ALL.iter().map(|s| (s.code(), s.name())).collect();
        assert_eq!(
            codes,
            [
                (0, "PENDING"),
                (1, "COMPLETED"),
                (2, "CANCELLED"),
                (3, "REJECTED"),
                (4, "DELIVERED"),
                (5, "ON_HOLD")
            ]
        );
        assert!(!D24State::OnHold.exists_on(Provider::Tupay));
        assert!(D24State::OnHold.exists_on(Provider::Onspot));
    }

    #[test]
    fn the_flow_is_the_documented_one() {
        let allowed: Vec<(&str, &str)> = D24State::ALL
            .iter()
            .flat_map(|a| {
                D24State::ALL
                    .iter()
                    .filter(|b| a.may_become(**b))
                    .map(|b| (a.name(), b.name()))
            })
            .collect();
        assert_eq!(
            allowed,
            [
                ("PENDING", "CANCELLED"),
                ("PENDING", "DELIVERED"),
                ("PENDING", "ON_HOLD"),
                ("COMPLETED", "REJECTED"),
                ("DELIVERED", "COMPLETED"),
                ("DELIVERED", "REJECTED"),
                ("ON_HOLD", "PENDING"),
                ("ON_HOLD", "CANCELLED"),
            ]
        );
    }

    #[test]
    fn rejection_codes_run_from_800_to_826_without_825() {
        assert_eq!(REJECTION_CODES.len(), 26);
        assert_eq!(rejection_reason(808), Some("ERROR_OTHER"));
        assert_eq!(rejection_reason(826), Some("WITHDRAWAL_REVERSED"));
        assert_eq!(rejection_reason(825), None);
        assert!(REJECTION_CODES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn coverage_refuses_other_countries_and_currencies() {
        assert_eq!(currencies(Provider::D24, "BR"), ["BRL"]);
        assert_eq!(currencies(Provider::Tupay, "PE"), ["PEN", "USD"]);
        assert!(currencies(Provider::Tupay, "BR").is_empty());
        assert!(currencies(Provider::D24, "JP").is_empty());
    }
}
