//! `/portal/endpoints/<id>`: one endpoint, its edit form, its actions (disable or enable, rotate
//! the secret, send a test event, recover since a time, delete) and its delivery attempts with a
//! "Resend" per event. Each action posts to the use case the API calls, then comes back here with
//! a one-time message (303); a refused one shows this page again with the error in the status the
//! API would answer. A rotation answers this page directly: the new secret is shown once.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cashout_core::ids::{EndpointId, EventId};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::endpoints::{event_types, state, success_rate, type_choices};
use super::layout::{self, Flash, Nav};
use super::{FLASH, Portal, Posted, SignedIn};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::console::layout::time_el;
use crate::http::pages;
use crate::views::{AttemptPage, EndpointView};

/// How many attempts a page lists.
const ATTEMPTS_PER_PAGE: u32 = 50;

fn endpoint_id(text: &str) -> Result<EndpointId, AppError> {
    text.parse().map_err(|_| AppError::NotFound)
}

fn href(id: &str) -> String {
    format!("/portal/endpoints/{id}")
}

#[derive(Deserialize)]
pub(crate) struct AttemptsQuery {
    cursor: Option<String>,
}

/// `GET /portal/endpoints/{id}`.
pub(super) async fn show<A: HttpApp>(
    State(portal): State<Portal<A>>,
    who: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<AttemptsQuery>,
    headers: HeaderMap,
) -> Response {
    let (flash, present) = FLASH.take::<Flash>(&headers);
    let cursor = query.cursor;
    let response = match endpoint_id(&id) {
        Ok(id) => {
            let shown = Shown {
                flash: flash.as_ref(),
                cursor,
                ..Shown::default()
            };
            render(&portal, &who, id, StatusCode::OK, shown).await
        }
        Err(e) => layout::failure_page(Some(&who), &e),
    };
    FLASH.clear(response, present, who.secure)
}

/// What a page shows besides the endpoint: a message, an error, a new secret, a page of attempts.
#[derive(Default)]
struct Shown<'a> {
    flash: Option<&'a Flash>,
    alert: Option<String>,
    secret: Option<String>,
    cursor: Option<String>,
}

/// `POST /portal/endpoints/{id}/{action}`: edit, disable, enable, rotate, test, recover, delete.
pub(super) async fn act<A: HttpApp>(
    State(portal): State<Portal<A>>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let app = portal.app.app();
    let who = &posted.who;
    let principal = who.principal();
    let id = match endpoint_id(&id) {
        Ok(id) => id,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let outcome = match action.as_str() {
        "edit" => match edit_body(&posted) {
            Ok(body) => app
                .update_endpoint(principal, id, body.to_string().as_bytes())
                .await
                .map(|_| Flash::Updated),
            Err(e) => Err(e),
        },
        "disable" => app
            .update_endpoint(principal, id, br#"{"disabled": true}"#)
            .await
            .map(|_| Flash::Disabled),
        "enable" => app
            .update_endpoint(principal, id, br#"{"disabled": false}"#)
            .await
            .map(|_| Flash::Enabled),
        "test" => app.test_endpoint(principal, id).await.map(|a| Flash::Tested {
            delivered: a.outcome == "delivered",
            status: a.status_code,
            ms: a.duration_ms,
        }),
        "recover" => match recover_body(&posted) {
            Ok(body) => app
                .recover_endpoint(principal, id, body.to_string().as_bytes())
                .await
                .map(|answer| Flash::Recovered(answer.queued)),
            Err(e) => Err(e),
        },
        "rotate" => {
            let body = if posted.field("expire_now").is_some() {
                json!({ "expire_current_in_seconds": 0 })
            } else {
                json!({})
            };
            return match app
                .rotate_endpoint_secret_with(principal, id, body.to_string().as_bytes())
                .await
            {
                Ok(rotated) => {
                    let shown = Shown {
                        secret: rotated.secret,
                        ..Shown::default()
                    };
                    render(&portal, who, id, StatusCode::OK, shown).await
                }
                Err(e) => refused(&portal, who, id, &e).await,
            };
        }
        "delete" => {
            return match app.delete_endpoint(principal, id).await {
                Ok(()) => FLASH.redirect_with("/portal", &Flash::Deleted, who.secure),
                Err(e) => refused(&portal, who, id, &e).await,
            };
        }
        _ => Err(AppError::NotFound),
    };
    match outcome {
        Ok(flash) => FLASH.redirect_with(&href(&id.to_string()), &flash, who.secure),
        Err(e) => refused(&portal, who, id, &e).await,
    }
}

/// `POST /portal/events/{event_id}/resend`: the event again to each endpoint that receives it;
/// back to the endpoint the button was on.
pub(super) async fn resend<A: HttpApp>(
    State(portal): State<Portal<A>>,
    Path(event_id): Path<String>,
    posted: Posted,
) -> Response {
    let who = &posted.who;
    let back = posted
        .field("endpoint")
        .and_then(|e| endpoint_id(e).ok())
        .map_or_else(|| "/portal".to_owned(), |id| href(&id.to_string()));
    let event_id: EventId = match event_id.parse() {
        Ok(id) => id,
        Err(_) => return layout::failure_page(Some(who), &AppError::NotFound),
    };
    match portal.app.app().redeliver(who.principal(), event_id).await {
        Ok(n) => FLASH.redirect_with(&back, &Flash::Resent(n), who.secure),
        Err(e) => layout::failure_page(Some(who), &e),
    }
}

/// The page again with the use case's error, in the status the API would answer.
async fn refused<A: HttpApp>(portal: &Portal<A>, who: &SignedIn, id: EndpointId, error: &AppError) -> Response {
    let (status, alert) = pages::error_message(error);
    let shown = Shown {
        alert: Some(alert),
        ..Shown::default()
    };
    render(portal, who, id, status, shown).await
}

/// The `PATCH` body of the edit form: every field it shows, so that what the form says is what
/// the endpoint becomes.
fn edit_body(posted: &Posted) -> Result<serde_json::Value, AppError> {
    let rate_limit = posted
        .field("rate_limit")
        .map(|r| {
            r.parse::<u32>()
                .map_err(|_| AppError::BadParameter("rate limit: a whole number of deliveries per second".into()))
        })
        .transpose()?;
    Ok(json!({
        "url": posted.field("url").unwrap_or_default(),
        "description": posted.field("description"),
        "event_types": posted.all("event_types"),
        "headers": layout::parse_headers(posted.field("headers").unwrap_or_default())?,
        "rate_limit": rate_limit,
        "ordered": posted.field("ordered").is_some(),
    }))
}

/// The recovery's body: `since` and the optional `until`, `datetime-local` values in UTC.
fn recover_body(posted: &Posted) -> Result<serde_json::Value, AppError> {
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| AppError::Internal(e.to_string()))
    };
    let since = layout::parse_local_time("since", posted.field("since").unwrap_or_default())?;
    let mut body = json!({ "since": rfc3339(since)? });
    if let Some(until) = posted.field("until") {
        body["until"] = json!(rfc3339(layout::parse_local_time("until", until)?)?);
    }
    Ok(body)
}

async fn render<A: HttpApp>(
    portal: &Portal<A>,
    who: &SignedIn,
    id: EndpointId,
    status: StatusCode,
    shown: Shown<'_>,
) -> Response {
    let app = portal.app.app();
    let endpoint = match app.get_endpoint(who.principal(), id).await {
        Ok(endpoint) => endpoint,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let attempts = match app
        .list_attempts(who.principal(), id, Some(ATTEMPTS_PER_PAGE), shown.cursor.clone())
        .await
    {
        Ok(page) => page,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let title = format!("Endpoint {}", endpoint.id);
    let main = html! {
        p { a href="/portal" { "← All endpoints" } }
        h1.mono { (title) }
        (layout::messages(shown.flash, shown.alert.as_deref()))
        @if let Some(secret) = &shown.secret {
            p #flash .flash role="status" { "Secret rotated" }
            (layout::new_secret(secret))
        }
        (summary(&endpoint))
        (actions(who, &endpoint))
        (edit_form(who, &endpoint))
        (recover_form(who, &endpoint))
        (attempts_table(who, &endpoint, &attempts))
        (delete_form(who, &endpoint))
    };
    layout::respond(status, layout::page(Some(who), Nav::Endpoints, &title, main))
}

fn summary(e: &EndpointView) -> Markup {
    html! {
        dl.summary {
            dt { "URL" } dd.mono { (e.url) }
            dt { "Description" } dd { (e.description.as_deref().unwrap_or("—")) }
            dt { "Event types" } dd { (event_types(e)) }
            dt { "State" } dd #state { (state(e)) }
            dt { "Success rate" } dd { (success_rate(e)) " of its latest 100 attempts" }
            dt { "Last success" } dd { @match e.last_success_at { Some(at) => (time_el(at)), None => "never" } }
            dt { "Rate limit" } dd { @match e.rate_limit { Some(r) => { (r) " deliveries per second" }, None => "none" } }
            dt { "Ordered" } dd { @if e.ordered { "yes: the events of one request are delivered in sequence" } @else { "no" } }
            dt { "Created" } dd { (time_el(e.created_at)) }
        }
    }
}

fn action_button(who: &SignedIn, e: &EndpointView, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action={ (href(&e.id)) "/" (action) } {
            (layout::csrf(who))
            button type="submit" class=(class) { (label) }
        }
    }
}

fn actions(who: &SignedIn, e: &EndpointView) -> Markup {
    html! {
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            div.actions {
                @if e.disabled {
                    (action_button(who, e, "enable", "Enable", ""))
                } @else {
                    (action_button(who, e, "disable", "Disable", "secondary"))
                }
                (action_button(who, e, "test", "Send test event", ""))
            }
            form.rotate method="post" action={ (href(&e.id)) "/rotate" } {
                (layout::csrf(who))
                div.check {
                    input #expire-now type="checkbox" name="expire_now" value="true";
                    label for="expire-now" { "Stop signing with the current secret at once (otherwise it keeps signing for 24 hours)" }
                }
                button type="submit" class="secondary" { "Rotate secret" }
            }
        }
    }
}

fn edit_form(who: &SignedIn, e: &EndpointView) -> Markup {
    let headers: String = e.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    html! {
        section aria-labelledby="edit" {
            h2 #edit { "Edit" }
            form.endpoint method="post" action={ (href(&e.id)) "/edit" } {
                (layout::csrf(who))
                div.field {
                    label for="url" { "URL" }
                    input #url name="url" type="url" required value=(e.url) spellcheck="false";
                }
                div.field {
                    label for="description" { "Description" }
                    input #description name="description" type="text" maxlength="200"
                        value=(e.description.as_deref().unwrap_or_default());
                }
                (type_choices(&e.event_types))
                div.field {
                    label for="headers" { "Custom headers" }
                    textarea #headers name="headers" rows="3" spellcheck="false" aria-describedby="headers-help" { (headers) }
                    span #headers-help .muted { "One " code { "name: value" } " per line, sent with every delivery (at most 10)." }
                }
                div.field {
                    label for="rate-limit" { "Rate limit (deliveries per second)" }
                    input #rate-limit name="rate_limit" type="number" min="1" max="1000" inputmode="numeric"
                        value=[e.rate_limit];
                }
                div.check {
                    input #ordered type="checkbox" name="ordered" value="true" checked[e.ordered];
                    label for="ordered" { "Ordered: deliver the events of one request in sequence" }
                }
                button type="submit" { "Save" }
            }
        }
    }
}

fn recover_form(who: &SignedIn, e: &EndpointView) -> Markup {
    html! {
        section aria-labelledby="recover" {
            h2 #recover { "Recover" }
            p.muted { "Sends again, once each and in order, every event of the window that this endpoint has not received successfully (at most 30 days back)." }
            form.endpoint method="post" action={ (href(&e.id)) "/recover" } {
                (layout::csrf(who))
                div.grid {
                    div.field {
                        label for="since" { "Recover since (UTC)" }
                        input #since name="since" type="datetime-local" step="1" required;
                    }
                    div.field {
                        label for="until" { "Until (UTC, optional)" }
                        input #until name="until" type="datetime-local" step="1";
                    }
                }
                button type="submit" { "Recover" }
            }
        }
    }
}

fn attempts_table(who: &SignedIn, e: &EndpointView, page: &AttemptPage) -> Markup {
    html! {
        section aria-labelledby="attempts" {
            h2 #attempts { "Delivery attempts" }
            @if page.data.is_empty() {
                p.muted { "No attempts yet." }
            } @else {
                div.scroll role="region" aria-label="Attempts, newest first" tabindex="0" {
                    table {
                        caption { "Newest first" }
                        thead {
                            tr {
                                th scope="col" { "Event" }
                                th scope="col" { "Attempt" }
                                th scope="col" { "Time" }
                                th scope="col" { "Status" }
                                th scope="col" { "Latency" }
                                th scope="col" { "Outcome" }
                                th scope="col" { "Response" }
                                th scope="col" { "Action" }
                            }
                        }
                        tbody {
                            @for a in &page.data {
                                tr {
                                    td.mono { (a.event_id) }
                                    td.num { (a.attempt) }
                                    td { (time_el(a.attempted_at)) }
                                    td.num { @match a.status_code { Some(code) => { "HTTP " (code) }, None => "no answer" } }
                                    td.num { (a.duration_ms) " ms" }
                                    td class=(if a.outcome == "delivered" { "ok" } else { "error" }) { (a.outcome) }
                                    td { span.excerpt { (a.response_excerpt.as_deref().unwrap_or("")) } }
                                    td {
                                        @if a.event_id.starts_with("evt_op_") {
                                            span.muted { "—" }
                                        } @else {
                                            form method="post" action={ "/portal/events/" (a.event_id) "/resend" } {
                                                (layout::csrf(who))
                                                input type="hidden" name="endpoint" value=(e.id);
                                                button type="submit" class="secondary" aria-label={ "Resend " (a.event_id) } { "Resend" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next_cursor {
                    p.pager { a href={ (href(&e.id)) "?cursor=" (super::requests::url_encode(next)) } { "Older attempts" } }
                }
            }
        }
    }
}

fn delete_form(who: &SignedIn, e: &EndpointView) -> Markup {
    html! {
        section aria-labelledby="delete" {
            h2 #delete { "Delete" }
            p.muted { "Deliveries to it stop; its attempts are kept." }
            form method="post" action={ (href(&e.id)) "/delete" } {
                (layout::csrf(who))
                button type="submit" class="danger" { "Delete endpoint" }
            }
        }
    }
}
