//! One request: its status, review, invoices, timeline (status events with their actors,
//! provider attempts, webhook deliveries) and the actions its state allows. An action posts,
//! then comes back here with a one-time message (303, Post/Redirect/Get); a refused action
//! shows the detail page again with the error, in the status the API would answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, InvoiceId};
use cashout_core::ports::HoldAction;
use cashout_core::provider::ProviderName;
use cashout_core::status::{CashoutStatus, InvoiceStatus};
use maud::{Markup, html};

use super::layout::{self, Nav};
use super::queue::url_encode;
use super::{Console, FLASH, Posted, SignedIn, status_of};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::pages;
use crate::views::{CashoutRequestView, EventView};

/// A one-time message for the page after a successful action, carried in a short-lived cookie
/// as a code: only these sentences can be shown, whatever the cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Flash {
    Approved,
    /// An approval counted; the request waits for more (so far, needed).
    Recorded(usize, u8),
    Rejected,
    Held,
    Released,
    Retried,
    AttentionResolved,
    Excluded(String),
    /// Deliveries queued again for an event.
    Redelivered(usize),
}

impl pages::Flash for Flash {
    fn code(&self) -> String {
        match self {
            Flash::Approved => "approved".into(),
            Flash::Recorded(n, m) => format!("recorded.{n}.{m}"),
            Flash::Rejected => "rejected".into(),
            Flash::Held => "held".into(),
            Flash::Released => "released".into(),
            Flash::Retried => "retried".into(),
            Flash::AttentionResolved => "resolved".into(),
            Flash::Excluded(invoice) => format!("excluded.{}", url_encode(invoice)),
            Flash::Redelivered(n) => format!("redelivered.{n}"),
        }
    }

    fn parse(code: &str) -> Option<Flash> {
        let (head, rest) = code.split_once('.').unwrap_or((code, ""));
        Some(match head {
            "approved" => Flash::Approved,
            "recorded" => {
                let (n, m) = rest.split_once('.')?;
                Flash::Recorded(n.parse().ok()?, m.parse().ok()?)
            }
            "rejected" => Flash::Rejected,
            "held" => Flash::Held,
            "released" => Flash::Released,
            "retried" => Flash::Retried,
            "resolved" => Flash::AttentionResolved,
            "excluded" => {
                let invoice: String = url::form_urlencoded::parse(format!("i={rest}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())?;
                InvoiceId::new(invoice.clone()).ok()?;
                Flash::Excluded(invoice)
            }
            "redelivered" => Flash::Redelivered(rest.parse().ok()?),
            _ => return None,
        })
    }
}

impl Flash {
    /// The sentence shown.
    pub(super) fn text(&self) -> String {
        match self {
            Flash::Approved => "Approved".into(),
            Flash::Recorded(n, m) => format!("Approval recorded ({n} of {m})"),
            Flash::Rejected => "Rejected".into(),
            Flash::Held => "Held at the provider".into(),
            Flash::Released => "Released at the provider".into(),
            Flash::Retried => "Sent back to dispatch".into(),
            Flash::AttentionResolved => "Attention resolved".into(),
            Flash::Excluded(invoice) => format!("Invoice {invoice} excluded"),
            Flash::Redelivered(n) => format!("Redelivery queued to {n} endpoint(s)"),
        }
    }

    /// The message of an approval that went through.
    pub(super) fn of_approval(view: &CashoutRequestView) -> Flash {
        match (&view.review, view.status) {
            (Some(review), CashoutStatus::UnderReview | CashoutStatus::Requested) => {
                Flash::Recorded(review.approvals.len(), review.required_approvals)
            }
            _ => Flash::Approved,
        }
    }
}

/// The flash as the status region.
pub(super) fn flash_region(flash: Option<&Flash>) -> Markup {
    html! {
        @if let Some(flash) = flash {
            p #flash .flash role="status" { (flash.text()) }
        }
    }
}

fn request_id(text: &str) -> Result<CashoutRequestId, AppError> {
    text.parse().map_err(|_| AppError::NotFound)
}

fn detail_href(id: CashoutRequestId) -> String {
    format!("/console/requests/{id}")
}

/// `GET /console/requests/{id}`.
pub(super) async fn detail<A: HttpApp>(
    State(console): State<Console<A>>,
    who: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (flash, present) = FLASH.take::<Flash>(&headers);
    let response = match request_id(&id) {
        Ok(id) => render(&console, &who, id, flash.as_ref(), None).await,
        Err(e) => layout::failure_page(Some(&who), &e),
    };
    FLASH.clear(response, present, who.secure)
}

/// `POST /console/requests/{id}/{action}`: approve, reject, hold, release, retry,
/// resolve-attention.
pub(super) async fn act<A: HttpApp>(
    State(console): State<Console<A>>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let app = console.app.app();
    let who = &posted.who;
    let principal = &who.session.principal;
    let id = match request_id(&id) {
        Ok(id) => id,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let outcome = match action.as_str() {
        "approve" => app.approve(principal, id).await.map(|v| Flash::of_approval(&v)),
        "reject" => {
            let reason = posted.field("reason").unwrap_or_default().to_owned();
            app.reject(principal, id, reason).await.map(|_| Flash::Rejected)
        }
        "hold" => app.set_hold(principal, id, HoldAction::Hold).await.map(|_| Flash::Held),
        "release" => app
            .set_hold(principal, id, HoldAction::Release)
            .await
            .map(|_| Flash::Released),
        "retry" => app.retry(principal, id).await.map(|_| Flash::Retried),
        "resolve-attention" => app
            .resolve_attention(principal, id)
            .await
            .map(|_| Flash::AttentionResolved),
        _ => Err(AppError::NotFound),
    };
    finish(&console, who, id, outcome).await
}

/// `POST /console/requests/{id}/invoices/{invoice_id}/exclude`.
pub(super) async fn exclude<A: HttpApp>(
    State(console): State<Console<A>>,
    Path((id, invoice)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let app = console.app.app();
    let who = &posted.who;
    let id = match request_id(&id) {
        Ok(id) => id,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let outcome = match InvoiceId::new(invoice) {
        Ok(invoice) => app
            .exclude_invoice(&who.session.principal, id, &invoice)
            .await
            .map(|_| Flash::Excluded(invoice.to_string())),
        Err(_) => Err(AppError::NotFound),
    };
    finish(&console, who, id, outcome).await
}

/// After an action: back to the page with its message, or the page with the error.
async fn finish<A: HttpApp>(
    console: &Console<A>,
    who: &SignedIn,
    id: CashoutRequestId,
    outcome: Result<Flash, AppError>,
) -> Response {
    match outcome {
        Ok(flash) => FLASH.redirect_with(&detail_href(id), &flash, who.secure),
        Err(AppError::NotFound) => layout::failure_page(Some(who), &AppError::NotFound),
        Err(e) if status_of(&e).is_server_error() => layout::failure_page(Some(who), &e),
        Err(e) => render(console, who, id, None, Some(&e)).await,
    }
}

/// The detail page; with `error`, in that error's status with the error in an alert.
async fn render<A: HttpApp>(
    console: &Console<A>,
    who: &SignedIn,
    id: CashoutRequestId,
    flash: Option<&Flash>,
    error: Option<&AppError>,
) -> Response {
    let app = console.app.app();
    let principal = &who.session.principal;
    let view = match app.get_cashout(principal, id).await {
        Ok(view) => view,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let events = match app.list_events(principal, id).await {
        Ok(list) => list.data,
        Err(e) => return layout::failure_page(Some(who), &e),
    };
    let mut deliveries = Vec::with_capacity(events.len());
    for event in &events {
        let attempts = match event.id.parse() {
            Ok(event_id) => app.event_attempts(principal, event_id).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        deliveries.push(attempts);
    }
    let title = format!("Request {}", view.id);
    let body = html! {
        h1 { "Request " span.mono { (view.id) } }
        (flash_region(flash))
        @if let Some(error) = error {
            p.alert role="alert" { (error.to_string()) }
        }
        (summary(&view))
        (review(&view))
        (actions(who, &view))
        (invoices(who, &view))
        (timeline(&view, &events, &deliveries))
    };
    let status = error.map_or(StatusCode::OK, status_of);
    layout::respond(status, layout::page(Some(who), Nav::None, &title, body))
}

fn summary(view: &CashoutRequestView) -> Markup {
    let b = &view.beneficiary;
    html! {
        dl.summary {
            dt { "Status" } dd { span #status .status { (view.status.as_str()) }
                @if let Some(actor) = &view.status_actor { " by " (actor.id) } }
            dt { "Merchant" } dd { (view.merchant_id) }
            dt { "Amount" } dd { (layout::amount(&view.requested_amount, &view.currency)) }
            @if let Some(paid) = &view.paid_amount {
                dt { "Paid" } dd { (layout::amount(paid, &view.currency)) }
            }
            dt { "Created" } dd { (layout::time_el(view.request_date)) }
            dt { "Requested by" } dd { (view.requested_by) }
            dt { "Country" } dd { (view.country) }
            dt { "Provider" } dd { (view.provider)
                @if let Some(status) = &view.provider_status { " (" (status) ")" } }
            dt { "Beneficiary" } dd {
                (b.name) @if let Some(last) = &b.last_name { " " (last) }
                @if let Some(doc) = &b.document_id { ", document " (doc) }
            }
            dt { "Account" } dd { (layout::beneficiary(view)) }
            @if view.needs_attention {
                dt { "Attention" } dd {
                    ul.rules {
                        @for note in &view.attention {
                            li { (serde_json::to_value(note).map(|v| reason_text(&v["reason"])).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

fn review(view: &CashoutRequestView) -> Markup {
    html! {
        section aria-labelledby="review" {
            h2 #review { "Review" }
            @match &view.review {
                Some(review) => {
                    @if review.rules_fired.is_empty() {
                        p { "No rule fired: approved without review." }
                    } @else {
                        p { "Rules that fired (policy " (review.policy) "):" }
                        ul.rules {
                            @for rule in &review.rules_fired {
                                li { (rule.detail) " " span.muted { "(" (rule.rule) ", " (rule.approvers) " approver"
                                    @if rule.approvers > 1 { "s" } ")" } }
                            }
                        }
                    }
                    p { "Approvals: " (review.approvals.len()) " of " (review.required_approvals) }
                    @if !review.approvals.is_empty() {
                        ul {
                            @for a in &review.approvals {
                                li { (a.operator) ", " (layout::time_el(a.at)) }
                            }
                        }
                    }
                }
                None => p { "Not reviewed yet." }
            }
        }
    }
}

/// The actions the request's state allows (the app checks again, and refuses the rest).
fn actions(who: &SignedIn, view: &CashoutRequestView) -> Markup {
    let href = |action: &str| format!("/console/requests/{}/{action}", view.id);
    let status = view.status;
    let reviewing = matches!(status, CashoutStatus::Requested | CashoutStatus::UnderReview);
    let rejectable = reviewing || matches!(status, CashoutStatus::Approved | CashoutStatus::PaymentProcessorError);
    // Only D24 and Onspot hold a payout; the others would refuse.
    let holdable = view.provider.parse::<ProviderName>().is_ok_and(|p| p.supports_hold());
    let pending = status == CashoutStatus::PendingPayment && holdable;
    let retry = status == CashoutStatus::PaymentProcessorError && layout::is_admin(who);
    // Four eyes: an operator who approved waits for another one (the app refuses a second time).
    let approved_by_me = match &who.session.principal {
        Principal::Operator { name, .. } => view
            .review
            .as_ref()
            .is_some_and(|r| r.approvals.iter().any(|a| a.operator == name.as_str())),
        Principal::Merchant { .. } => false,
    };
    let any = reviewing || rejectable || pending || retry || view.needs_attention;
    html! {
        @if any {
            section aria-labelledby="actions" {
                h2 #actions { "Actions" }
                @if reviewing && approved_by_me {
                    p { "You have approved this request; another operator must approve it too." }
                }
                div.actions {
                    @if reviewing && !approved_by_me {
                        form method="post" action=(href("approve")) {
                            (layout::csrf(who))
                            button type="submit" { "Approve" }
                        }
                    }
                    @if pending && !view.on_hold {
                        form method="post" action=(href("hold")) {
                            (layout::csrf(who))
                            button type="submit" { "Hold" }
                        }
                    }
                    @if pending && view.on_hold {
                        form method="post" action=(href("release")) {
                            (layout::csrf(who))
                            button type="submit" { "Release" }
                        }
                    }
                    @if retry {
                        form method="post" action=(href("retry")) {
                            (layout::csrf(who))
                            button type="submit" { "Retry" }
                        }
                    }
                    @if view.needs_attention {
                        form method="post" action=(href("resolve-attention")) {
                            (layout::csrf(who))
                            button type="submit" { "Resolve attention" }
                        }
                    }
                }
                @if rejectable {
                    form.reject method="post" action=(href("reject")) {
                        (layout::csrf(who))
                        div.field {
                            label for="reason" { "Reason" }
                            textarea #reason name="reason" rows="3" maxlength="500" required {}
                        }
                        button.danger type="submit" { "Reject" }
                    }
                }
            }
        }
    }
}

fn invoices(who: &SignedIn, view: &CashoutRequestView) -> Markup {
    let excludable = matches!(view.status, CashoutStatus::Requested | CashoutStatus::UnderReview);
    html! {
        section aria-labelledby="invoices" {
            h2 #invoices { "Invoices" }
            div.scroll role="region" aria-label="Invoices" tabindex="0" {
                table {
                    thead {
                        tr {
                            th scope="col" { "Invoice" }
                            th scope="col" { "Payer" }
                            th scope="col" { "Amount" }
                            th scope="col" { "Advance" }
                            th scope="col" { "Eligible" }
                            th scope="col" { "Status" }
                            @if excludable { th scope="col" { "Action" } }
                        }
                    }
                    tbody {
                        @for invoice in &view.invoices {
                            tr {
                                td.mono { (invoice.invoice_id) }
                                td { (invoice.payer.name) " " span.muted { (invoice.payer.tax_id) } }
                                td.num { (layout::amount(&invoice.amount, &view.currency)) }
                                td.num { (invoice.advance_percentage) " %" }
                                td.num { (layout::amount(&invoice.eligible_amount, &view.currency)) }
                                td { (invoice.status.as_str()) }
                                @if excludable {
                                    td {
                                        @if invoice.status != InvoiceStatus::Excluded {
                                            form method="post" action={ "/console/requests/" (view.id)
                                                "/invoices/" (url_encode(&invoice.invoice_id)) "/exclude" } {
                                                (layout::csrf(who))
                                                button.secondary type="submit" { "Exclude " (invoice.invoice_id) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The timeline of a request (the portal shows the same one).
pub(crate) fn timeline(
    view: &CashoutRequestView,
    events: &[EventView],
    deliveries: &[Vec<crate::views::AttemptView>],
) -> Markup {
    html! {
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            ol.timeline {
                @for (event, attempts) in events.iter().zip(deliveries) {
                    li {
                        (layout::time_el(event.occurred_at)) " "
                        strong { (event_headline(event)) }
                        @if let Some(reason) = event.data.get("reason").filter(|r| !r.is_null()) {
                            " — " (reason_text(reason))
                        }
                        @if let Some(actor) = &event.actor { " " span.actor { "by " (actor.id) } }
                        @if !attempts.is_empty() {
                            ul.deliveries {
                                @for a in attempts {
                                    li {
                                        "Webhook delivery " (a.attempt) ": "
                                        @match a.status_code { Some(code) => { "HTTP " (code) }, None => { "no answer" } }
                                        ", " (a.outcome) ", " (layout::time_el(a.attempted_at))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Provider attempts" }
            @if view.provider_attempts.is_empty() {
                p.muted { "Not sent to a provider yet." }
            } @else {
                ol {
                    @for attempt in &view.provider_attempts {
                        li {
                            (attempt.provider) ", reference " span.mono { (attempt.reference) }
                            ", from " (layout::when_text(&attempt.started_at))
                            @if let Some(ended) = &attempt.ended_at { " to " (layout::when_text(ended)) }
                            @if let Some(failover) = &attempt.failover { " — left: " (reason_text(failover)) }
                        }
                    }
                }
            }
        }
    }
}

/// `UNDER_REVIEW`, `Invoice INV-2 EXCLUDED`, `Created`, `Moved from d24 to cascad`.
fn event_headline(event: &EventView) -> String {
    let d = &event.data;
    let text = |key: &str| d.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    match event.event_type.as_str() {
        "cashout_request.created" => format!("Created ({})", text("status")),
        "cashout_request.invoice_status_update" => {
            format!("Invoice {} {}", text("invoice_id"), text("status"))
        }
        "cashout_request.provider_failover" => {
            format!("Moved from {} to {}", text("from_provider"), text("to_provider"))
        }
        _ => text("status").to_owned(),
    }
}

/// A reason object (`{"kind": "rejected_by_operator", "reason": "…"}`) as a sentence:
/// the kind in words, then its fields.
fn reason_text(reason: &serde_json::Value) -> String {
    let Some(object) = reason.as_object() else {
        return reason.as_str().unwrap_or_default().to_owned();
    };
    let kind = object
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .replace('_', " ");
    // "approved by operator", "cancelled by merchant": who did it is named by the actor.
    let kind = kind
        .strip_suffix(" by operator")
        .or_else(|| kind.strip_suffix(" by merchant"))
        .map_or_else(|| kind.clone(), str::to_owned);
    let details: Vec<String> = object
        .iter()
        .filter(|(k, _)| k.as_str() != "kind")
        .map(|(k, v)| match v.as_str() {
            Some(s) => format!("{}: {s}", k.replace('_', " ")),
            None => format!("{}: {v}", k.replace('_', " ")),
        })
        .collect();
    if details.is_empty() {
        kind
    } else {
        format!("{kind} ({})", details.join("; "))
    }
}
