//! The eight request statuses (Osigu's) and the transition table every change obeys.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

crate::named::named_enum! {
    /// The status of a cashout request.
    ///
    /// | from | allowed next |
    /// |---|---|
    /// | `REQUESTED` | `APPROVED`, `UNDER_REVIEW`, `REJECTED`, `CANCELLED` |
    /// | `UNDER_REVIEW` | `APPROVED`, `REJECTED`, `CANCELLED` |
    /// | `APPROVED` | `PENDING_PAYMENT`, `REJECTED`, `PAYMENT_PROCESSOR_ERROR`, `CANCELLED` |
    /// | `PENDING_PAYMENT` | `PAID`, `REJECTED`, `CANCELLED`, `PAYMENT_PROCESSOR_ERROR` |
    /// | `PAYMENT_PROCESSOR_ERROR` | `APPROVED` (operator retry), `REJECTED`, `CANCELLED`, `PENDING_PAYMENT` (the provider reports a payout after all: followed, and flagged for a person) |
    /// | `PAID` | `REJECTED` (reversal: the bank returned the money) |
    /// | `REJECTED`, `CANCELLED` | nothing: final |
    pub enum CashoutStatus / UnknownStatus(32) {
        /// Created, not yet reviewed.
        Requested = "REQUESTED",
        /// Waiting for an operator (above the auto-approve limit).
        UnderReview = "UNDER_REVIEW",
        /// Approved; about to be, or being, sent to the provider.
        Approved = "APPROVED",
        /// The provider holds the payout and has not finished it.
        PendingPayment = "PENDING_PAYMENT",
        /// The provider paid. Can still become `REJECTED` by a reversal.
        Paid = "PAID",
        /// Refused (review, data, bank) or reversed. Final.
        Rejected = "REJECTED",
        /// Cancelled by the merchant or at the provider. Final.
        Cancelled = "CANCELLED",
        /// The provider could not take the payout for a reason on our or its side (configuration,
        /// funds, outage); nothing was paid. Waits for an operator: retry or give up.
        PaymentProcessorError = "PAYMENT_PROCESSOR_ERROR",
    }
}

impl CashoutStatus {
    /// The statuses this one may move to (the transition table).
    pub const fn allowed_next(self) -> &'static [CashoutStatus] {
        use CashoutStatus::*;
        match self {
            Requested => &[Approved, UnderReview, Rejected, Cancelled],
            UnderReview => &[Approved, Rejected, Cancelled],
            Approved => &[PendingPayment, Rejected, PaymentProcessorError, Cancelled],
            PendingPayment => &[Paid, Rejected, Cancelled, PaymentProcessorError],
            PaymentProcessorError => &[Approved, Rejected, Cancelled, PendingPayment],
            Paid => &[Rejected],
            Rejected | Cancelled => &[],
        }
    }

    /// Whether `self → to` is in the table.
    pub fn can_transition_to(self, to: CashoutStatus) -> bool {
        self.allowed_next().contains(&to)
    }

    /// `REJECTED` and `CANCELLED`: nothing can change them.
    pub const fn is_final(self) -> bool {
        matches!(self, CashoutStatus::Rejected | CashoutStatus::Cancelled)
    }

    /// How far along the payout path a status is. Every transition in the table goes to a higher
    /// progress but two deliberate steps back from `PAYMENT_PROCESSOR_ERROR`: the operator's
    /// retry (`→ APPROVED`) and the provider reporting a payout after all (`→ PENDING_PAYMENT`).
    /// `PAYMENT_PROCESSOR_ERROR` is an outcome, level with `PAID`.
    pub const fn progress(self) -> u8 {
        use CashoutStatus::*;
        match self {
            Requested => 0,
            UnderReview => 1,
            Approved => 2,
            PendingPayment => 3,
            Paid | PaymentProcessorError => 4,
            Rejected | Cancelled => 5,
        }
    }
}

/// A text that is not one of the eight statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a cashout status")]
pub struct UnknownStatus(pub String);

/// The status of one invoice inside a request: the request's status while the invoice is
/// included, `EXCLUDED` once an operator took it out (and from then on).
/// On the wire by [`InvoiceStatus::as_str`]: the request status's name, or `EXCLUDED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    /// See [`CashoutStatus::Requested`].
    Requested,
    /// See [`CashoutStatus::UnderReview`].
    UnderReview,
    /// See [`CashoutStatus::Approved`].
    Approved,
    /// See [`CashoutStatus::PendingPayment`].
    PendingPayment,
    /// See [`CashoutStatus::Paid`].
    Paid,
    /// See [`CashoutStatus::Rejected`].
    Rejected,
    /// See [`CashoutStatus::Cancelled`].
    Cancelled,
    /// See [`CashoutStatus::PaymentProcessorError`].
    PaymentProcessorError,
    /// Taken out of the request during review; not paid, not counted.
    Excluded,
}

impl InvoiceStatus {
    /// Every invoice status: one per request status, then `EXCLUDED`.
    pub const ALL: [InvoiceStatus; 9] = {
        let mut all = [InvoiceStatus::Excluded; 9];
        let mut i = 0;
        while i < CashoutStatus::ALL.len() {
            all[i] = InvoiceStatus::of(CashoutStatus::ALL[i]);
            i += 1;
        }
        all
    };

    /// The invoice status that follows a request status.
    pub const fn of(s: CashoutStatus) -> Self {
        match s {
            CashoutStatus::Requested => InvoiceStatus::Requested,
            CashoutStatus::UnderReview => InvoiceStatus::UnderReview,
            CashoutStatus::Approved => InvoiceStatus::Approved,
            CashoutStatus::PendingPayment => InvoiceStatus::PendingPayment,
            CashoutStatus::Paid => InvoiceStatus::Paid,
            CashoutStatus::Rejected => InvoiceStatus::Rejected,
            CashoutStatus::Cancelled => InvoiceStatus::Cancelled,
            CashoutStatus::PaymentProcessorError => InvoiceStatus::PaymentProcessorError,
        }
    }

    /// The request status this one mirrors (`None` for `EXCLUDED`).
    pub const fn request_status(self) -> Option<CashoutStatus> {
        match self {
            InvoiceStatus::Requested => Some(CashoutStatus::Requested),
            InvoiceStatus::UnderReview => Some(CashoutStatus::UnderReview),
            InvoiceStatus::Approved => Some(CashoutStatus::Approved),
            InvoiceStatus::PendingPayment => Some(CashoutStatus::PendingPayment),
            InvoiceStatus::Paid => Some(CashoutStatus::Paid),
            InvoiceStatus::Rejected => Some(CashoutStatus::Rejected),
            InvoiceStatus::Cancelled => Some(CashoutStatus::Cancelled),
            InvoiceStatus::PaymentProcessorError => Some(CashoutStatus::PaymentProcessorError),
            InvoiceStatus::Excluded => None,
        }
    }

    /// The wire name (`PENDING_PAYMENT`, `EXCLUDED`).
    pub const fn as_str(self) -> &'static str {
        match self.request_status() {
            Some(s) => s.as_str(),
            None => "EXCLUDED",
        }
    }
}

impl Serialize for InvoiceStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InvoiceStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <Cow<'de, str>>::deserialize(d)?;
        InvoiceStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| D::Error::unknown_variant(&text, &INVOICE_STATUS_NAMES))
    }
}

/// The invoice statuses' wire names, for error messages.
const INVOICE_STATUS_NAMES: [&str; InvoiceStatus::ALL.len()] = {
    let mut names = [""; InvoiceStatus::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = InvoiceStatus::ALL[i].as_str();
        i += 1;
    }
    names
};

impl From<CashoutStatus> for InvoiceStatus {
    fn from(s: CashoutStatus) -> Self {
        InvoiceStatus::of(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invoice_status_is_listed_once_with_its_wire_name() {
        let wire: Vec<String> = InvoiceStatus::ALL
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        let named: Vec<&str> = InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(wire, named);
        let mut unique = named.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), InvoiceStatus::ALL.len());
        // every variant, by its round trip through the request status (EXCLUDED has none)
        for s in InvoiceStatus::ALL {
            assert_eq!(
                s.request_status()
                    .map(InvoiceStatus::of)
                    .unwrap_or(InvoiceStatus::Excluded),
                s
            );
        }
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for s in CashoutStatus::ALL {
            assert_eq!(s.is_final(), s.allowed_next().is_empty(), "{s}");
        }
    }

    #[test]
    fn table_matches_the_architecture() {
        use CashoutStatus::*;
        let expected: &[(CashoutStatus, CashoutStatus)] = &[
            (Requested, Approved),
            (Requested, UnderReview),
            (Requested, Rejected),
            (Requested, Cancelled),
            (UnderReview, Approved),
            (UnderReview, Rejected),
            (UnderReview, Cancelled),
            (Approved, PendingPayment),
            (Approved, Rejected),
            (Approved, PaymentProcessorError),
            (Approved, Cancelled),
            (PendingPayment, Paid),
            (PendingPayment, Rejected),
            (PendingPayment, Cancelled),
            (PendingPayment, PaymentProcessorError),
            (PaymentProcessorError, Approved),
            (PaymentProcessorError, Rejected),
            (PaymentProcessorError, Cancelled),
            (PaymentProcessorError, PendingPayment),
            (Paid, Rejected),
        ];
        for from in CashoutStatus::ALL {
            for to in CashoutStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    expected.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn every_transition_but_the_operator_retry_moves_forward() {
        for from in CashoutStatus::ALL {
            for &to in from.allowed_next() {
                let back = from == CashoutStatus::PaymentProcessorError
                    && matches!(to, CashoutStatus::Approved | CashoutStatus::PendingPayment);
                assert_eq!(to.progress() > from.progress(), !back, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for s in CashoutStatus::ALL {
            assert_eq!(s.as_str().parse::<CashoutStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!("paid".parse::<CashoutStatus>().is_err());
    }
}
