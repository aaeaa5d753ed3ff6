//! Payout providers as the domain sees them: their names, the normalised state of a payout at a
//! provider, and each family's status and error tables ([`d24`], [`cascad`]).
//!
//! The adapters (crate `cashout-providers`) parse the wire and call these tables; nothing here
//! knows a URL or a JSON field.

pub mod cascad;
pub mod d24;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{PayoutReference, ProviderPayoutId};
use crate::status::CashoutStatus;

crate::named::named_enum! {
    /// A payout provider cashout can pay through, by the name used in URLs and JSON.
    pub enum ProviderName / UnknownProvider(32) {
        /// Directa24 itself.
        D24 = "d24",
        /// Onspot, a D24 white label (same API, own credentials).
        Onspot = "onspot",
        /// Tupay, the D24 family in Peru (no `ON_HOLD`, Peruvian field rules).
        Tupay = "tupay",
        /// Cascad (Corefy/PayCore platform), payouts by reference.
        Cascad = "cascad",
    }
}

impl ProviderName {
    /// Whether the provider can hold a payout before paying it: the D24 family's profiles say
    /// ([`d24::D24Profile::supports_on_hold`]: D24 and Onspot, not Tupay); Cascad documents no
    /// hold (seed 003).
    pub const fn supports_hold(self) -> bool {
        match self {
            ProviderName::D24 => d24::D24Profile::D24.supports_on_hold(),
            ProviderName::Onspot => d24::D24Profile::Onspot.supports_on_hold(),
            ProviderName::Tupay => d24::D24Profile::Tupay.supports_on_hold(),
            ProviderName::Cascad => false,
        }
    }

    /// Which API family the provider speaks.
    pub const fn family(self) -> ProviderFamily {
        match self {
            ProviderName::D24 => ProviderFamily::D24(d24::D24Profile::D24),
            ProviderName::Onspot => ProviderFamily::D24(d24::D24Profile::Onspot),
            ProviderName::Tupay => ProviderFamily::D24(d24::D24Profile::Tupay),
            ProviderName::Cascad => ProviderFamily::Cascad,
        }
    }
}

/// A text that names no provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a payout provider (d24, onspot, tupay, cascad)")]
pub struct UnknownProvider(pub String);

/// The API family of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFamily {
    /// D24 cashouts API v3, with the profile's differences.
    D24(d24::D24Profile),
    /// Cascad payout invoices (JSON:API).
    Cascad,
}

/// What a provider says about a payout, reduced to what cashout acts on. Each family's table
/// ([`d24::payout_state`], [`cascad::payout_state`]) produces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PayoutState {
    /// The provider holds the payout and has not finished it (pending, delivered to the bank,
    /// on hold, processing…).
    Pending,
    /// Paid out to the beneficiary.
    Paid {
        /// When the provider says it was paid, if it says.
        #[serde(default, with = "time::serde::rfc3339::option")]
        paid_at: Option<OffsetDateTime>,
        /// How much the provider says it paid, in the request's currency, if it says (Cascad's
        /// `processed_amount`). One that differs from the payable amount is recorded and flagged.
        #[serde(default, with = "crate::money::decimal_text::option")]
        amount: Option<Decimal>,
    },
    /// Refused by the provider or the bank, or reversed after being paid. Nothing is paid.
    Rejected {
        /// The provider's rejection code (D24 `800`…`826`), if any.
        code: Option<String>,
        /// Its reason (`ERROR_ACCOUNT_INCORRECT`), if any.
        reason: Option<String>,
    },
    /// Cancelled at the provider. Nothing is paid.
    Cancelled,
    /// The provider ended the payout in a state that needs a person (partly processed, a failed
    /// cancellation). Maps to `PAYMENT_PROCESSOR_ERROR`.
    NeedsAttention {
        /// What the provider said.
        reason: String,
    },
    /// A status cashout does not know. It changes nothing and is logged.
    Unknown,
}

impl PayoutState {
    /// The request status this provider state leads to, or `None` for an unknown state.
    pub fn target_status(&self) -> Option<CashoutStatus> {
        match self {
            PayoutState::Pending => Some(CashoutStatus::PendingPayment),
            PayoutState::Paid { .. } => Some(CashoutStatus::Paid),
            PayoutState::Rejected { .. } => Some(CashoutStatus::Rejected),
            PayoutState::Cancelled => Some(CashoutStatus::Cancelled),
            PayoutState::NeedsAttention { .. } => Some(CashoutStatus::PaymentProcessorError),
            PayoutState::Unknown => None,
        }
    }
}

/// A payout as a provider reports it at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPayout {
    /// The provider that holds it.
    pub provider: ProviderName,
    /// Its id at the provider.
    pub payout_id: ProviderPayoutId,
    /// Our reference, when the provider returned it.
    pub reference: Option<PayoutReference>,
    /// The normalised state.
    pub state: PayoutState,
    /// The provider's own status words (`DELIVERED`, `process_error`, `REJECTED 800
    /// ERROR_ACCOUNT_INCORRECT`), kept as detail for people.
    pub provider_status: String,
    /// When the provider last changed it, if it says (Cascad `updated`); used to order
    /// out-of-order callbacks.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn a_paid_state_round_trips_with_and_without_its_amount() {
        for amount in [None, Some(Decimal::new(24824, 2))] {
            let state = PayoutState::Paid { paid_at: None, amount };
            let text = serde_json::to_string(&state).unwrap();
            assert_eq!(serde_json::from_str::<PayoutState>(&text).unwrap(), state, "{text}");
        }
        let old: PayoutState = serde_json::from_str(r#"{"state":"paid","paid_at":null}"#).unwrap();
        assert_eq!(
            old,
            PayoutState::Paid {
                paid_at: None,
                amount: None
            },
            "queued before amounts"
        );
    }
}
