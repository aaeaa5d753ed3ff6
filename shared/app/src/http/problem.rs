//! `application/problem+json` (RFC 9457) answers with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// Base of every problem `type` URI; the code is appended.
pub const PROBLEM_BASE: &str = "https://cashout.dev/problems/";

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `https://cashout.dev/problems/{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// Stable machine code (`validation_failed`, `invalid_transition`, …).
    pub code: String,
    /// Field problems, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub errors: Option<serde_json::Value>,
    /// For `invoice_in_use`: the request that holds the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cashout_request_id: Option<String>,
    /// For `invoice_in_use`: the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
}

impl Problem {
    /// A problem for a status and code.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: format!("{PROBLEM_BASE}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: None,
            cashout_request_id: None,
            invoice_id: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// An [`AppError`] on its way out: logged by severity, answered as a problem.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl Problem {
    /// The problem an error is answered with (an internal one is logged, and answered with a
    /// generic detail).
    pub fn from_error(e: &AppError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let detail = if e.is_client_error() {
            e.to_string()
        } else {
            // Internal details go to the logs only.
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "request failed");
            "the service could not complete the request; it is safe to retry".to_owned()
        };
        let mut problem = Problem::new(status, e.code(), detail);
        match e {
            AppError::Validation(errors) => problem.errors = serde_json::to_value(errors).ok(),
            AppError::InvoiceInUse { invoice_id, holder, .. } => {
                problem.cashout_request_id = Some(holder.to_string());
                problem.invoice_id = Some(invoice_id.to_string());
            }
            _ => {}
        }
        problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let retry_after = match &e {
            AppError::Overloaded { retry_after_s, .. } | AppError::RateLimited { retry_after_s } => {
                HeaderValue::from_str(&retry_after_s.to_string()).ok()
            }
            _ => None,
        };
        let mut response = Problem::from_error(&e).into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
