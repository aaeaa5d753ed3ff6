//! Sign-in with an operator key and sign-out.
//!
//! The sign-in form has no session to take a form token from, so it uses a double-submit
//! token: a random value in a SameSite=Strict cookie of its own and the same value in the form;
//! a post whose two differ did not come from our page (login CSRF).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{self, Nav};
use super::{
    Console, LOGIN_COOKIE, Posted, QUEUE, SESSION_COOKIE, SIGN_IN, cookie, forged, loopback, same_secret, set_cookie,
    status_of,
};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::limit::client_address;

/// What a failed sign-in says, whatever the reason (unknown, merchant or revoked key): the page
/// does not tell which keys exist.
const REFUSED: &str = "That key cannot sign in to the console";

/// What a sign-in from an address over its failed attempts says.
const TOO_MANY: &str = "Too many failed sign-ins from here. Wait a minute and try again.";

/// How long the sign-in form's token lives (seconds).
const LOGIN_TOKEN_SECONDS: i64 = 3600;

/// A login token is 64 hex characters.
fn valid_login_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /console/sign-in`: the form (a signed-in browser goes to the queue).
pub(super) async fn sign_in_page<A: HttpApp>(State(console): State<Console<A>>, headers: HeaderMap) -> Response {
    let app = console.app.app();
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && matches!(app.session(token).await, Ok(Some(_)))
    {
        return Redirect::to(QUEUE).into_response();
    }
    let secure = !loopback(&headers);
    let (token, fresh) = match cookie(&headers, LOGIN_COOKIE).filter(|t| valid_login_token(t)) {
        Some(token) => (token.to_owned(), false),
        None => (hex::encode(app.ids.secret_bytes()), true),
    };
    let mut response = layout::respond(StatusCode::OK, form(&token, None));
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, LOGIN_TOKEN_SECONDS, secure),
        );
    }
    response
}

/// `POST /console/sign-in`: opens a session for an operator key.
pub(super) async fn sign_in<A: HttpApp>(State(console): State<Console<A>>, parts: Parts, body: Bytes) -> Response {
    let app = console.app.app();
    let headers = &parts.headers;
    let secure = !loopback(headers);
    // The API's limit of failed authentications per address holds here too: the sign-in form is
    // no faster way to guess keys than the API.
    let address = client_address(&parts);
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(login_token) = cookie(headers, LOGIN_COOKIE).filter(|t| valid_login_token(t)) else {
        return forged(None);
    };
    if !field("csrf").is_some_and(|t| same_secret(t, login_token)) {
        return forged(None);
    }
    if let Err(e) = app.screen_address(address) {
        return layout::respond(status_of(&e), form(login_token, Some(TOO_MANY)));
    }
    let key = field("key").unwrap_or_default().trim();
    let opened = app.sign_in(key, console.options.session_lifetime).await;
    if matches!(opened, Err(AppError::Unauthorized)) {
        app.failed_authentication(address);
    }
    match opened {
        Ok(opened) => {
            let seconds = (opened.record.expires_at - opened.record.created_at).whole_seconds();
            let mut response = Redirect::to(QUEUE).into_response();
            let cookies = response.headers_mut();
            cookies.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &opened.token, seconds, secure),
            );
            cookies.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure));
            response
        }
        Err(AppError::Unauthorized) => layout::respond(StatusCode::UNAUTHORIZED, form(login_token, Some(REFUSED))),
        Err(e) => layout::failure_page(None, &e),
    }
}

/// `POST /console/sign-out`: ends the session (its token no longer opens anything), then the
/// sign-in page.
pub(super) async fn sign_out<A: HttpApp>(State(console): State<Console<A>>, posted: Posted) -> Response {
    let app = console.app.app();
    let who = &posted.who;
    if let Err(e) = app.end_session(&who.session.token_hash).await {
        return layout::failure_page(Some(who), &e);
    }
    if let cashout_core::auth::Principal::Operator { name, .. } = &who.session.principal {
        tracing::info!(operator = %name, "console session ended");
    }
    let mut response = Redirect::to(SIGN_IN).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, who.secure));
    response
}

/// The sign-in page, with an alert when a key was refused.
fn form(login_token: &str, refused: Option<&str>) -> Markup {
    layout::page(
        None,
        Nav::None,
        "Sign in",
        html! {
            h1 { "Sign in to the cashout console" }
            @if let Some(message) = refused {
                p.alert role="alert" { (message) }
            }
            form.signin method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(login_token);
                div.field {
                    label for="key" { "Operator key" }
                    input id="key" name="key" type="password" required autocomplete="current-password"
                        spellcheck="false" autofocus;
                }
                button type="submit" { "Sign in" }
            }
            p.muted { "Your operator key is the one your administrator gave you (cashout-admin, or the key "
                "cashout-local prints when it starts). Merchant keys cannot sign in here." }
        },
    )
}
