//! The merchant portal: server-rendered pages under `/portal` where a merchant's staff manage the
//! merchant's webhook endpoints and read its cashout requests, without its API key. Same
//! conventions as the operator console (`crate::http::console`): no script, the assets in the
//! binary, a strict Content-Security-Policy, a random session token in an HttpOnly, SameSite=Strict
//! cookie (its hash stored), a form token on every form, and forms that post to the use cases the
//! API calls, with the session's merchant as the principal.
//!
//! - `GET /portal/enter?token=…` takes a single-use link minted by `POST /v1/portal-sessions`
//!   ([`crate::portal_sessions`]) and answers with the session cookie and a 303 to `/portal`.
//! - `endpoints.rs`: the endpoint list and "Add endpoint"; `endpoint.rs`: one endpoint, its edits,
//!   actions and attempts; `requests.rs`: the requests and their timelines; `layout.rs`: the
//!   shell, messages and the forms' parsing.

mod endpoint;
mod endpoints;
mod layout;
mod requests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use time::Duration;

use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::pages::{self, FormRefused, cookie, loopback, security_headers};
use crate::portal_sessions::PORTAL_SESSION_LIFETIME;
use crate::sessions::Session;

/// The session cookie.
const SESSION_COOKIE: &str = "cashout_portal";
/// A one-time message for the next page (see [`layout::Flash`]).
const FLASH_COOKIE: &str = "cashout_portal_flash";
/// Where every portal cookie is sent.
const COOKIE_PATH: &str = "/portal";
/// The portal's flash cookie ([`pages::FlashCookie`]).
const FLASH: pages::FlashCookie = pages::FlashCookie {
    name: FLASH_COOKIE,
    path: COOKIE_PATH,
};
/// The portal's first page.
const HOME: &str = "/portal";

/// What a used, expired or unknown link, or a page without a session, says.
pub(crate) const EXPIRED: &str = "This portal link has expired or was already used. Ask for a new one.";

/// How the portal behaves; [`Default`] is what deployments use.
#[derive(Debug, Clone)]
pub struct PortalOptions {
    /// How long a session lasts from the link's opening (absolute).
    pub session_lifetime: Duration,
}

impl Default for PortalOptions {
    fn default() -> Self {
        PortalOptions {
            session_lifetime: PORTAL_SESSION_LIFETIME,
        }
    }
}

/// The portal's router state: the app and the options.
pub(crate) struct Portal<A> {
    app: A,
    options: Arc<PortalOptions>,
}

impl<A: Clone> Clone for Portal<A> {
    fn clone(&self) -> Self {
        Portal {
            app: self.app.clone(),
            options: self.options.clone(),
        }
    }
}

/// The portal's router (every route under `/portal`), with the default options.
pub fn portal_router<A: HttpApp>(app: A) -> Router {
    portal_router_with(app, PortalOptions::default())
}

/// The portal's router with these options.
pub fn portal_router_with<A: HttpApp>(app: A, options: PortalOptions) -> Router {
    Router::new()
        .route("/portal", get(endpoints::list::<A>))
        .route("/portal/", get(endpoints::list::<A>))
        .route("/portal/enter", get(enter::<A>))
        .route("/portal/sign-out", post(sign_out::<A>))
        .route("/portal/assets/console.css", get(console_stylesheet))
        .route("/portal/assets/portal.css", get(portal_stylesheet))
        .route("/portal/endpoints", post(endpoints::create::<A>))
        .route("/portal/endpoints/{id}", get(endpoint::show::<A>))
        .route("/portal/endpoints/{id}/{action}", post(endpoint::act::<A>))
        .route("/portal/events/{event_id}/resend", post(endpoint::resend::<A>))
        .route("/portal/requests", get(requests::list::<A>))
        .route("/portal/requests/{id}", get(requests::show::<A>))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Portal {
            app,
            options: Arc::new(options),
        })
}

/// The console's stylesheet, which the portal shares (compiled in).
async fn console_stylesheet() -> Response {
    stylesheet(include_str!("../console/console.css"))
}

/// The few rules of the portal's own.
async fn portal_stylesheet() -> Response {
    stylesheet(include_str!("portal.css"))
}

fn stylesheet(text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        text,
    )
        .into_response()
}

/// A `Set-Cookie` value for a portal cookie; `max_age` 0 deletes it.
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    pages::set_cookie(name, value, COOKIE_PATH, max_age, secure)
}

#[derive(Deserialize)]
pub(crate) struct EnterQuery {
    token: Option<String>,
}

/// `GET /portal/enter?token=…`: takes the link and opens a session. The cookie is set by this
/// answer and the redirect is same-site, so SameSite=Strict does not lose it even when the link
/// was clicked on another site.
async fn enter<A: HttpApp>(
    State(portal): State<Portal<A>>,
    headers: HeaderMap,
    Query(query): Query<EnterQuery>,
) -> Response {
    let secure = !loopback(&headers);
    let token = query.token.unwrap_or_default();
    match portal
        .app
        .app()
        .open_portal_session(&token, portal.options.session_lifetime)
        .await
    {
        Ok(opened) => {
            let seconds = (opened.record.expires_at - opened.record.created_at).whole_seconds();
            let mut response = Redirect::to(HOME).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &opened.token, seconds, secure),
            );
            response
        }
        Err(AppError::Unauthorized) => layout::expired(),
        Err(e) => layout::failure_page(None, &e),
    }
}

/// `POST /portal/sign-out`: ends the session (its cookie opens nothing any more).
async fn sign_out<A: HttpApp>(State(portal): State<Portal<A>>, posted: Posted) -> Response {
    let who = &posted.who;
    if let Err(e) = portal.app.app().end_session(&who.session.token_hash).await {
        return layout::failure_page(Some(who), &e);
    }
    let mut response = layout::signed_out();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, who.secure));
    response
}

/// A merchant signed in to the portal, and whether its cookies must be `Secure`. A page without
/// a live session answers 401 with the expired-link page (there is no sign-in form: a new link
/// is the way in).
pub(crate) struct SignedIn {
    session: Session,
    secure: bool,
}

impl SignedIn {
    /// The session's merchant, as the use cases take it.
    fn principal(&self) -> &cashout_core::auth::Principal {
        &self.session.principal
    }
}

impl<A: HttpApp> FromRequestParts<Portal<A>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal<A>) -> Result<Self, Self::Rejection> {
        let secure = !loopback(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(layout::expired());
        };
        match portal.app.app().portal_session(token).await {
            Ok(Some(session)) => Ok(SignedIn { session, secure }),
            Ok(None) => {
                let mut response = layout::expired();
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure));
                Err(response)
            }
            Err(e) => Err(layout::failure_page(None, &e)),
        }
    }
}

/// The fields of a form posted in a portal session, its `csrf` field checked against the
/// session's: without it, or with another session's, 403 before any handler runs.
pub(crate) struct Posted {
    who: SignedIn,
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of a field, trimmed; `None` when absent or blank.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of a field, in order.
    fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<A: HttpApp> FromRequest<Portal<A>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, portal: &Portal<A>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, portal).await?;
        match pages::checked_form(Request::from_parts(parts, body), portal, &who.session.csrf_token).await {
            Ok(fields) => Ok(Posted { who, fields }),
            Err(FormRefused::Unreadable(status)) => Err(layout::message_page(
                Some(&who),
                status,
                "The form could not be read. Reload the page and try again.",
            )),
            Err(FormRefused::Forged) => Err(layout::message_page(
                Some(&who),
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from the portal. Reload the page and try again.",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
