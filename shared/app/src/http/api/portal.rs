//! The handler of `/v1/portal-sessions`: a merchant's system mints a link to the merchant portal
//! for its staff.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use cashout_core::auth::ApiKey;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Caller, json};
use crate::http::HttpApp;
use crate::http::pages::loopback;
use crate::http::problem::{ApiError, Problem};

/// A portal link: open it in a browser (once, within 10 minutes) to manage the merchant's webhook
/// endpoints and see its cashout requests for an hour, without the API key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PortalSessionView {
    /// `https://…/portal/enter?token=…`: single use.
    pub url: String,
    /// When the link stops opening (RFC 3339); the session it opens lasts 1 hour from then on.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Mints a single-use link to the merchant portal (10 minutes to open it; the browser session it
/// opens lasts 1 hour). Give it to a person; the API key stays with the merchant's system.
#[utoipa::path(post, path = "/v1/portal-sessions", tag = "portal",
    responses((status = 201, body = PortalSessionView), (status = 403, body = Problem, description = "`forbidden`: portal links are minted with a merchant key")),
    security(("bearer" = [])))]
pub(crate) async fn create_portal_session<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    parts: Parts,
) -> Result<Response, ApiError> {
    let app = app.app();
    // The caller authenticated with this header just now.
    let key = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let link = app.mint_portal_link(&principal, ApiKey::new(key).hash()).await?;
    let base = public_base(app.config.notification_base_url.as_deref(), &parts);
    let view = PortalSessionView {
        url: format!("{base}/portal/enter?token={}", link.token),
        expires_at: link.expires_at,
    };
    Ok(json(StatusCode::CREATED, &view))
}

/// The deployment's public URL when configured, else the scheme and host the request came to
/// (plain HTTP only on loopback, as the local runner serves).
fn public_base(configured: Option<&str>, parts: &Parts) -> String {
    if let Some(base) = configured {
        return base.trim_end_matches('/').to_owned();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if loopback(&parts.headers) { "http" } else { "https" };
    format!("{scheme}://{host}")
}
