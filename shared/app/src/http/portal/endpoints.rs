//! `/portal`: the merchant's webhook endpoints with their health, and "Add endpoint". A new
//! endpoint's signing secret is shown on the answer to the form itself (not after a redirect,
//! which would have to carry it): that page is the only time it is shown.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cashout_core::event::EventType;
use maud::{Markup, html};

use super::layout::{self, Flash, Nav};
use super::{FLASH, Portal, Posted, SignedIn};
use crate::error::AppError;
use crate::http::console::layout::{time_el, when};
use crate::http::{HttpApp, pages};
use crate::views::EndpointView;

/// The types a merchant may subscribe to (the test event is sent whatever the subscription).
pub(super) fn subscribable() -> impl Iterator<Item = EventType> {
    EventType::ALL.into_iter().filter(|t| *t != EventType::EndpointTest)
}

/// `GET /portal`.
pub(super) async fn list<A: HttpApp>(State(portal): State<Portal<A>>, who: SignedIn, headers: HeaderMap) -> Response {
    let (flash, present) = FLASH.take::<Flash>(&headers);
    let response = render(&portal, &who, StatusCode::OK, flash.as_ref(), None, None).await;
    FLASH.clear(response, present, who.secure)
}

/// `POST /portal/endpoints`: registers an endpoint through the API's use case (then sets its
/// description, if one was given, through the API's edit) and shows its secret once.
pub(super) async fn create<A: HttpApp>(State(portal): State<Portal<A>>, posted: Posted) -> Response {
    let app = portal.app.app();
    let who = &posted.who;
    let principal = who.principal();
    let url = posted.field("url").unwrap_or_default();
    let event_types = posted.all("event_types");
    let body = serde_json::json!({ "url": url, "event_types": event_types });
    let created = match app.create_endpoint(principal, body.to_string().as_bytes()).await {
        Ok(created) => created,
        Err(e) => {
            let (status, alert) = pages::error_message(&e);
            return render(&portal, who, status, None, Some(&alert), None).await;
        }
    };
    if let Some(description) = posted.field("description") {
        let patch = serde_json::json!({ "description": description });
        let edit = match created.id.parse() {
            Ok(id) => app.update_endpoint(principal, id, patch.to_string().as_bytes()).await,
            Err(_) => Err(AppError::NotFound),
        };
        if let Err(e) = edit {
            // The endpoint exists: its secret must still be shown, with what went wrong.
            let alert = format!(
                "The endpoint was added without its description: {}",
                pages::error_message(&e).1
            );
            return render(&portal, who, StatusCode::CREATED, None, Some(&alert), Some(&created)).await;
        }
    }
    render(&portal, who, StatusCode::CREATED, None, None, Some(&created)).await
}

async fn render<A: HttpApp>(
    portal: &Portal<A>,
    who: &SignedIn,
    status: StatusCode,
    flash: Option<&Flash>,
    alert: Option<&str>,
    created: Option<&EndpointView>,
) -> Response {
    let endpoints = match portal.app.app().list_endpoints(who.principal()).await {
        Ok(list) => list.data,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let main = html! {
        h1 { "Webhook endpoints" }
        (layout::messages(flash, alert))
        @if let Some(created) = created {
            p #flash .flash role="status" { "Endpoint " span.mono { (created.id) } " added" }
            @if let Some(secret) = &created.secret { (layout::new_secret(secret)) }
        }
        (table(&endpoints))
        (add_form(who))
    };
    layout::respond(
        status,
        layout::page(Some(who), Nav::Endpoints, "Webhook endpoints", main),
    )
}

fn table(endpoints: &[EndpointView]) -> Markup {
    html! {
        @if endpoints.is_empty() {
            p.muted { "No endpoints yet: add one below." }
        } @else {
            div.scroll role="region" aria-label="Endpoints" tabindex="0" {
                table {
                    caption { "Endpoints" }
                    thead {
                        tr {
                            th scope="col" { "URL" }
                            th scope="col" { "Description" }
                            th scope="col" { "Event types" }
                            th scope="col" { "State" }
                            th scope="col" { "Success rate" }
                            th scope="col" { "Last success" }
                        }
                    }
                    tbody {
                        @for e in endpoints {
                            tr {
                                td { a.mono href={ "/portal/endpoints/" (e.id) } { (e.url) } }
                                td { (e.description.as_deref().unwrap_or("—")) }
                                td { (event_types(e)) }
                                td { (state(e)) }
                                td.num { (success_rate(e)) }
                                td { @match e.last_success_at { Some(at) => (time_el(at)), None => span.muted { "never" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The subscribed types, or "all".
pub(super) fn event_types(e: &EndpointView) -> Markup {
    html! {
        @if e.event_types.is_empty() {
            "all"
        } @else {
            ul.types { @for t in &e.event_types { li.mono { (t) } } }
        }
    }
}

/// `Enabled`, or `Disabled (why)`, with failures since when.
pub(super) fn state(e: &EndpointView) -> Markup {
    html! {
        @if e.disabled {
            strong.disabled { "Disabled" }
            @if let Some(reason) = &e.disabled_reason { " (" (reason) ")" }
        } @else {
            "Enabled"
        }
        @if let Some(since) = e.failing_since { br; span.muted { "failing since " (when(since)) } }
    }
}

/// `97 %`, or a dash without attempts.
#[allow(clippy::float_arithmetic)] // a display of the view's fraction; nothing is decided on it
pub(super) fn success_rate(e: &EndpointView) -> String {
    e.success_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{:.0} %", r * 100.0))
}

/// The event type checkboxes, `checked` those given.
pub(super) fn type_choices(checked: &[String]) -> Markup {
    html! {
        fieldset.types {
            legend { "Event types (none checked: every type)" }
            @for t in subscribable() {
                @let id = format!("type-{}", t.as_str().replace('.', "-"));
                div.check {
                    input type="checkbox" id=(id) name="event_types" value=(t.as_str())
                        checked[checked.iter().any(|c| c == t.as_str())];
                    label for=(id) .mono { (t.as_str()) }
                }
            }
        }
    }
}

fn add_form(who: &SignedIn) -> Markup {
    html! {
        section aria-labelledby="add" {
            h2 #add { "Add endpoint" }
            form.endpoint method="post" action="/portal/endpoints" {
                (layout::csrf(who))
                div.field {
                    label for="url" { "URL" }
                    input #url name="url" type="url" required placeholder="https://example.com/webhooks" spellcheck="false";
                }
                div.field {
                    label for="description" { "Description" }
                    input #description name="description" type="text" maxlength="200";
                }
                (type_choices(&[]))
                button type="submit" { "Add endpoint" }
            }
        }
    }
}
