//! The D24 cashouts API v3, as D24, Onspot and Tupay serve it: create, status, hold/release,
//! cancel, and form-encoded notifications without a status. Wire types and rules are the
//! simulator's own reading of seed 001 (D24/Onspot status endpoint), seed 002 (Tupay) and the
//! digest (PROVIDERS.md, "D24 family"); the tables are in [`table`].
//!
//! By job: the create call and its field rules ([`create`]); the calls on an existing cashout,
//! status, hold/release and cancel ([`status`]); the notifications ([`notification`]). This
//! module holds what they share: the routes, the error answers, the checks every call makes
//! before reading its body, and the planned lifecycle.
//!
//! JSON answers are written with four-space indentation, as seed 001 prints them, so that its
//! examples can be compared byte for byte.

// Handlers exit early with `Err(Response)`; its size does not matter at HTTP speeds.
#![allow(clippy::result_large_err)]

mod create;
mod notification;
mod status;
pub(crate) mod table;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Provider;
use crate::book::{Change, Ctx, Step};
use crate::config::SimConfig;
use crate::signing::verify_d24_payload_signature;
use crate::sim::{Injected, Sim, pretty_json};
use crate::triggers::{Trigger, delays};
use table::{D24State, ErrorCode};

pub(crate) use notification::notification;

#[derive(Clone)]
struct Profile {
    sim: Arc<Sim>,
    name: Provider,
}

pub(crate) fn router(sim: Arc<Sim>, name: Provider) -> Router {
    Router::new()
        .route("/v3/cashout", post(create::create))
        .route("/v3/cashout/status", post(status::status).put(status::hold_or_release))
        .route("/v3/cashout/cancel", axum::routing::delete(status::cancel))
        .with_state(Profile { sim, name })
}

/// `{"code": …, "message": …}` (PROVIDERS.md, D24 family, "Error body") with the code's HTTP
/// status.
fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        code: u16,
        message: String,
    }
    pretty_json(
        code.http(),
        &Body {
            code: code.code(),
            message: message.into(),
        },
    )
}

/// An injected fault's answer: D24's own JSON for a 500 (and 300 for an injected 400), a
/// gateway's plain text for the other 5xx, and for a configuration refusal the 402 "unregistered
/// IP" answer: an account problem the digest names, which D24 gives before reading the request.
fn fault_body(injected: Injected) -> Response {
    match injected {
        Injected::Server(status) if status == StatusCode::INTERNAL_SERVER_ERROR => {
            error(ErrorCode::Internal, "Internal server error")
        }
        Injected::Server(status) => (status, status.canonical_reason().unwrap_or("error")).into_response(),
        Injected::BadRequest => {
            let mut r = error(ErrorCode::InvalidParams, "Invalid params");
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Injected::Configuration => error(ErrorCode::UnregisteredIp, "Unregistered IP"),
    }
}

type Reply = Result<Response, Response>;

/// Seed 001 "Headers": `Content-Type*` `application/json` is required.
fn check_content_type(headers: &HeaderMap) -> Result<(), Response> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(error(
            ErrorCode::InvalidHeader,
            "Invalid headers: Content-Type must be application/json",
        ))
    }
}

/// Seed 001 "Headers": `Payload-Signature*`, checked over the exact body bytes (302 otherwise,
/// a missing header included).
fn check_signature(headers: &HeaderMap, body: &[u8], config: &SimConfig, p: Provider) -> Result<(), Response> {
    let secret = &config.d24_credentials(p).secret;
    let given = headers.get("payload-signature").and_then(|v| v.to_str().ok());
    match given {
        Some(sig) if verify_d24_payload_signature(secret, body, sig) => Ok(()),
        Some(_) => Err(error(ErrorCode::InvalidSignature, "Invalid signature")),
        None => Err(error(
            ErrorCode::InvalidSignature,
            "Invalid signature: missing Payload-Signature header",
        )),
    }
}

/// Headers and signature, the checks every endpoint makes before reading the body.
fn check_request(headers: &HeaderMap, body: &[u8], config: &SimConfig, p: Provider) -> Result<(), Response> {
    check_content_type(headers)?;
    check_signature(headers, body, config, p)
}

/// Parses a JSON body: 502 for malformed JSON, 300 for wrong types.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => error(ErrorCode::InvalidParams, format!("Invalid params: {e}")),
        serde_json::error::Category::Io | serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            error(ErrorCode::MalformedJson, "Malformed JSON")
        }
    })
}

/// `login` and `pass` in the body (seed 001 "Request Body": `login*`, `pass*`).
fn check_credentials(login: Option<&str>, pass: Option<&str>, config: &SimConfig, p: Provider) -> Result<(), Response> {
    let creds = config.d24_credentials(p);
    if login == Some(creds.login.as_str()) && pass == Some(creds.pass.as_str()) {
        Ok(())
    } else {
        Err(error(ErrorCode::InvalidCredentials, "Invalid credentials"))
    }
}

fn invalid(field: &str, why: &str) -> Response {
    error(ErrorCode::InvalidParams, format!("Invalid params: {field} {why}"))
}

/// The planned lifecycle of a cashout that starts (or restarts after a release) at `t0`.
fn plan(trigger: Trigger, t0: OffsetDateTime, ctx: &Ctx<'_>) -> Vec<Step> {
    let at = |d| t0 + ctx.scaled(d);
    let step = |at, status, rejection_code| Step {
        at,
        change: Change::D24 { status, rejection_code },
    };
    let delivered = step(at(delays::D24_DELIVER), D24State::Delivered, None);
    match trigger {
        Trigger::BankRejects => vec![delivered, step(at(delays::D24_SETTLE), D24State::Rejected, Some(800))],
        // Seed 001's response example: `"rejection_code": 808, "rejection_reason": "ERROR_OTHER"`.
        Trigger::UnclearOutcome => vec![delivered, step(at(delays::D24_SETTLE), D24State::Rejected, Some(808))],
        Trigger::Reversal => vec![
            delivered,
            step(at(delays::D24_SETTLE), D24State::Completed, None),
            step(
                at(delays::D24_SETTLE + delays::D24_REVERSAL_AFTER),
                D24State::Rejected,
                Some(826),
            ),
        ],
        Trigger::SlowBank => vec![delivered, step(at(delays::SLOW_BANK), D24State::Completed, None)],
        Trigger::Success | Trigger::OnHold | Trigger::DeclinedCreate | Trigger::PaidShort => {
            vec![delivered, step(at(delays::D24_SETTLE), D24State::Completed, None)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_told_apart_from_wrong_types() {
        let bad = parse::<status::StatusRequest>(b"{not json").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let wrong = parse::<status::StatusRequest>(br#"{"login": 5}"#).unwrap_err();
        assert_eq!(wrong.status(), StatusCode::PRECONDITION_FAILED);
    }
}
