//! HTTP: the merchant API router, the provider-webhooks router, problem answers, and the
//! OpenAPI document. The functions and the local runner mount these; they hold no logic.

pub mod api;
pub mod input_doc;
pub mod openapi;
pub mod problem;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tower_http::trace::TraceLayer;

pub use api::{MAX_BODY_BYTES, api_router};
pub use problem::{ApiError, Problem};
pub use webhooks::webhooks_router;

/// The layers every cashout HTTP surface shares: a 1 MiB body limit, request tracing (no
/// headers, so no keys, are logged), and problem answers for unknown routes and methods.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
}
