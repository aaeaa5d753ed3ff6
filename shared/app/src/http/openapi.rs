//! The OpenAPI 3.1 document of the API, generated from the handlers and views by `utoipa`
//! ([`ApiDoc`]) and committed as `docs/openapi.json`, which the API serves as it is: the Lambda
//! binary then carries a string instead of the code that builds the document. A test keeps the
//! file equal to what the code generates (`UPDATE_OPENAPI=1` rewrites it).

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::api;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "cashout", description = "Merchant and operator API of cashout: cashout requests (invoices advanced at a percentage), review, webhook endpoints, payout methods. Errors are application/problem+json with a stable `code`."),
    paths(
        api::create_cashout, api::list_cashouts, api::get_cashout, api::list_events, api::cancel,
        api::approve, api::reject, api::retry, api::hold, api::release, api::resolve_attention, api::exclude_invoice,
        api::create_endpoint, api::list_endpoints, api::get_endpoint, api::delete_endpoint, api::rotate_secret, api::list_attempts,
        api::redeliver, api::payout_methods,
        crate::http::webhooks::provider_notification,
    ),
    components(schemas(
        crate::views::CashoutRequestView, crate::views::InvoiceView, crate::views::PayerView, crate::views::BeneficiaryView,
        crate::views::CashoutRequestPage, crate::views::EventView, crate::views::EventList,
        crate::views::EndpointView, crate::views::EndpointList, crate::views::AttemptView, crate::views::AttemptPage,
        crate::views::PayoutMethodView, crate::views::MethodFieldView, crate::views::PayoutMethodList,
        crate::http::problem::Problem, crate::endpoints::NewEndpoint, api::RejectBody,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The committed document.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// `GET /v1/openapi.json` (public).
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

/// The document the code generates now.
pub fn generate() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_what_the_code_generates() {
        let generated = generate();
        if generated != DOCUMENT {
            if std::env::var_os("UPDATE_OPENAPI").is_some() {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
                std::fs::write(path, &generated).unwrap();
            }
            panic!(
                "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p cashout-app openapi` and commit it"
            );
        }
    }
}
