//! Dispatch, polls, hints and the sweep.

#![allow(clippy::unwrap_used)]

use super::support::*;

#[tokio::test]
async fn a_lost_create_answer_is_adopted_without_a_second_payout() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::LoseAnswer]);
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id = created["id"].as_str().unwrap();
    h.run_due().await;
    assert_eq!(h.status(id).await, CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn an_unavailable_provider_is_retried_and_a_found_payout_never_recreated() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Unavailable]);
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tasks = h.drain(QueueName::Dispatch).await;
    assert_eq!(tasks, [Task::Dispatch { cashout_request_id: id }]);
    assert_eq!(
        h.app.dispatch(id).await.unwrap(),
        TaskOutcome::RetryAfter(Duration::from_secs(2))
    );
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::Approved);
    // The next attempt looks up first; finding nothing, it creates.
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
    // A duplicate dispatch task changes nothing and creates nothing.
    assert_eq!(h.app.dispatch(id).await.unwrap(), TaskOutcome::Done);
    assert_eq!(h.app.provider.creates(), 2);
    assert_eq!(h.app.provider.payouts(), 1);
}

#[tokio::test]
async fn declined_data_rejects_and_configuration_errors_need_an_operator() {
    let h = Harness::new().await;
    h.app.provider.script(&[OnCreate::Decline, OnCreate::Misconfigured]);
    let a = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.run_due().await;
    assert_eq!(h.status(&a).await, CashoutStatus::Rejected);
    let b: CashoutRequestId = h.create("k2", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PaymentProcessorError);
    // The operator retries once the account is fixed: the dispatcher pays it.
    h.app.retry(&Principal::admin("ops"), b).await.unwrap();
    h.run_due().await;
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PendingPayment);
}

#[tokio::test]
async fn cancel_is_immediate_before_dispatch_and_goes_through_the_provider_after() {
    let h = Harness::new().await;
    let a: CashoutRequestId = h.create("k1", &body("20000.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let view = h.app.cancel(&merchant("m1"), a).await.unwrap();
    assert_eq!(view.status, CashoutStatus::Cancelled);
    assert!(matches!(
        h.app.cancel(&merchant("m1"), a).await,
        Err(AppError::Transition(_))
    ));

    let b: CashoutRequestId = h.create("k2", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert!(matches!(
        h.app.cancel(&merchant("m1"), b).await,
        Err(AppError::NotCancellable(_))
    ));
    assert_eq!(h.status(&b.to_string()).await, CashoutStatus::PendingPayment);
    h.app.provider.0.lock().unwrap().cancellable = true;
    assert_eq!(
        h.app.cancel(&merchant("m1"), b).await.unwrap().status,
        CashoutStatus::Cancelled
    );
}

#[tokio::test]
async fn stale_and_duplicate_polls_change_nothing() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    let r = h.app.store.get_request(id).await.unwrap().unwrap();
    let due = r.next_check_at().unwrap();
    // A poll scheduled for another time is stale.
    assert_eq!(
        h.app.poll(id, Some(due - time::Duration::seconds(1))).await.unwrap(),
        TaskOutcome::Done
    );
    assert_eq!(
        h.app.store.get_request(id).await.unwrap().unwrap().version(),
        r.version()
    );
    // An on-demand poll without news changes nothing either.
    h.app.poll(id, None).await.unwrap();
    assert_eq!(
        h.app.store.get_request(id).await.unwrap().unwrap().version(),
        r.version()
    );
    // The scheduled one counts the check and schedules the next.
    h.app.poll(id, Some(due)).await.unwrap();
    let after = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(after.checks_since_change(), 1);
    assert!(after.next_check_at().unwrap() > due);
}

#[tokio::test]
async fn a_provider_hint_polls_at_the_end_of_its_window() {
    let h = Harness::new().await;
    let id: CashoutRequestId = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Rejected {
            code: Some("800".into()),
            reason: Some("ERROR_ACCOUNT_INCORRECT".into()),
        },
    );
    let hint = InboundNotification {
        headers: vec![],
        body: format!("external_id={id}").into_bytes(),
    };
    h.app
        .receive_notification(ProviderName::D24, hint.clone())
        .await
        .unwrap();
    h.app.receive_notification(ProviderName::D24, hint).await.unwrap();
    h.clock.advance(time::Duration::seconds(5));
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::Rejected);
    let bad = InboundNotification {
        headers: vec![],
        body: b"garbage".to_vec(),
    };
    assert!(matches!(
        h.app.receive_notification(ProviderName::D24, bad).await,
        Err(AppError::InvalidNotification(_))
    ));
}

#[tokio::test]
async fn the_sweep_finishes_interrupted_work() {
    let h = Harness::new().await;
    // A create that crashed after writing the request and before reviewing it.
    let draft = serde_json::from_value::<cashout_core::input::CashoutInput>(body("10.00"))
        .unwrap()
        .validate(&h.app.config.coverage)
        .unwrap();
    let now = h.now();
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let change = cashout_core::cashout::CashoutRequest::create(id, MerchantId::new("m1").unwrap(), draft, now)
        .with_next_check(Some(now + h.app.config.review_grace));
    let record = cashout_core::ports::IdempotencyRecord::begin(
        MerchantId::new("m1").unwrap(),
        "k9".parse().unwrap(),
        "hash".into(),
        id,
        now,
    );
    h.app.store.create_request(&change, &record, &[]).await.unwrap();
    assert_eq!(h.app.sweep().await.unwrap(), crate::poll::SweepReport::default());
    h.clock.advance(time::Duration::minutes(10));
    let report = h.app.sweep().await.unwrap();
    assert_eq!(report.reviewed, 1);
    assert_eq!(report.events, 1, "the created event was never published");
    h.run_due().await;
    assert_eq!(h.status(&id.to_string()).await, CashoutStatus::PendingPayment);
}

#[tokio::test]
async fn tasks_that_arrive_early_are_sent_on() {
    let h = Harness::new().await;
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let early = TaskEnvelope::new(
        Task::Dispatch { cashout_request_id: id },
        h.now(),
        Duration::from_secs(3600),
    );
    h.app
        .process_message(&early.to_json(), |_| async { panic!("must not run early") })
        .await
        .unwrap();
    h.clock.advance(time::Duration::hours(1));
    assert_eq!(h.drain(QueueName::Dispatch).await.len(), 1);
}

#[tokio::test]
async fn the_daily_reversal_check_is_left_to_the_sweep_not_hopped_through_the_queue() {
    use cashout_store::QueueInspect;
    let h = Harness::new().await;
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let paid = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(paid.status(), CashoutStatus::Paid);
    let due = paid.next_check_at().expect("a paid request is watched for reversals");
    assert_eq!(due - h.now(), time::Duration::hours(24));
    assert_eq!(
        h.app.store.depth(QueueName::Poll).await.unwrap().total(),
        0,
        "nothing waits in the queue"
    );

    // Not yet due (nor overdue by the sweep's lag): the sweep sends nothing.
    h.clock.advance(time::Duration::hours(24));
    assert_eq!(h.app.sweep().await.unwrap().polls, 0);
    h.clock.advance(time::Duration::seconds(121));
    assert_eq!(h.app.sweep().await.unwrap().polls, 1);
    h.run_due().await;
    let checked = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(checked.status(), CashoutStatus::Paid);
    assert_eq!(checked.next_check_at(), Some(h.now() + time::Duration::hours(24)));
    assert_eq!(h.app.sweep().await.unwrap().polls, 0, "checked: not due again");
}
