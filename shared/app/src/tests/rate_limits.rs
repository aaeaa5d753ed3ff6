//! Per-merchant API rate limits over HTTP: a merchant over its limit is answered `429
//! rate_limited` with `Retry-After` while another merchant's calls go through; the bucket refills
//! with time (the manual clock, never a sleep); instances share it through the store; an address
//! sending bad keys is refused before its keys are looked up.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use cashout_core::limit::RateLimit;
use tower::ServiceExt;

use super::support::*;
use crate::http::{api_router, finish};
use crate::limits::RateLimits;

/// The answer's status, `code` and `Retry-After`.
async fn call(app: &TestApp, key: &str, from: &str) -> (StatusCode, String, Option<String>) {
    let mut request = Request::get("/v1/webhook-endpoints")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = finish(api_router(app.clone())).oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    if status == StatusCode::TOO_MANY_REQUESTS {
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    }
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let code = serde_json::from_slice::<Value>(&body).unwrap_or_default()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, retry_after)
}

fn ok() -> (StatusCode, String, Option<String>) {
    (StatusCode::OK, String::new(), None)
}

fn limited(retry_after: &str) -> (StatusCode, String, Option<String>) {
    (
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited".to_owned(),
        Some(retry_after.to_owned()),
    )
}

/// m1 and m2 at 2 calls a second, 3 at once; m3 at 1 a second with a burst of its own; bad keys
/// 1 a second, 2 at once, per address.
async fn harness() -> Harness {
    let h = Harness::with(|c| {
        c.rate_limits = RateLimits {
            default: RateLimit::new(2, 3).unwrap(),
            unauthenticated: RateLimit::new(1, 2).unwrap(),
            ..RateLimits::default()
        }
        .with_merchants("m3=1/5")
        .unwrap();
    })
    .await;
    for m in ["m2", "m3"] {
        h.app
            .register_api_key(&ApiKey::new(format!("sk_{m}")), merchant(m), None)
            .await
            .unwrap();
    }
    h
}

#[tokio::test]
async fn a_merchant_over_its_limit_gets_429_with_retry_after_while_another_goes_through() {
    let h = harness().await;
    for _ in 0..3 {
        assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, ok());
    }
    assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, limited("1"));
    for _ in 0..3 {
        assert_eq!(
            call(&h.app, "sk_m2", "10.0.0.1").await,
            ok(),
            "m2 has a bucket of its own"
        );
    }
    assert_eq!(call(&h.app, "sk_m2", "10.0.0.1").await, limited("1"));
    for _ in 0..5 {
        assert_eq!(call(&h.app, "sk_m3", "10.0.0.2").await, ok(), "m3's own burst");
    }
    assert_eq!(
        call(&h.app, "sk_m1", "10.0.0.3").await,
        limited("1"),
        "whatever the address"
    );

    h.clock.advance(time::Duration::milliseconds(499));
    assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, limited("1"));
    h.clock.advance(time::Duration::milliseconds(1));
    assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, ok(), "one token every 500 ms");
    assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, limited("1"));
    h.clock.advance(time::Duration::seconds(60));
    for _ in 0..3 {
        assert_eq!(
            call(&h.app, "sk_m1", "10.0.0.1").await,
            ok(),
            "full again, to its burst"
        );
    }
}

#[tokio::test]
async fn instances_share_a_merchant_s_bucket_through_the_store() {
    let h = harness().await;
    let other = App::new(
        h.app.store.clone(),
        h.app.queue.clone(),
        h.app.provider.clone(),
        h.app.sender.clone(),
        h.app.clock.clone(),
        h.app.ids.clone(),
        (*h.app.config).clone(),
    );
    for _ in 0..2 {
        assert_eq!(call(&h.app, "sk_m1", "10.0.0.1").await, ok());
    }
    assert_eq!(call(&other, "sk_m1", "10.0.0.1").await, ok());
    assert_eq!(call(&other, "sk_m1", "10.0.0.1").await, limited("1"));
    assert_eq!(
        call(&h.app, "sk_m1", "10.0.0.1").await,
        limited("1"),
        "the first learns from the store"
    );
}

#[tokio::test]
async fn an_address_sending_bad_keys_is_refused_before_its_keys_are_looked_up() {
    let h = harness().await;
    let unauthorized = (StatusCode::UNAUTHORIZED, "unauthorized".to_owned(), None);
    assert_eq!(call(&h.app, "sk_guess1", "203.0.113.9").await, unauthorized);
    assert_eq!(call(&h.app, "sk_guess2", "203.0.113.9").await, unauthorized);
    assert_eq!(call(&h.app, "sk_guess3", "203.0.113.9").await, limited("1"));
    assert_eq!(
        call(&h.app, "sk_m1", "203.0.113.9").await,
        limited("1"),
        "a flooding address is refused whatever key it sends, until its bucket refills"
    );
    assert_eq!(
        call(&h.app, "sk_m1", "198.51.100.7").await,
        ok(),
        "other addresses are not"
    );
    h.clock.advance(time::Duration::seconds(1));
    assert_eq!(call(&h.app, "sk_m1", "203.0.113.9").await, ok());
    assert_eq!(
        call(&h.app, "sk_m1", "203.0.113.9").await,
        ok(),
        "authenticated calls do not count against the address"
    );
}
