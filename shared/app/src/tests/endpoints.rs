//! Webhook endpoints under concurrency: the per-merchant cap and secret rotation are conditional
//! writes, so racing requests neither pass the cap nor lose a secret.

#![allow(clippy::unwrap_used)]

use cashout_core::ids::EndpointId;
use cashout_core::ports::WebhookStore;

use super::support::*;
use crate::endpoints::MAX_ENDPOINTS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_never_pass_the_endpoint_cap() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let bodies: Vec<String> = (0..MAX_ENDPOINTS + 5)
        .map(|i| format!(r#"{{"url":"https://{i}.example.com/hook"}}"#))
        .collect();
    let outcomes = futures::future::join_all(bodies.iter().map(|b| h.app.create_endpoint(&m1, b.as_bytes()))).await;
    let created = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(AppError::EndpointLimit(MAX_ENDPOINTS))))
        .count();
    assert_eq!((created, refused), (MAX_ENDPOINTS, 5));
    assert_eq!(h.app.list_endpoints(&m1).await.unwrap().data.len(), MAX_ENDPOINTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_both_keep_the_secret_they_answered() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let merchant_id = MerchantId::new("m1").unwrap();
    let ep = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    let id: EndpointId = ep.id.parse().unwrap();
    for round in 1..=4_u64 {
        let (a, b) = tokio::join!(
            h.app.rotate_endpoint_secret(&m1, id),
            h.app.rotate_endpoint_secret(&m1, id)
        );
        let answered = [a.unwrap().secret.unwrap(), b.unwrap().secret.unwrap()];
        let stored = h.app.store.get_endpoint(&merchant_id, id).await.unwrap().unwrap();
        assert_eq!(
            stored.version,
            1 + 2 * round,
            "both rotations were written, one after the other"
        );
        let signing: Vec<String> = stored
            .signing_secrets(h.now())
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        for secret in &answered {
            assert!(
                signing.contains(secret),
                "round {round}: an answered secret is not stored"
            );
        }
        let primary: Vec<String> = stored
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none())
            .map(|s| s.secret.expose().to_owned())
            .collect();
        assert_eq!(primary.len(), 1, "one live secret without expiry");
        assert!(answered.contains(&primary[0]), "the live one is the last answer's");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_after_a_410_keeps_the_endpoint_disabled() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    let ep = h
        .app
        .create_endpoint(&m1, br#"{"url":"https://gone.example.com/"}"#)
        .await
        .unwrap();
    let id: EndpointId = ep.id.parse().unwrap();
    h.app.sender.answers.lock().unwrap().extend([410]);
    h.create("k1", &body("10.00")).await.unwrap();
    let (_, rotated) = tokio::join!(h.run_due(), h.app.rotate_endpoint_secret(&m1, id));
    let secret = rotated.unwrap().secret.unwrap();
    let stored = h
        .app
        .store
        .get_endpoint(&MerchantId::new("m1").unwrap(), id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.disabled.is_some(), "the 410 is not undone by the rotation");
    assert_eq!(stored.secrets[0].secret.expose(), secret, "nor the rotation by the 410");
}
