//! Routing rules: an operator's ordered provider lists, per merchant or for everyone, matched by
//! country, currency, amount range and payout method, and the choice made from them when a
//! request is approved.
//!
//! A request goes to the first provider of the first rule that matches it and can pay it
//! (the merchant's own rules first, then the default ones, each by `priority`, then age), and
//! to the next providers of that list when the first provably holds nothing (failover, in
//! [`crate::cashout`]). With weights, the first provider is drawn by weight from the request id
//! (the same request always draws the same), the others follow in list order. No rule matching:
//! every provider that covers the request, in the built-in preference order. A merchant that
//! names a `provider` pins it: one route, no failover.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Coverage, PayoutMethodKind, Route, RouteQuery};
use crate::cashout::CashoutRequest;
use crate::ids::{MerchantId, RoutingRuleId};
use crate::money::{Amount, Currency};
use crate::party::Country;
use crate::provider::ProviderName;
use crate::validation::ValidationErrors;

/// The most rules a deployment holds (every approval reads them all).
pub const MAX_RULES: usize = 500;
/// The largest weight of one provider in a rule.
pub const MAX_WEIGHT: u32 = 10_000;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;
/// The most countries, currencies or methods one rule lists.
pub const MAX_LISTED: usize = 250;

/// What a request must be for a rule to apply. An empty list matches anything; amounts are
/// inclusive bounds in the request's currency, compared exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// Beneficiary countries.
    #[serde(default)]
    pub countries: Vec<Country>,
    /// Payout currencies. Required with an amount bound (an amount means nothing without one).
    #[serde(default)]
    pub currencies: Vec<Currency>,
    /// The smallest payable amount the rule takes.
    #[serde(default, with = "crate::money::decimal_text::option")]
    pub amount_min: Option<Decimal>,
    /// The largest payable amount the rule takes.
    #[serde(default, with = "crate::money::decimal_text::option")]
    pub amount_max: Option<Decimal>,
    /// Payout methods.
    #[serde(default)]
    pub payout_methods: Vec<PayoutMethodKind>,
}

impl RuleMatch {
    /// Whether a request with these facts matches.
    pub fn matches(
        &self,
        country: Country,
        currency: Currency,
        amount: Decimal,
        method: Option<PayoutMethodKind>,
    ) -> bool {
        (self.countries.is_empty() || self.countries.contains(&country))
            && (self.currencies.is_empty() || self.currencies.contains(&currency))
            && self.amount_min.is_none_or(|min| amount >= min)
            && self.amount_max.is_none_or(|max| amount <= max)
            && (self.payout_methods.is_empty() || method.is_some_and(|m| self.payout_methods.contains(&m)))
    }

    fn check(&self, errors: &mut ValidationErrors) {
        for (field, len) in [
            ("match.countries", self.countries.len()),
            ("match.currencies", self.currencies.len()),
            ("match.payout_methods", self.payout_methods.len()),
        ] {
            if len > MAX_LISTED {
                errors.push(field, "too_large", format!("at most {MAX_LISTED} entries"));
            }
        }
        let bounds = [
            ("match.amount_min", self.amount_min),
            ("match.amount_max", self.amount_max),
        ];
        for (field, bound) in bounds {
            let Some(value) = bound else { continue };
            if value.is_sign_negative() {
                errors.push(field, "invalid", "must not be negative");
            }
            if self.currencies.is_empty() {
                errors.push(field, "currency_required", "an amount bound needs `match.currencies`");
            }
            for c in &self.currencies {
                if Amount::new(value, *c).is_err() {
                    errors.push(field, "invalid", format!("{c} has {} decimal places", c.minor_units()));
                }
            }
        }
        if let (Some(min), Some(max)) = (self.amount_min, self.amount_max)
            && min > max
        {
            errors.push("match.amount_max", "invalid", "must not be below `amount_min`");
        }
    }
}

/// One provider of a rule's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleProvider {
    pub provider: ProviderName,
    /// Its share of the requests drawn first (with the other weights of the rule); absent on
    /// every provider of a rule without a volume split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// What an operator writes: everything of a rule but its id and bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRuleSpec {
    /// The merchant it applies to; absent: a default rule, for every merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<MerchantId>,
    /// Lower first among the rules of one scope (the merchant's, then the default ones).
    #[serde(default)]
    pub priority: u32,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which requests it takes.
    #[serde(default, rename = "match")]
    pub conditions: RuleMatch,
    /// The providers in the order they are tried (distinct, at least one).
    pub providers: Vec<RuleProvider>,
    /// Whether a provider's decline of the beneficiary's data moves the request on to the next
    /// provider (by default it ends the request `REJECTED`: the next would decline it too).
    #[serde(default)]
    pub failover_on_decline: bool,
}

impl RoutingRuleSpec {
    /// Every problem with it, with its field path.
    pub fn check(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self
            .description
            .as_deref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            errors.push(
                "description",
                "too_long",
                format!("at most {MAX_DESCRIPTION} characters"),
            );
        }
        self.conditions.check(&mut errors);
        self.check_providers(&mut errors);
        errors.into_result(|| ())
    }

    fn check_providers(&self, errors: &mut ValidationErrors) {
        if self.providers.is_empty() {
            errors.push("providers", "required", "name at least one provider");
        }
        for (i, p) in self.providers.iter().enumerate() {
            if self.providers[..i].iter().any(|q| q.provider == p.provider) {
                errors.push(
                    format!("providers[{i}].provider"),
                    "duplicate",
                    format!("{} is listed twice", p.provider),
                );
            }
            if p.weight.is_some_and(|w| w > MAX_WEIGHT) {
                errors.push(
                    format!("providers[{i}].weight"),
                    "invalid",
                    format!("at most {MAX_WEIGHT}"),
                );
            }
        }
        let weighted = self.providers.iter().filter(|p| p.weight.is_some()).count();
        if weighted != 0 && weighted != self.providers.len() {
            errors.push(
                "providers",
                "invalid",
                "give every provider a weight, or none (a volume split needs them all)",
            );
        }
        if weighted != 0 && self.providers.iter().all(|p| p.weight == Some(0)) {
            errors.push("providers", "invalid", "at least one weight must be above zero");
        }
    }

    /// The providers in the order a request that draws `draw` tries them: list order, or with
    /// weights the provider drawn first and the others after it in list order.
    pub fn ordered_providers(&self, draw: u64) -> Vec<ProviderName> {
        let mut order: Vec<ProviderName> = self.providers.iter().map(|p| p.provider).collect();
        let total: u64 = self.providers.iter().map(|p| u64::from(p.weight.unwrap_or(0))).sum();
        if total == 0 {
            return order;
        }
        let mut point = draw % total;
        let mut first = 0;
        for (i, p) in self.providers.iter().enumerate() {
            let w = u64::from(p.weight.unwrap_or(0));
            if point < w {
                first = i;
                break;
            }
            point -= w;
        }
        let chosen = order.remove(first);
        order.insert(0, chosen);
        order
    }
}

/// A stored routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub id: RoutingRuleId,
    #[serde(flatten)]
    pub spec: RoutingRuleSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// +1 on every change; a replace names the version it read.
    pub version: u64,
}

impl RoutingRule {
    /// Precedence among rules: the merchant's own before the default ones, then by priority,
    /// then the older first, then by id (a total order, so every function picks the same rule).
    fn precedence(&self, other: &RoutingRule) -> Ordering {
        (
            self.spec.merchant_id.is_none(),
            self.spec.priority,
            self.created_at,
            self.id,
        )
            .cmp(&(
                other.spec.merchant_id.is_none(),
                other.spec.priority,
                other.created_at,
                other.id,
            ))
    }

    /// Whether it applies to `merchant`'s requests at all.
    pub fn applies_to(&self, merchant: &MerchantId) -> bool {
        self.spec.merchant_id.as_ref().is_none_or(|m| m == merchant)
    }
}

/// How a request's providers were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingSource {
    /// The merchant named the provider: it alone pays, no failover.
    Pinned,
    /// An operator's rule.
    Rule,
    /// No rule matched: every provider that covers the request, in the built-in order.
    Default,
}

/// The providers a request may be paid through, chosen at approval, in the order they are
/// tried; recorded on the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingChoice {
    pub source: RoutingSource,
    /// The rule that made the choice (`source` = `rule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<RoutingRuleId>,
    /// Each provider that can pay the request, with its method and service, first one first.
    pub routes: Vec<Route>,
    /// The rule's `failover_on_decline`.
    #[serde(default)]
    pub failover_on_decline: bool,
}

impl RoutingChoice {
    /// The one route of a request whose provider is pinned (or made before routing rules).
    pub fn pinned(route: Route) -> RoutingChoice {
        RoutingChoice {
            source: RoutingSource::Pinned,
            rule_id: None,
            routes: vec![route],
            failover_on_decline: false,
        }
    }

    /// Chooses the routes of `request` from `rules` (any order; those of other merchants are
    /// ignored): the first rule, by precedence, that matches and names a provider able to pay
    /// it; otherwise the default order. A route is kept only when its provider covers the
    /// request and the beneficiary passes its checks. `None` when nothing can pay it (the
    /// coverage changed since creation): the caller keeps the route chosen at creation.
    pub fn choose(coverage: &Coverage, rules: &[RoutingRule], request: &CashoutRequest) -> Option<RoutingChoice> {
        if request.provider_pinned() {
            return None;
        }
        let amount = request.payable_amount();
        let feasible = |p: ProviderName| -> Option<Route> {
            let mut errors = ValidationErrors::default();
            let route = coverage.route(
                RouteQuery {
                    provider: Some(p),
                    country: request.country(),
                    currency: request.currency(),
                    method: request.payout_method(),
                    amount: Some(amount),
                    beneficiary: Some(request.beneficiary()),
                },
                &mut errors,
            )?;
            errors.is_empty().then_some(route)
        };
        let mut matching: Vec<&RoutingRule> = rules
            .iter()
            .filter(|r| r.applies_to(request.merchant_id()))
            .filter(|r| {
                r.spec.conditions.matches(
                    request.country(),
                    request.currency(),
                    amount.value(),
                    request.payout_method(),
                )
            })
            .collect();
        matching.sort_by(|a, b| a.precedence(b));
        let draw = draw_of(request);
        for rule in matching {
            let routes: Vec<Route> = rule
                .spec
                .ordered_providers(draw)
                .into_iter()
                .filter_map(feasible)
                .collect();
            if !routes.is_empty() {
                return Some(RoutingChoice {
                    source: RoutingSource::Rule,
                    rule_id: Some(rule.id),
                    routes,
                    failover_on_decline: rule.spec.failover_on_decline,
                });
            }
        }
        // The default: the provider validated at creation first, then every other that can pay.
        let mut providers = coverage.candidates(request.country(), request.currency());
        providers.sort_by_key(|p| *p != request.provider());
        let routes: Vec<Route> = providers.into_iter().filter_map(feasible).collect();
        (!routes.is_empty()).then_some(RoutingChoice {
            source: RoutingSource::Default,
            rule_id: None,
            routes,
            failover_on_decline: false,
        })
    }
}

/// The request's draw for a volume split: the low 64 bits of its id (random in a UUID v7), so a
/// request draws the same at every approval.
fn draw_of(request: &CashoutRequest) -> u64 {
    let bytes = request.id().as_uuid().into_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    u64::from_be_bytes(low)
}

#[cfg(test)]
mod tests;
