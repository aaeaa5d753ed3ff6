//! The portal through its router and the API's, as a browser and a merchant's system would use
//! them, on the SQLite store with a manual clock and a recording webhook receiver: links (single
//! use, expiry, operators refused), the session cookie, CSRF, one merchant never reaching
//! another's endpoints or requests, and the endpoint pages' forms.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cashout_core::auth::{ApiKey, OperatorName, OperatorRole};
use cashout_core::ids::EndpointId;
use serde_json::Value;
use time::Duration;
use tower::ServiceExt;

use crate::http::console::tests::{Browser, Page};
use crate::tests::support::{Harness, create_id, merchant};

const LOOPBACK: &str = "127.0.0.1:8080";

/// The API and the portal, as cashout-local mounts them.
fn router(h: &Harness) -> axum::Router {
    crate::http::finish(crate::http::api_router(h.app.clone()).merge(super::portal_router(h.app.clone())))
}

/// `POST /v1/portal-sessions` with `key`: the status and the JSON answer.
async fn mint(h: &Harness, key: &str) -> (StatusCode, Value) {
    let request = Request::post("/v1/portal-sessions")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::HOST, LOOPBACK)
        .extension(crate::http::limit::ClientAddr(std::net::IpAddr::from([192, 0, 2, 9])))
        .body(Body::empty())
        .unwrap();
    let response = router(h).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The path and query of a fresh link of `key`'s merchant.
async fn link(h: &Harness, key: &str) -> String {
    let (status, answer) = mint(h, key).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let url = answer["url"].as_str().unwrap();
    url.strip_prefix("https://cashout.example").unwrap().to_owned()
}

/// A browser on `host` that opened a fresh link of `key`'s merchant.
async fn entered(h: &Harness, key: &str, host: &str) -> (Browser, Page) {
    let path = link(h, key).await;
    let mut b = Browser::new(router(h), host);
    let answer = b.get(&path).await;
    (b, answer)
}

async fn second_merchant(h: &Harness) {
    h.app
        .register_api_key(&ApiKey::new("sk_m2"), merchant("m2"), None)
        .await
        .unwrap();
}

/// The endpoint id in a page's "Endpoint <id> added".
fn added_id(page: &Page) -> EndpointId {
    let at = page.body.find("ep_").expect("an endpoint id");
    page.body[at..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn portal_link_is_minted_for_ten_minutes_and_opens_a_strict_http_only_session_once() {
    let h = Harness::new().await;
    let (status, answer) = mint(&h, "sk_m1").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let url = answer["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://cashout.example/portal/enter?token="),
        "the configured public URL: {url}"
    );
    let expires = time::OffsetDateTime::parse(
        answer["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires, h.now() + Duration::minutes(10));
    let path = url.strip_prefix("https://cashout.example").unwrap();

    let mut b = Browser::new(router(&h), LOOPBACK);
    let answer = b.get(path).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/portal");
    let cookie = answer.set_cookie("cashout_portal").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/portal", "Max-Age=3600"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: {cookie}");
    let home = b.get("/portal").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("<h1>Webhook endpoints</h1>"));
    assert!(home.body.contains("Signed in as m1"));
    for link in ["Endpoints", "Cashout requests", "Sign out"] {
        assert!(home.body.contains(link), "{link} missing");
    }
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(home.headers[name], value);
    }

    // The link is used: another browser (or the same) gets the expired page, no session.
    let mut other = Browser::new(router(&h), LOOPBACK);
    let again = other.get(path).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains(r#"role="alert""#));
    assert!(again.body.contains(super::EXPIRED));
    assert!(again.set_cookie("cashout_portal").is_none());
    assert_eq!(other.get("/portal").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn portal_cookie_is_secure_outside_loopback() {
    let h = Harness::new().await;
    let (_, answer) = entered(&h, "sk_m1", "cashout.example").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.set_cookie("cashout_portal").unwrap().contains("; Secure"));
}

#[tokio::test]
async fn portal_link_expires_after_ten_minutes_and_its_session_after_an_hour() {
    let h = Harness::new().await;
    let path = link(&h, "sk_m1").await;
    h.clock.advance(Duration::minutes(10));
    let mut late = Browser::new(router(&h), LOOPBACK);
    assert_eq!(late.get(&path).await.status, StatusCode::UNAUTHORIZED);

    let (mut b, _) = entered(&h, "sk_m1", LOOPBACK).await;
    h.clock.advance(Duration::minutes(59));
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    h.clock.advance(Duration::minutes(1));
    let expired = b.get("/portal").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body.contains(super::EXPIRED));
}

#[tokio::test]
async fn portal_links_cannot_be_minted_with_an_operator_key() {
    let h = Harness::new().await;
    h.app
        .ensure_operator(
            OperatorName::new("root").unwrap(),
            OperatorRole::Admin,
            &ApiKey::new("sk_root"),
        )
        .await
        .unwrap();
    let (status, answer) = mint(&h, "sk_root").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "forbidden");
    let (status, _) = mint(&h, "sk_nobody").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn portal_sign_out_ends_the_session_and_a_console_cookie_opens_nothing_here() {
    let h = Harness::new().await;
    let (mut b, _) = entered(&h, "sk_m1", LOOPBACK).await;
    let token = b.jar["cashout_portal"].clone();
    let out = b.submit("/portal", "/portal/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(!b.jar.contains_key("cashout_portal"));
    let mut thief = Browser::new(router(&h), LOOPBACK);
    thief.jar.insert("cashout_portal".into(), token);
    assert_eq!(thief.get("/portal").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn portal_form_without_or_with_a_foreign_csrf_token_changes_nothing() {
    let h = Harness::new().await;
    second_merchant(&h).await;
    let (mut b, _) = entered(&h, "sk_m1", LOOPBACK).await;
    let (mut other, _) = entered(&h, "sk_m2", LOOPBACK).await;
    let foreign = other.get("/portal").await.csrf();
    for fields in [
        vec![("url", "https://hooks.example/a")],
        vec![("csrf", foreign.as_str()), ("url", "https://hooks.example/a")],
    ] {
        let refused = b.post("/portal/endpoints", &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("did not come from the portal"));
    }
    assert!(h.app.list_endpoints(&merchant("m1")).await.unwrap().data.is_empty());
}

#[tokio::test]
async fn portal_session_of_one_merchant_cannot_open_or_act_on_another_merchants_endpoint_or_request() {
    let h = Harness::new().await;
    second_merchant(&h).await;
    let theirs = h
        .app
        .create_endpoint(&merchant("m1"), br#"{"url": "https://hooks.example/m1"}"#)
        .await
        .unwrap();
    let request = create_id(&h, "k1", "100.00").await;
    let (mut b, _) = entered(&h, "sk_m2", LOOPBACK).await;
    let home = b.get("/portal").await;
    assert!(!home.body.contains(&theirs.id));
    assert_eq!(
        b.get(&format!("/portal/endpoints/{}", theirs.id)).await.status,
        StatusCode::NOT_FOUND
    );
    for action in ["disable", "test", "rotate", "delete"] {
        let path = format!("/portal/endpoints/{}/{action}", theirs.id);
        assert_eq!(
            b.submit("/portal", &path, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{action}"
        );
    }
    assert_eq!(
        b.get(&format!("/portal/requests/{request}")).await.status,
        StatusCode::NOT_FOUND
    );
    let list = b.get("/portal/requests").await;
    assert!(!list.body.contains(&request.to_string()));
    let still = h
        .app
        .get_endpoint(&merchant("m1"), theirs.id.parse().unwrap())
        .await
        .unwrap();
    assert!(!still.disabled);
}

#[tokio::test]
async fn portal_adds_an_endpoint_shows_its_secret_once_then_edits_tests_and_recovers_it() {
    let h = Harness::new().await;
    let (mut b, _) = entered(&h, "sk_m1", LOOPBACK).await;
    let added = b
        .submit(
            "/portal",
            "/portal/endpoints",
            &[
                ("url", "https://hooks.example/in"),
                ("description", "Ledger <main>"),
                ("event_types", "cashout_request.status_update"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.contains(r#"id="new-secret""#));
    assert!(added.body.contains("whsec_"));
    assert!(added.body.contains("Ledger &lt;main&gt;"), "escaped");
    let id = added_id(&added);
    let again = b.get("/portal").await;
    assert!(
        !again.body.contains("whsec_") && !again.body.contains("new-secret"),
        "shown once"
    );
    assert!(again.body.contains("https://hooks.example/in"));

    let page = format!("/portal/endpoints/{id}");
    let shown = b.get(&page).await;
    assert!(shown.body.contains(&format!("Endpoint {id}")));
    assert!(shown.body.contains(r#"<label for="headers">Custom headers</label>"#));
    assert!(shown.body.contains(r#"<label for="since">Recover since (UTC)</label>"#));

    let saved = b
        .submit(
            &page,
            &format!("{page}/edit"),
            &[
                ("url", "https://hooks.example/v2"),
                ("description", ""),
                ("headers", "X-Team: payouts\r\n\r\nX-Env: test"),
                ("rate_limit", "5"),
                ("ordered", "true"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(b.get(&page).await.body.contains("Endpoint updated"));
    let view = h.app.get_endpoint(&merchant("m1"), id).await.unwrap();
    assert_eq!(view.url, "https://hooks.example/v2");
    assert_eq!(view.description, None);
    assert!(view.event_types.is_empty(), "no box checked: every type");
    assert_eq!(view.headers.get("x-team").map(String::as_str), Some("payouts"));
    assert_eq!(view.headers.get("x-env").map(String::as_str), Some("test"));
    assert_eq!(view.rate_limit, Some(5));
    assert!(view.ordered);

    let refused = b
        .submit(
            &page,
            &format!("{page}/edit"),
            &[("url", "https://hooks.example/v2"), ("headers", "Host: evil")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains(r#"role="alert""#));

    let tested = b.submit(&page, &format!("{page}/test"), &[]).await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER);
    let after = b.get(&page).await;
    assert!(
        after.body.contains("Test event delivered: HTTP 200 in 3 ms"),
        "{}",
        after.body
    );
    assert!(after.body.contains("evt_op_"), "the test attempt is in the log");

    let since = (h.now() - Duration::hours(1))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    let recovered = b.submit(&page, &format!("{page}/recover"), &[("since", &since)]).await;
    assert_eq!(recovered.status, StatusCode::SEE_OTHER, "{}", recovered.body);
    assert!(b.get(&page).await.body.contains("0 events queued for redelivery"));

    let disabled = b.submit(&page, &format!("{page}/disable"), &[]).await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert!(h.app.get_endpoint(&merchant("m1"), id).await.unwrap().disabled);
    let blocked = b.submit(&page, &format!("{page}/recover"), &[("since", &since)]).await;
    assert_eq!(
        blocked.status,
        StatusCode::CONFLICT,
        "a disabled endpoint is enabled before recovering"
    );

    let rotated = b
        .submit(&page, &format!("{page}/rotate"), &[("expire_now", "true")])
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(rotated.body.contains(r#"id="new-secret""#) && rotated.body.contains("whsec_"));
    assert!(!b.get(&page).await.body.contains("whsec_"));

    let deleted = b.submit(&page, &format!("{page}/delete"), &[]).await;
    assert_eq!(deleted.location(), "/portal");
    assert!(b.get("/portal").await.body.contains("Endpoint deleted"));
    assert!(h.app.list_endpoints(&merchant("m1")).await.unwrap().data.is_empty());
}

#[tokio::test]
async fn portal_lists_the_merchants_requests_and_shows_a_timeline() {
    let h = Harness::new().await;
    let id = create_id(&h, "k1", "100.00").await;
    let (mut b, _) = entered(&h, "sk_m1", LOOPBACK).await;
    let list = b.get("/portal/requests").await;
    assert!(list.body.contains("<h1>Cashout requests</h1>"));
    assert!(list.body.contains(&format!("/portal/requests/{id}")));
    let detail = b.get(&format!("/portal/requests/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains(&format!("Request {id}")));
    assert!(detail.body.contains("Timeline"));
    assert!(detail.body.contains("Created ("));
}
