//! Contract tests of the D24-family adapter against the simulator: two independent readings
//! of the D24 docs must agree.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{PayoutProvider, ProviderErrorKind, ProviderNotification};
use cashout_core::provider::{PayoutState, ProviderName};
use cashout_provider_sim::FaultConfig;
use cashout_providers::{HoldAction, Providers, ProvidersConfig};
use common::{Env, order};

const D24: ProviderName = ProviderName::D24;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn a_default_payout_goes_pending_delivered_completed_within_two_seconds() {
    let env = Env::start().await;
    let o = order(D24, "0001234567", &env.receiver.url);
    let created = env.providers.create_payout(&o).await.unwrap();
    assert_eq!(created.state, PayoutState::Pending);
    assert_eq!(created.provider_status, "PENDING");
    assert!(created.payout_id.as_str().bytes().all(|b| b.is_ascii_digit()));
    let id = created.payout_id.clone();
    let status = || env.providers.payout_status(D24, &id, o.reference);
    assert_eq!(status().await.unwrap().provider_status, "PENDING");
    env.advance(secs(1));
    let delivered = status().await.unwrap();
    assert_eq!(
        (delivered.state, delivered.provider_status.as_str()),
        (PayoutState::Pending, "DELIVERED")
    );
    env.advance(secs(1));
    assert_eq!(
        status().await.unwrap().state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
    let ledger = env.sim.ledger();
    let r = ledger.reference(common::sim(D24), &o.reference.to_string()).unwrap();
    assert_eq!((r.create_attempts, r.payouts), (1, 1));
    assert_eq!(ledger.payouts[0].account.as_deref(), Some("******4567"));
}

#[tokio::test]
async fn an_account_ending_in_13_is_rejected_by_the_bank_with_800() {
    let env = Env::start().await;
    let o = order(D24, "000113", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(secs(2));
    let p = env
        .providers
        .payout_status(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        p.state,
        PayoutState::Rejected {
            code: Some("800".into()),
            reason: Some("ERROR_ACCOUNT_INCORRECT".into())
        }
    );
}

#[tokio::test]
async fn an_account_ending_in_26_is_reversed_with_826_after_completion() {
    let env = Env::start().await;
    let o = order(ProviderName::Onspot, "000126", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(secs(2));
    let id = p.payout_id;
    let paid = env
        .providers
        .payout_status(ProviderName::Onspot, &id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        paid.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
    env.advance(secs(10));
    let reversed = env
        .providers
        .payout_status(ProviderName::Onspot, &id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        reversed.state,
        PayoutState::Rejected {
            code: Some("826".into()),
            reason: Some("WITHDRAWAL_REVERSED".into())
        }
    );
}

#[tokio::test]
async fn an_account_ending_in_30_is_declined_at_create_and_nothing_exists() {
    let env = Env::start().await;
    let o = order(D24, "000130", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Declined);
    assert_eq!(e.code.as_deref(), Some("300"));
    assert_eq!(env.providers.find_payout(D24, o.reference).await.unwrap(), None);
    let r = env.sim.ledger();
    let r = r.reference(common::sim(D24), &o.reference.to_string()).unwrap();
    assert_eq!((r.create_attempts, r.payouts), (1, 0));
}

#[tokio::test]
async fn an_account_ending_in_77_stays_with_a_slow_bank_for_ten_minutes() {
    let env = Env::start().await;
    let o = order(D24, "000177", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(secs(300));
    let s = env
        .providers
        .payout_status(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(s.provider_status, "DELIVERED");
    env.advance(secs(300));
    let s = env
        .providers
        .payout_status(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        s.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
}

#[tokio::test]
async fn an_account_ending_in_55_is_on_hold_until_released_and_hold_rules_hold() {
    let env = Env::start().await;
    let o = order(D24, "000155", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let id = p.payout_id;
    env.advance(secs(60));
    let held = env.providers.payout_status(D24, &id, o.reference).await.unwrap();
    assert_eq!(
        (held.state, held.provider_status.as_str()),
        (PayoutState::Pending, "ON_HOLD")
    );
    // Asking for the state it is in succeeds (a retry after a lost answer looks like this).
    let again = env
        .providers
        .set_hold(D24, &id, o.reference, HoldAction::Hold)
        .await
        .unwrap();
    assert_eq!(again.provider_status, "ON_HOLD");
    let released = env
        .providers
        .set_hold(D24, &id, o.reference, HoldAction::Release)
        .await
        .unwrap();
    assert_eq!(released.provider_status, "PENDING");
    // Hold again while PENDING is allowed; release, then the bank takes it.
    env.providers
        .set_hold(D24, &id, o.reference, HoldAction::Hold)
        .await
        .unwrap();
    env.providers
        .set_hold(D24, &id, o.reference, HoldAction::Release)
        .await
        .unwrap();
    env.advance(secs(1));
    let delivered = env.providers.payout_status(D24, &id, o.reference).await.unwrap();
    assert_eq!(delivered.provider_status, "DELIVERED");
    // Hold only from PENDING: D24 refuses with 510.
    let late = env
        .providers
        .set_hold(D24, &id, o.reference, HoldAction::Hold)
        .await
        .unwrap_err();
    assert_eq!(
        (late.kind, late.code.as_deref()),
        (ProviderErrorKind::InvalidState, Some("510"))
    );
    env.advance(secs(1));
    let done = env.providers.payout_status(D24, &id, o.reference).await.unwrap();
    assert_eq!(
        done.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
}

#[tokio::test]
async fn tupay_pays_in_peru_has_no_on_hold_and_checks_its_fields() {
    let env = Env::start().await;
    let tupay = ProviderName::Tupay;
    let o = order(tupay, "00212345678901234555", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let e = env
        .providers
        .set_hold(tupay, &p.payout_id, o.reference, HoldAction::Hold)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::InvalidState);
    env.advance(secs(2));
    let s = env
        .providers
        .payout_status(tupay, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        s.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        },
        "…55 is no hold on Tupay"
    );
    // A DNI has 8 characters: the simulator declines a 9-character one with 300.
    let mut bad = order(tupay, "0021234567", &env.receiver.url);
    bad.beneficiary.document_id = Some("123456789".into());
    let e = env.providers.create_payout(&bad).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ProviderErrorKind::Declined, Some("300")));
    // Brazil is not Tupay's: 518 country not available is our configuration.
    let mut wrong = order(tupay, "0021234567", &env.receiver.url);
    wrong.country = "BR".parse().unwrap();
    let e = env.providers.create_payout(&wrong).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ProviderErrorKind::Configuration, Some("518"))
    );
}

#[tokio::test]
async fn a_second_create_with_the_same_reference_adopts_the_existing_cashout() {
    let env = Env::start().await;
    let o = order(D24, "0001234567", &env.receiver.url);
    let first = env.providers.create_payout(&o).await.unwrap();
    let second = env.providers.create_payout(&o).await.unwrap();
    // The status endpoint does not return the cashout_id: the adopted payout is known by
    // our reference, and its status is read by external_id.
    assert_eq!(second.payout_id.as_str(), format!("ext:{}", o.reference));
    assert_eq!(second.reference, Some(o.reference));
    assert_eq!(second.state, first.state);
    env.advance(secs(2));
    let s = env
        .providers
        .payout_status(D24, &second.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        s.state,
        PayoutState::Paid {
            paid_at: None,
            amount: None
        }
    );
    let ledger = env.sim.ledger();
    let r = ledger.reference(common::sim(D24), &o.reference.to_string()).unwrap();
    assert_eq!((r.create_attempts, r.payouts), (2, 1));
}

#[tokio::test]
async fn a_lost_create_answer_is_ambiguous_and_the_lookup_finds_the_cashout() {
    for fault in [
        FaultConfig {
            error_after: 100,
            ..FaultConfig::default()
        },
        FaultConfig {
            drop: 100,
            ..FaultConfig::default()
        },
    ] {
        let env = Env::start().await;
        env.sim.set_faults(common::sim(D24), fault.clone());
        let o = order(D24, "0001234567", &env.receiver.url);
        let e = env.providers.create_payout(&o).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Ambiguous, "{fault:?}: {e}");
        env.sim.set_faults(common::sim(D24), FaultConfig::default());
        let found = env.providers.find_payout(D24, o.reference).await.unwrap();
        assert_eq!(found.unwrap().state, PayoutState::Pending);
        assert_eq!(env.sim.ledger().payouts.len(), 1);
    }
}

#[tokio::test]
async fn a_create_timeout_is_ambiguous() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(D24),
        FaultConfig {
            timeout: 100,
            hang_ms: 3_000,
            ..FaultConfig::default()
        },
    );
    let o = order(D24, "0001234567", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Ambiguous, "{e}");
}

#[tokio::test]
async fn a_5xx_before_creating_is_ambiguous_and_the_lookup_finds_nothing() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(D24),
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(D24, "0001234567", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Ambiguous);
    // Reads are retried, then reported retryable.
    let e = env.providers.find_payout(D24, o.reference).await.unwrap_err();
    assert!(matches!(e.kind, ProviderErrorKind::Retryable { .. }), "{e}");
    env.sim.set_faults(common::sim(D24), FaultConfig::default());
    assert_eq!(env.providers.find_payout(D24, o.reference).await.unwrap(), None);
    let created = env.providers.create_payout(&o).await.unwrap();
    assert_eq!(created.state, PayoutState::Pending);
}

#[tokio::test]
async fn throttling_is_retryable_with_the_providers_delay() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(D24),
        FaultConfig {
            rate_limit: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(D24, "0001234567", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(
        e.kind,
        ProviderErrorKind::Retryable {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert!(env.sim.ledger().payouts.is_empty());
}

#[tokio::test]
async fn wrong_credentials_and_signatures_are_configuration_errors_not_rejections() {
    let env = Env::start().await;
    let url = env.sim.url();
    let o = order(D24, "0001234567", &env.receiver.url);
    let with = |f: &dyn Fn(&mut cashout_providers::D24Config)| {
        let mut c = ProvidersConfig::for_simulator(&url);
        c.http = common::test_http();
        f(c.d24.as_mut().unwrap());
        Providers::new(c).unwrap()
    };
    let bad_pass = with(&|c| c.pass = "wrong".to_owned().into());
    let e = bad_pass.create_payout(&o).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ProviderErrorKind::Configuration, Some("401"))
    );
    let bad_secret = with(&|c| c.api_secret = cashout_core::signing::ProviderSecret::new("nope"));
    let e = bad_secret.create_payout(&o).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ProviderErrorKind::Configuration, Some("302"))
    );
    let e = bad_secret.find_payout(D24, o.reference).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
    let bad_url = with(&|c| c.base_url = format!("{url}/nowhere"));
    let e = bad_url.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
    assert!(env.sim.ledger().payouts.is_empty());
}

#[tokio::test]
async fn an_unreachable_provider_means_the_create_was_not_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = ProvidersConfig::for_simulator(&format!("http://{addr}"));
    c.http = common::test_http();
    let providers = Providers::new(c).unwrap();
    let e = providers
        .create_payout(&order(D24, "0001234567", "http://127.0.0.1:1/hook"))
        .await
        .unwrap_err();
    assert!(matches!(e.kind, ProviderErrorKind::Retryable { .. }), "{e}");
}

#[tokio::test]
async fn cancel_works_only_while_pending_and_is_idempotent() {
    let env = Env::start().await;
    let o = order(D24, "0001234567", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let cancelled = env
        .providers
        .cancel_payout(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(cancelled.state, PayoutState::Cancelled);
    let again = env
        .providers
        .cancel_payout(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(again.state, PayoutState::Cancelled);
    env.advance(secs(5));
    let s = env
        .providers
        .payout_status(D24, &p.payout_id, o.reference)
        .await
        .unwrap();
    assert_eq!(
        s.state,
        PayoutState::Cancelled,
        "a cancelled cashout is never delivered"
    );

    let o2 = order(D24, "0001234567", &env.receiver.url);
    let p2 = env.providers.create_payout(&o2).await.unwrap();
    env.advance(secs(1));
    let e = env
        .providers
        .cancel_payout(D24, &p2.payout_id, o2.reference)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::InvalidState);
    assert!(e.message.contains("DELIVERED"), "{}", e.message);

    let unknown_id = ProviderPayoutId::new(format!("ext:{}", o2.reference)).unwrap();
    let e = env
        .providers
        .cancel_payout(D24, &unknown_id, o2.reference)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::InvalidState);
}

/// Seed 001 marks both `cashout_id` and `external_id` required on a status request: sent
/// together, an answer confirms that the id belongs to our reference, and another reference's
/// id is not found. This is how an id named by an (unauthenticated) notification is checked
/// before it replaces an `ext:` placeholder.
#[tokio::test]
async fn a_status_check_sends_both_ids_and_another_references_id_is_not_found() {
    let env = Env::start().await;
    let mine = order(D24, "0001234567", &env.receiver.url);
    let theirs = order(D24, "0001234567", &env.receiver.url);
    let p = env.providers.create_payout(&mine).await.unwrap();
    let other = env.providers.create_payout(&theirs).await.unwrap();
    let ok = env
        .providers
        .payout_status(D24, &p.payout_id, mine.reference)
        .await
        .unwrap();
    assert_eq!((ok.payout_id, ok.state), (p.payout_id.clone(), PayoutState::Pending));
    let e = env
        .providers
        .payout_status(D24, &other.payout_id, mine.reference)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn unknown_cashouts_are_not_found() {
    let env = Env::start().await;
    let reference = common::new_reference();
    assert_eq!(env.providers.find_payout(D24, reference).await.unwrap(), None);
    let e = env
        .providers
        .payout_status(D24, &ProviderPayoutId::new("999").unwrap(), reference)
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ProviderErrorKind::NotFound, Some("509")));
}

#[tokio::test]
async fn notifications_are_form_posts_without_a_status_retried_until_accepted() {
    let env = Env::start().await;
    env.receiver.fail_first(1);
    let o = order(D24, "0001234567", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(secs(1));
    // The first attempt (DELIVERED) fails; the retry comes a minute later. Wait until the
    // simulator has recorded the refusal and scheduled the retry: the receiver's count comes
    // first, and advancing the clock before the simulator reads the refusal would put the retry
    // a minute past the advanced clock.
    common::wait_until(|| {
        env.sim
            .ledger()
            .deliveries
            .iter()
            .any(|d| d.attempts >= 1 && d.next_attempt_at.is_some())
    })
    .await;
    assert!(env.receiver.received().is_empty());
    env.advance(secs(60));
    let got = env.receiver.wait_for(1).await;
    let n = &got[0];
    assert_eq!(n.header("content-type"), Some("application/x-www-form-urlencoded"));
    let body = String::from_utf8(n.body.clone()).unwrap();
    assert!(!body.contains("status="), "no status on purpose: {body}");
    assert!(body.contains("control="));
    let parsed = env.providers.parse_notification(D24, n).unwrap();
    assert_eq!(
        parsed,
        ProviderNotification::Hint {
            reference: Some(o.reference),
            payout_id: Some(p.payout_id.clone()),
        }
    );
    env.advance(secs(1));
    env.receiver.wait_for(2).await;
    // The receiver answers before the simulator records the outcome: wait for the ledger to settle.
    common::wait_until(|| {
        let ledger = env.sim.ledger();
        ledger.deliveries.len() == 2 && ledger.deliveries.iter().all(|d| d.state == "delivered")
    })
    .await;
}

#[tokio::test]
async fn a_create_without_a_notification_url_is_refused_before_sending() {
    let env = Env::start().await;
    let mut o = order(D24, "0001234567", &env.receiver.url);
    o.notification_url = None;
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
    assert!(env.sim.ledger().references.is_empty());
}

#[tokio::test]
async fn an_unconfigured_provider_is_a_configuration_error() {
    let providers = Providers::new(ProvidersConfig::default()).unwrap();
    let e = providers.find_payout(D24, common::new_reference()).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Configuration);
}

#[tokio::test]
async fn the_simulator_defaults_match_the_adapter_defaults() {
    use cashout_provider_sim::defaults as sim;
    use cashout_providers::simulator as ours;
    assert_eq!(ours::D24, (sim::D24_LOGIN, sim::D24_PASS, sim::D24_SECRET));
    assert_eq!(ours::ONSPOT, (sim::ONSPOT_LOGIN, sim::ONSPOT_PASS, sim::ONSPOT_SECRET));
    assert_eq!(ours::TUPAY, (sim::TUPAY_LOGIN, sim::TUPAY_PASS, sim::TUPAY_SECRET));
    assert_eq!(
        ours::CASCAD,
        (
            sim::CASCAD_ACCOUNT,
            sim::CASCAD_API_KEY,
            sim::CASCAD_SECRET,
            sim::CASCAD_PUBLIC_KEY
        )
    );
}

#[tokio::test]
async fn payout_methods_follow_the_profile_rules() {
    let env = Env::start().await;
    let q = |country: &str, currency| cashout_core::ports::PayoutMethodQuery {
        country: country.parse().unwrap(),
        currency,
        amount: None,
    };
    use cashout_core::money::Currency;
    let m = env
        .providers
        .payout_methods(ProviderName::Tupay, &q("PE", Currency::PEN))
        .await
        .unwrap();
    assert!(
        m[0].fields
            .iter()
            .any(|f| f.key == "beneficiary.account_type" && f.required)
    );
    let none = env
        .providers
        .payout_methods(ProviderName::Tupay, &q("BR", Currency::BRL))
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// After a failover the request's reference carries its attempt (`<id>.2`): D24 and Onspot take
/// it as `external_id`, a lookup by it finds that payout, and a lookup by the first attempt's
/// reference finds nothing, even at the same provider.
#[tokio::test]
async fn an_attempt_reference_is_its_own_external_id() {
    let env = Env::start().await;
    for provider in [ProviderName::D24, ProviderName::Onspot] {
        let mut o = order(provider, "1234567890", &env.receiver.url);
        let first = o.reference;
        o.reference = PayoutReference::new(first.request_id(), 2).unwrap();
        env.providers.create_payout(&o).await.unwrap();
        // A status by external_id names no cashout_id: the payout is known by our reference.
        let found = env.providers.find_payout(provider, o.reference).await.unwrap().unwrap();
        assert_eq!(
            found.payout_id,
            ProviderPayoutId::by_reference(o.reference),
            "{provider}"
        );
        assert_eq!(found.reference, Some(o.reference), "{provider}");
        assert_eq!(
            env.providers.find_payout(provider, first).await.unwrap(),
            None,
            "{provider}"
        );
    }
}

/// A call to the simulator's control endpoint; the status and the answer.
async fn control(env: &Env, method: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/_sim{path}", env.sim.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn the_record_sees_a_status_changed_behind_the_clients_back_without_amount_or_currency() {
    for provider in [ProviderName::D24, ProviderName::Onspot, ProviderName::Tupay] {
        let env = Env::start().await;
        let o = order(provider, "0001234567", &env.receiver.url);
        let created = env.providers.create_payout(&o).await.unwrap();
        let r = env
            .providers
            .payout_record(provider, o.reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.payout.state, PayoutState::Pending, "{provider}");
        assert_eq!(r.reference, Some(o.reference.to_string()));
        assert_eq!(r.payout.reference, Some(o.reference));
        assert_eq!(
            (r.amount, r.currency, r.created_at),
            (None, None, None),
            "the status answer carries none of them"
        );
        env.advance(secs(2));
        let (s, changed) = control(
            &env,
            "PUT",
            &format!("/payouts/{provider}/{}", created.payout_id),
            &serde_json::json!({"status": "REJECTED", "rejection_code": 826}),
        )
        .await;
        assert_eq!(s, 200, "{changed}");
        let r = env
            .providers
            .payout_record(provider, o.reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            r.payout.state,
            PayoutState::Rejected {
                code: Some("826".into()),
                reason: Some("WITHDRAWAL_REVERSED".into())
            },
            "{provider}"
        );
        assert_eq!(r.payout.provider_status, "REJECTED 826 WITHDRAWAL_REVERSED");
        // No notification told the client: only the lifecycle's (DELIVERED, COMPLETED) went out.
        let ledger = env.sim.ledger();
        assert!(
            ledger.deliveries.iter().all(|d| !d.status.starts_with("REJECTED")),
            "{:?}",
            ledger.deliveries
        );
        assert_eq!(ledger.payouts[0].status, "REJECTED 826");
    }
}

#[tokio::test]
async fn the_d24_family_has_no_list_and_no_record_for_an_unknown_reference() {
    let env = Env::start().await;
    for provider in [ProviderName::D24, ProviderName::Onspot, ProviderName::Tupay] {
        assert_eq!(env.providers.list_payouts(provider, None, 50).await.unwrap(), None);
        let none = env
            .providers
            .payout_record(provider, common::new_reference())
            .await
            .unwrap();
        assert_eq!(none, None, "{provider}");
    }
}

#[tokio::test]
async fn a_cashout_made_behind_the_clients_back_is_found_by_its_reference() {
    let env = Env::start().await;
    let reference = common::new_reference();
    let (s, made) = control(
        &env,
        "POST",
        "/payouts/d24",
        &serde_json::json!({"reference": reference.to_string(), "amount": "10.00", "currency": "BRL", "status": "COMPLETED"}),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let r = env.providers.payout_record(D24, reference).await.unwrap().unwrap();
    assert!(matches!(r.payout.state, PayoutState::Paid { .. }), "{r:?}");
    assert_eq!(r.amount, None);
}
