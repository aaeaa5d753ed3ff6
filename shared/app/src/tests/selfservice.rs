//! Endpoint self-service: editing, custom headers, the test event, recovery once each (against
//! pending retries), ordered delivery per request, health (disabling a failing endpoint and
//! telling the others), rotation that expires the old secret at once, and the event listing.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use cashout_core::ids::EndpointId;
use cashout_core::ports::{OutgoingWebhook, WebhookStore};

use super::support::*;

fn header<'a>(w: &'a OutgoingWebhook, name: &str) -> Option<&'a str> {
    w.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn webhook_id(w: &OutgoingWebhook) -> String {
    header(w, "webhook-id").unwrap().to_owned()
}

fn sent(h: &Harness) -> Vec<OutgoingWebhook> {
    h.app.sender.sent.lock().unwrap().clone()
}

async fn endpoint(h: &Harness, body: &str) -> (EndpointId, String) {
    let ep = h.app.create_endpoint(&merchant("m1"), body.as_bytes()).await.unwrap();
    (ep.id.parse().unwrap(), ep.secret.unwrap())
}

fn verify(secret: &str, w: &OutgoingWebhook, now: OffsetDateTime) {
    let verifier = WebhookVerifier::new(WebhookSecret::parse(secret).unwrap());
    let mut headers = http::HeaderMap::new();
    for (k, v) in &w.headers {
        headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    verifier.verify(&headers, w.body.as_bytes(), now).unwrap();
}

#[tokio::test]
async fn an_endpoint_is_edited_and_its_test_event_carries_its_headers_signed() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let (id, secret) = endpoint(&h, r#"{"url":"https://hooks.example.com/a"}"#).await;
    let view = h
        .app
        .update_endpoint(
            &m1,
            id,
            br#"{"url":"https://hooks.example.com/b","description":"main","headers":{"X-Tenant":"t1"},
                "rate_limit":5,"ordered":true,"event_types":["cashout_request.status_update"]}"#,
        )
        .await
        .unwrap();
    assert_eq!(view.url, "https://hooks.example.com/b");
    assert_eq!(view.description.as_deref(), Some("main"));
    assert_eq!(view.headers.get("x-tenant").map(String::as_str), Some("t1"));
    assert_eq!((view.rate_limit, view.ordered), (Some(5), true));
    assert_eq!(view.event_types, vec!["cashout_request.status_update"]);
    let view = h
        .app
        .update_endpoint(&m1, id, br#"{"rate_limit":null,"description":null}"#)
        .await
        .unwrap();
    assert_eq!((view.rate_limit, view.description), (None, None), "null clears");
    assert!(view.ordered, "absent fields keep their value");

    for refused in [
        r#"{"headers":{"webhook-signature":"x"}}"#,
        r#"{"headers":{"Content-Type":"text/plain"}}"#,
        r#"{"headers":{"Proxy-Authorization":"x"}}"#,
        r#"{"headers":{"bad name":"x"}}"#,
        r#"{"headers":{"x-a":"line\nbreak"}}"#,
        r#"{"rate_limit":0}"#,
        r#"{"rate_limit":1001}"#,
        r#"{"url":"http://hooks.example.com/"}"#,
        r#"{"event_types":["nope"]}"#,
        r#"{"colour":"red"}"#,
        r#"{"url":null}"#,
        r#"{"ordered":null}"#,
    ] {
        assert!(
            h.app.update_endpoint(&m1, id, refused.as_bytes()).await.is_err(),
            "{refused}"
        );
    }
    let eleven: BTreeMap<String, String> = (0..11).map(|i| (format!("x-h{i}"), "v".to_owned())).collect();
    let too_many = json!({ "headers": eleven }).to_string();
    assert!(h.app.update_endpoint(&m1, id, too_many.as_bytes()).await.is_err());
    assert!(
        h.app.update_endpoint(&merchant("m2"), id, b"{}").await.is_err(),
        "another merchant's endpoint is not found"
    );

    let attempt = h.app.test_endpoint(&m1, id).await.unwrap();
    assert_eq!(attempt.outcome, "delivered");
    assert_eq!(attempt.status_code, Some(200));
    assert!(attempt.event_id.starts_with("evt_op_"), "{}", attempt.event_id);
    let w = sent(&h).pop().unwrap();
    assert_eq!(w.url, "https://hooks.example.com/b");
    assert_eq!(header(&w, "x-tenant"), Some("t1"));
    assert_eq!(webhook_id(&w), attempt.event_id);
    verify(&secret, &w, h.now());
    let body: Value = serde_json::from_str(&w.body).unwrap();
    assert_eq!(body["event"], "webhook_endpoint.test");
    assert_eq!(body["endpoint_id"], id.to_string());
    let log = h.app.list_attempts(&m1, id, None, None).await.unwrap();
    assert_eq!(log.data[0].event_id, attempt.event_id, "the test is in the attempt log");
    let second = h.app.test_endpoint(&m1, id).await.unwrap();
    assert_ne!(second.event_id, attempt.event_id, "every test event has its own id");
}

#[tokio::test]
async fn a_disabled_endpoint_is_enabled_again_without_replaying_and_recovery_needs_it_enabled() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let (id, _) = endpoint(&h, r#"{"url":"https://hooks.example.com/a"}"#).await;
    let view = h.app.update_endpoint(&m1, id, br#"{"disabled":true}"#).await.unwrap();
    assert_eq!((view.disabled, view.disabled_reason.as_deref()), (true, Some("manual")));
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    assert!(sent(&h).is_empty(), "a disabled endpoint receives nothing");
    let since = (h.now() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let recover = json!({ "since": since }).to_string();
    assert!(matches!(
        h.app.recover_endpoint(&m1, id, recover.as_bytes()).await,
        Err(AppError::Conflict(_))
    ));
    let view = h.app.update_endpoint(&m1, id, br#"{"disabled":false}"#).await.unwrap();
    assert!(!view.disabled);
    h.run_due().await;
    assert!(sent(&h).is_empty(), "enabling does not replay");
    h.clock.advance(time::Duration::seconds(1));
    let queued = h
        .app
        .recover_endpoint(&m1, id, recover.as_bytes())
        .await
        .unwrap()
        .queued;
    assert!(queued >= 1);
    h.run_due().await;
    assert_eq!(sent(&h).len(), queued, "recovery sends what was missed");
}

#[tokio::test]
async fn recovery_after_an_outage_delivers_each_missed_event_once_even_with_retries_pending() {
    let h = Harness::with(|c| {
        c.webhook_retries = RetrySchedule::new(vec![Duration::ZERO, Duration::from_secs(60), Duration::from_secs(600)]);
    })
    .await;
    let m1 = merchant("m1");
    let url = "https://hooks.example.com/down";
    let (id, secret) = endpoint(&h, &format!(r#"{{"url":"{url}"}}"#)).await;
    let outage_start = h.now();
    h.app.sender.hostile.lock().unwrap().push(url.to_owned());
    for k in ["k1", "k2", "k3"] {
        h.create(k, &body("10.00")).await.unwrap();
    }
    h.run_due().await;
    let missed: BTreeSet<String> = sent(&h).iter().map(webhook_id).collect();
    assert!(missed.len() >= 3, "{missed:?}");

    // The receiver is back; each missed event still has a retry pending (attempt 3, in 60 s).
    h.app.sender.hostile.lock().unwrap().clear();
    let back = sent(&h).len();
    h.clock.advance(time::Duration::seconds(10));
    let since = outage_start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let recover = json!({ "since": since }).to_string();
    let queued = h
        .app
        .recover_endpoint(&m1, id, recover.as_bytes())
        .await
        .unwrap()
        .queued;
    assert_eq!(queued, missed.len());
    h.run_due().await;
    // The pending retries come due, and a second recovery is asked for: nothing is sent twice.
    let again = h
        .app
        .recover_endpoint(&m1, id, recover.as_bytes())
        .await
        .unwrap()
        .queued;
    assert_eq!(again, 0, "everything was received");
    let from_long_ago = h
        .app
        .recover_endpoint(
            &m1,
            id,
            br#"{"since":"2000-01-01T00:00:00Z","until":"2999-01-01T00:00:00Z"}"#,
        )
        .await
        .unwrap();
    assert_eq!(from_long_ago.queued, 0, "a window cut to the last 30 days and to now");
    for _ in 0..3 {
        h.clock.advance(time::Duration::seconds(700));
        h.run_due().await;
    }
    let after: Vec<OutgoingWebhook> = sent(&h)[back..].to_vec();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for w in &after {
        verify(&secret, w, h.now() - time::Duration::seconds(2100));
        *counts.entry(webhook_id(w)).or_default() += 1;
    }
    for m in &missed {
        assert_eq!(counts.get(m), Some(&1), "{m} delivered exactly once: {counts:?}");
    }
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[tokio::test]
async fn an_ordered_endpoint_gets_a_requests_events_in_sequence_without_holding_back_others() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let (id, _) = endpoint(&h, r#"{"url":"https://hooks.example.com/o"}"#).await;
    h.app.update_endpoint(&m1, id, br#"{"ordered":true}"#).await.unwrap();
    // The first two sends fail: request A's first event, then its immediate retry.
    h.app.sender.answers.lock().unwrap().extend([500, 500]);
    let a = h.create("ka", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.run_due().await;
    let of = |w: &OutgoingWebhook| {
        let b: Value = serde_json::from_str(&w.body).unwrap();
        (
            b["cashout_request_id"].as_str().unwrap().to_owned(),
            b["sequence"].as_u64().unwrap(),
        )
    };
    let so_far: Vec<(String, u64)> = sent(&h).iter().map(of).collect();
    assert_eq!(
        so_far,
        vec![(a.clone(), 1), (a.clone(), 1)],
        "A waits for its first event"
    );
    assert!(h.app.store.list_events(a.parse().unwrap()).await.unwrap().len() >= 2);

    let b = h.create("kb", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.run_due().await;
    let b_sent: Vec<u64> = sent(&h)
        .iter()
        .map(of)
        .filter(|(r, _)| *r == b)
        .map(|(_, s)| s)
        .collect();
    let b_events = h.app.store.list_events(b.parse().unwrap()).await.unwrap().len();
    assert_eq!(
        b_sent,
        (1..=b_events as u64).collect::<Vec<_>>(),
        "B is not held back by A"
    );
    assert!(sent(&h).iter().map(of).all(|(r, s)| r != a || s == 1));

    // A's retry comes due and succeeds; its next events follow, in order.
    h.clock.advance(time::Duration::seconds(6));
    h.run_due().await;
    h.clock.advance(time::Duration::seconds(6));
    h.run_due().await;
    let a_sent: Vec<u64> = sent(&h)
        .iter()
        .map(of)
        .filter(|(r, _)| *r == a)
        .map(|(_, s)| s)
        .collect();
    let a_events = h.app.store.list_events(a.parse().unwrap()).await.unwrap().len() as u64;
    let mut expected = vec![1, 1, 1];
    expected.extend(2..=a_events);
    assert_eq!(a_sent, expected);
}

#[tokio::test]
async fn an_endpoint_failing_for_the_window_is_disabled_and_the_other_endpoints_are_told() {
    let h = Harness::with(|c| c.endpoint_failure_window = Duration::from_secs(3600)).await;
    let m1 = merchant("m1");
    let bad_url = "https://hooks.example.com/bad";
    let (bad, _) = endpoint(&h, &format!(r#"{{"url":"{bad_url}"}}"#)).await;
    let (good, good_secret) = endpoint(
        &h,
        r#"{"url":"https://hooks.example.com/good","event_types":["webhook_endpoint.disabled"]}"#,
    )
    .await;
    h.app.sender.hostile.lock().unwrap().push(bad_url.to_owned());
    let first_failure = h.now();
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    let view = h.app.get_endpoint(&m1, bad).await.unwrap();
    assert_eq!(view.failing_since, Some(first_failure));
    assert_eq!(view.success_rate, Some(0.0));
    assert!(!view.disabled, "not yet: the window is not over");

    h.clock.advance(time::Duration::hours(2));
    h.create("k2", &body("10.00")).await.unwrap();
    h.run_due().await;
    let view = h.app.get_endpoint(&m1, bad).await.unwrap();
    assert_eq!(
        (view.disabled, view.disabled_reason.as_deref()),
        (true, Some("failing"))
    );
    let notices: Vec<OutgoingWebhook> = sent(&h)
        .into_iter()
        .filter(|w| w.url == "https://hooks.example.com/good")
        .collect();
    assert_eq!(notices.len(), 1, "the other endpoint is told once");
    verify(&good_secret, &notices[0], h.now());
    let body: Value = serde_json::from_str(&notices[0].body).unwrap();
    assert_eq!(body["event"], "webhook_endpoint.disabled");
    assert_eq!(body["endpoint_id"], bad.to_string());
    assert_eq!(body["reason"], "failing");
    assert_eq!(
        body["since"],
        first_failure
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    assert_eq!(body["event_id"], webhook_id(&notices[0]));
    assert!(body["event_id"].as_str().unwrap().starts_with("evt_op_"));
    let good_view = h.app.get_endpoint(&m1, good).await.unwrap();
    assert_eq!(good_view.success_rate, Some(1.0));
    assert!(good_view.last_success_at.is_some() && good_view.failing_since.is_none());
}

#[tokio::test]
async fn a_rotation_can_expire_the_old_secret_at_once_and_never_keeps_more_than_two() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let merchant_id = MerchantId::new("m1").unwrap();
    let (id, first) = endpoint(&h, r#"{"url":"https://hooks.example.com/a"}"#).await;
    let second = h
        .app
        .rotate_endpoint_secret_with(&m1, id, b"")
        .await
        .unwrap()
        .secret
        .unwrap();
    let third = h
        .app
        .rotate_endpoint_secret_with(&m1, id, b"{}")
        .await
        .unwrap()
        .secret
        .unwrap();
    let stored = h.app.store.get_endpoint(&merchant_id, id).await.unwrap().unwrap();
    let live: Vec<String> = stored
        .signing_secrets(h.now())
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    assert_eq!(
        live,
        vec![third.clone(), second],
        "at most two live secrets: the oldest went"
    );
    assert!(!live.contains(&first));
    let fourth = h
        .app
        .rotate_endpoint_secret_with(&m1, id, br#"{"expire_current_in_seconds":0}"#)
        .await
        .unwrap()
        .secret
        .unwrap();
    let stored = h.app.store.get_endpoint(&merchant_id, id).await.unwrap().unwrap();
    let live: Vec<String> = stored
        .signing_secrets(h.now())
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    assert_eq!(live, vec![fourth], "0: the old secret stops signing now");
    for bad in [&br#"{"expire_current_in_seconds":86401}"#[..], br#"{"nope":1}"#] {
        assert!(h.app.rotate_endpoint_secret_with(&m1, id, bad).await.is_err());
    }
}

#[tokio::test]
async fn the_merchants_events_are_listed_newest_first_filtered_and_paged() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let a = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.clock.advance(time::Duration::seconds(5));
    h.create("k2", &body("10.00")).await.unwrap();
    h.run_due().await;
    let all = h
        .app
        .list_merchant_events(&m1, crate::selfservice::EventFilter::default())
        .await
        .unwrap();
    assert!(all.data.len() >= 4);
    assert!(
        all.data.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    let created = h
        .app
        .list_merchant_events(
            &m1,
            crate::selfservice::EventFilter {
                event_type: Some("cashout_request.created".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.data.len(), 2);
    let only_a = h
        .app
        .list_merchant_events(
            &m1,
            crate::selfservice::EventFilter {
                cashout_request_id: Some(a.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(only_a.data.iter().all(|e| e.data["cashout_request_id"] == a.as_str()));
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = h
            .app
            .list_merchant_events(
                &m1,
                crate::selfservice::EventFilter {
                    limit: Some(1),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.data.into_iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.data.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    let other = h
        .app
        .list_merchant_events(&merchant("m2"), crate::selfservice::EventFilter::default())
        .await
        .unwrap();
    assert!(other.data.is_empty(), "another merchant sees none of them");
}

#[tokio::test]
async fn two_senders_of_one_attempt_number_cannot_both_send() {
    let h = Harness::new().await;
    let (id, _) = endpoint(&h, r#"{"url":"https://hooks.example.com/a"}"#).await;
    let request = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = h.app.store.list_events(request.parse().unwrap()).await.unwrap();
    let first = events[0].id;
    let (x, y) = tokio::join!(h.app.deliver(first, id, 1), h.app.deliver(first, id, 1));
    x.unwrap();
    y.unwrap();
    let to_first = sent(&h).iter().filter(|w| webhook_id(w) == first.to_string()).count();
    assert_eq!(to_first, 1);
    let attempts = h.app.store.list_event_attempts(first).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(h.app.deliver(first, id, 2).await.unwrap(), TaskOutcome::Done);
    assert_eq!(
        sent(&h).iter().filter(|w| webhook_id(w) == first.to_string()).count(),
        1,
        "a later number finds it delivered and sends nothing"
    );
}

#[tokio::test]
async fn a_retry_lost_after_its_attempt_was_recorded_is_queued_again_by_the_redelivered_task() {
    let h = Harness::new().await;
    let (id, _) = endpoint(&h, r#"{"url":"https://hooks.example.com/a"}"#).await;
    let request = h.create("k1", &body("10.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = h.app.store.list_events(request.parse().unwrap()).await.unwrap()[0].id;
    h.drain(QueueName::Callbacks).await;
    h.app.sender.answers.lock().unwrap().extend([500]);
    assert_eq!(h.app.deliver(first, id, 1).await.unwrap(), TaskOutcome::Done);
    // The queue lost the retry it was sent (as if the send failed after the record).
    let lost = h.drain(QueueName::Callbacks).await;
    assert!(lost.iter().any(|t| matches!(t, Task::Deliver { attempt: 2, .. })));
    // The first task, delivered again by the queue, finds attempt 1 recorded: it sends nothing
    // and queues attempt 2 again.
    assert_eq!(h.app.deliver(first, id, 1).await.unwrap(), TaskOutcome::Done);
    assert_eq!(sent(&h).len(), 1);
    let again = h.drain(QueueName::Callbacks).await;
    assert!(
        again.iter().any(|t| matches!(t, Task::Deliver { attempt: 2, .. })),
        "{again:?}"
    );
}
