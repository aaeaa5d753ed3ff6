//! Cascad's error answers, as seed 003 "HTTP status codes used in responses" shapes them (lines
//! 759–826): a list `{"errors": [{"status", "code"[, "title", "detail"]}]}` (its 401, 404, 405
//! and 500 examples) or, for validation, a map `{"errors": {"field": "message"}}` (its 422
//! example). Which status the simulator answers when follows the directives table:
//!
//! | status | when (simulator) | seed directive for the client |
//! |---|---|---|
//! | 400 | the body is not JSON; `bad_request_after` fault | request the status first: not final |
//! | 401 | Basic auth or public key wrong | nothing was created |
//! | 403 | `test_mode: false` with a test API key (`sk_test_…`): known client, no right; `config_error` fault | nothing was created |
//! | 404 | unknown invoice, service or path; empty reference filter with `not_found_on_empty_filter` | the transaction does not exist |
//! | 405 | a method the route does not have | nothing was created |
//! | 409 | a second create with a used `reference_id`; the body names the existing invoice | process the body with the previously created transaction |
//! | 422 | a field breaks the service's rules (named in the body) | nothing was created |
//! | 5xx | injected faults | check the status; create again only if none exists |

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::sim::{Injected, pretty_json};

/// One item of the list shape.
#[derive(Serialize)]
pub(crate) struct ErrorItem {
    status: String,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct ListBody<M: Serialize> {
    errors: Vec<ErrorItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<M>,
}

/// `{"errors": [{"status": "<reason phrase>", "code": "<status>"}]}`, with a title and detail
/// when given. Seed 003 lines 763–786 (401, 404, 405).
pub(crate) fn errors(http: StatusCode, title: Option<&str>, detail: Option<&str>) -> Response {
    let item = ErrorItem {
        status: http.canonical_reason().unwrap_or("Error").to_owned(),
        code: http.as_u16().to_string(),
        title: title.map(str::to_owned),
        detail: detail.map(str::to_owned),
    };
    pretty_json(
        http,
        &ListBody::<()> {
            errors: vec![item],
            meta: None,
        },
    )
}

/// `{"errors": {"field": "message"}}` with 422. Seed 003 lines 787–791.
pub(crate) fn field_errors(field: &str, message: &str) -> Response {
    let mut map = BTreeMap::new();
    map.insert(field.to_owned(), message.to_owned());
    #[derive(Serialize)]
    struct Body {
        errors: BTreeMap<String, String>,
    }
    pretty_json(StatusCode::UNPROCESSABLE_ENTITY, &Body { errors: map })
}

/// A 5xx in seed 003's shape (lines 792–801: `"status": "internal_error"`, `"title":
/// "internal_error"`, `"detail": "Internal server error."`); an injected 400 in the list shape;
/// a configuration refusal as a 403, seed 003's "the client's identity is known to the server"
/// without access rights ("Check the authorization data. [...] The operation was not created").
pub(crate) fn fault_body(injected: Injected) -> Response {
    let status = match injected {
        Injected::Server(status) => status,
        Injected::BadRequest => return bad_request("The request could not be understood."),
        Injected::Configuration => return forbidden("The commerce account has no access to this operation."),
    };
    let item = ErrorItem {
        status: "internal_error".into(),
        code: status.as_u16().to_string(),
        title: Some("internal_error".into()),
        detail: Some("Internal server error.".into()),
    };
    pretty_json(
        status,
        &ListBody::<()> {
            errors: vec![item],
            meta: None,
        },
    )
}

pub(crate) fn bad_request(detail: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, Some("bad_request"), Some(detail))
}

pub(crate) fn unauthorized() -> Response {
    errors(StatusCode::UNAUTHORIZED, None, None)
}

pub(crate) fn forbidden(detail: &str) -> Response {
    errors(StatusCode::FORBIDDEN, Some("forbidden"), Some(detail))
}

pub(crate) fn not_found() -> Response {
    errors(StatusCode::NOT_FOUND, None, None)
}

pub(crate) fn method_not_allowed() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, None, None)
}

/// 409 for a used `reference_id`. Seed 003's directive: "Process the response body with the
/// previously created transaction": the error names it, and `meta.invoice` carries it whole
/// (JSON:API lets `meta` sit beside `errors`; `data` may not). The exact body is not shown in the
/// seed: this shape is the simulator's.
pub(crate) fn conflict<T: Serialize>(existing_id: &str, reference: &str, invoice: T) -> Response {
    #[derive(Serialize)]
    struct Meta<T: Serialize> {
        invoice: T,
    }
    let item = ErrorItem {
        status: "Conflict".into(),
        code: "409".into(),
        title: Some("conflict".into()),
        detail: Some(format!(
            "A payout invoice with reference_id {reference} already exists: {existing_id}."
        )),
    };
    pretty_json(
        StatusCode::CONFLICT,
        &ListBody {
            errors: vec![item],
            meta: Some(Meta { invoice }),
        },
    )
}
