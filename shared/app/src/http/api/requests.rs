//! The handlers of `/v1/cashout-requests`: create, list, read, and every action on a request.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cashout_core::ids::InvoiceId;
use cashout_core::ports::HoldAction;

use super::{Caller, ListParams, Params, RejectBody, Segments, body, cashout_id, json};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::views::{CashoutRequestPage, CashoutRequestView, EventList};

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
    let replayed = created.replayed();
    let answer = created.into_answer();
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::CREATED);
    let mut response = (status, answer.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
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
