//! The review queue (requests `UNDER_REVIEW`, oldest first, every merchant) and bulk approval.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::WorkList;
use maud::html;
use serde::Deserialize;

use super::detail::Flash;
use super::layout::{self, Nav};
use super::{Console, Posted, SignedIn};
use crate::http::HttpApp;

/// Requests on one page of the queue.
const PAGE: u32 = 50;

/// A page's position.
#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    cursor: Option<String>,
}

/// `GET /console/queue`.
pub(super) async fn queue<A: HttpApp>(
    State(console): State<Console<A>>,
    who: SignedIn,
    Query(page): Query<PageQuery>,
) -> Response {
    let app = console.app.app();
    let cursor = page.cursor.filter(|c| !c.is_empty());
    let (requests, next) = match app
        .work_list(&who.session.principal, WorkList::Review, Some(PAGE), cursor)
        .await
    {
        Ok(page) => (page.items, page.next_cursor),
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let body = html! {
        h1 { "Review queue" }
        p { "Requests waiting for an operator, oldest first, every merchant." }
        @if requests.is_empty() {
            p.empty { "Nothing is waiting for review." }
        } @else {
            form method="post" action="/console/queue/approve" {
                (layout::csrf(&who))
                (layout::request_table(&requests, true, "Requests under review", None))
                div.actions {
                    button type="submit" { "Approve selected" }
                }
            }
        }
        @if let Some(next) = &next {
            p.pager { a href={ "/console/queue?cursor=" (url_encode(next)) } { "Next page" } }
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(Some(&who), Nav::Queue, "Review queue", body),
    )
}

/// `POST /console/queue/approve`: approves each selected request on its own and shows what
/// became of each.
pub(super) async fn bulk_approve<A: HttpApp>(State(console): State<Console<A>>, posted: Posted) -> Response {
    let app = console.app.app();
    let who = &posted.who;
    let mut rows: Vec<(String, Result<String, String>)> = Vec::new();
    let mut ids = Vec::new();
    for text in posted.all("id") {
        match text.parse::<CashoutRequestId>() {
            Ok(id) => ids.push(id),
            Err(_) => rows.push((text.to_owned(), Err("not a request id".into()))),
        }
    }
    if ids.is_empty() && rows.is_empty() {
        return layout::message_page(
            Some(who),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Select at least one request to approve.",
        );
    }
    if !ids.is_empty() {
        match app.bulk_approve(&who.session.principal, &ids).await {
            Ok(items) => {
                for item in items {
                    let outcome = item
                        .result
                        .map(|view| Flash::of_approval(&view).text())
                        .map_err(|e| e.to_string());
                    rows.push((item.id.to_string(), outcome));
                }
            }
            Err(e) => return layout::failure_page(Some(who), &e),
        }
    }
    let body = html! {
        h1 { "Bulk approval" }
        div.scroll role="region" aria-label="Results" tabindex="0" {
            table {
                caption { "One row per selected request" }
                thead { tr { th scope="col" { "Request" } th scope="col" { "Result" } } }
                tbody {
                    @for (id, outcome) in &rows {
                        tr {
                            td { a.mono href={ "/console/requests/" (id) } { (id) } }
                            @match outcome {
                                Ok(text) => td.ok { (text) },
                                Err(text) => td.error { "Refused: " (text) },
                            }
                        }
                    }
                }
            }
        }
        p { a href="/console/queue" { "Back to the review queue" } }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(Some(who), Nav::Queue, "Bulk approval", body),
    )
}

/// A cursor as a query value.
pub(super) fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
