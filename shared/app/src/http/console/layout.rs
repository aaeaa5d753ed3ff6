//! The console's page shell (language, stylesheet, the signed-in header with its sign-out
//! form) and the parts several pages show: the table of requests, amounts, times, approvals.
//! Every value goes through maud's escaping; no HTML is assembled from text here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::auth::Principal;
use maud::{Markup, html};
use time::OffsetDateTime;
use time::macros::format_description;

use super::SignedIn;
use crate::error::AppError;
use crate::http::pages;
use crate::views::CashoutRequestView;

/// The header's links; the current one is marked for assistive technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Queue,
    Search,
    Attention,
    Providers,
    /// A page of its own (a request, a result).
    None,
}

/// The console's pages: the header's links in the order of [`Nav`].
const FACE: pages::Face<'static> = pages::Face {
    site: "cashout console",
    stylesheets: &["/console/assets/console.css"],
    nav_label: "Console",
    links: &[
        ("/console/queue", "Queue"),
        ("/console/search", "Search"),
        ("/console/attention", "Attention"),
        ("/console/providers", "Providers"),
    ],
    sign_out: "/console/sign-out",
};

/// A whole page: `title` is the `<title>` (and, by each page's own choice, its `<h1>`).
pub(super) fn page(who: Option<&SignedIn>, nav: Nav, title: &str, main: Markup) -> Markup {
    let current = match nav {
        Nav::Queue => Some(0),
        Nav::Search => Some(1),
        Nav::Attention => Some(2),
        Nav::Providers => Some(3),
        Nav::None => None,
    };
    let name = who.map(|w| signed_in_as(&w.session.principal));
    let visitor = who.zip(name.as_deref()).map(|(w, name)| pages::Visitor {
        name,
        csrf: &w.session.csrf_token,
    });
    pages::page(&FACE, visitor.as_ref(), current, title, main)
}

/// `NAME (ROLE)`.
fn signed_in_as(principal: &Principal) -> String {
    match principal {
        Principal::Operator { name, role } => format!("{name} ({role})"),
        Principal::Merchant { merchant_id } => format!("{merchant_id} (merchant)"),
    }
}

/// Whether the signed-in operator is an admin (retries, redeliveries).
pub(super) fn is_admin(who: &SignedIn) -> bool {
    matches!(
        who.session.principal,
        Principal::Operator {
            role: cashout_core::auth::OperatorRole::Admin,
            ..
        }
    )
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
    let title = crate::http::pages::message_title(status);
    let back = who.map(|_| ("/console/queue", "Back to the review queue"));
    respond(
        status,
        page(
            who,
            Nav::None,
            title,
            crate::http::pages::message_main(title, message, back),
        ),
    )
}

/// A page for a use case's error: its message for a client error; for a fault of ours, a
/// plain sentence (the details go to the logs only).
pub(super) fn failure_page(who: Option<&SignedIn>, error: &AppError) -> Response {
    let (status, message) = crate::http::pages::error_message(error);
    message_page(who, status, &message)
}

/// `2026-12-01 19:35 UTC`.
pub(crate) fn when(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default()
}

/// An RFC 3339 time from a view, as [`when`] writes it (the text itself if it does not parse).
pub(crate) fn when_text(rfc3339: &str) -> String {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or_else(|_| rfc3339.to_owned(), when)
}

/// A `<time>` element.
pub(crate) fn time_el(at: OffsetDateTime) -> Markup {
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    html! { time datetime=(iso) { (when(at)) } }
}

/// `1,000.00 BRL`-like text: the decimal as the API gives it, then the currency.
pub(crate) fn amount(value: &str, currency: &str) -> String {
    format!("{value} {currency}")
}

/// The beneficiary's account as the views mask it (account or card), with the name.
pub(crate) fn beneficiary(view: &CashoutRequestView) -> Markup {
    let b = &view.beneficiary;
    let account = b.bank_account.as_deref().or(b.card_number.as_deref()).unwrap_or("—");
    html! {
        span.account { (account) }
        @if let Some(bank) = &b.bank_code { " " span.muted { "bank " (bank) } }
    }
}

/// `N of M` with the approvers' names.
pub(super) fn approvals(view: &CashoutRequestView) -> Markup {
    match &view.review {
        Some(review) if review.required_approvals > 0 => html! {
            (review.approvals.len()) " of " (review.required_approvals)
            @if !review.approvals.is_empty() {
                " ("
                @for (i, a) in review.approvals.iter().enumerate() {
                    @if i > 0 { ", " }
                    (a.operator)
                }
                ")"
            }
        },
        _ => html! { span.muted { "none needed" } },
    }
}

/// The rules that fired, as their detail sentences.
pub(super) fn rules(view: &CashoutRequestView) -> Markup {
    match &view.review {
        Some(review) if !review.rules_fired.is_empty() => html! {
            ul.rules {
                @for rule in &review.rules_fired {
                    li { (rule.detail) }
                }
            }
        },
        _ => html! { span.muted { "none" } },
    }
}

/// A status as a badge.
pub(crate) fn status(view: &CashoutRequestView) -> Markup {
    html! { span.status { (view.status.as_str()) } }
}

/// What a row of a request table ends with (a button), if anything.
pub(super) type RowAction<'a> = Option<&'a dyn Fn(&CashoutRequestView) -> Markup>;

/// The table of requests of the queue (with a checkbox per row), of search results and of the
/// attention lists (with an action per row).
pub(super) fn request_table(
    requests: &[CashoutRequestView],
    selectable: bool,
    caption: &str,
    action: RowAction<'_>,
) -> Markup {
    html! {
        div.scroll role="region" aria-label=(caption) tabindex="0" {
            table {
                caption { (caption) }
                thead {
                    tr {
                        @if selectable { th scope="col" { span.visually-hidden { "Select" } } }
                        th scope="col" { "Request" }
                        th scope="col" { "Created" }
                        th scope="col" { "Merchant" }
                        th scope="col" { "Status" }
                        th scope="col" { "Amount" }
                        th scope="col" { "Invoices" }
                        th scope="col" { "Beneficiary account" }
                        th scope="col" { "Rules fired" }
                        th scope="col" { "Approvals" }
                        @if action.is_some() { th scope="col" { "Action" } }
                    }
                }
                tbody {
                    @for r in requests {
                        tr {
                            @if selectable {
                                td {
                                    input type="checkbox" name="id" value=(r.id)
                                        aria-label={ "Select " (r.id) };
                                }
                            }
                            td { a.mono href={ "/console/requests/" (r.id) } { (r.id) } }
                            td { (time_el(r.request_date)) }
                            td { (r.merchant_id) }
                            td { (status(r)) }
                            td.num { (amount(&r.requested_amount, &r.currency)) }
                            td.num { (r.requested_invoice_count) }
                            td { (beneficiary(r)) }
                            td { (rules(r)) }
                            td { (approvals(r)) }
                            @if let Some(action) = action { td { (action(r)) } }
                        }
                    }
                }
            }
        }
    }
}
