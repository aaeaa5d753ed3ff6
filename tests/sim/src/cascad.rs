//! Cascad (Corefy/PayCore) payouts by reference, read from seed 003 and the digest
//! (PROVIDERS.md, "Cascad"): payout invoices (JSON:API) created (201 only) then processed,
//! lookups by id and by `filter[reference_id]` through the private API (Basic auth) or the
//! public one (public key), the cursor list, and callbacks signed with `X-Signature`.
//!
//! By job: what an invoice is and how each API shows it ([`invoice`]); what happens to it once
//! processing starts ([`lifecycle`]); the create and process calls ([`create`]); the lookups and
//! the list ([`lookup`]); services and the pre-request ([`services`]); every error answer
//! ([`errors`]). This module holds what they share: the routes, authentication and the JSON:API
//! pieces.
//!
//! Documents are written with four-space indentation, as seed 003 prints its samples, so that
//! they compare byte for byte.

// Handlers exit early with `Err(Response)`; its size does not matter at HTTP speeds.
#![allow(clippy::result_large_err)]

mod create;
mod errors;
mod invoice;
mod lifecycle;
mod lookup;
mod services;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use crate::Provider;
use crate::config::SimConfig;
use crate::sim::Sim;
use errors::{not_found, unauthorized};

pub(crate) use create::{ForeignInvoice, foreign_invoice};
pub(crate) use invoice::{Invoice, callback};

/// Cascad's statuses (PROVIDERS.md, Cascad, "Statuses"): what the control endpoint may set. The
/// list may be longer at Cascad; these are the documented ones.
pub(crate) const STATUSES: [&str; 13] = [
    "created",
    "processing",
    "process_pending",
    "process_error",
    "process_failed",
    "processed",
    "partially_processed",
    "expired",
    "terminated",
    "canceling",
    "cancel_pending",
    "cancel_error",
    "cancel_failed",
];

const CASCAD: Provider = Provider::Cascad;

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/payout-prerequest", post(services::prerequest))
        .route("/payout-services", get(services::services))
        .route("/payout-services/{id}", get(services::service))
        .route("/payout-invoices", post(create::create).get(lookup::list))
        .route("/payout-invoices/{id}", get(lookup::show))
        .route("/payout-invoices/{id}/process", post(create::process))
        // Seed 003's 404 and 405 bodies for a path or a method the API does not have.
        .fallback(|| async { not_found() })
        .method_not_allowed_fallback(|| async { errors::method_not_allowed() })
        .with_state(sim)
}

/// HTTP Basic auth of the private API: commerce account id and API key (PROVIDERS.md, Cascad,
/// "Private API").
fn authenticate(headers: &HeaderMap, config: &SimConfig) -> Result<(), Response> {
    let creds = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| BASE64.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", config.cascad.account, config.cascad.api_key);
    match creds {
        Some(c) if c == expected => Ok(()),
        _ => Err(unauthorized()),
    }
}

/// Which API a read came through: seed 003 serves the same lookups on the public API ("live or
/// test Public keys") with a flat answer, and on the private one with JSON:API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Private,
    Public,
}

/// Basic auth → private. Without an `Authorization` header, a `public_key` query parameter →
/// public: seed 003 does not say how a GET carries the public key; the pre-request carries it
/// as `public_key`, so the simulator takes the same name.
fn reader(headers: &HeaderMap, q: &HashMap<String, String>, config: &SimConfig) -> Result<Api, Response> {
    if headers.contains_key("authorization") {
        return authenticate(headers, config).map(|()| Api::Private);
    }
    match q.get("public_key") {
        Some(k) if *k == config.cascad.public_key => Ok(Api::Public),
        _ => Err(unauthorized()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON:API pieces shared by invoices and services

#[derive(Serialize)]
struct Single<T> {
    data: T,
}

#[derive(Serialize)]
struct RelData {
    data: TypeId,
}

impl RelData {
    fn new(kind: &'static str, id: impl Into<String>) -> RelData {
        RelData {
            data: TypeId { kind, id: id.into() },
        }
    }
}

#[derive(Serialize)]
struct TypeId {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
}

/// `links.self`, with the `/api` prefix seed 003 shows (`"/api/payout-invoices/cpoi_…"`).
#[derive(Serialize)]
struct SelfLink {
    #[serde(rename = "self")]
    this: String,
}

/// A positive page parameter (`page[size]`, `page[number]`), or `default`.
fn page_param(q: &HashMap<String, String>, key: &str, default: usize) -> usize {
    q.get(key)
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}
