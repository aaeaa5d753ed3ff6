//! Money safety (issue 10): each test here failed on the code before its fix.

#![allow(clippy::unwrap_used)]

use super::support::*;

#[tokio::test]
async fn a_receiver_asking_for_an_endless_retry_after_gets_a_bounded_retry_and_others_keep_receiving() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let hostile = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://hostile.example.com/"}"#)
        .await
        .unwrap();
    let healthy = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://healthy.example.com/"}"#)
        .await
        .unwrap();
    h.app
        .sender
        .hostile
        .lock()
        .unwrap()
        .push("https://hostile.example.com/".into());
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    h.create("k2", &body("10.00")).await.unwrap();
    h.run_due().await;

    let longest = h.app.config.webhook_retries.longest();
    let attempts = h
        .app
        .list_attempts(&m1, hostile.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert!(!attempts.data.is_empty());
    for a in &attempts.data {
        let next = a.next_attempt_at.expect("a failed attempt is retried");
        assert!(
            next <= a.attempted_at + longest,
            "retry at {next}, beyond the schedule's longest step"
        );
    }
    let delivered = h
        .app
        .list_attempts(&m1, healthy.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    let ok = delivered.data.iter().filter(|a| a.outcome == "delivered").count();
    assert_eq!(ok, 6, "both requests' created, APPROVED and PENDING_PAYMENT events");
}

#[tokio::test]
async fn a_long_status_outage_keeps_one_chain_of_checks_per_request() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
    h.app.provider.0.lock().unwrap().status_down = true;
    // An hour of outage, the sweep running every minute as it does in production.
    for _ in 0..60 {
        h.clock.advance(time::Duration::minutes(1));
        h.app.sweep().await.unwrap();
        h.run_due().await;
    }
    let calls = h.app.provider.0.lock().unwrap().status_calls;
    // One chain backing off (30 s at first, as the schedule grows): well under two calls a
    // minute. Copies that multiply would make hundreds.
    assert!(calls <= 120, "{calls} status calls in an hour of outage");
    let queued: Vec<_> = h.drain(QueueName::Poll).await;
    assert!(queued.len() <= 1, "{} polls waiting: {queued:?}", queued.len());
}

#[tokio::test]
async fn a_create_of_unknown_outcome_followed_by_failing_lookups_waits_flagged_and_never_gives_up() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 3).await;
    h.app.provider.script(&[OnCreate::LoseAnswerInOutage]);
    let id = create_id(&h, "k1", "10.00").await;
    // Attempt 1: the create's answer is lost and the lookup after it fails too.
    let mut outcome = h.app.dispatch(id).await.unwrap();
    for _ in 0..10 {
        let TaskOutcome::RetryAfter(wait) = outcome else {
            panic!("dispatch stopped asking: {outcome:?}")
        };
        h.clock.advance(time::Duration::try_from(wait).unwrap());
        outcome = h.app.dispatch(id).await.unwrap();
    }
    let r = request(&h, id).await;
    assert_eq!(
        r.status(),
        CashoutStatus::Approved,
        "never PAYMENT_PROCESSOR_ERROR while a payout may exist"
    );
    assert!(r.needs_attention(), "{:?}", r.attention());
    assert_eq!(h.app.provider.creates(), 1, "never a second create while lookups fail");
    // The status endpoint comes back: the payout made by the lost create is adopted.
    h.app.provider.fail_lookups(0);
    let TaskOutcome::RetryAfter(wait) = outcome else {
        panic!()
    };
    h.clock.advance(time::Duration::try_from(wait).unwrap());
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    assert_eq!((h.app.provider.creates(), h.app.provider.payouts()), (1, 1));
}

#[tokio::test]
async fn a_request_whose_provider_never_saw_a_create_gives_up_after_its_attempts() {
    let h = Harness::with(|c| c.dispatch_max_attempts = 2).await;
    let id = create_id(&h, "k1", "10.00").await;
    h.app.provider.fail_lookups(1_000);
    let TaskOutcome::RetryAfter(wait) = h.app.dispatch(id).await.unwrap() else {
        panic!()
    };
    h.clock.advance(time::Duration::try_from(wait).unwrap());
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::PaymentProcessorError);
    assert!(!r.needs_attention());
    assert_eq!(h.app.provider.creates(), 0);
}

#[tokio::test]
async fn a_second_dispatcher_backs_off_while_the_first_holds_the_claim() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "10.00").await;
    // A first dispatcher has claimed the request and is talking to the provider.
    let claimed = request(&h, id)
        .await
        .begin_dispatch(h.now(), time::Duration::minutes(5))
        .unwrap();
    h.app.store.apply_change(&claimed).await.unwrap();
    // A duplicate task (or the sweep) runs a second dispatcher meanwhile.
    let outcome = h.app.dispatch(id).await.unwrap();
    assert!(
        matches!(outcome, TaskOutcome::RetryAfter(w) if w >= Duration::from_secs(60)),
        "{outcome:?}"
    );
    assert_eq!(h.app.provider.creates(), 0, "no concurrent create");
    assert_eq!(h.app.provider.0.lock().unwrap().lookups, 0);
    // The first one crashed: once its lease lapses, the next attempt looks up, then creates.
    h.clock.advance(time::Duration::minutes(5));
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);
}

#[tokio::test]
async fn cancel_and_reject_of_a_processor_error_ask_the_provider_first() {
    let h = Harness::new().await;
    h.app
        .provider
        .script(&[OnCreate::Misconfigured, OnCreate::Misconfigured]);
    let a = create_id(&h, "k1", "10.00").await;
    let b = create_id(&h, "k2", "10.00").await;
    h.run_due().await;
    assert_eq!(request(&h, a).await.status(), CashoutStatus::PaymentProcessorError);
    // The provider holds a payout for each all the same (processed late, or made in its panel).
    h.app.provider.insert(a, PayoutState::Pending);
    h.app.provider.insert(b, PayoutState::Pending);

    assert!(matches!(
        h.app.cancel(&merchant("m1"), a).await,
        Err(AppError::NotCancellable(_))
    ));
    let r = request(&h, a).await;
    assert_eq!(
        r.status(),
        CashoutStatus::PendingPayment,
        "the payout is followed, not dropped"
    );
    assert!(r.needs_attention());

    assert!(matches!(
        h.app.reject(&Principal::admin("ops"), b, "duplicate".into()).await,
        Err(AppError::ProviderHoldsPayout(_))
    ));
    assert_eq!(request(&h, b).await.status(), CashoutStatus::PendingPayment);

    // Holding nothing, the provider lets the cancel through.
    let c = create_id(&h, "k3", "10.00").await;
    h.app.provider.script(&[OnCreate::Misconfigured]);
    h.run_due().await;
    assert_eq!(request(&h, c).await.status(), CashoutStatus::PaymentProcessorError);
    assert_eq!(
        h.app.cancel(&merchant("m1"), c).await.unwrap().status,
        CashoutStatus::Cancelled
    );
}

#[tokio::test]
async fn an_operator_retry_racing_a_merchant_cancel_never_cancels_a_held_payout() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Misconfigured]);
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    h.app.provider.insert(id, PayoutState::Pending);
    h.app.retry(&Principal::admin("ops"), id).await.unwrap();
    // The merchant cancels before the dispatcher runs.
    let cancelled = h.app.cancel(&merchant("m1"), id).await;
    assert!(matches!(cancelled, Err(AppError::NotCancellable(_))), "{cancelled:?}");
    assert_eq!(request(&h, id).await.status(), CashoutStatus::PendingPayment);
    h.run_due().await;
    assert_eq!(h.app.provider.creates(), 1, "only the first, refused create");
}

#[tokio::test]
async fn a_payout_reported_for_a_cancelled_request_is_recorded_and_flagged() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "20000.00").await;
    h.app.cancel(&merchant("m1"), id).await.unwrap();
    h.app.provider.insert(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    let payout = h.app.provider.0.lock().unwrap().payouts[&id.into()].clone();
    h.app.observe(id, Some(&payout), None).await.unwrap();
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::Cancelled);
    assert!(
        r.needs_attention(),
        "a paid payout for a cancelled request must reach a person"
    );
    assert_eq!(r.provider_reference(), Some(&payout.payout_id));
    let view = h.app.get_cashout(&Principal::admin("ops"), id).await.unwrap();
    assert!(view.needs_attention);
    let cleared = h.app.resolve_attention(&Principal::admin("ops"), id).await.unwrap();
    assert!(!cleared.needs_attention);
}

#[tokio::test]
async fn a_second_payout_id_for_our_reference_is_flagged() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    let mut other = h.app.provider.0.lock().unwrap().payouts[&id.into()].clone();
    other.payout_id = ProviderPayoutId::new("P999").unwrap();
    h.app.observe(id, Some(&other), None).await.unwrap();
    let r = request(&h, id).await;
    assert!(
        matches!(
            r.attention().first().map(|a| &a.reason),
            Some(cashout_core::cashout::AttentionReason::ConflictingPayout { .. })
        ),
        "{:?}",
        r.attention()
    );
}

#[tokio::test]
async fn hints_about_unknown_payouts_are_dropped_and_hints_for_one_request_coalesce() {
    let h = Harness::new().await;
    let hint = |id: String| InboundNotification {
        headers: vec![],
        body: format!("external_id={id}").into_bytes(),
    };
    // Forged hints for requests that do not exist cost no queue message.
    for n in 0..20u128 {
        let forged = CashoutRequestId::from_uuid(uuid::Uuid::from_u128(n));
        h.app
            .receive_notification(ProviderName::D24, hint(forged.to_string()))
            .await
            .unwrap();
    }
    assert!(h.drain(QueueName::ProviderEvents).await.is_empty());
    // Twenty hints for one request at the provider: one check, at the end of the window.
    let id = create_id(&h, "k1", "10.00").await;
    h.run_due().await;
    for _ in 0..20 {
        h.app
            .receive_notification(ProviderName::D24, hint(id.to_string()))
            .await
            .unwrap();
    }
    h.clock
        .advance(time::Duration::try_from(h.app.config.hint_window).unwrap());
    assert_eq!(h.drain(QueueName::ProviderEvents).await.len(), 1);
    // A hint after the window schedules the next check.
    h.clock.advance(time::Duration::seconds(1));
    h.app
        .receive_notification(ProviderName::D24, hint(id.to_string()))
        .await
        .unwrap();
    h.clock
        .advance(time::Duration::try_from(h.app.config.hint_window).unwrap());
    assert_eq!(h.drain(QueueName::ProviderEvents).await.len(), 1);
}
