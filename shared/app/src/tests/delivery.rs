//! Webhook deliveries: signing, retries, 410, replays, private addresses.

#![allow(clippy::unwrap_used)]

use super::support::*;

#[tokio::test]
async fn events_are_delivered_signed_and_retried() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let ep = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    let secret = WebhookSecret::parse(ep.secret.as_deref().unwrap()).unwrap();
    h.app.sender.answers.lock().unwrap().extend([500, 200]);
    h.create("k1", &body("10.00")).await.unwrap();
    h.run_due().await;
    let sent = h.app.sender.sent.lock().unwrap().clone();
    // created, approved, pending payment; the first attempt of the first event failed.
    let verifier = WebhookVerifier::new(secret);
    for w in &sent {
        let mut headers = http::HeaderMap::new();
        for (k, v) in &w.headers {
            headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        verifier.verify(&headers, w.body.as_bytes(), h.now()).unwrap();
    }
    let ids: Vec<_> = sent
        .iter()
        .map(|w| w.headers.iter().find(|(k, _)| k == "webhook-id").unwrap().1.clone())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        ids.iter().filter(|i| **i == ids[0]).count(),
        2,
        "a retry keeps its webhook-id"
    );
    let attempts = h
        .app
        .list_attempts(&m1, ep.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert_eq!(attempts.data.len(), 4);
    assert_eq!(attempts.data.iter().filter(|a| a.outcome == "failed").count(), 1);
}

#[tokio::test]
async fn a_gone_endpoint_is_disabled_and_exhausted_deliveries_can_be_replayed() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let gone = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://a.example.com/"}"#)
        .await
        .unwrap();
    h.app.sender.answers.lock().unwrap().extend([410]);
    let id: CashoutRequestId = h.create("k1", &body("20000.00")).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h.run_due().await;
    assert!(
        h.app
            .get_endpoint(&m1, gone.id.parse().unwrap())
            .await
            .unwrap()
            .disabled
    );

    let flaky = h
        .app
        .create_endpoint(
            &m1,
            br#"{"url":"https://b.example.com/", "event_types":["cashout_request.status_update"]}"#,
        )
        .await
        .unwrap();
    h.app.sender.answers.lock().unwrap().extend([500; 20]);
    h.app.approve(&Principal::admin("ops"), id).await.unwrap();
    h.run_due().await;
    h.clock.advance(time::Duration::seconds(10));
    h.run_due().await;
    let attempts = h
        .app
        .list_attempts(&m1, flaky.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    assert!(attempts.data.iter().any(|a| a.outcome == "exhausted"), "{attempts:?}");
    assert!(attempts.data.iter().all(|a| a.outcome != "delivered"), "{attempts:?}");
    h.app.sender.answers.lock().unwrap().clear();
    let events = h.app.list_events(&m1, id).await.unwrap();
    let approved = events.data.iter().find(|e| e.data["status"] == "APPROVED").unwrap();
    let queued = h.app.redeliver(&m1, approved.id.parse().unwrap()).await.unwrap();
    assert_eq!(queued, 1);
    h.run_due().await;
    let attempts = h
        .app
        .list_attempts(&m1, flaky.id.parse().unwrap(), None, None)
        .await
        .unwrap();
    let replayed: Vec<_> = attempts.data.iter().filter(|a| a.event_id == approved.id).collect();
    assert!(
        replayed.iter().any(|a| a.outcome == "delivered" && a.attempt == 4),
        "{replayed:?}"
    );
}

#[tokio::test]
async fn private_endpoints_are_refused_unless_allowed() {
    let h = Harness::new().await;
    for url in [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://169.254.169.254/",
        "https://localhost/",
    ] {
        let body = json!({ "url": url }).to_string();
        let err = h
            .app
            .create_endpoint(&merchant("m1"), body.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{url}");
    }
}
