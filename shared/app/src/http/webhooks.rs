//! `POST /webhooks/{provider}`: provider notifications, verified and queued for the poller.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cashout_core::ports::InboundNotification;
use cashout_core::provider::ProviderName;

use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::ApiError;

/// Receives a provider notification. 200 once it is safely queued; 4xx when it does not parse or
/// verify (the provider will retry; a forged one stays refused); 503 when it could not be queued.
#[utoipa::path(post, path = "/webhooks/{provider}", tag = "provider notifications",
    params(("provider" = String, Path, description = "d24, onspot, tupay or cascad")),
    request_body(content = String, description = "D24 family: form-urlencoded; Cascad: JSON:API with X-Signature"),
    responses((status = 200), (status = 400, body = crate::http::problem::Problem), (status = 404, body = crate::http::problem::Problem)))]
pub(crate) async fn provider_notification<A: HttpApp>(
    State(app): State<A>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let app = app.app();
    let provider: ProviderName = provider.parse().map_err(|_| ApiError(AppError::NotFound))?;
    let headers = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    app.receive_notification(
        provider,
        InboundNotification {
            headers,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok((StatusCode::OK, "ok").into_response())
}

/// The router of the provider-webhooks function.
pub fn webhooks_router<A: HttpApp>(app: A) -> Router {
    Router::new()
        .route("/webhooks/{provider}", post(provider_notification::<A>))
        .with_state(app)
}
