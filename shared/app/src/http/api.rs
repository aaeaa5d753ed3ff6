//! The merchant and operator API (`/v1/...`) as an axum router: the same router runs in the
//! `cashout-api` Lambda (through `lambda_http`) and in the local runner.
//!
//! The handlers are in `api/requests.rs` (cashout requests) and `api/endpoints.rs` (webhook
//! endpoints, events, payout methods) and `api/routing.rs` (routing rules, provider health); this module holds what they share (the extractors, the
//! query and body types) and the router.

mod endpoints;
mod people;
mod portal;
mod requests;
mod routing;
mod statements;

pub(crate) use endpoints::*;
pub(crate) use people::*;
pub(crate) use portal::*;
pub(crate) use requests::*;
pub(crate) use routing::*;
pub(crate) use statements::*;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, EndpointId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::ApiError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The authenticated caller, within its rate limit: an address over its failed
/// authentications is refused before the key is looked up; a caller over its limit after.
pub struct Caller(pub Principal);

impl<A: HttpApp> FromRequestParts<A> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &A) -> Result<Self, Self::Rejection> {
        let app = app.app();
        let address = crate::http::limit::client_address(parts);
        app.screen_address(address)?;
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let principal = match key {
            Some(key) => app.authenticate(key).await,
            None => Err(AppError::Unauthorized),
        };
        let principal = principal.inspect_err(|e| {
            if matches!(e, AppError::Unauthorized) {
                app.failed_authentication(address);
            }
        })?;
        app.admit_caller(&principal).await?;
        Ok(Caller(principal))
    }
}

pub(super) fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    bytes.map_err(|rejection| {
        ApiError(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::BodyTooLarge
        } else {
            AppError::InvalidBody(rejection.body_text())
        })
    })
}

/// Query parameters; a malformed one is a `400 invalid_parameter` problem (axum's own rejection
/// is plain text).
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, St: Send + Sync> FromRequestParts<St> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|rejection| ApiError(AppError::BadParameter(rejection.body_text())))
    }
}

/// Path segments; one that cannot be decoded names nothing: `404 not_found` as a problem.
pub struct Segments<T>(pub T);

impl<T: DeserializeOwned + Send, St: Send + Sync> FromRequestParts<St> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Segments(value))
            .map_err(|_| ApiError(AppError::NotFound))
    }
}

pub(super) fn cashout_id(text: &str) -> Result<CashoutRequestId, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

pub(super) fn endpoint_id(text: &str) -> Result<EndpointId, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

pub(super) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

/// Query of `GET /v1/cashout-requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this status.
    #[param(value_type = Option<crate::http::openapi::CashoutStatusSchema>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    cursor: Option<String>,
    /// Whose requests: required with an operator key; with a merchant key, only its own id
    /// (another merchant's is refused with 403).
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    merchant_id: Option<String>,
}

/// Query of `GET /v1/webhook-endpoints/{id}/attempts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^[0-9]{20}\.evt_([0-9a-f]{32}_[1-9][0-9]{0,18}|op_[0-9a-f]{32})\.[0-9]{10}$")]
    cursor: Option<String>,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MerchantEventParams {
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<crate::http::openapi::EventTypeSchema>)]
    event_type: Option<String>,
    /// Only this request's events.
    #[param(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    cashout_request_id: Option<String>,
    /// Events at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Events before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{20}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9]{10}$")]
    cursor: Option<String>,
}

/// Query of `GET /v1/payout-methods`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MethodParams {
    /// ISO 3166-1 alpha-2.
    #[param(value_type = crate::http::openapi::CountrySchema)]
    country: String,
    /// ISO 4217.
    #[param(value_type = crate::http::openapi::CurrencySchema)]
    currency: String,
    /// Only the methods able to pay this amount: a decimal, rounded half-even to the
    /// currency's minor unit.
    #[param(pattern = r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,4})?$")]
    amount: Option<String>,
}

/// Body of `POST /v1/cashout-requests/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// The router of the merchant and operator API, with its OpenAPI document.
pub fn api_router<A: HttpApp>(app: A) -> Router {
    Router::new()
        .route(
            "/v1/cashout-requests",
            post(create_cashout::<A>).get(list_cashouts::<A>),
        )
        .route("/v1/cashout-requests/bulk-approve", post(bulk_approve::<A>))
        .route("/v1/cashout-requests/{id}", get(get_cashout::<A>))
        .route("/v1/cashout-requests/{id}/events", get(list_events::<A>))
        .route("/v1/cashout-requests/{id}/cancel", post(cancel::<A>))
        .route("/v1/cashout-requests/{id}/approve", post(approve::<A>))
        .route("/v1/cashout-requests/{id}/reject", post(reject::<A>))
        .route("/v1/cashout-requests/{id}/retry", post(retry::<A>))
        .route("/v1/cashout-requests/{id}/hold", post(hold::<A>))
        .route("/v1/cashout-requests/{id}/release", post(release::<A>))
        .route(
            "/v1/cashout-requests/{id}/resolve-attention",
            post(resolve_attention::<A>),
        )
        .route(
            "/v1/cashout-requests/{id}/invoices/{invoice_id}/exclude",
            post(exclude_invoice::<A>),
        )
        .route(
            "/v1/webhook-endpoints",
            post(create_endpoint::<A>).get(list_endpoints::<A>),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            get(get_endpoint::<A>)
                .delete(delete_endpoint::<A>)
                .patch(update_endpoint::<A>),
        )
        .route("/v1/webhook-endpoints/{id}/test", post(test_endpoint::<A>))
        .route("/v1/webhook-endpoints/{id}/recover", post(recover_endpoint::<A>))
        .route("/v1/events", get(list_merchant_events::<A>))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate_secret::<A>))
        .route("/v1/webhook-endpoints/{id}/attempts", get(list_attempts::<A>))
        .route("/v1/events/{event_id}/redeliver", post(redeliver::<A>))
        .route("/v1/portal-sessions", post(create_portal_session::<A>))
        .route("/v1/payout-methods", get(payout_methods::<A>))
        .route(
            "/v1/routing-rules",
            get(list_routing_rules::<A>).post(create_routing_rule::<A>),
        )
        .route(
            "/v1/routing-rules/{id}",
            get(get_routing_rule::<A>)
                .put(replace_routing_rule::<A>)
                .delete(delete_routing_rule::<A>),
        )
        .route("/v1/providers/health", get(providers_health::<A>))
        .route("/v1/statements", get(statement::<A>))
        .route("/v1/reconciliations", post(start_reconciliation::<A>))
        .route("/v1/reconciliations/{id}", get(get_reconciliation::<A>))
        .route("/v1/operators", get(list_operators::<A>).post(create_operator::<A>))
        .route("/v1/operators/{name}/keys", post(create_operator_key::<A>))
        .route("/v1/operators/{name}/revoke", post(revoke_operator::<A>))
        .route("/v1/approval-policies", get(list_policies::<A>))
        .route(
            "/v1/approval-policies/{scope}",
            get(get_policy::<A>).put(put_policy::<A>).delete(delete_policy::<A>),
        )
        .route("/v1/openapi.json", get(crate::http::openapi::serve))
        .with_state(app)
}
