//! Failover between providers: only when the provider provably holds nothing, never twice.

#![allow(clippy::unwrap_used)]

use cashout_core::cashout::FailoverReason;
use cashout_core::event::EventType;
use cashout_core::health::{CircuitState, ProviderHealth};
use cashout_core::ports::RoutingStore;
use cashout_core::provider::ProviderName;

use super::support::*;

/// A BR/BRL request without a pinned provider: routed at approval to D24, then Onspot.
fn unpinned(amount: &str) -> serde_json::Value {
    let mut b = body(amount);
    b.as_object_mut().unwrap().remove("provider");
    b
}

async fn create_unpinned(h: &Harness, key: &str) -> CashoutRequestId {
    h.create(key, &unpinned("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn failovers(h: &Harness, id: CashoutRequestId) -> usize {
    h.app
        .store
        .list_events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type() == EventType::ProviderFailover)
        .count()
}

#[tokio::test]
async fn a_configuration_refusal_moves_the_request_to_the_next_provider_at_once() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured, OnCreate::Accept]);
    let id = create_unpinned(&h, "k1").await;
    let approved = request(&h, id).await;
    let routes: Vec<ProviderName> = approved.routing().unwrap().routes.iter().map(|r| r.provider).collect();
    assert_eq!(routes, [ProviderName::D24, ProviderName::Onspot], "the default order");
    h.run_due().await;

    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PendingPayment);
    assert_eq!(r.provider(), ProviderName::Onspot);
    let attempts = r.provider_attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].provider, ProviderName::D24);
    assert_eq!(attempts[0].reference.to_string(), id.to_string());
    assert!(matches!(attempts[0].failover, Some(FailoverReason::Refused { .. })));
    assert_eq!(
        attempts[1].reference.to_string(),
        format!("{id}.2"),
        "its own reference"
    );
    assert_eq!(h.app.provider.creates(), 2);
    assert_eq!(h.app.provider.payouts(), 1, "one payout, at Onspot");
    assert_eq!(failovers(&h, id).await, 1);
}

#[tokio::test]
async fn a_pinned_provider_never_fails_over() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured]);
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PaymentProcessorError);
    assert_eq!(r.provider(), ProviderName::D24);
    assert_eq!(r.untried_routes().count(), 0);
    assert_eq!(failovers(&h, id).await, 0);
}

#[tokio::test]
async fn an_open_circuit_sends_new_requests_to_the_next_provider_without_a_call() {
    let h = Harness::new().await;
    let mut open = ProviderHealth::new(ProviderName::D24, h.now());
    open.circuit = CircuitState::Open {
        until: h.now() + time::Duration::minutes(1),
    };
    open.version = 1;
    h.app.store.put_provider_health(&open, 0).await.unwrap();

    let id = create_unpinned(&h, "k1").await;
    h.run_due().await;
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PendingPayment);
    assert_eq!(r.provider(), ProviderName::Onspot);
    assert_eq!(r.provider_attempts()[0].failover, Some(FailoverReason::CircuitOpen));
    assert_eq!(h.app.provider.creates(), 1, "no create at D24");
}

#[tokio::test]
async fn a_create_with_an_unknown_outcome_never_fails_over() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 2).await;
    // The create reaches D24, its answer is lost, and every lookup since fails.
    h.app.provider.script(&[OnCreate::LoseAnswerInOutage]);
    let id = create_unpinned(&h, "k1").await;
    for _ in 0..6 {
        h.run_due().await;
        h.clock.advance(time::Duration::minutes(10));
    }
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::Approved, "it waits");
    assert_eq!(r.provider(), ProviderName::D24, "never sent elsewhere");
    assert_eq!(h.app.provider.creates(), 1);
    assert!(r.needs_attention());
    assert_eq!(failovers(&h, id).await, 0);

    // D24 answers again: the payout made by the lost create is found and adopted.
    h.app.provider.fail_lookups(0);
    h.clock.advance(time::Duration::minutes(10));
    h.run_due().await;
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PendingPayment);
    assert_eq!(r.provider(), ProviderName::D24);
    assert_eq!(h.app.provider.creates(), 1);
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn a_payout_reported_by_a_provider_the_request_left_is_flagged_not_adopted() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured, OnCreate::Accept]);
    let id = create_unpinned(&h, "k1").await;
    h.run_due().await;
    assert_eq!(request(&h, id).await.provider(), ProviderName::Onspot);

    // D24 misbehaves: a payout for the first attempt's reference shows up there.
    let late = cashout_core::provider::ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new("LATE1").unwrap(),
        reference: Some(PayoutReference::first(id)),
        state: cashout_core::provider::PayoutState::Pending,
        provider_status: "PENDING".into(),
        updated_at: None,
    };
    h.app.observe(id, Some(&late), None).await.unwrap();
    let r = request(&h, id).await;
    assert_eq!(r.provider(), ProviderName::Onspot, "not adopted");
    assert_ne!(r.provider_reference().map(|p| p.as_str()), Some("LATE1"));
    assert!(r.attention().iter().any(|a| matches!(
        a.reason,
        cashout_core::cashout::AttentionReason::PayoutAtLeftProvider {
            provider: ProviderName::D24,
            ..
        }
    )));
}

#[tokio::test]
async fn failures_open_the_circuit_and_the_health_view_shows_it() {
    let h = Harness::with(|c| c.breaker.consecutive_failures = 2).await;
    h.app
        .provider
        .script(&[OnCreate::Unavailable, OnCreate::Unavailable, OnCreate::Accept]);
    let id = create_unpinned(&h, "k1").await;
    // Two failed creates at D24 open its circuit; the next claim leaves for Onspot.
    for _ in 0..3 {
        h.run_due().await;
        h.clock.advance(time::Duration::seconds(10));
    }
    let health = h.app.providers_health(&Principal::admin("ops")).await.unwrap();
    let d24 = health.iter().find(|x| x.provider == ProviderName::D24).unwrap();
    assert!(matches!(d24.circuit, CircuitState::Open { .. }), "{d24:?}");
    assert_eq!(d24.times_opened, 1);
    let r = request(&h, id).await;
    assert_eq!(r.provider(), ProviderName::Onspot);
    assert_eq!(r.status(), CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 3, "two refused at D24, one at Onspot");
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn a_lost_create_answer_with_no_payout_found_yet_delays_failover_until_it_could_have_landed() {
    let h = Harness::with(|c| {
        c.breaker.consecutive_failures = 1;
        c.breaker.open_for = std::time::Duration::from_secs(3600);
        c.failover_settle = std::time::Duration::from_secs(120);
    })
    .await;
    // The create's answer is lost (its circuit opens) and the lookup right after it finds
    // nothing, yet.
    h.app
        .provider
        .script(&[OnCreate::LoseAnswerNothingMade, OnCreate::Accept]);
    let id = create_unpinned(&h, "k1").await;
    for _ in 0..4 {
        h.run_due().await;
        h.clock.advance(time::Duration::seconds(20));
    }
    let r = request(&h, id).await;
    assert_eq!(
        r.provider(),
        ProviderName::D24,
        "not before the create could have landed"
    );
    assert_eq!(r.status(), CashoutStatus::Approved);
    assert!(r.dispatch().unwrap().unknown_create_at.is_some());

    // Once it could have landed, and a lookup still finds nothing: the next provider.
    for _ in 0..6 {
        h.clock.advance(time::Duration::seconds(30));
        h.run_due().await;
    }
    let r = request(&h, id).await;
    assert_eq!(r.provider(), ProviderName::Onspot);
    assert_eq!(r.status(), CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 2, "one at each provider");
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn a_late_payout_at_a_provider_the_request_left_is_found_by_a_later_check_and_flagged() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured, OnCreate::Accept]);
    let id = create_unpinned(&h, "k1").await;
    h.run_due().await;
    assert_eq!(request(&h, id).await.provider(), ProviderName::Onspot);
    // D24 processes something for the first attempt's reference after all.
    h.app.provider.insert(id, cashout_core::provider::PayoutState::Pending);
    for _ in 0..8 {
        h.clock.advance(time::Duration::minutes(1));
        h.run_due().await;
    }
    let r = request(&h, id).await;
    assert_eq!(r.provider(), ProviderName::Onspot, "never adopted");
    assert!(r.provider_attempts()[0].checked_at.is_some(), "looked up once more");
    assert!(r.attention().iter().any(|a| matches!(
        a.reason,
        cashout_core::cashout::AttentionReason::PayoutAtLeftProvider { .. }
    )));
}

#[tokio::test]
async fn a_pinned_request_waits_out_its_providers_open_circuit_without_spending_attempts() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 3).await;
    let mut open = ProviderHealth::new(ProviderName::D24, h.now());
    open.circuit = CircuitState::Open {
        until: h.now() + time::Duration::minutes(30),
    };
    open.version = 1;
    h.app.store.put_provider_health(&open, 0).await.unwrap();
    let id = create_id(&h, "k1", "10.00").await;
    for _ in 0..10 {
        let outcome = h.app.dispatch(id).await.unwrap();
        assert!(matches!(outcome, TaskOutcome::RetryAfter(_)), "{outcome:?}");
        h.clock.advance(time::Duration::minutes(2));
    }
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::Approved);
    assert!(r.dispatch().is_none(), "never claimed while it could do nothing");
    assert_eq!(h.app.provider.creates(), 0);
    // The circuit half-opens: this dispatch is the probe, and pays.
    h.clock.advance(time::Duration::minutes(15));
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
}

#[tokio::test]
async fn the_rule_that_chose_the_providers_is_on_the_request_and_its_events() {
    use cashout_core::routing::{RoutingRuleSpec, RuleMatch, RuleProvider};
    let h = Harness::new().await;
    let spec = RoutingRuleSpec {
        merchant_id: None,
        priority: 0,
        description: Some("BR: Onspot first".into()),
        conditions: RuleMatch {
            countries: vec!["BR".parse().unwrap()],
            ..RuleMatch::default()
        },
        providers: [ProviderName::Onspot, ProviderName::D24]
            .into_iter()
            .map(|provider| RuleProvider { provider, weight: None })
            .collect(),
        failover_on_decline: false,
    };
    assert!(matches!(
        h.app.create_routing_rule(&merchant("m1"), spec.clone()).await,
        Err(AppError::Forbidden(_))
    ));
    let rule = h.app.create_routing_rule(&Principal::admin("ops"), spec).await.unwrap();
    let id = create_unpinned(&h, "k1").await;
    h.run_due().await;
    let r = request(&h, id).await;
    assert_eq!(r.provider(), ProviderName::Onspot);
    assert_eq!(r.routing().unwrap().rule_id, Some(rule.id));
    let events = h.app.store.list_events(id).await.unwrap();
    let approved: serde_json::Value = serde_json::from_str(&events[1].webhook_body()).unwrap();
    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["provider"], "onspot");
    assert_eq!(approved["routing_rule_id"], rule.id.to_string());
    // A pinned request ignores the rule.
    let pinned = create_id(&h, "k2", "10.00").await;
    assert_eq!(request(&h, pinned).await.provider(), ProviderName::D24);
}
