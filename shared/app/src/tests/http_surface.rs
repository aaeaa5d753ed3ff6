//! The router's answers that do not depend on a use case: authentication, body limits,
//! unknown routes and methods — all problem+json with a stable code.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::support::Harness;
use crate::http::{api_router, finish};

async fn send(h: &Harness, request: Request<Body>) -> (StatusCode, String, serde_json::Value) {
    let response = finish(api_router(h.app.clone())).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, content_type, serde_json::from_slice(&body).unwrap_or_default())
}

fn post(path: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut r = Request::post(path)
        .header("content-type", "application/json")
        .header("idempotency-key", "k");
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    r.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn errors_are_problem_json_with_stable_codes() {
    let h = Harness::new().await;
    let cases = [
        (
            post("/v1/cashout-requests", None, b"{}".to_vec()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            post("/v1/cashout-requests", Some("sk_nope"), b"{}".to_vec()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            post("/v1/cashout-requests", Some("sk_m1"), vec![b' '; 1024 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            post("/v1/cashout-requests", Some("sk_m1"), b"[1,".to_vec()),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            post("/v1/cashout-requests", Some("sk_m1"), br#"{"currency":"BRL"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post("/v1/nowhere", Some("sk_m1"), vec![]),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::delete("/v1/cashout-requests")
                .header("authorization", "Bearer sk_m1")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let path = request.uri().to_string();
        let (got, content_type, problem) = send(&h, request).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{path}: {problem}"
        );
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert_eq!(problem["status"], status.as_u16());
        assert!(problem["type"].as_str().unwrap().ends_with(code));
    }
    let (_, _, problem) = send(
        &h,
        post("/v1/cashout-requests", Some("sk_m1"), br#"{"currency":"BRL"}"#.to_vec()),
    )
    .await;
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"country") && fields.contains(&"invoices"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn an_overloaded_pipeline_answers_429_with_retry_after_and_writes_nothing() {
    let h = Harness::with(|c| c.max_backlog = Some(100)).await;
    h.app.pipeline.set_backlog(101);
    let body = serde_json::to_vec(&super::support::body("1000.00")).unwrap();
    let response = finish(api_router(h.app.clone()))
        .oneshot(post("/v1/cashout-requests", Some("sk_m1"), body.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let (_, content_type, problem) = send(&h, post("/v1/cashout-requests", Some("sk_m1"), body.clone())).await;
    assert_eq!(
        (content_type.as_str(), problem["code"].as_str()),
        ("application/problem+json", Some("overloaded"))
    );
    let page = h
        .app
        .list_cashouts(&super::support::merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert!(page.data.is_empty(), "a refused create writes nothing");
    // At the bound, work is accepted again; the same key then creates the request.
    h.app.pipeline.set_backlog(100);
    let (status, _, created) = send(&h, post("/v1/cashout-requests", Some("sk_m1"), body)).await;
    assert_eq!(
        (status, created["status"].as_str()),
        (StatusCode::CREATED, Some("APPROVED"))
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let h = Harness::new().await;
    let (status, _, doc) = send(&h, Request::get("/v1/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/cashout-requests",
        "/v1/cashout-requests/{id}",
        "/v1/cashout-requests/{id}/events",
        "/v1/cashout-requests/{id}/cancel",
        "/v1/cashout-requests/{id}/approve",
        "/v1/cashout-requests/{id}/reject",
        "/v1/cashout-requests/{id}/invoices/{invoice_id}/exclude",
        "/v1/webhook-endpoints",
        "/v1/webhook-endpoints/{id}",
        "/v1/webhook-endpoints/{id}/rotate-secret",
        "/v1/webhook-endpoints/{id}/attempts",
        "/v1/events/{event_id}/redeliver",
        "/v1/payout-methods",
        "/webhooks/{provider}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}
