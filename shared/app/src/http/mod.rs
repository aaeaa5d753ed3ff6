//! HTTP: the merchant API router, the provider-webhooks router, problem answers, and the
//! OpenAPI document. The functions and the local runner mount these; they hold no logic.

pub mod api;
pub mod console;
pub mod input_doc;
pub mod limit;
pub mod openapi;
pub(crate) mod pages;
pub mod portal;
pub mod problem;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tower_http::trace::TraceLayer;

pub use api::{MAX_BODY_BYTES, api_router};
use cashout_core::ports::{PayoutProvider, Store, TaskQueue, WebhookSender};
pub use console::console_router;
pub use portal::portal_router;
pub use problem::{ApiError, Problem};
pub use webhooks::webhooks_router;

/// What the HTTP handlers need of an [`App`](crate::App), named once: a store, a task queue, the
/// payout providers (a cancel, a reject or a hold asks them first) and any webhook sender (the
/// API sends none itself, so its function passes `()`). Every handler and router takes one type
/// parameter bounded by this instead of the four ports with their bounds; every `App` whose
/// ports fit implements it.
pub trait HttpApp: Clone + Send + Sync + 'static {
    type Store: Store + 'static;
    /// The task queue.
    type Queue: TaskQueue + 'static;
    /// The payout providers.
    type Provider: PayoutProvider + 'static;
    /// The webhook sender (the endpoint test sends through it).
    type Sender: WebhookSender + 'static;

    /// The app itself, with its ports' types known to the handlers.
    fn app(&self) -> &crate::App<Self::Store, Self::Queue, Self::Provider, Self::Sender>;
}

impl<S, Q, P, W> HttpApp for crate::App<S, Q, P, W>
where
    S: Store + 'static,
    Q: TaskQueue + 'static,
    P: PayoutProvider + 'static,
    W: WebhookSender + 'static,
{
    type Store = S;
    type Queue = Q;
    type Provider = P;
    type Sender = W;

    fn app(&self) -> &Self {
        self
    }
}

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
