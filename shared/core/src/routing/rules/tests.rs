use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::cashout::CashoutRequest;
use crate::ids::CashoutRequestId;
use crate::input::CashoutInput;
use crate::routing::D24_COVERAGE;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn country(c: &str) -> Country {
    c.parse().unwrap()
}

/// A BR/BRL request for `amount`, routed at creation (to D24 unless `provider` pins one).
fn request(id: u128, merchant: &str, body: serde_json::Value) -> CashoutRequest {
    let draft = serde_json::from_value::<CashoutInput>(body)
        .unwrap()
        .validate(&Coverage::default())
        .unwrap();
    CashoutRequest::create(
        CashoutRequestId::from_uuid(Uuid::from_u128(id)),
        MerchantId::new(merchant).unwrap(),
        draft,
        t0(),
    )
    .request
}

fn body(country: &str, currency: &str, amount: &str, provider: Option<&str>) -> serde_json::Value {
    let mut b = json!({
        "currency": currency, "country": country, "requested_by": "ana@example.com",
        "beneficiary": {"name": "Ana", "document_id": "12345678909", "bank_account": "0001234567"},
        "invoices": [{"invoice_id": "INV-1", "payer": {"tax_id": "1", "name": "P"}, "amount": amount, "advance_percentage": "100"}],
    });
    if let Some(p) = provider {
        b["provider"] = json!(p);
    }
    b
}

fn br(amount: &str) -> CashoutRequest {
    request(7, "clinic", body("BR", "BRL", amount, None))
}

fn providers(list: &[ProviderName]) -> Vec<RuleProvider> {
    list.iter()
        .map(|p| RuleProvider {
            provider: *p,
            weight: None,
        })
        .collect()
}

fn rule(n: u128, merchant: Option<&str>, priority: u32, conditions: RuleMatch, list: &[ProviderName]) -> RoutingRule {
    RoutingRule {
        id: RoutingRuleId::from_uuid(Uuid::from_u128(n)),
        spec: RoutingRuleSpec {
            merchant_id: merchant.map(|m| MerchantId::new(m).unwrap()),
            priority,
            description: None,
            conditions,
            providers: providers(list),
            failover_on_decline: false,
        },
        created_at: t0(),
        updated_at: t0(),
        version: 1,
    }
}

fn brl() -> RuleMatch {
    RuleMatch {
        currencies: vec![Currency::BRL],
        ..RuleMatch::default()
    }
}

fn route_providers(choice: &RoutingChoice) -> Vec<ProviderName> {
    choice.routes.iter().map(|r| r.provider).collect()
}

use ProviderName::{Cascad, D24, Onspot, Tupay};

#[test]
fn an_empty_match_takes_everything_and_each_list_narrows_it() {
    let any = RuleMatch::default();
    assert!(any.matches(country("BR"), Currency::BRL, Decimal::ONE, None));
    let m = RuleMatch {
        countries: vec![country("BR"), country("MX")],
        currencies: vec![Currency::BRL],
        payout_methods: vec![PayoutMethodKind::BankTransfer],
        ..RuleMatch::default()
    };
    assert!(m.matches(
        country("BR"),
        Currency::BRL,
        Decimal::ONE,
        Some(PayoutMethodKind::BankTransfer)
    ));
    assert!(!m.matches(
        country("CL"),
        Currency::BRL,
        Decimal::ONE,
        Some(PayoutMethodKind::BankTransfer)
    ));
    assert!(!m.matches(
        country("BR"),
        Currency::USD,
        Decimal::ONE,
        Some(PayoutMethodKind::BankTransfer)
    ));
    assert!(!m.matches(country("BR"), Currency::BRL, Decimal::ONE, Some(PayoutMethodKind::Card)));
    assert!(
        !m.matches(country("BR"), Currency::BRL, Decimal::ONE, None),
        "a method-bound rule needs a method"
    );
}

proptest! {
    /// The amount bounds are inclusive and exact: compared against the same values in minor
    /// units (integers), whatever the scale the decimals carry.
    #[test]
    fn amount_bounds_are_inclusive_and_exact(
        amount in 0i64..1_000_000,
        min in proptest::option::of(0i64..1_000_000),
        max in proptest::option::of(0i64..1_000_000),
    ) {
        let cents = |v: i64| Decimal::new(v, 2);
        let m = RuleMatch {
            currencies: vec![Currency::BRL],
            amount_min: min.map(cents),
            amount_max: max.map(cents),
            ..RuleMatch::default()
        };
        let expected = min.is_none_or(|lo| amount >= lo) && max.is_none_or(|hi| amount <= hi);
        // The request's amount at the currency's scale, and the same value rescaled wider.
        let mut wide = cents(amount);
        wide.rescale(6);
        prop_assert_eq!(m.matches(country("BR"), Currency::BRL, cents(amount), None), expected);
        prop_assert_eq!(m.matches(country("BR"), Currency::BRL, wide, None), expected);
    }

    /// In every corridor the D24 family pays, a rule `[onspot, d24]` for that corridor sends a
    /// valid request to Onspot first and D24 next, whatever its amount; the same rule for
    /// another currency leaves it to the default order (D24 first).
    #[test]
    fn a_corridor_rule_orders_the_providers_of_every_corridor(
        corridor in 0usize..D24_COVERAGE.len(),
        units in 1u64..10_000_000,
    ) {
        let (code, currency) = D24_COVERAGE[corridor];
        let amount = Amount::from_minor_units(i128::from(units), currency).unwrap().to_string();
        let r = request(9, "clinic", body(code, &currency.to_string(), &amount, None));
        let here = RuleMatch { countries: vec![country(code)], currencies: vec![currency], ..RuleMatch::default() };
        let choice = RoutingChoice::choose(&Coverage::default(), &[rule(1, None, 0, here, &[Onspot, D24])], &r).unwrap();
        prop_assert_eq!(choice.source, RoutingSource::Rule);
        prop_assert_eq!(route_providers(&choice), vec![Onspot, D24]);

        let elsewhere = RuleMatch { currencies: vec![Currency::JPY], ..RuleMatch::default() };
        let choice = RoutingChoice::choose(&Coverage::default(), &[rule(1, None, 0, elsewhere, &[Onspot])], &r).unwrap();
        prop_assert_eq!(choice.source, RoutingSource::Default);
        prop_assert_eq!(route_providers(&choice), vec![D24, Onspot]);
    }

    /// Over one full cycle of draws, each provider comes first exactly as often as its weight.
    #[test]
    fn weights_split_the_first_place_exactly(weights in proptest::collection::vec(0u32..50, 1..=4)) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let all = [D24, Onspot, Tupay, Cascad];
        let spec = RoutingRuleSpec {
            merchant_id: None,
            priority: 0,
            description: None,
            conditions: RuleMatch::default(),
            providers: weights.iter().zip(all).map(|(w, p)| RuleProvider { provider: p, weight: Some(*w) }).collect(),
            failover_on_decline: false,
        };
        prop_assert!(spec.check().is_ok());
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut firsts = vec![0u64; weights.len()];
        for draw in 0..total {
            let order = spec.ordered_providers(draw);
            prop_assert_eq!(order.len(), weights.len());
            let i = all.iter().position(|p| *p == order[0]).unwrap();
            firsts[i] += 1;
            // The others keep their list order.
            let rest: Vec<ProviderName> = all[..weights.len()].iter().copied().filter(|p| *p != order[0]).collect();
            prop_assert_eq!(&order[1..], &rest[..]);
        }
        let expected: Vec<u64> = weights.iter().map(|w| u64::from(*w)).collect();
        prop_assert_eq!(firsts, expected);
    }
}

#[test]
fn the_merchants_own_rules_come_first_then_priority_then_age() {
    let r = br("100.00");
    let default_first = rule(1, None, 0, brl(), &[D24]);
    let merchant_low = rule(2, Some("clinic"), 5, brl(), &[Onspot, D24]);
    let merchant_high = rule(3, Some("clinic"), 1, brl(), &[D24, Onspot]);
    let other_merchant = rule(4, Some("other"), 0, brl(), &[Onspot]);
    let rules = [default_first, merchant_low.clone(), merchant_high, other_merchant];
    let choice = RoutingChoice::choose(&Coverage::default(), &rules, &r).unwrap();
    assert_eq!(
        choice.rule_id,
        Some(rules[2].id),
        "the merchant's rule with the lower priority"
    );
    assert_eq!(route_providers(&choice), vec![D24, Onspot]);

    let mut older = merchant_low;
    older.spec.priority = 1;
    older.created_at = t0() - time::Duration::hours(1);
    let rules = [rules[2].clone(), older.clone()];
    let choice = RoutingChoice::choose(&Coverage::default(), &rules, &r).unwrap();
    assert_eq!(choice.rule_id, Some(older.id), "same priority: the older rule");
}

#[test]
fn a_rule_whose_providers_cannot_pay_the_request_gives_way_to_the_next() {
    let r = br("100.00");
    // Tupay pays Peru only: nothing of this rule can pay a BR request.
    let rules = [
        rule(1, None, 0, brl(), &[Tupay]),
        rule(2, None, 1, brl(), &[Tupay, Onspot]),
    ];
    let choice = RoutingChoice::choose(&Coverage::default(), &rules, &r).unwrap();
    assert_eq!(choice.rule_id, Some(rules[1].id));
    assert_eq!(
        route_providers(&choice),
        vec![Onspot],
        "the provider that cannot pay is dropped"
    );
}

#[test]
fn no_rule_gives_the_default_order_with_the_provider_validated_at_creation_first() {
    let choice = RoutingChoice::choose(&Coverage::default(), &[], &br("100.00")).unwrap();
    assert_eq!(choice.source, RoutingSource::Default);
    assert_eq!(choice.rule_id, None);
    assert_eq!(route_providers(&choice), vec![D24, Onspot]);
}

#[test]
fn a_pinned_provider_is_not_routed() {
    let pinned = request(7, "clinic", body("BR", "BRL", "100.00", Some("onspot")));
    assert!(pinned.provider_pinned());
    let rules = [rule(1, None, 0, brl(), &[D24])];
    assert_eq!(RoutingChoice::choose(&Coverage::default(), &rules, &pinned), None);
}

#[test]
fn a_rule_is_checked_field_by_field() {
    let mut spec = rule(1, None, 0, RuleMatch::default(), &[D24, D24]).spec;
    spec.conditions.amount_min = Some(Decimal::new(5, 0));
    spec.conditions.amount_max = Some(Decimal::new(1, 0));
    spec.description = Some("x".repeat(MAX_DESCRIPTION + 1));
    let errors = spec.check().unwrap_err();
    assert_eq!(errors.for_field("providers[1].provider")[0].code, "duplicate");
    assert_eq!(errors.for_field("match.amount_min")[0].code, "currency_required");
    assert_eq!(errors.for_field("description")[0].code, "too_long");
    assert!(
        errors.for_field("match.amount_max").iter().any(|e| e.code == "invalid"),
        "{errors}"
    );

    let mut spec = rule(1, None, 0, brl(), &[D24, Onspot]).spec;
    spec.conditions.amount_max = Some(Decimal::new(1001, 3));
    spec.providers[0].weight = Some(1);
    let errors = spec.check().unwrap_err();
    assert_eq!(
        errors.for_field("match.amount_max")[0].code,
        "invalid",
        "BRL has 2 decimals"
    );
    assert_eq!(
        errors.for_field("providers")[0].code,
        "invalid",
        "weights on all or none"
    );

    let mut spec = rule(1, None, 0, brl(), &[]).spec;
    assert_eq!(spec.check().unwrap_err().for_field("providers")[0].code, "required");
    spec.providers = providers(&[D24]);
    spec.providers[0].weight = Some(MAX_WEIGHT + 1);
    assert_eq!(
        spec.check().unwrap_err().for_field("providers[0].weight")[0].code,
        "invalid"
    );
}

#[test]
fn a_rule_round_trips_through_json_with_match_as_its_field() {
    let mut r = rule(1, Some("clinic"), 3, brl(), &[Onspot, D24]);
    r.spec.conditions.amount_min = Some(Decimal::new(10000, 2));
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains(r#""match":{"#), "{text}");
    assert!(text.contains(r#""amount_min":"100.00""#), "{text}");
    assert_eq!(serde_json::from_str::<RoutingRule>(&text).unwrap(), r);
}
