//! The console through its router, as a browser would use it (a cookie jar, forms, redirects),
//! on the memory store with a manual clock: sessions and their cookies, login and form CSRF,
//! expiry, sign-out, revocation, and the review actions with their messages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use cashout_core::auth::{ApiKey, OperatorName, OperatorRole, Principal};
use cashout_core::ids::{CashoutRequestId, MerchantId, PayoutReference, ProviderPayoutId};
use cashout_core::ports::{
    CashoutStore, InboundNotification, ManualClock, PayoutMethod, PayoutMethodQuery, PayoutOrder, PayoutProvider,
    PeopleStore, ProviderError, ProviderErrorKind, ProviderNotification, SequentialIds,
};
use cashout_core::provider::{ProviderName, ProviderPayout};
use cashout_core::review::{ApprovalPolicy, Approvers, Figure, PolicyRule, PolicyScope};
use cashout_core::status::CashoutStatus;
use cashout_store::memory::MemoryStore;
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceExt;

use super::{ConsoleOptions, console_router_with};
use crate::{App, AppConfig};

/// A provider that is never reached: these tests stop before dispatch.
struct Unreachable;

fn down(provider: ProviderName) -> ProviderError {
    ProviderError::new(
        provider,
        ProviderErrorKind::Retryable { retry_after: None },
        "not reached in console tests",
    )
}

impl PayoutProvider for Unreachable {
    async fn create_payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        Err(down(order.provider))
    }
    async fn find_payout(&self, p: ProviderName, _: PayoutReference) -> Result<Option<ProviderPayout>, ProviderError> {
        Err(down(p))
    }
    async fn payout_status(
        &self,
        p: ProviderName,
        _: &ProviderPayoutId,
        _: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        Err(down(p))
    }
    async fn cancel_payout(
        &self,
        p: ProviderName,
        _: &ProviderPayoutId,
        _: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        Err(down(p))
    }
    fn parse_notification(
        &self,
        p: ProviderName,
        _: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        Err(down(p))
    }
    async fn payout_methods(&self, p: ProviderName, _: &PayoutMethodQuery) -> Result<Vec<PayoutMethod>, ProviderError> {
        Err(down(p))
    }
}

type ConsoleApp = App<MemoryStore, MemoryStore, Unreachable, ()>;

/// The app with a merchant `m1` (key `sk_m1`), the admin `root` (`sk_root`) and the reviewers
/// `alice` and `bob` (`sk_alice`, `sk_bob`); requests over 1,000 need `approvers` operators.
struct Fixture {
    app: ConsoleApp,
    clock: Arc<ManualClock>,
    router: axum::Router,
}

async fn fixture(approvers: Approvers) -> Fixture {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
    ));
    let store = Arc::new(MemoryStore::new(clock.clone()).unwrap());
    let config = AppConfig {
        review: ApprovalPolicy {
            rules: vec![PolicyRule::AmountLimit {
                limits: BTreeMap::new(),
                other_currencies: Some(Figure(Decimal::from(1_000))),
                approvers,
            }],
            ..ApprovalPolicy::limit_only(PolicyScope::Default, Decimal::from(1_000))
        },
        ..AppConfig::default()
    };
    let app = App::new(
        store.clone(),
        store,
        Arc::new(Unreachable),
        Arc::new(()),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        config,
    );
    app.register_api_key(
        &ApiKey::new("sk_m1"),
        Principal::Merchant {
            merchant_id: MerchantId::new("m1").unwrap(),
        },
        None,
    )
    .await
    .unwrap();
    for (name, role) in [
        ("root", OperatorRole::Admin),
        ("alice", OperatorRole::Reviewer),
        ("bob", OperatorRole::Reviewer),
    ] {
        app.ensure_operator(
            OperatorName::new(name).unwrap(),
            role,
            &ApiKey::new(format!("sk_{name}")),
        )
        .await
        .unwrap();
    }
    let router = crate::http::finish(console_router_with(app.clone(), ConsoleOptions::default()));
    Fixture { app, clock, router }
}

impl Fixture {
    /// A request of `amount` BRL by merchant m1, with invoices INV-1 and INV-2.
    async fn create(&self, key: &str, amount: &str) -> CashoutRequestId {
        let body = json!({
            "currency": "BRL", "country": "BR", "requested_by": "ana@clinic.example", "provider": "d24",
            "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                            "bank_code": "001", "bank_branch": "1234", "bank_account": "0012345678", "account_type": "C"},
            "invoices": [
                {"invoice_id": "INV-1", "payer": {"tax_id": format!("112223330001-{key}"), "name": "Health Co"}, "amount": amount, "advance_percentage": "100"},
                {"invoice_id": "INV-2", "payer": {"tax_id": format!("112223330001-{key}"), "name": "Health Co"}, "amount": "100.00", "advance_percentage": "100"}
            ]
        });
        let created = self
            .app
            .create_cashout(&MerchantId::new("m1").unwrap(), Some(key), body.to_string().as_bytes())
            .await
            .unwrap();
        created.id()
    }

    async fn status(&self, id: CashoutRequestId) -> CashoutStatus {
        self.app.store.get_request(id).await.unwrap().unwrap().status()
    }

    fn browser(&self, host: &str) -> Browser {
        Browser {
            router: self.router.clone(),
            host: host.to_owned(),
            jar: BTreeMap::new(),
        }
    }

    /// A browser on 127.0.0.1 signed in with `key`.
    async fn signed_in(&self, key: &str) -> Browser {
        let mut b = self.browser("127.0.0.1:8080");
        let page = b.get("/console/sign-in").await;
        let csrf = page.csrf();
        let answer = b.post("/console/sign-in", &[("csrf", &csrf), ("key", key)]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        b
    }
}

/// One answer, its body as text (the portal's tests browse with it too).
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The first form token on the page.
    pub(crate) fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

/// A browser: a cookie jar and a host, requests through the router.
pub(crate) struct Browser {
    router: axum::Router,
    host: String,
    pub(crate) jar: BTreeMap<String, String>,
}

impl Browser {
    /// A browser with an empty jar, on `host`.
    pub(crate) fn new(router: axum::Router, host: &str) -> Self {
        Browser {
            router,
            host: host.to_owned(),
            jar: BTreeMap::new(),
        }
    }

    pub(crate) async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let mut request = request
            .header(header::HOST, &self.host)
            .extension(crate::http::limit::ClientAddr(std::net::IpAddr::from([192, 0, 2, 7])));
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, cookies.join("; "));
        }
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    /// Posts a form with the token of the page at `from`.
    pub(crate) async fn submit(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }
}

#[tokio::test]
async fn console_sign_in_with_an_operator_key_sets_an_http_only_strict_cookie_without_secure_on_loopback() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.browser("127.0.0.1:8080");
    let page = b.get("/console/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"<html lang="en">"#));
    assert!(page.body.contains(r#"name="key" type="password""#));
    assert!(page.body.contains(r#"<label for="key">Operator key</label>"#));
    let answer = b
        .post("/console/sign-in", &[("csrf", &page.csrf()), ("key", "sk_alice")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/console/queue");
    let cookie = answer.set_cookie("cashout_console").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The store keeps the token's hash, never the token.
    let token = b.jar["cashout_console"].clone();
    assert_eq!(token.len(), 64);
    assert!(f.app.store.get_session(&token).await.unwrap().is_none());
    let stored = f
        .app
        .store
        .get_session(&cashout_core::auth::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.principal, Principal::reviewer("alice"));

    let queue = b.get("/console/queue").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains("Signed in as alice (reviewer)"));
    assert!(queue.body.contains("<h1>Review queue</h1>"));
    assert_eq!(b.get("/console").await.location(), "/console/queue");
}

#[tokio::test]
async fn console_cookies_are_secure_outside_loopback() {
    let f = fixture(Approvers::ONE).await;
    for (host, secure) in [
        ("localhost:8080", false),
        ("[::1]:8080", false),
        ("console.example.com", true),
        ("abc.execute-api.eu-west-1.amazonaws.com", true),
        ("127.0.0.1.evil.example", true),
    ] {
        let mut b = f.browser(host);
        let page = b.get("/console/sign-in").await;
        assert_eq!(
            page.set_cookie("cashout_console_login").unwrap().contains("; Secure"),
            secure,
            "{host}"
        );
        let answer = b
            .post("/console/sign-in", &[("csrf", &page.csrf()), ("key", "sk_root")])
            .await;
        let cookie = answer.set_cookie("cashout_console").unwrap();
        assert_eq!(cookie.contains("; Secure"), secure, "{host}: {cookie}");
    }
}

#[tokio::test]
async fn console_refuses_merchant_unknown_and_revoked_keys_with_the_same_alert() {
    let f = fixture(Approvers::ONE).await;
    f.app.revoke(&OperatorName::new("bob").unwrap()).await.unwrap();
    for key in ["sk_m1", "sk_nobody", "sk_bob", ""] {
        let mut b = f.browser("127.0.0.1:8080");
        let page = b.get("/console/sign-in").await;
        let answer = b
            .post("/console/sign-in", &[("csrf", &page.csrf()), ("key", key)])
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(answer.body.contains(r#"role="alert""#), "{key}");
        assert!(answer.body.contains("That key cannot sign in to the console"), "{key}");
        assert!(answer.set_cookie("cashout_console").is_none(), "{key}");
        assert_eq!(b.get("/console/queue").await.location(), "/console/sign-in");
    }
}

#[tokio::test]
async fn console_sign_in_without_the_login_token_is_refused() {
    let f = fixture(Approvers::ONE).await;
    // A form posted from elsewhere: no login cookie, or a token that is not the cookie's.
    let mut b = f.browser("127.0.0.1:8080");
    let answer = b.post("/console/sign-in", &[("csrf", "x"), ("key", "sk_root")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie("cashout_console").is_none());
    b.get("/console/sign-in").await;
    let answer = b
        .post("/console/sign-in", &[("csrf", &"0".repeat(64)), ("key", "sk_root")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer
            .body
            .contains("This form has expired or did not come from the console.")
    );
    assert!(answer.set_cookie("cashout_console").is_none());
}

#[tokio::test]
async fn console_post_without_the_form_token_is_403_and_changes_nothing() {
    let f = fixture(Approvers::ONE).await;
    let id = f.create("k1", "5000.00").await;
    assert_eq!(f.status(id).await, CashoutStatus::UnderReview);
    let mut b = f.signed_in("sk_alice").await;
    let path = format!("/console/requests/{id}/approve");
    for fields in [vec![], vec![("csrf", "not-the-token")]] {
        let answer = b.post(&path, &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(answer.body.contains(r#"role="alert""#));
        assert!(
            answer
                .body
                .contains("This form has expired or did not come from the console. Reload the page and try again.")
        );
    }
    let bulk = b.post("/console/queue/approve", &[("id", &id.to_string())]).await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
    let out = b.post("/console/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(f.status(id).await, CashoutStatus::UnderReview);
    assert!(
        f.app
            .store
            .get_request(id)
            .await
            .unwrap()
            .unwrap()
            .review_state()
            .unwrap()
            .approvals
            .is_empty()
    );
    // Another session's token does not do either.
    let mut other = f.signed_in("sk_bob").await;
    let foreign = other.get("/console/queue").await.csrf();
    let answer = b.post(&path, &[("csrf", &foreign)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(f.status(id).await, CashoutStatus::UnderReview);
}

#[tokio::test]
async fn console_sign_out_ends_the_session_and_the_old_cookie_opens_nothing() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.signed_in("sk_alice").await;
    let old = b.jar.clone();
    let page = b.get("/console/queue").await;
    assert!(page.body.contains(r#"action="/console/sign-out""#));
    let out = b.post("/console/sign-out", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/console/sign-in");
    assert!(out.set_cookie("cashout_console").unwrap().contains("Max-Age=0"));
    // The browser dropped it; a copy kept elsewhere is refused too.
    b.jar = old;
    let again = b.get("/console/queue").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), "/console/sign-in");
    assert_eq!(b.get("/console").await.location(), "/console/sign-in");
}

#[tokio::test]
async fn console_expired_session_redirects_to_sign_in() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.signed_in("sk_alice").await;
    let hash = cashout_core::auth::token_hash(&b.jar["cashout_console"]);
    f.clock.advance(time::Duration::hours(8) - time::Duration::seconds(1));
    assert_eq!(b.get("/console/queue").await.status, StatusCode::OK);
    f.clock.advance(time::Duration::seconds(1));
    let page = b.get("/console/queue").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/sign-in");
    // The expired session is deleted on the way.
    assert!(f.app.store.get_session(&hash).await.unwrap().is_none());
}

#[tokio::test]
async fn console_revoking_an_operator_signs_their_sessions_out_at_once() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.signed_in("sk_alice").await;
    assert_eq!(b.get("/console/queue").await.status, StatusCode::OK);
    f.app.revoke(&OperatorName::new("alice").unwrap()).await.unwrap();
    assert_eq!(b.get("/console/queue").await.location(), "/console/sign-in");
}

#[tokio::test]
async fn console_pages_carry_the_security_headers() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.signed_in("sk_root").await;
    for path in [
        "/console/sign-in",
        "/console/queue",
        "/console/search",
        "/console/attention",
        "/console/providers",
    ] {
        let page = b.get(path).await;
        let h = |name: header::HeaderName| page.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            h(header::CONTENT_SECURITY_POLICY).as_deref(),
            Some("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
            "{path}"
        );
        assert_eq!(h(header::X_FRAME_OPTIONS).as_deref(), Some("DENY"), "{path}");
        assert_eq!(h(header::REFERRER_POLICY).as_deref(), Some("same-origin"), "{path}");
        if path != "/console/sign-in" {
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            assert_eq!(h(header::CACHE_CONTROL).as_deref(), Some("no-store"), "{path}");
            for link in ["Queue", "Search", "Attention", "Providers"] {
                assert!(page.body.contains(&format!(">{link}</a>")), "{path}: {link}");
            }
            assert!(page.body.contains("Signed in as root (admin)"), "{path}");
        }
        assert!(!page.body.contains("<script"), "{path}");
        assert!(!page.body.contains("style="), "{path}");
    }
    let css = b.get("/console/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn console_four_eyes_approval_from_the_detail_page_with_messages_and_the_409() {
    let f = fixture(Approvers::TWO).await;
    let id = f.create("k1", "5000.00").await;
    let detail = format!("/console/requests/{id}");
    let mut alice = f.signed_in("sk_alice").await;

    let queue = alice.get("/console/queue").await;
    assert!(
        queue
            .body
            .contains(&format!(r#"value="{id}" aria-label="Select {id}""#))
    );
    assert!(queue.body.contains("0 of 2"));

    let page = alice.get(&detail).await;
    assert!(
        page.body.contains(r#"id="status">UNDER_REVIEW</span>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Approvals: 0 of 2"));
    assert!(page.body.contains(">Exclude INV-1</button>"));
    assert!(page.body.contains(r#"<label for="reason">Reason</label>"#));
    assert!(!page.body.contains(">Retry</button>"), "a reviewer sees no retry");
    // The account is masked.
    assert!(!page.body.contains("0012345678"));
    assert!(page.body.contains("5678"));

    let answer = alice.submit(&detail, &format!("{detail}/approve"), &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), detail);
    let after = alice.get(&detail).await;
    assert!(
        after
            .body
            .contains(r#"id="flash" role="status">Approval recorded (1 of 2)</p>"#),
        "{}",
        after.body
    );
    assert!(after.body.contains("Approvals: 1 of 2"));
    assert!(
        !after.body.contains(">Approve</button>"),
        "alice approved: no second Approve for her"
    );
    assert!(after.body.contains("another operator must approve it too"));
    // The message is shown once.
    assert!(!alice.get(&detail).await.body.contains(r#"id="flash""#));

    let twice = alice.submit(&detail, &format!("{detail}/approve"), &[]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.body.contains(r#"role="alert""#));
    assert!(twice.body.contains("has already approved"), "{}", twice.body);
    assert_eq!(f.status(id).await, CashoutStatus::UnderReview);

    let mut bob = f.signed_in("sk_bob").await;
    assert!(bob.get(&detail).await.body.contains(">Approve</button>"));
    bob.submit(&detail, &format!("{detail}/approve"), &[]).await;
    let done = bob.get(&detail).await;
    assert!(done.body.contains(">Approved</p>"), "{}", done.body);
    assert!(done.body.contains(r#"id="status">APPROVED</span>"#));
    assert!(done.body.contains("by bob"));
    assert_eq!(f.status(id).await, CashoutStatus::Approved);
}

#[tokio::test]
async fn console_exclude_then_reject_with_a_reason() {
    let f = fixture(Approvers::ONE).await;
    let id = f.create("k1", "5000.00").await;
    let detail = format!("/console/requests/{id}");
    let mut b = f.signed_in("sk_alice").await;
    let excluded = b
        .submit(&detail, &format!("{detail}/invoices/INV-2/exclude"), &[])
        .await;
    assert_eq!(excluded.status, StatusCode::SEE_OTHER);
    let page = b.get(&detail).await;
    assert!(page.body.contains("Invoice INV-2 excluded"), "{}", page.body);
    assert!(!page.body.contains(">Exclude INV-2</button>"));

    let empty = b.submit(&detail, &format!("{detail}/reject"), &[("reason", " ")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains(r#"role="alert""#));
    let rejected = b
        .submit(
            &detail,
            &format!("{detail}/reject"),
            &[("reason", "duplicate <b>invoice</b>")],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER);
    let page = b.get(&detail).await;
    assert!(page.body.contains(">Rejected</p>"));
    assert!(page.body.contains("REJECTED"));
    // The reason is on the timeline, escaped, with who rejected.
    assert!(
        page.body.contains("duplicate &lt;b&gt;invoice&lt;/b&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("by alice"));
    assert_eq!(f.status(id).await, CashoutStatus::Rejected);
}

#[tokio::test]
async fn console_bulk_approval_answers_one_row_per_request() {
    let f = fixture(Approvers::ONE).await;
    let a = f.create("k1", "5000.00").await;
    let c = f.create("k2", "6000.00").await;
    let mut b = f.signed_in("sk_alice").await;
    let results = b
        .submit(
            "/console/queue",
            "/console/queue/approve",
            &[("id", &a.to_string()), ("id", &c.to_string())],
        )
        .await;
    assert_eq!(results.status, StatusCode::OK);
    assert!(results.body.contains("<h1>Bulk approval</h1>"));
    assert_eq!(results.body.matches(">Approved</td>").count(), 2, "{}", results.body);
    assert_eq!(f.status(a).await, CashoutStatus::Approved);
    assert_eq!(f.status(c).await, CashoutStatus::Approved);
    let again = b
        .submit("/console/queue", "/console/queue/approve", &[("id", &a.to_string())])
        .await;
    assert!(again.body.contains("Refused: "), "{}", again.body);
}

#[tokio::test]
async fn console_search_finds_by_status_and_refuses_a_bad_date() {
    let f = fixture(Approvers::ONE).await;
    let id = f.create("k1", "5000.00").await;
    let mut b = f.signed_in("sk_alice").await;
    let found = b.get("/console/search?status=UNDER_REVIEW&merchant_id=m1").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.body.contains(&format!(r#"href="/console/requests/{id}""#)),
        "{}",
        found.body
    );
    let none = b.get("/console/search?status=PAID").await;
    assert!(none.body.contains("No request matches."));
    let bad = b.get("/console/search?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains(r#"role="alert""#));
}

#[tokio::test]
async fn console_reviewers_see_no_retry_or_redeliver_and_the_app_refuses_them() {
    let f = fixture(Approvers::ONE).await;
    let id = f.create("k1", "5000.00").await;
    let mut b = f.signed_in("sk_alice").await;
    let attention = b.get("/console/attention").await;
    assert_eq!(attention.status, StatusCode::OK);
    for heading in ["Flagged", "Processor errors", "Dead letters"] {
        assert!(attention.body.contains(&format!(">{heading}</h2>")), "{heading}");
    }
    assert!(!attention.body.contains(">Retry</button>"));
    assert!(!attention.body.contains(">Redeliver</button>"));
    let retry = b
        .submit("/console/queue", &format!("/console/requests/{id}/retry"), &[])
        .await;
    assert_eq!(retry.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn console_sign_in_shares_the_api_limit_of_failed_authentications_per_address() {
    let f = fixture(Approvers::ONE).await;
    let mut b = f.browser("127.0.0.1:8080");
    let csrf = b.get("/console/sign-in").await.csrf();
    let mut refused = 0;
    let mut limited = None;
    for _ in 0..100 {
        let answer = b
            .post("/console/sign-in", &[("csrf", &csrf), ("key", "sk_guess")])
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        refused += 1;
    }
    let limited = limited.expect("guessing is limited");
    assert!(refused >= 1, "some guesses are answered");
    assert!(limited.body.contains("Too many failed sign-ins"), "{}", limited.body);
    // Even the right key waits until the address's bucket refills.
    let right = b
        .post("/console/sign-in", &[("csrf", &csrf), ("key", "sk_alice")])
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    f.clock.advance(time::Duration::seconds(60));
    let right = b
        .post("/console/sign-in", &[("csrf", &csrf), ("key", "sk_alice")])
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
}
