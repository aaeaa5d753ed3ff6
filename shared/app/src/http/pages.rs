//! What the server-rendered faces (the operator console, the merchant portal) share of the HTTP
//! plumbing: reading cookies, writing them with the same flags, telling a loopback host, comparing
//! form tokens, and the security headers of every answer.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cashout_core::auth::token_hash;
use maud::{DOCTYPE, Markup, html};

use crate::error::AppError;

/// The headers of every page answer: no script, nothing from elsewhere, no framing, forms only
/// to here, and no caching of pages that show payouts (a stylesheet sets its own).
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us on a loopback host (`127.0.0.1`, `localhost`, `[::1]`): only
/// there may a cookie go without `Secure`, since plain HTTP is how the local runner serves.
pub(crate) fn loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost")
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, sent only under `path`; `max_age` 0 deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    // The values are hex, or percent-encoded by the caller: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A one-line message a form's action leaves for the page it redirects to (post, redirect, get),
/// carried in a short-lived cookie as a code.
pub(crate) trait Flash: Sized {
    /// The cookie's value (URL- and header-safe).
    fn code(&self) -> String;
    /// The message a cookie's value stands for (`None`: unknown or altered).
    fn parse(code: &str) -> Option<Self>;
}

/// Where an area of pages (the console, the portal) keeps its flash cookie.
pub(crate) struct FlashCookie {
    /// The cookie's name.
    pub name: &'static str,
    /// The path it is sent under.
    pub path: &'static str,
}

impl FlashCookie {
    /// A 303 to `to` that leaves `flash` for the next page (for a minute at most).
    pub(crate) fn redirect_with(&self, to: &str, flash: &impl Flash, secure: bool) -> Response {
        let mut response = Redirect::to(to).into_response();
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(self.name, &flash.code(), self.path, 60, secure),
        );
        response
    }

    /// The flash left for this page, if any, and whether a cookie must be cleared.
    pub(crate) fn take<F: Flash>(&self, headers: &HeaderMap) -> (Option<F>, bool) {
        match cookie(headers, self.name) {
            Some(code) => (F::parse(code), true),
            None => (None, false),
        }
    }

    /// Clears the cookie on `response` once its page has shown the flash.
    pub(crate) fn clear(&self, mut response: Response, present: bool, secure: bool) -> Response {
        if present {
            response
                .headers_mut()
                .append(header::SET_COOKIE, set_cookie(self.name, "", self.path, 0, secure));
        }
        response
    }
}

/// Whether two secrets are equal, compared as their hashes (no early exit on the secret's bytes).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && token_hash(a) == token_hash(b)
}

/// Why a posted form was refused before any handler ran.
pub(crate) enum FormRefused {
    /// The body could not be read (too large, cut short): the status to answer.
    Unreadable(StatusCode),
    /// No `csrf` field, or not the session's: another site's form, or an old page.
    Forged,
}

/// The fields of a posted form whose `csrf` field is the session's `token` (compared as hashes).
pub(crate) async fn checked_form<S: Send + Sync>(
    request: Request,
    state: &S,
    token: &str,
) -> Result<Vec<(String, String)>, FormRefused> {
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| FormRefused::Unreadable(rejection.status()))?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if csrf.is_some_and(|t| same_secret(t, token)) {
        Ok(fields)
    } else {
        Err(FormRefused::Forged)
    }
}

/// The heading of a page that says one thing, by its status.
pub(crate) fn message_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    }
}

/// The body of a page that says one thing: its heading, the message as an alert, and a link
/// back (`(href, text)`) when there is somewhere to go back to.
pub(crate) fn message_main(title: &str, message: &str, back: Option<(&str, &str)>) -> Markup {
    html! {
        h1 { (title) }
        p.alert role="alert" { (message) }
        @if let Some((href, text)) = back {
            p { a href=(href) { (text) } }
        }
    }
}

/// What a page says of a use case's error, with the status the API would answer: its message
/// for a client error; for a fault of ours a plain sentence, the details going to the logs only.
pub(crate) fn error_message(error: &AppError) -> (StatusCode, String) {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %error, "page failed");
        (
            status,
            "Something went wrong on our side. Try again in a moment.".to_owned(),
        )
    } else {
        (status, error.to_string())
    }
}

/// What a face's pages have in common: its name in the `<title>`, its stylesheets, its header's
/// links (labelled `nav_label`) and its sign-out form.
pub(crate) struct Face<'a> {
    /// `cashout console`.
    pub site: &'a str,
    pub stylesheets: &'a [&'a str],
    pub nav_label: &'a str,
    /// `(href, label)` of each link of the header.
    pub links: &'a [(&'a str, &'a str)],
    pub sign_out: &'a str,
}

/// Who is signed in, as the header shows them: the name and the session's form token.
pub(crate) struct Visitor<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
}

/// A whole page: `title` is the `<title>` (and, by each page's own choice, its `<h1>`); the
/// header (with `current`, the index of the link of this page, marked) only for a visitor.
pub(crate) fn page(
    face: &Face<'_>,
    who: Option<&Visitor<'_>>,
    current: Option<usize>,
    title: &str,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (face.site) }
                @for sheet in face.stylesheets { link rel="stylesheet" href=(sheet); }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                @if let Some(who) = who {
                    header.top {
                        nav aria-label=(face.nav_label) {
                            ul {
                                @for (i, (href, label)) in face.links.iter().enumerate() {
                                    li {
                                        @if current == Some(i) {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            p { "Signed in as " (who.name) }
                            form method="post" action=(face.sign_out) {
                                input type="hidden" name="csrf" value=(who.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
            }
        }
    }
}
