//! `/portal/requests`: the merchant's cashout requests, newest first and paged, and each one's
//! timeline (status events with reason and actor, provider attempts, webhook deliveries), read
//! through the API's use cases with the merchant as the principal: another merchant's request is
//! not found.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cashout_core::ids::CashoutRequestId;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav};
use super::{Portal, SignedIn};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::console::detail::timeline;
use crate::http::console::layout::{amount, beneficiary, status, time_el};

/// How many requests a page lists.
const PER_PAGE: u32 = 20;

/// A cursor as a query value.
pub(super) fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
}

/// `GET /portal/requests`.
pub(super) async fn list<A: HttpApp>(
    State(portal): State<Portal<A>>,
    who: SignedIn,
    Query(query): Query<PageQuery>,
) -> Response {
    let cursor = query.cursor;
    let page = match portal
        .app
        .app()
        .list_cashouts(who.principal(), None, None, Some(PER_PAGE), cursor)
        .await
    {
        Ok(page) => page,
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let main = html! {
        h1 { "Cashout requests" }
        @if page.data.is_empty() {
            p.muted { "No requests yet." }
        } @else {
            div.scroll role="region" aria-label="Cashout requests" tabindex="0" {
                table {
                    caption { "Newest first" }
                    thead {
                        tr {
                            th scope="col" { "Request" }
                            th scope="col" { "Created" }
                            th scope="col" { "Status" }
                            th scope="col" { "Amount" }
                            th scope="col" { "Invoices" }
                            th scope="col" { "Beneficiary account" }
                        }
                    }
                    tbody {
                        @for r in &page.data {
                            tr {
                                td { a.mono href={ "/portal/requests/" (r.id) } { (r.id) } }
                                td { (time_el(r.request_date)) }
                                td { (status(r)) }
                                td.num { (amount(&r.requested_amount, &r.currency)) }
                                td.num { (r.requested_invoice_count) }
                                td { (beneficiary(r)) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &page.next_cursor {
                p.pager { a href={ "/portal/requests?cursor=" (url_encode(next)) } { "Next page" } }
            }
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(Some(&who), Nav::Requests, "Cashout requests", main),
    )
}

/// `GET /portal/requests/{id}`.
pub(super) async fn show<A: HttpApp>(
    State(portal): State<Portal<A>>,
    who: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let app = portal.app.app();
    let principal = who.principal();
    let Ok(id) = id.parse::<CashoutRequestId>() else {
        return layout::failure_page(Some(&who), &AppError::NotFound);
    };
    let view = match app.get_cashout(principal, id).await {
        Ok(view) => view,
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let events = match app.list_events(principal, id).await {
        Ok(events) => events.data,
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let mut deliveries = Vec::with_capacity(events.len());
    for event in &events {
        let attempts = match event.id.parse() {
            Ok(event_id) => match app.event_attempts(principal, event_id).await {
                Ok(attempts) => attempts,
                Err(e) => return layout::failure_page(Some(&who), &e),
            },
            Err(_) => Vec::new(),
        };
        deliveries.push(attempts);
    }
    let title = format!("Request {}", view.id);
    let main = html! {
        p { a href="/portal/requests" { "← All requests" } }
        h1.mono { (title) }
        dl.summary {
            dt { "Status" } dd #status { (status(&view)) }
            dt { "Amount" } dd { (amount(&view.requested_amount, &view.currency)) }
            @if let Some(paid) = &view.paid_amount { dt { "Paid" } dd { (amount(paid, &view.currency)) } }
            dt { "Invoices" } dd { (view.requested_invoice_count) " requested, " (view.paid_invoice_count) " paid" }
            dt { "Beneficiary account" } dd { (beneficiary(&view)) }
            dt { "Requested by" } dd { (view.requested_by) }
            dt { "Created" } dd { (time_el(view.request_date)) }
        }
        (timeline(&view, &events, &deliveries))
    };
    layout::respond(StatusCode::OK, layout::page(Some(&who), Nav::Requests, &title, main))
}
