//! Provider health (each circuit breaker and its current window) and the routing rules, read
//! only: changing a rule stays an admin's API call.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Nav};
use super::{Console, SignedIn};
use crate::http::HttpApp;
use crate::views::{ProviderHealthView, RoutingRuleView};

/// `GET /console/providers`.
pub(super) async fn providers<A: HttpApp>(State(console): State<Console<A>>, who: SignedIn) -> Response {
    let app = console.app.app();
    let principal = &who.session.principal;
    let now = app.clock.now();
    let window = app.config.breaker.window;
    let health: Vec<ProviderHealthView> = match app.providers_health(principal).await {
        Ok(health) => health.iter().map(|h| ProviderHealthView::new(h, now, window)).collect(),
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let rules: Vec<RoutingRuleView> = match app.list_routing_rules(principal).await {
        Ok(rules) => rules.iter().map(RoutingRuleView::from).collect(),
        Err(e) => return layout::failure_page(Some(&who), &e),
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "any".to_owned()
        } else {
            items.join(", ")
        }
    };
    let body = html! {
        h1 { "Providers" }
        section aria-labelledby="health" {
            h2 #health { "Health" }
            @if health.is_empty() {
                p.empty { "No provider has been called yet." }
            } @else {
                div.scroll role="region" aria-label="Provider health" tabindex="0" {
                    table {
                        caption { "Circuit breakers over the last " (window.as_secs()) " seconds" }
                        thead {
                            tr {
                                th scope="col" { "Provider" }
                                th scope="col" { "Circuit" }
                                th scope="col" { "Since" }
                                th scope="col" { "Failures in a row" }
                                th scope="col" { "Successes" }
                                th scope="col" { "Declines" }
                                th scope="col" { "Errors" }
                                th scope="col" { "Timeouts" }
                                th scope="col" { "Mean latency" }
                            }
                        }
                        tbody {
                            @for h in &health {
                                tr {
                                    th scope="row" { (h.provider) }
                                    td { span.status { (h.state) }
                                        @if let Some(until) = &h.open_until { " until " (stamp(until)) } }
                                    td { (stamp(&h.since)) }
                                    td.num { (h.consecutive_failures) }
                                    td.num { (h.window.successes) }
                                    td.num { (h.window.declines) }
                                    td.num { (h.window.errors) }
                                    td.num { (h.window.timeouts) }
                                    td.num { @match h.window.latency_ms_mean { Some(ms) => { (ms) " ms" }, None => { "—" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="rules" {
            h2 #rules { "Routing rules" }
            @if rules.is_empty() {
                p.empty { "No routing rule: every request goes to the provider of its country and currency." }
            } @else {
                div.scroll role="region" aria-label="Routing rules" tabindex="0" {
                    table {
                        caption { "In the order they are tried" }
                        thead {
                            tr {
                                th scope="col" { "Rule" }
                                th scope="col" { "Merchant" }
                                th scope="col" { "Priority" }
                                th scope="col" { "Countries" }
                                th scope="col" { "Currencies" }
                                th scope="col" { "Amounts" }
                                th scope="col" { "Methods" }
                                th scope="col" { "Providers" }
                                th scope="col" { "Failover on decline" }
                            }
                        }
                        tbody {
                            @for r in &rules {
                                tr {
                                    td.mono { (r.id)
                                        @if let Some(d) = &r.description { br; span.muted { (d) } } }
                                    td { (r.merchant_id.as_deref().unwrap_or("every merchant")) }
                                    td.num { (r.priority) }
                                    td { (list(&r.conditions.countries)) }
                                    td { (list(&r.conditions.currencies)) }
                                    td { (r.conditions.amount_min.as_deref().unwrap_or("0")) " to "
                                        (r.conditions.amount_max.as_deref().unwrap_or("any")) }
                                    td { (list(&r.conditions.payout_methods)) }
                                    td {
                                        @for (i, p) in r.providers.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            (p.provider)
                                            @if let Some(w) = p.weight { " (weight " (w) ")" }
                                        }
                                    }
                                    td { @if r.failover_on_decline { "yes" } @else { "no" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(Some(&who), Nav::Providers, "Providers", body),
    )
}

/// An RFC 3339 time from a view, shown like every other time of the console.
fn stamp(text: &str) -> Markup {
    match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => layout::time_el(at),
        Err(_) => html! { (text) },
    }
}
