//! The handlers of `/v1/webhook-endpoints`, `/v1/events` and `/v1/payout-methods`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::ids::EventId;

use super::{Caller, MerchantEventParams, MethodParams, PageParams, Params, Segments, body, endpoint_id, json};
use crate::endpoints::NewEndpoint;
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::selfservice::{EndpointPatch, EventFilter, RecoverRequest, RotateRequest};
use crate::views::{AttemptPage, AttemptView, EndpointList, EndpointView, EventPage, PayoutMethodList, RecoverAnswer};

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

/// Rotates the signing secret: the current one keeps signing for `expire_current_in_seconds`
/// (24 h when absent; 0 stops it at once). At most two secrets are ever live: a rotation during
/// a grace period drops the oldest. The body is optional.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body(content = Option<RotateRequest>, description = "Optional"),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = EndpointView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "`contended`: the endpoint kept changing; try again")), security(("bearer" = [])))]
pub(crate) async fn rotate_secret<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    Ok(json(
        StatusCode::OK,
        &app.rotate_endpoint_secret_with(&principal, endpoint_id(&id)?, &bytes)
            .await?,
    ))
}

/// Edits an endpoint: any of `url`, `description`, `event_types`, `headers`, `rate_limit`,
/// `ordered`, `disabled`. Enabling again (`disabled: false`) does not send what was missed while
/// it was disabled: recover it (`POST …/recover`).
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointPatch,
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = EndpointView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "`contended`: the endpoint kept changing; try again")), security(("bearer" = [])))]
pub(crate) async fn update_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    Ok(json(
        StatusCode::OK,
        &app.update_endpoint(&principal, endpoint_id(&id)?, &bytes).await?,
    ))
}

/// Sends a signed `webhook_endpoint.test` event to the endpoint now and answers the attempt
/// (also kept in its attempt log). Sent whatever its event types or state.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 200, body = AttemptView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub(crate) async fn test_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &app.test_endpoint(&principal, endpoint_id(&id)?).await?,
    ))
}

/// Queues, in event order, every event of `[since, until)` that the endpoint receives and has
/// not received successfully, once each (a retry already scheduled for one of them does not
/// send it a second time). The window is cut to the last 30 days and to now.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/recover", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = RecoverRequest,
    responses((status = 403, body = Problem, description = "`forbidden`: webhook endpoints belong to a merchant key"), (status = 202, body = RecoverAnswer), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "`conflict`: the endpoint is disabled (enable it first)")), security(("bearer" = [])))]
pub(crate) async fn recover_endpoint<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let bytes = body(bytes)?;
    Ok(json(
        StatusCode::ACCEPTED,
        &app.recover_endpoint(&principal, endpoint_id(&id)?, &bytes).await?,
    ))
}

/// The merchant's status events across its requests, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "webhooks", params(MerchantEventParams),
    responses((status = 403, body = Problem, description = "`forbidden`: events belong to a merchant key"), (status = 200, body = EventPage)), security(("bearer" = [])))]
pub(crate) async fn list_merchant_events<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Params(params): Params<MerchantEventParams>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let filter = EventFilter {
        event_type: params.event_type,
        cashout_request_id: params.cashout_request_id,
        since: params.since,
        until: params.until,
        limit: params.limit,
        cursor: params.cursor,
    };
    Ok(json(
        StatusCode::OK,
        &app.list_merchant_events(&principal, filter).await?,
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
