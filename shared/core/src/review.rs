//! Review rules: which new requests are approved at once and which wait for an operator.

use rust_decimal::Decimal;

use crate::cashout::CashoutRequest;

/// A merchant's review rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Requests whose `requested_amount` is at most this, in the request's own currency (major
    /// units), are approved at once; larger ones go `UNDER_REVIEW`.
    pub auto_approve_limit: Decimal,
}

impl Default for ReviewPolicy {
    /// The local default: 10 000 in the request's currency.
    fn default() -> Self {
        ReviewPolicy {
            auto_approve_limit: Decimal::from(10_000),
        }
    }
}

/// The outcome of the review rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Approve now.
    Approve,
    /// An operator must decide.
    ManualReview {
        /// The limit exceeded, as text.
        limit: String,
    },
}

impl ReviewPolicy {
    /// Applies the rules to a request.
    pub fn decide(&self, request: &CashoutRequest) -> ReviewDecision {
        if request.requested_amount().value() <= self.auto_approve_limit {
            ReviewDecision::Approve
        } else {
            ReviewDecision::ManualReview {
                limit: format!("{} {}", self.auto_approve_limit, request.currency()),
            }
        }
    }
}
