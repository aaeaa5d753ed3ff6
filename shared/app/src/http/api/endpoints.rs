//! The handlers of `/v1/webhook-endpoints`, `/v1/events` and `/v1/payout-methods`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::ids::EventId;

use super::{Caller, MethodParams, PageParams, Params, Segments, body, endpoint_id, json};
use crate::endpoints::NewEndpoint;
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::views::{AttemptPage, EndpointList, EndpointView, PayoutMethodList};

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
