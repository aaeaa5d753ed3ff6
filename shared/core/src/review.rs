//! Approval policies: which new requests are approved at once and which wait for one or two
//! operators, and why.
//!
//! A policy is a list of rules. Every rule that fires on a request is recorded on it with the
//! number of distinct approvers it asks for; the request needs the largest of those numbers
//! (none fired: approved at once). A merchant's own policy replaces the default one entirely.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Actor, OperatorName};
use crate::cashout::CashoutRequest;
use crate::ids::MerchantId;
use crate::money::Currency;

/// How many distinct operators must approve: 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Approvers(u8);

impl Approvers {
    /// One operator.
    pub const ONE: Approvers = Approvers(1);
    /// Two distinct operators (four eyes).
    pub const TWO: Approvers = Approvers(2);

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Approvers {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        match n {
            1 | 2 => Ok(Approvers(n)),
            _ => Err(format!("approvers is 1 or 2, not {n}")),
        }
    }
}

impl From<Approvers> for u8 {
    fn from(a: Approvers) -> u8 {
        a.0
    }
}

/// A non-negative decimal kept as text in JSON (`"5000.00"`), for limits and rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Figure(#[serde(with = "crate::money::decimal_text")] pub Decimal);

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyRule {
    /// Fires when the requested amount is over the limit of its currency. A currency without a
    /// limit here uses `other_currencies`; without that either, the rule fires (no silent pass).
    AmountLimit {
        /// Limit per currency, in major units.
        #[serde(default)]
        limits: BTreeMap<Currency, Figure>,
        /// The limit of every currency not in `limits`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        other_currencies: Option<Figure>,
        /// Approvers asked for when it fires.
        approvers: Approvers,
    },
    /// Fires when the requested amount, converted to `currency` at the policy's rate, is over
    /// `limit`. A currency without a rate fires the rule.
    ReferenceLimit {
        /// The reference currency.
        currency: Currency,
        /// The limit in the reference currency.
        limit: Figure,
        /// Units of the reference currency per unit of each other currency.
        rates: BTreeMap<Currency, Figure>,
        /// Approvers asked for when it fires.
        approvers: Approvers,
    },
    /// Fires when the merchant's requests of the UTC day, this one included, pass a count or an
    /// amount in the request's currency.
    DailyVelocity {
        /// Most requests a day (every currency).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_count: Option<u64>,
        /// Most amount a day, per currency, in major units.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        max_amount: BTreeMap<Currency, Figure>,
        /// Approvers asked for when it fires.
        approvers: Approvers,
    },
    /// Fires on a payout to an account this merchant has never been paid out to.
    NewBeneficiary {
        /// Approvers asked for when it fires.
        approvers: Approvers,
    },
    /// Fires when the request holds more than `max` invoices.
    InvoiceCount {
        /// Most invoices approved at once.
        max: u32,
        /// Approvers asked for when it fires.
        approvers: Approvers,
    },
}

impl PolicyRule {
    /// The rule's kind, as in its JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyRule::AmountLimit { .. } => "amount_limit",
            PolicyRule::ReferenceLimit { .. } => "reference_limit",
            PolicyRule::DailyVelocity { .. } => "daily_velocity",
            PolicyRule::NewBeneficiary { .. } => "new_beneficiary",
            PolicyRule::InvoiceCount { .. } => "invoice_count",
        }
    }

    fn approvers(&self) -> Approvers {
        match self {
            PolicyRule::AmountLimit { approvers, .. }
            | PolicyRule::ReferenceLimit { approvers, .. }
            | PolicyRule::DailyVelocity { approvers, .. }
            | PolicyRule::NewBeneficiary { approvers }
            | PolicyRule::InvoiceCount { approvers, .. } => *approvers,
        }
    }

    /// What is wrong with the rule, if anything (negative limits, rates that are not positive).
    fn problem(&self) -> Option<String> {
        let negative = |d: &Figure| d.0.is_sign_negative();
        match self {
            PolicyRule::AmountLimit {
                limits,
                other_currencies,
                ..
            } => (limits.values().any(negative) || other_currencies.as_ref().is_some_and(negative))
                .then(|| "amount_limit: limits cannot be negative".into()),
            PolicyRule::ReferenceLimit { limit, rates, .. } => {
                if negative(limit) {
                    Some("reference_limit: the limit cannot be negative".into())
                } else if rates.values().any(|r| r.0 <= Decimal::ZERO) {
                    Some("reference_limit: every rate must be greater than zero".into())
                } else {
                    None
                }
            }
            PolicyRule::DailyVelocity {
                max_count, max_amount, ..
            } => {
                if max_count.is_none() && max_amount.is_empty() {
                    Some("daily_velocity: give max_count, max_amount or both".into())
                } else if max_amount.values().any(negative) {
                    Some("daily_velocity: amounts cannot be negative".into())
                } else {
                    None
                }
            }
            PolicyRule::NewBeneficiary { .. } | PolicyRule::InvoiceCount { .. } => None,
        }
    }
}

/// Whose policy: one merchant's, or the default of every merchant without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "merchant_id")]
pub enum PolicyScope {
    /// Every merchant without a policy of its own.
    Default,
    /// One merchant.
    Merchant(MerchantId),
}

impl PolicyScope {
    /// `default` or the merchant's id (the API's path segment).
    pub fn key(&self) -> String {
        match self {
            PolicyScope::Default => "default".into(),
            PolicyScope::Merchant(m) => m.to_string(),
        }
    }

    /// Reads a path segment: `default` or a merchant id.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "default" {
            Some(PolicyScope::Default)
        } else {
            text.parse().ok().map(PolicyScope::Merchant)
        }
    }
}

/// The most rules a policy holds.
pub const MAX_RULES: usize = 20;
/// The most currencies a rule names (limits or rates).
pub const MAX_CURRENCIES: usize = 200;

/// An approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// Whose.
    pub scope: PolicyScope,
    /// The rules; none fired, the request is approved at once.
    pub rules: Vec<PolicyRule>,
    /// Bumped by every change (0: never stored; the built-in default).
    pub version: u64,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Who changed it last.
    pub updated_by: Option<Actor>,
}

impl Default for ApprovalPolicy {
    /// The built-in default of a deployment that configured nothing: 10,000 in any currency.
    fn default() -> Self {
        ApprovalPolicy::limit_only(PolicyScope::Default, Decimal::from(10_000))
    }
}

/// A policy refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPolicy(pub String);

impl ApprovalPolicy {
    /// The built-in default: every currency up to `limit` (major units) approved at once, one
    /// approver above it. The deployment's `CASHOUT_AUTO_APPROVE_LIMIT`.
    pub fn limit_only(scope: PolicyScope, limit: Decimal) -> Self {
        ApprovalPolicy {
            scope,
            rules: vec![PolicyRule::AmountLimit {
                limits: BTreeMap::new(),
                other_currencies: Some(Figure(limit)),
                approvers: Approvers::ONE,
            }],
            version: 0,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            updated_by: None,
        }
    }

    /// Checks the rules' bounds.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        if self.rules.len() > MAX_RULES {
            return Err(InvalidPolicy(format!("a policy holds at most {MAX_RULES} rules")));
        }
        for rule in &self.rules {
            let names = match rule {
                PolicyRule::AmountLimit { limits, .. } => limits.len(),
                PolicyRule::ReferenceLimit { rates, .. } => rates.len(),
                PolicyRule::DailyVelocity { max_amount, .. } => max_amount.len(),
                _ => 0,
            };
            if names > MAX_CURRENCIES {
                return Err(InvalidPolicy(format!(
                    "{}: at most {MAX_CURRENCIES} currencies",
                    rule.kind()
                )));
            }
            if let Some(problem) = rule.problem() {
                return Err(InvalidPolicy(problem));
            }
        }
        Ok(())
    }

    /// Whether deciding needs the merchant's usage of the day.
    pub fn needs_usage(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, PolicyRule::DailyVelocity { .. }))
    }

    /// Whether deciding needs to know if the beneficiary's account was paid before.
    pub fn needs_beneficiary(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, PolicyRule::NewBeneficiary { .. }))
    }

    /// Applies the rules to a request, given what the store knows.
    pub fn decide(&self, request: &CashoutRequest, facts: &ReviewFacts) -> PolicyDecision {
        let amount = request.requested_amount().value();
        let currency = request.currency();
        let mut fired = Vec::new();
        for rule in &self.rules {
            let detail = match rule {
                PolicyRule::AmountLimit {
                    limits,
                    other_currencies,
                    ..
                } => match limits.get(&currency).or(other_currencies.as_ref()).map(|l| l.0) {
                    Some(limit) if amount <= limit => None,
                    Some(limit) => Some(format!("{amount} {currency} is over the limit of {limit} {currency}")),
                    None => Some(format!("no limit is set for {currency}")),
                },
                PolicyRule::ReferenceLimit {
                    currency: reference,
                    limit,
                    rates,
                    ..
                } => {
                    let rate = if currency == *reference {
                        Some(Decimal::ONE)
                    } else {
                        rates.get(&currency).map(|r| r.0)
                    };
                    match rate.and_then(|r| amount.checked_mul(r)) {
                        Some(converted) if converted <= limit.0 => None,
                        Some(converted) => Some(format!(
                            "{amount} {currency} is {} {reference}, over the limit of {} {reference}",
                            converted.round_dp(2),
                            limit.0
                        )),
                        None => Some(format!("no rate from {currency} to {reference}")),
                    }
                }
                PolicyRule::DailyVelocity {
                    max_count, max_amount, ..
                } => match &facts.usage {
                    // Not counted (the store could not say): treat as over, never as under.
                    None => Some("the day's usage is not known".into()),
                    Some(usage) => {
                        if let Some(max) = max_count.filter(|max| usage.count > *max) {
                            Some(format!(
                                "request {} of the day, over the daily count of {max}",
                                usage.count
                            ))
                        } else {
                            max_amount.get(&currency).filter(|max| usage.amount > max.0).map(|max| {
                                format!(
                                    "{} {currency} requested today, over the daily amount of {} {currency}",
                                    usage.amount, max.0
                                )
                            })
                        }
                    }
                },
                PolicyRule::NewBeneficiary { .. } => match facts.beneficiary_known {
                    Some(true) => None,
                    Some(false) => Some("first payout to this beneficiary account".into()),
                    None => Some("whether this account was paid before is not known".into()),
                },
                PolicyRule::InvoiceCount { max, .. } => {
                    let count = request.included_invoice_count();
                    (count > *max).then(|| format!("{count} invoices, over the limit of {max}"))
                }
            };
            if let Some(detail) = detail {
                fired.push(FiredRule {
                    rule: rule.kind().to_owned(),
                    detail,
                    approvers: rule.approvers(),
                });
            }
        }
        let required = fired.iter().map(|f| f.approvers.get()).max().unwrap_or(0);
        PolicyDecision {
            policy: self.scope.clone(),
            policy_version: self.version,
            fired,
            required_approvals: required,
        }
    }
}

/// What the store knows that the rules may need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFacts {
    /// The merchant's requests of the day with this one counted (`None`: not asked).
    pub usage: Option<DayUsage>,
    /// Whether a payout to the beneficiary's account was paid before (`None`: not asked).
    pub beneficiary_known: Option<bool>,
}

/// A merchant's requests of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayUsage {
    /// Requests (every currency).
    pub count: u64,
    /// Amount requested in the request's currency, in major units.
    pub amount: Decimal,
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredRule {
    /// The rule's kind (`amount_limit`, …).
    pub rule: String,
    /// Why it fired, for people.
    pub detail: String,
    /// Approvers it asks for.
    pub approvers: Approvers,
}

/// The outcome of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// The policy applied.
    pub policy: PolicyScope,
    /// Its version (0: the built-in default).
    pub policy_version: u64,
    /// The rules that fired.
    pub fired: Vec<FiredRule>,
    /// Distinct approvals needed: 0 (approved at once), 1 or 2.
    pub required_approvals: u8,
}

/// An operator's approval of a request under review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who.
    pub operator: OperatorName,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The review of a request: the policy's decision and the approvals so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewState {
    /// What the policy decided.
    pub decision: PolicyDecision,
    /// Approvals so far, in order.
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

#[cfg(test)]
mod tests;
