//! Search across merchants: by id, status, merchant, provider, currency and creation date,
//! paged. A GET form, so a search is a link that can be shared and reloaded.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cashout_core::provider::ProviderName;
use cashout_core::status::CashoutStatus;
use maud::{Markup, html};
use serde::Deserialize;
use time::Date;
use time::macros::format_description;

use super::layout::{self, Nav};
use super::queue::url_encode;
use super::{Console, SignedIn};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::work::RequestSearch;

/// Requests on one page of results.
const PAGE: u32 = 50;

/// The form's fields, as typed (every one optional; empty is absent).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchForm {
    id: Option<String>,
    status: Option<String>,
    merchant_id: Option<String>,
    provider: Option<String>,
    currency: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

impl SearchForm {
    fn value(field: &Option<String>) -> Option<&str> {
        field.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether the form was sent at all (a first visit shows the form alone).
    fn sent(&self) -> bool {
        [
            &self.id,
            &self.status,
            &self.merchant_id,
            &self.provider,
            &self.currency,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|f| f.is_some())
    }

    /// The fields as a query string (for the next page's link), without the cursor.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, field) in [
            ("id", &self.id),
            ("status", &self.status),
            ("merchant_id", &self.merchant_id),
            ("provider", &self.provider),
            ("currency", &self.currency),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            q.append_pair(name, Self::value(field).unwrap_or_default());
        }
        q.finish()
    }

    /// The search the use case runs; a field that does not parse is a 400 with its name.
    fn search(&self) -> Result<RequestSearch, AppError> {
        let bad = |what: &str| AppError::BadParameter(what.to_owned());
        let date = |field: &Option<String>, name: &str| -> Result<Option<Date>, AppError> {
            Self::value(field)
                .map(|v| Date::parse(v, format_description!("[year]-[month]-[day]")))
                .transpose()
                .map_err(|_| bad(&format!("{name} is a date: YYYY-MM-DD")))
        };
        Ok(RequestSearch {
            id: Self::value(&self.id)
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("the request id is a UUID"))?,
            status: Self::value(&self.status)
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("unknown status"))?,
            merchant_id: Self::value(&self.merchant_id)
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("a merchant id is 1 to 64 letters, digits, `_` or `-`"))?,
            provider: Self::value(&self.provider)
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("unknown provider"))?,
            currency: Self::value(&self.currency)
                .map(|c| c.to_ascii_uppercase().parse())
                .transpose()
                .map_err(|_| bad("a currency is an ISO 4217 code such as BRL"))?,
            from: date(&self.from, "from")?,
            to: date(&self.to, "to")?,
            limit: Some(PAGE),
            cursor: Self::value(&self.cursor).map(str::to_owned),
        })
    }
}

/// `GET /console/search`.
pub(super) async fn search<A: HttpApp>(
    State(console): State<Console<A>>,
    who: SignedIn,
    Query(form): Query<SearchForm>,
) -> Response {
    let app = console.app.app();
    let mut status = StatusCode::OK;
    let mut error = None;
    let mut results = None;
    if form.sent() {
        match form.search() {
            Ok(search) => match app.search_requests(&who.session.principal, search).await {
                Ok(page) => results = Some((page.items, page.next_cursor)),
                Err(e) if e.is_client_error() => {
                    status = super::status_of(&e);
                    error = Some(e.to_string());
                }
                Err(e) => return layout::failure_page(Some(&who), &e),
            },
            Err(e) => {
                status = super::status_of(&e);
                error = Some(e.to_string());
            }
        }
    }
    let body = html! {
        h1 { "Search requests" }
        (search_form(&form))
        @if let Some(error) = &error {
            p.alert role="alert" { (error) }
        }
        @if let Some((requests, next)) = &results {
            @if requests.is_empty() {
                p.empty role="status" { "No request matches." }
            } @else {
                (layout::request_table(requests, false, "Matching requests", None))
            }
            @if let Some(next) = next {
                p.pager { a href={ "/console/search?" (form.query()) "&cursor=" (url_encode(next)) } { "Next page" } }
            }
        }
    };
    layout::respond(status, layout::page(Some(&who), Nav::Search, "Search requests", body))
}

fn search_form(form: &SearchForm) -> Markup {
    let v = |field: &Option<String>| SearchForm::value(field).unwrap_or_default().to_owned();
    let status = v(&form.status);
    let provider = v(&form.provider);
    html! {
        form.search method="get" action="/console/search" {
            div.grid {
                div.field {
                    label for="id" { "Request id" }
                    input #id name="id" type="text" value=(v(&form.id)) spellcheck="false";
                }
                div.field {
                    label for="status-filter" { "Status" }
                    select #status-filter name="status" {
                        option value="" { "Any" }
                        @for s in CashoutStatus::ALL {
                            option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                        }
                    }
                }
                div.field {
                    label for="merchant_id" { "Merchant" }
                    input #merchant_id name="merchant_id" type="text" value=(v(&form.merchant_id));
                }
                div.field {
                    label for="provider" { "Provider" }
                    select #provider name="provider" {
                        option value="" { "Any" }
                        @for p in ProviderName::ALL {
                            option value=(p.as_str()) selected[provider == p.as_str()] { (p.as_str()) }
                        }
                    }
                }
                div.field {
                    label for="currency" { "Currency" }
                    input #currency name="currency" type="text" maxlength="3" value=(v(&form.currency))
                        autocapitalize="characters";
                }
                div.field {
                    label for="from" { "From" }
                    input #from name="from" type="date" value=(v(&form.from));
                }
                div.field {
                    label for="to" { "To" }
                    input #to name="to" type="date" value=(v(&form.to));
                }
            }
            p.muted { "From and To are UTC days: requests that changed in that period (the last 7 days when "
                "both are empty, at most 366). A request id finds that request alone." }
            button type="submit" { "Search" }
        }
    }
}
