//! What needs a person besides the review queue: requests flagged by the money-safety checks,
//! requests in `PAYMENT_PROCESSOR_ERROR` (retry, admins), and webhook deliveries given up
//! (redeliver, admins).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cashout_core::ids::EventId;
use cashout_core::ports::WorkList;
use maud::{Markup, html};
use serde::Deserialize;

use super::FLASH;
use super::detail::{Flash, flash_region};
use super::layout::{self, Nav};
use super::queue::url_encode;
use super::{Console, Posted, SignedIn};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::views::CashoutRequestView;

/// Rows per section.
const PAGE: u32 = 50;

/// The position of each section's page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Cursors {
    flagged: Option<String>,
    errors: Option<String>,
    dead: Option<String>,
}

fn some(cursor: &Option<String>) -> Option<String> {
    cursor.clone().filter(|c| !c.is_empty())
}

/// `GET /console/attention`.
pub(super) async fn attention<A: HttpApp>(
    State(console): State<Console<A>>,
    who: SignedIn,
    Query(cursors): Query<Cursors>,
    headers: HeaderMap,
) -> Response {
    let app = console.app.app();
    let principal = &who.session.principal;
    let (flash, present) = FLASH.take::<Flash>(&headers);
    let flagged = match app
        .work_list(principal, WorkList::Attention, Some(PAGE), some(&cursors.flagged))
        .await
    {
        Ok(page) => page,
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let errors = match app
        .work_list(principal, WorkList::ProcessorError, Some(PAGE), some(&cursors.errors))
        .await
    {
        Ok(page) => page,
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let dead = match app.dead_letters(principal, Some(PAGE), some(&cursors.dead)).await {
        Ok(page) => Ok(page),
        Err(AppError::Forbidden(_)) => Err("Dead letters are shown to admin operators."),
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let admin = layout::is_admin(&who);
    let body = html! {
        h1 { "Attention" }
        (flash_region(flash.as_ref()))
        section aria-labelledby="flagged" {
            h2 #flagged { "Flagged" }
            p { "Requests a person must look at (the provider may hold a payout cashout could not settle). "
                "Open one to see why and to resolve it." }
            (requests(&flagged.items, "Flagged requests", None))
            (next_link("flagged", flagged.next_cursor.as_deref()))
        }
        section aria-labelledby="errors" {
            h2 #errors { "Processor errors" }
            p { "Requests the provider could not take; nothing was paid. An admin can send one back to dispatch." }
            (requests(&errors.items, "Requests in PAYMENT_PROCESSOR_ERROR", admin.then_some(&who)))
            (next_link("errors", errors.next_cursor.as_deref()))
        }
        section aria-labelledby="dead" {
            h2 #dead { "Dead letters" }
            @match &dead {
                Err(note) => p.muted { (note) },
                Ok((attempts, next)) => {
                    p { "Webhook deliveries given up after their last retry, newest first." }
                    @if attempts.is_empty() {
                        p.empty { "None." }
                    } @else {
                        div.scroll role="region" aria-label="Dead letters" tabindex="0" {
                            table {
                                caption { "Given-up deliveries" }
                                thead {
                                    tr {
                                        th scope="col" { "Event" }
                                        th scope="col" { "Attempt" }
                                        th scope="col" { "When" }
                                        th scope="col" { "Answer" }
                                        th scope="col" { "Outcome" }
                                        @if admin { th scope="col" { "Action" } }
                                    }
                                }
                                tbody {
                                    @for a in attempts {
                                        tr {
                                            td.mono { (a.event_id) }
                                            td.num { (a.attempt) }
                                            td { (layout::time_el(a.attempted_at)) }
                                            td { @match a.status_code { Some(code) => { "HTTP " (code) }, None => { "no answer" } } }
                                            td { (a.outcome) }
                                            @if admin {
                                                td {
                                                    form method="post" action={ "/console/events/" (a.event_id) "/redeliver" } {
                                                        (layout::csrf(&who))
                                                        button.secondary type="submit" aria-label={ "Redeliver " (a.event_id) } { "Redeliver" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (next_link("dead", next.as_deref()))
                }
            }
        }
    };
    let response = layout::respond(
        StatusCode::OK,
        layout::page(Some(&who), Nav::Attention, "Attention", body),
    );
    FLASH.clear(response, present, who.secure)
}

/// A table of requests; with `retry_as`, a Retry button on each row.
fn requests(requests: &[CashoutRequestView], caption: &str, retry_as: Option<&SignedIn>) -> Markup {
    let retry = |r: &CashoutRequestView| match retry_as {
        Some(who) => html! {
            form method="post" action={ "/console/requests/" (r.id) "/retry" } {
                (layout::csrf(who))
                button type="submit" aria-label={ "Retry " (r.id) } { "Retry" }
            }
        },
        None => html! {},
    };
    html! {
        @if requests.is_empty() {
            p.empty { "None." }
        } @else {
            (layout::request_table(requests, false, caption, retry_as.map(|_| &retry as &dyn Fn(&CashoutRequestView) -> Markup)))
        }
    }
}

fn next_link(section: &str, next: Option<&str>) -> Markup {
    html! {
        @if let Some(next) = next {
            p.pager { a href={ "/console/attention?" (section) "=" (url_encode(next)) } { "Next page" } }
        }
    }
}

/// `POST /console/events/{event_id}/redeliver` (admins): queues the event's deliveries again.
pub(super) async fn redeliver<A: HttpApp>(
    State(console): State<Console<A>>,
    Path(event_id): Path<String>,
    posted: Posted,
) -> Response {
    let app = console.app.app();
    let who = &posted.who;
    let Ok(event_id) = event_id.parse::<EventId>() else {
        return layout::failure_page(Some(who), &AppError::NotFound);
    };
    match app.redeliver(&who.session.principal, event_id).await {
        Ok(endpoints) => FLASH.redirect_with("/console/attention", &Flash::Redelivered(endpoints), who.secure),
        Err(e) => layout::failure_page(Some(who), &e),
    }
}
