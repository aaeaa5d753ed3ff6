//! The operator console: server-rendered pages under `/console`, mounted beside the API by the
//! same HTTP application (the local runner, the API function). Its forms post to the same use
//! cases the API calls; nothing here decides anything about a request.
//!
//! - Sign-in turns an operator key into a session ([`crate::sessions`]): a random token in an
//!   HttpOnly, SameSite=Strict cookie (`Secure` outside loopback), its hash in the store.
//! - Every POST carries the session's form token (`csrf`); the sign-in form, before there is a
//!   session, a double-submit token from a cookie of its own.
//! - Every page is sent with a strict Content-Security-Policy (no script at all, the one
//!   stylesheet from here), no framing and no caching.
//!
//! The pages are in `auth.rs` (sign-in, sign-out), `queue.rs`, `detail.rs` (one request and
//! the actions on it), `search.rs`, `attention.rs` and `providers.rs`; `layout.rs` holds the
//! shell and the parts they share; this module the router and the request plumbing.

mod attention;
mod auth;
pub(crate) mod detail;
pub(crate) mod layout;
mod providers;
mod queue;
mod search;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use time::Duration;

use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::pages::{self, FormRefused, cookie, loopback, same_secret, security_headers};
use crate::sessions::{SESSION_LIFETIME, Session};

/// The session cookie.
const SESSION_COOKIE: &str = "cashout_console";
/// The sign-in form's double-submit token, before there is a session.
const LOGIN_COOKIE: &str = "cashout_console_login";
/// A one-time message for the next page (see [`detail::Flash`]).
const FLASH_COOKIE: &str = "cashout_console_flash";
/// Where every console cookie is sent.
const COOKIE_PATH: &str = "/console";
/// The console's flash cookie ([`pages::FlashCookie`]).
const FLASH: pages::FlashCookie = pages::FlashCookie {
    name: FLASH_COOKIE,
    path: COOKIE_PATH,
};
/// The page a signed-out browser is sent to.
const SIGN_IN: &str = "/console/sign-in";
/// The page after sign-in.
const QUEUE: &str = "/console/queue";

/// How the console behaves; [`Default`] is what deployments use.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// How long a session lasts from sign-in (absolute).
    pub session_lifetime: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            session_lifetime: SESSION_LIFETIME,
        }
    }
}

/// The console's router state: the app and the options.
pub(crate) struct Console<A> {
    app: A,
    options: Arc<ConsoleOptions>,
}

impl<A: Clone> Clone for Console<A> {
    fn clone(&self) -> Self {
        Console {
            app: self.app.clone(),
            options: self.options.clone(),
        }
    }
}

/// The console's router (every route under `/console`), with the default options.
pub fn console_router<A: HttpApp>(app: A) -> Router {
    console_router_with(app, ConsoleOptions::default())
}

/// The console's router with these options.
pub fn console_router_with<A: HttpApp>(app: A, options: ConsoleOptions) -> Router {
    Router::new()
        .route("/console", get(index::<A>))
        .route("/console/", get(index::<A>))
        .route("/console/assets/console.css", get(stylesheet))
        .route(
            "/console/sign-in",
            get(auth::sign_in_page::<A>).post(auth::sign_in::<A>),
        )
        .route("/console/sign-out", post(auth::sign_out::<A>))
        .route("/console/queue", get(queue::queue::<A>))
        .route("/console/queue/approve", post(queue::bulk_approve::<A>))
        .route("/console/requests/{id}", get(detail::detail::<A>))
        .route("/console/requests/{id}/{action}", post(detail::act::<A>))
        .route(
            "/console/requests/{id}/invoices/{invoice_id}/exclude",
            post(detail::exclude::<A>),
        )
        .route("/console/search", get(search::search::<A>))
        .route("/console/attention", get(attention::attention::<A>))
        .route("/console/events/{event_id}/redeliver", post(attention::redeliver::<A>))
        .route("/console/providers", get(providers::providers::<A>))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Console {
            app,
            options: Arc::new(options),
        })
}

async fn index<A: HttpApp>(State(console): State<Console<A>>, headers: HeaderMap) -> Response {
    let signed_in = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => matches!(console.app.app().session(token).await, Ok(Some(_))),
        None => false,
    };
    Redirect::to(if signed_in { QUEUE } else { SIGN_IN }).into_response()
}

/// The console's one stylesheet, compiled in.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

/// A `Set-Cookie` value for a console cookie; `max_age` 0 deletes it.
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    pages::set_cookie(name, value, COOKIE_PATH, max_age, secure)
}

/// A 303 to the sign-in page that also drops the session cookie.
fn to_sign_in(secure: bool) -> Response {
    let mut response = Redirect::to(SIGN_IN).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure));
    response
}

/// A signed-in operator, and whether their cookies must be `Secure`. A page without a live
/// session answers 303 to the sign-in page.
pub(crate) struct SignedIn {
    session: Session,
    secure: bool,
}

impl<A: HttpApp> FromRequestParts<Console<A>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console<A>) -> Result<Self, Self::Rejection> {
        let secure = !loopback(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to(SIGN_IN).into_response());
        };
        match console.app.app().session(token).await {
            Ok(Some(session)) => Ok(SignedIn { session, secure }),
            Ok(None) => Err(to_sign_in(secure)),
            Err(e) => Err(layout::failure_page(None, &e)),
        }
    }
}

/// The fields of a form posted by a signed-in operator, its `csrf` field checked against the
/// session's: a form without it, or with another session's, is refused with 403 before any
/// handler runs.
pub(crate) struct Posted {
    who: SignedIn,
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of a field.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order.
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<A: HttpApp> FromRequest<Console<A>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console<A>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, console).await?;
        match pages::checked_form(Request::from_parts(parts, body), console, &who.session.csrf_token).await {
            Ok(fields) => Ok(Posted { who, fields }),
            Err(FormRefused::Unreadable(status)) => Err(layout::message_page(
                Some(&who),
                status,
                "The form could not be read. Reload the page and try again.",
            )),
            Err(FormRefused::Forged) => Err(forged(Some(&who))),
        }
    }
}

/// The answer to a form without a valid token: 403, nothing done.
fn forged(who: Option<&SignedIn>) -> Response {
    layout::message_page(
        who,
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from the console. Reload the page and try again.",
    )
}

/// The status a use case's error answers with on a page (as the API would).
fn status_of(error: &AppError) -> StatusCode {
    StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
pub(crate) mod tests;
