use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::*;
use crate::tests::sample_request_in;

fn fig(s: &str) -> Figure {
    Figure(s.parse().unwrap())
}

fn policy(rules: Vec<PolicyRule>) -> ApprovalPolicy {
    ApprovalPolicy {
        rules,
        ..ApprovalPolicy::limit_only(PolicyScope::Default, Decimal::ZERO)
    }
}

#[test]
fn limits_are_per_currency_and_a_currency_without_one_fires() {
    let p = policy(vec![PolicyRule::AmountLimit {
        limits: BTreeMap::from([("USD".parse().unwrap(), fig("500"))]),
        other_currencies: None,
        approvers: Approvers::ONE,
    }]);
    let usd = sample_request_in("USD", "400");
    assert_eq!(p.decide(&usd, &ReviewFacts::default()).required_approvals, 0);
    let big = sample_request_in("USD", "500.01");
    let d = p.decide(&big, &ReviewFacts::default());
    assert_eq!(d.required_approvals, 1);
    assert_eq!(d.fired[0].rule, "amount_limit");
    let clp = sample_request_in("CLP", "1");
    let d = p.decide(&clp, &ReviewFacts::default());
    assert_eq!(d.fired[0].detail, "no limit is set for CLP");
}

#[test]
fn a_reference_limit_converts_at_the_policy_rate() {
    let p = policy(vec![PolicyRule::ReferenceLimit {
        currency: "USD".parse().unwrap(),
        limit: fig("1000"),
        rates: BTreeMap::from([("CLP".parse().unwrap(), fig("0.0065"))]),
        approvers: Approvers::TWO,
    }]);
    // 150,000 CLP is 975 USD: under.
    let under = p.decide(&sample_request_in("CLP", "150000"), &ReviewFacts::default());
    assert_eq!(under.required_approvals, 0);
    // 160,000 CLP is 1,040 USD: over, two approvers.
    let d = p.decide(&sample_request_in("CLP", "160000"), &ReviewFacts::default());
    assert_eq!(d.required_approvals, 2);
    // USD itself needs no rate.
    assert_eq!(
        p.decide(&sample_request_in("USD", "999"), &ReviewFacts::default())
            .required_approvals,
        0
    );
    // No rate for MXN: fires.
    let d = p.decide(&sample_request_in("MXN", "1"), &ReviewFacts::default());
    assert_eq!(d.fired[0].detail, "no rate from MXN to USD");
}

#[test]
fn the_strictest_fired_rule_sets_the_approvers() {
    let p = policy(vec![
        PolicyRule::InvoiceCount {
            max: 0,
            approvers: Approvers::ONE,
        },
        PolicyRule::NewBeneficiary {
            approvers: Approvers::TWO,
        },
        PolicyRule::DailyVelocity {
            max_count: Some(3),
            max_amount: BTreeMap::from([("USD".parse().unwrap(), fig("1000"))]),
            approvers: Approvers::ONE,
        },
    ]);
    let r = sample_request_in("USD", "10");
    let known = ReviewFacts {
        usage: Some(DayUsage {
            count: 3,
            amount: Decimal::from(1000),
        }),
        beneficiary_known: Some(true),
    };
    let d = p.decide(&r, &known);
    assert_eq!(d.fired.len(), 1, "{d:?}");
    assert_eq!(d.required_approvals, 1);
    let new_and_busy = ReviewFacts {
        usage: Some(DayUsage {
            count: 4,
            amount: Decimal::from(10),
        }),
        beneficiary_known: Some(false),
    };
    let d = p.decide(&r, &new_and_busy);
    assert_eq!(
        d.fired.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
        ["invoice_count", "new_beneficiary", "daily_velocity"]
    );
    assert_eq!(d.required_approvals, 2);
    // Facts not known never pass a rule.
    let d = p.decide(&r, &ReviewFacts::default());
    assert_eq!(d.fired.len(), 3);
}

#[test]
fn policies_are_checked_and_read_from_json() {
    let json = r#"{"kind":"amount_limit","limits":{"USD":"100"},"approvers":3}"#;
    assert!(serde_json::from_str::<PolicyRule>(json).is_err());
    let json = r#"{"kind":"amount_limit","limits":{"USD":"-1"},"approvers":1}"#;
    let rule: PolicyRule = serde_json::from_str(json).unwrap();
    assert!(policy(vec![rule]).validate().is_err());
    let json = r#"{"kind":"daily_velocity","approvers":1}"#;
    let rule: PolicyRule = serde_json::from_str(json).unwrap();
    assert!(policy(vec![rule]).validate().is_err());
    let json = r#"{"kind":"reference_limit","currency":"USD","limit":"10","rates":{"EUR":"0"},"approvers":1}"#;
    let rule: PolicyRule = serde_json::from_str(json).unwrap();
    assert!(policy(vec![rule]).validate().is_err());
    let many = vec![
        PolicyRule::NewBeneficiary {
            approvers: Approvers::ONE
        };
        MAX_RULES + 1
    ];
    assert!(policy(many).validate().is_err());
    let json = r#"{"kind":"amount_limit","limits":{"USD":"100.50"},"approvers":2}"#;
    let rule: PolicyRule = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&rule).unwrap(), json);
}
