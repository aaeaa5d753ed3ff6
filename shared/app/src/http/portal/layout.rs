//! The portal's page shell (language, stylesheets, the header with the merchant and its sign-out
//! form), its messages (one-time flashes after an action, alerts for errors) and the pages that
//! say one thing. Every value goes through maud's escaping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::auth::Principal;
use maud::{Markup, html};

use super::SignedIn;
use crate::error::AppError;
use crate::http::pages;

/// The header's links; the current one is marked for assistive technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Endpoints,
    Requests,
    /// A page of its own.
    None,
}

/// The portal's pages: the header's links in the order of [`Nav`]; the console's stylesheet
/// first, then the portal's few rules.
const FACE: pages::Face<'static> = pages::Face {
    site: "cashout portal",
    stylesheets: &["/portal/assets/console.css", "/portal/assets/portal.css"],
    nav_label: "Portal",
    links: &[("/portal", "Endpoints"), ("/portal/requests", "Cashout requests")],
    sign_out: "/portal/sign-out",
};

/// A whole page: `title` is the `<title>` (and, by each page's own choice, its `<h1>`).
pub(super) fn page(who: Option<&SignedIn>, nav: Nav, title: &str, main: Markup) -> Markup {
    let current = match nav {
        Nav::Endpoints => Some(0),
        Nav::Requests => Some(1),
        Nav::None => None,
    };
    let visitor = who.map(|w| pages::Visitor {
        name: merchant(w),
        csrf: &w.session.csrf_token,
    });
    pages::page(&FACE, visitor.as_ref(), current, title, main)
}

/// The signed-in merchant's id.
pub(super) fn merchant(who: &SignedIn) -> &str {
    match who.principal() {
        Principal::Merchant { merchant_id } => merchant_id.as_str(),
        Principal::Operator { name, .. } => name.as_str(),
    }
}

/// The hidden form token of the session.
pub(super) fn csrf(who: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.session.csrf_token); }
}

/// A page as an HTML answer with `status`.
pub(super) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A page saying one thing in an alert, with `status`.
pub(super) fn message_page(who: Option<&SignedIn>, status: StatusCode, message: &str) -> Response {
    let title = pages::message_title(status);
    let back = who.map(|_| ("/portal", "Back to the endpoints"));
    respond(
        status,
        page(who, Nav::None, title, pages::message_main(title, message, back)),
    )
}

/// A page for a use case's error: its message for a client error; for a fault of ours, a
/// plain sentence (the details go to the logs only).
pub(super) fn failure_page(who: Option<&SignedIn>, error: &AppError) -> Response {
    let (status, message) = pages::error_message(error);
    message_page(who, status, &message)
}

/// 401: the link (or the session it opened) no longer opens anything.
pub(super) fn expired() -> Response {
    respond(
        StatusCode::UNAUTHORIZED,
        page(
            None,
            Nav::None,
            "Link expired",
            html! {
                h1 { "Merchant portal" }
                p.alert role="alert" { (super::EXPIRED) }
                p.muted { "Portal links are made by your company's systems with its API key; each opens the portal once, within 10 minutes, for an hour." }
            },
        ),
    )
}

/// The page after "Sign out".
pub(super) fn signed_out() -> Response {
    respond(
        StatusCode::OK,
        page(
            None,
            Nav::None,
            "Signed out",
            html! {
                h1 { "Signed out" }
                p role="status" { "You have left the merchant portal. Open a new portal link to come back." }
            },
        ),
    )
}

/// A one-time message for the page after an action, carried in a short-lived cookie as a code:
/// only these sentences can be shown, whatever the cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Flash {
    Updated,
    Disabled,
    Enabled,
    Deleted,
    /// The test event's attempt: delivered or not, the HTTP status if any, the milliseconds.
    Tested {
        delivered: bool,
        status: Option<u16>,
        ms: u64,
    },
    /// Events a recovery queued.
    Recovered(usize),
    /// Endpoints an event was queued to again.
    Resent(usize),
}

impl pages::Flash for Flash {
    fn code(&self) -> String {
        match self {
            Flash::Updated => "updated".into(),
            Flash::Disabled => "disabled".into(),
            Flash::Enabled => "enabled".into(),
            Flash::Deleted => "deleted".into(),
            Flash::Tested { delivered, status, ms } => {
                format!("tested.{}.{}.{ms}", u8::from(*delivered), status.unwrap_or(0))
            }
            Flash::Recovered(n) => format!("recovered.{n}"),
            Flash::Resent(n) => format!("resent.{n}"),
        }
    }

    fn parse(code: &str) -> Option<Flash> {
        let mut parts = code.split('.');
        let head = parts.next()?;
        let mut number = || parts.next().and_then(|p| p.parse::<u64>().ok());
        Some(match head {
            "updated" => Flash::Updated,
            "disabled" => Flash::Disabled,
            "enabled" => Flash::Enabled,
            "deleted" => Flash::Deleted,
            "tested" => {
                let delivered = number()? == 1;
                let status = u16::try_from(number()?).ok().filter(|s| *s != 0);
                Flash::Tested {
                    delivered,
                    status,
                    ms: number()?,
                }
            }
            "recovered" => Flash::Recovered(usize::try_from(number()?).ok()?),
            "resent" => Flash::Resent(usize::try_from(number()?).ok()?),
            _ => return None,
        })
    }
}

impl Flash {
    /// The sentence shown.
    pub(super) fn text(&self) -> String {
        match self {
            Flash::Updated => "Endpoint updated".into(),
            Flash::Disabled => "Endpoint disabled: nothing is delivered to it until it is enabled".into(),
            Flash::Enabled => "Endpoint enabled: recover what it missed while disabled".into(),
            Flash::Deleted => "Endpoint deleted".into(),
            Flash::Tested {
                delivered: true,
                status,
                ms,
            } => format!("Test event delivered: HTTP {} in {ms} ms", status.unwrap_or(0)),
            Flash::Tested {
                delivered: false,
                status: Some(status),
                ms,
            } => format!("Test event failed: HTTP {status} in {ms} ms"),
            Flash::Tested {
                delivered: false,
                status: None,
                ms,
            } => format!("Test event failed: no answer after {ms} ms"),
            Flash::Recovered(1) => "1 event queued for redelivery".into(),
            Flash::Recovered(n) => format!("{n} events queued for redelivery"),
            Flash::Resent(n) => format!("Event queued for redelivery to {n} endpoint(s)"),
        }
    }
}

/// The flash as the status region, or an error as an alert.
pub(super) fn messages(flash: Option<&Flash>, alert: Option<&str>) -> Markup {
    html! {
        @if let Some(flash) = flash {
            p #flash .flash role="status" { (flash.text()) }
        }
        @if let Some(alert) = alert {
            p.alert role="alert" { (alert) }
        }
    }
}

/// A new signing secret, shown this once.
pub(super) fn new_secret(secret: &str) -> Markup {
    html! {
        section.secret aria-labelledby="new-secret-heading" {
            h2 #new-secret-heading { "Signing secret" }
            p { "Copy it now: it is not shown again. Your receiver verifies every delivery's "
                code { "webhook-signature" } " with it (Standard Webhooks)." }
            p { code #new-secret .mono { (secret) } }
        }
    }
}

/// `name: value` lines of the headers' textarea as a map; blank lines are skipped.
pub(super) fn parse_headers(text: &str) -> Result<std::collections::BTreeMap<String, String>, AppError> {
    let mut headers = std::collections::BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(AppError::BadParameter(format!(
                "custom headers: `{line}` is not a `name: value` line"
            )));
        };
        headers.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(headers)
}

/// A `datetime-local` value (`2026-12-01T20:30` or with seconds), read as UTC.
pub(super) fn parse_local_time(field: &str, text: &str) -> Result<time::OffsetDateTime, AppError> {
    let with_seconds = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(text, with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(text, without))
        .map(time::PrimitiveDateTime::assume_utc)
        .map_err(|_| AppError::BadParameter(format!("{field}: a date and time such as 2026-12-01T20:30 (UTC)")))
}
