//! The merchant and operator API (`/v1/...`) as an axum router: the same router runs in the
//! `cashout-api` Lambda (through `lambda_http`) and in the local runner.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId, InvoiceId};
use cashout_core::ports::HoldAction;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use crate::endpoints::NewEndpoint;
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::views::{
    AttemptPage, CashoutRequestPage, CashoutRequestView, EndpointList, EndpointView, EventList, PayoutMethodList,
};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The authenticated caller.
pub struct Caller(pub Principal);

impl<A: HttpApp> FromRequestParts<A> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &A) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError(AppError::Unauthorized))?;
        Ok(Caller(app.app().authenticate(key).await?))
    }
}

fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
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

fn cashout_id(text: &str) -> Result<CashoutRequestId, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

fn endpoint_id(text: &str) -> Result<EndpointId, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
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
    #[param(pattern = r"^[0-9]{20}\.evt_[0-9a-f]{32}_[1-9][0-9]{0,18}\.[0-9]{10}$")]
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

/// Creates a cashout request.
#[utoipa::path(post, path = "/v1/cashout-requests", tag = "cashout requests",
    request_body(content = crate::http::input_doc::CashoutInputDoc, description = "Rules that tie fields together or depend on the deployment (which provider pays the country and currency, the beneficiary fields it needs, an amount's decimals in its currency, distinct invoice ids, the metadata's size) are answered with 422 `validation_failed`, naming each field", example = json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@clinic.example",
        "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                        "email": "ana@clinic.example", "bank_code": "001", "bank_branch": "1234",
                        "bank_account": "0001234567", "account_type": "C"},
        "invoices": [
            {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": "1000.00", "advance_percentage": "80"},
            {"invoice_id": "INV-2", "payer": {"tax_id": "99888777000166", "name": "Clinic Two"}, "amount": "500.00", "advance_percentage": "50"}
        ]
    })),
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,255}$", description = "Required: 1 to 255 visible ASCII characters. The same key and body within 24 hours replay the first answer; the same key with another body is refused (422 `idempotency_key_reused`)")),
    responses((status = 201, body = CashoutRequestView, description = "Created; also the replayed answer of a repeated key and body (`Idempotent-Replayed: true`)"),
              (status = 400, body = Problem, description = "`invalid_header`: no or malformed `Idempotency-Key`"),
              (status = 403, body = Problem, description = "`forbidden`: an operator key cannot create"),
              (status = 409, body = Problem, description = "`invoice_in_use` (another request holds an invoice), `idempotency_in_progress` (the first request with this key is still being answered)"),
              (status = 422, body = Problem, description = "`validation_failed` (with `errors`), `invalid_body`, `idempotency_key_reused`"),
              (status = 429, body = Problem, description = "`overloaded`: more work is waiting than the workers can finish soon (the runner's `--max-backlog`); nothing was written; retry after the `Retry-After` seconds",
               headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))),
    security(("bearer" = [])))]
pub(crate) async fn create_cashout<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    let merchant = crate::access::require_merchant(&principal)?;
    let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{0}"));
    let created = app.create_cashout(merchant, key, &bytes).await?;
    let status = StatusCode::from_u16(created.status).unwrap_or(StatusCode::CREATED);
    let mut response = (status, created.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Lists requests, newest first.
#[utoipa::path(get, path = "/v1/cashout-requests", tag = "cashout requests", params(ListParams),
    responses((status = 200, body = CashoutRequestPage), (status = 400, body = Problem, description = "`invalid_parameter`: malformed parameter, or an operator without `merchant_id`"),
              (status = 403, body = Problem, description = "`forbidden`: a merchant key naming another merchant")),
    security(("bearer" = [])))]
pub(crate) async fn list_cashouts<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Params(params): Params<ListParams>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let page = app
        .list_cashouts(
            &principal,
            params.merchant_id.as_deref(),
            params.status.as_deref(),
            params.limit,
            params.cursor,
        )
        .await?;
    Ok(json(StatusCode::OK, &page))
}

/// One request with its invoices.
#[utoipa::path(get, path = "/v1/cashout-requests/{id}", tag = "cashout requests",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn get_cashout<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.get_cashout(&principal, cashout_id(&id)?).await?,
    ))
}

/// The status history (audit trail).
#[utoipa::path(get, path = "/v1/cashout-requests/{id}/events", tag = "cashout requests",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = EventList), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn list_events<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.list_events(&principal, cashout_id(&id)?).await?,
    ))
}

/// Merchant cancel, while cancellable (at the provider only while it allows it).
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/cancel", tag = "cashout requests",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem, description = "`forbidden`: cancel needs the merchant's key"),
              (status = 409, body = Problem, description = "`not_cancellable`, `dispatch_in_progress`, `provider_holds_payout`, `concurrent_update`"),
              (status = 502, body = Problem, description = "`provider_unavailable`: the provider refused the cancel")),
    security(("bearer" = [])))]
pub(crate) async fn cancel<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(StatusCode::OK, &app.cancel(&principal, cashout_id(&id)?).await?))
}

/// Operator: hold a payout the provider has accepted but not sent (`ON_HOLD`; D24 and Onspot).
/// The request stays `PENDING_PAYMENT`; its `provider_status` becomes `ON_HOLD`.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/hold", tag = "review",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "hold_refused: the provider has no hold, the payout is past it, or the request is not PENDING_PAYMENT"), (status = 502, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn hold<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.set_hold(&principal, cashout_id(&id)?, HoldAction::Hold).await?,
    ))
}

/// Operator: release a held payout; the provider goes on and pays it.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/release", tag = "review",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "hold_refused"), (status = 502, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn release<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.set_hold(&principal, cashout_id(&id)?, HoldAction::Release).await?,
    ))
}

/// Operator approval.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/approve", tag = "review",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn approve<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(StatusCode::OK, &app.approve(&principal, cashout_id(&id)?).await?))
}

/// Operator rejection.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/reject", tag = "review",
    params(("id" = String, Path, description = "Request id")), request_body = RejectBody,
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn reject<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    let id = cashout_id(&id)?;
    let input: RejectBody = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    Ok(json(StatusCode::OK, &app.reject(&principal, id, input.reason).await?))
}

/// Operator retry after `PAYMENT_PROCESSOR_ERROR`.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/retry", tag = "review",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn retry<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(StatusCode::OK, &app.retry(&principal, cashout_id(&id)?).await?))
}

/// Operator: clear the attention flag of a request once a person has dealt with it.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/resolve-attention", tag = "review",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn resolve_attention<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.resolve_attention(&principal, cashout_id(&id)?).await?,
    ))
}

/// Operator: exclude one invoice during review.
#[utoipa::path(post, path = "/v1/cashout-requests/{id}/invoices/{invoice_id}/exclude", tag = "review",
    params(("id" = String, Path, description = "Request id"), ("invoice_id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = CashoutRequestView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn exclude_invoice<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments((id, invoice)): Segments<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let invoice = InvoiceId::new(invoice).map_err(|_| ApiError(AppError::NotFound))?;
    Ok(json(
        StatusCode::OK,
        &app.exclude_invoice(&principal, cashout_id(&id)?, &invoice).await?,
    ))
}

/// Registers a webhook endpoint; the answer holds its secret (shown only here and on rotation).
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = NewEndpoint,
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 409, body = Problem, description = "`endpoint_limit_reached`: the merchant has 20 endpoints"), (status = 201, body = EndpointView), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    Ok(json(
        StatusCode::CREATED,
        &app.create_endpoint(&principal, &bytes).await?,
    ))
}

/// The merchant's endpoints.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = EndpointList)), security(("bearer" = [])))]
pub(crate) async fn list_endpoints<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(StatusCode::OK, &app.list_endpoints(&principal).await?))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = EndpointView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn get_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.get_endpoint(&principal, endpoint_id(&id)?).await?,
    ))
}

/// Deletes an endpoint.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn delete_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    app.delete_endpoint(&principal, endpoint_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Rotates the signing secret (the old one signs too for 24 h).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = EndpointView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn rotate_secret<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.rotate_endpoint_secret(&principal, endpoint_id(&id)?).await?,
    ))
}

/// An endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), PageParams),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = AttemptPage), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn list_attempts<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    Params(params): Params<PageParams>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.list_attempts(&principal, endpoint_id(&id)?, params.limit, params.cursor)
            .await?,
    ))
}

/// Delivers an event again to every subscribed endpoint.
#[utoipa::path(post, path = "/v1/events/{event_id}/redeliver", tag = "webhooks",
    params(("event_id" = String, Path, description = "Event id (evt_…)")),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 202), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn redeliver<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(event_id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let event_id: EventId = event_id.parse().map_err(|_| ApiError(AppError::NotFound))?;
    let queued = app.redeliver(&principal, event_id).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "queued_deliveries": queued }),
    ))
}

/// Providers able to pay, with the beneficiary fields each requires.
#[utoipa::path(get, path = "/v1/payout-methods", tag = "payout methods", params(MethodParams),
    responses((status = 200, body = PayoutMethodList), (status = 400, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn payout_methods<A: HttpApp>(
    State(app): State<A>,
    Caller(_): Caller,
    Params(params): Params<MethodParams>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let methods = app
        .payout_methods(&params.country, &params.currency, params.amount.as_deref())
        .await?;
    Ok(json(StatusCode::OK, &methods))
}

/// The router of the merchant and operator API, with its OpenAPI document.
pub fn api_router<A: HttpApp>(app: A) -> Router {
    Router::new()
        .route(
            "/v1/cashout-requests",
            post(create_cashout::<A>).get(list_cashouts::<A>),
        )
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
            get(get_endpoint::<A>).delete(delete_endpoint::<A>),
        )
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate_secret::<A>))
        .route("/v1/webhook-endpoints/{id}/attempts", get(list_attempts::<A>))
        .route("/v1/events/{event_id}/redeliver", post(redeliver::<A>))
        .route("/v1/payout-methods", get(payout_methods::<A>))
        .route("/v1/openapi.json", get(crate::http::openapi::serve))
        .with_state(app)
}
