//! D24 cashouts API v3 wire types: requests we send, answers and notifications we receive.
//! Nothing here leaves the `d24` module; [`super`] converts to core types at the edge.

// Wire types mirror the documented shapes; not every field is read by the adapter.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST /v3/cashout`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateCashout<'a> {
    pub login: &'a str,
    pub pass: &'a str,
    pub external_id: String,
    pub country: &'a str,
    pub currency: &'a str,
    /// A JSON number written from the exact decimal text.
    pub amount: Box<RawValue>,
    pub document_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_type: Option<&'a str>,
    pub beneficiary_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_lastname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_branch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_birthdate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<&'a str>,
    pub notification_url: &'a str,
    /// Seed 001: "A cashout will be created with ON_HOLD status only if specified while creating
    /// the cashout with on_hold: true". Sent only when asked (Tupay has no ON_HOLD).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub on_hold: bool,
}

/// A cashout id: a string in the create answer, a number elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum CashoutId {
    Number(u64),
    Text(String),
}

impl CashoutId {
    pub(crate) fn text(&self) -> String {
        match self {
            CashoutId::Number(n) => n.to_string(),
            CashoutId::Text(s) => s.clone(),
        }
    }
}

/// `200 {"cashout_id": "8405147"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateCashoutResponse {
    pub cashout_id: CashoutId,
}

/// `POST /v3/cashout/status`: by `cashout_id` or by `external_id`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusRequest<'a> {
    pub login: &'a str,
    pub pass: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cashout_id: Option<CashoutId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// `{"cashout_status": 3, "cashout_status_description": "Rejected", "rejection_code": 808,
/// "rejection_reason": "ERROR_OTHER"}`. `cashout_id` is not documented here; it is read if a
/// provider adds it.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusResponse {
    pub cashout_status: i64,
    #[serde(default)]
    pub cashout_status_description: Option<String>,
    #[serde(default)]
    pub rejection_code: Option<i64>,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    #[serde(default)]
    pub cashout_id: Option<CashoutId>,
}

/// `PUT /v3/cashout/status`: hold or release.
#[derive(Debug, Serialize)]
pub(crate) struct SetStatusRequest<'a> {
    pub login: &'a str,
    pub pass: &'a str,
    pub cashout_id: CashoutId,
    /// `PENDING` or `ON_HOLD`.
    pub status: &'static str,
}

/// `DELETE /v3/cashout/cancel`: both ids are required.
#[derive(Debug, Serialize)]
pub(crate) struct CancelRequest<'a> {
    pub login: &'a str,
    pub pass: &'a str,
    pub cashout_id: CashoutId,
    pub external_id: String,
}

/// An error code, sent as a number (sometimes as a string).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorCode {
    Number(i64),
    Text(String),
}

/// `{"code": 511, "message": "…", "reason": "…"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub code: Option<ErrorCode>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ErrorBody {
    pub(crate) fn code(&self) -> Option<u16> {
        match self.code.as_ref()? {
            ErrorCode::Number(n) => u16::try_from(*n).ok(),
            ErrorCode::Text(s) => s.trim().parse().ok(),
        }
    }

    pub(crate) fn text(&self) -> String {
        match (&self.message, &self.reason) {
            (Some(m), Some(r)) => format!("{m} ({r})"),
            (Some(m), None) => m.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => String::new(),
        }
    }
}

/// The form D24 posts to `notification_url` on every status change. It carries no status on
/// purpose.
#[derive(Debug, Deserialize)]
pub(crate) struct Notification {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub control: Option<String>,
    #[serde(default)]
    pub cashout_id: Option<String>,
}
