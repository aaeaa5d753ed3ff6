//! The handlers of `/v1/operators`, `/v1/approval-policies` and
//! `/v1/cashout-requests/bulk-approve` (operator keys; managing operators and policies needs an
//! admin).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::auth::{OperatorName, OperatorRole};
use cashout_core::ids::CashoutRequestId;
use cashout_core::review::PolicyScope;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Caller, Segments, body, json};
use crate::access::{require_admin, require_operator};
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::policies::PolicyInput;
use crate::views::{
    BulkApproveAnswer, BulkApproveResult, OperatorKeyView, OperatorList, OperatorView, PolicyList, PolicyView,
};

/// A new operator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorBody {
    /// 1 to 64 lowercase letters, digits, `.`, `_` or `-`.
    #[schema(pattern = r"^[a-z0-9._-]{1,64}$")]
    name: String,
    /// `reviewer` (approve, reject, exclude, hold) or `admin` (also routing rules, policies,
    /// operators, retries, redeliveries, reconciliations).
    #[schema(pattern = "^(reviewer|admin)$")]
    role: String,
}

/// A policy's new rules (a schema only: the body is read as [`PolicyInput`]).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// At most 20 rules; none: every request is approved at once. Each rule that fires asks
    /// for its `approvers`; a request needs the most any fired rule asks for.
    #[schema(value_type = Vec<PolicyRuleSchema>, max_items = 20)]
    rules: Vec<serde_json::Value>,
    /// Replace only this version (409 `conflict` otherwise); absent: whatever is stored.
    #[serde(default)]
    expected_version: Option<u64>,
}

/// Requests to approve together.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkApproveBody {
    /// 1 to 100 request ids; each is approved on its own.
    #[schema(min_items = 1, max_items = 100)]
    ids: Vec<uuid::Uuid>,
}

/// A decimal in major units, as a string.
#[allow(dead_code)] // A schema only.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?$")]
pub struct LimitSchema(String);

/// One rule of an approval policy, by `kind`.
#[allow(dead_code)] // A schema only: the body is read as `cashout_core::review::PolicyRule`.
#[derive(ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyRuleSchema {
    /// Fires when the requested amount is over its currency's limit (`limits`), or
    /// `other_currencies` for a currency not listed; a currency with neither fires it.
    AmountLimit {
        /// Limit per ISO 4217 currency, in major units.
        #[schema(value_type = Option<BTreeMap<String, LimitSchema>>)]
        limits: Option<BTreeMap<String, String>>,
        /// The limit of every currency not in `limits`.
        #[schema(value_type = Option<LimitSchema>)]
        other_currencies: Option<String>,
        /// 1 or 2 distinct operators.
        #[schema(minimum = 1, maximum = 2)]
        approvers: u8,
    },
    /// Fires when the amount converted to `currency` at `rates` is over `limit`; a currency
    /// without a rate fires it.
    ReferenceLimit {
        /// The reference currency (ISO 4217).
        #[schema(value_type = crate::http::openapi::CurrencySchema)]
        currency: String,
        /// The limit in the reference currency.
        #[schema(value_type = LimitSchema)]
        limit: String,
        /// Units of the reference currency per unit of each other currency (greater than 0).
        #[schema(value_type = BTreeMap<String, LimitSchema>)]
        rates: BTreeMap<String, String>,
        /// 1 or 2 distinct operators.
        #[schema(minimum = 1, maximum = 2)]
        approvers: u8,
    },
    /// Fires when the merchant's requests of the UTC day (this one included) pass `max_count`
    /// (every currency) or `max_amount` (in the request's currency). Give at least one.
    DailyVelocity {
        /// Most requests a day.
        #[schema(minimum = 0)]
        max_count: Option<u64>,
        /// Most amount a day per currency, in major units.
        #[schema(value_type = Option<BTreeMap<String, LimitSchema>>)]
        max_amount: Option<BTreeMap<String, String>>,
        /// 1 or 2 distinct operators.
        #[schema(minimum = 1, maximum = 2)]
        approvers: u8,
    },
    /// Fires on the first payout to an account this merchant was never paid out to.
    NewBeneficiary {
        /// 1 or 2 distinct operators.
        #[schema(minimum = 1, maximum = 2)]
        approvers: u8,
    },
    /// Fires when the request holds more than `max` invoices.
    InvoiceCount {
        /// Most invoices approved at once.
        #[schema(minimum = 0)]
        max: u32,
        /// 1 or 2 distinct operators.
        #[schema(minimum = 1, maximum = 2)]
        approvers: u8,
    },
}

fn operator_name(text: &str) -> Result<OperatorName, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

fn policy_scope(text: &str) -> Result<PolicyScope, ApiError> {
    PolicyScope::parse(text).ok_or(ApiError(AppError::NotFound))
}

/// Creates a named operator and its first API key (shown once, in this answer only).
#[utoipa::path(post, path = "/v1/operators", tag = "operators", request_body = OperatorBody,
    responses((status = 201, body = OperatorKeyView), (status = 403, body = Problem, description = "`forbidden`: admin operators only"),
        (status = 409, body = Problem, description = "`conflict`: an operator with this name exists")),
    security(("bearer" = [])))]
pub(crate) async fn create_operator<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_admin(&principal)?;
    let bytes = body(bytes)?;
    let input: OperatorBody = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    let name = OperatorName::new(input.name).map_err(|e| AppError::InvalidBody(e.to_string()))?;
    let role: OperatorRole = input.role.parse().map_err(AppError::InvalidBody)?;
    Ok(json(
        StatusCode::CREATED,
        &app.create_operator(&principal, name, role).await?,
    ))
}

/// Every operator, revoked ones included.
#[utoipa::path(get, path = "/v1/operators", tag = "operators",
    responses((status = 200, body = OperatorList), (status = 403, body = Problem, description = "`forbidden`: admin operators only")),
    security(("bearer" = [])))]
pub(crate) async fn list_operators<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let app = app.app();
    Ok(json(
        StatusCode::OK,
        &OperatorList {
            data: app.list_operators(&principal).await?,
        },
    ))
}

/// Another API key for an operator (shown once); their other keys stay valid.
#[utoipa::path(post, path = "/v1/operators/{name}/keys", tag = "operators",
    params(("name" = String, Path, description = "Operator name")),
    responses((status = 201, body = OperatorKeyView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: the operator is revoked")),
    security(("bearer" = [])))]
pub(crate) async fn create_operator_key<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(name): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_admin(&principal)?;
    let name = operator_name(&name)?;
    Ok(json(
        StatusCode::CREATED,
        &app.create_operator_key(&principal, &name).await?,
    ))
}

/// Revokes an operator: every key of theirs stops working at once, and their console sessions
/// end. Idempotent.
#[utoipa::path(post, path = "/v1/operators/{name}/revoke", tag = "operators",
    params(("name" = String, Path, description = "Operator name")),
    responses((status = 200, body = OperatorView), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: an operator cannot revoke themself")),
    security(("bearer" = [])))]
pub(crate) async fn revoke_operator<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(name): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_admin(&principal)?;
    let name = operator_name(&name)?;
    Ok(json(StatusCode::OK, &app.revoke_operator(&principal, &name).await?))
}

/// Every stored approval policy, and the configured default where none is stored.
#[utoipa::path(get, path = "/v1/approval-policies", tag = "operators",
    responses((status = 200, body = PolicyList), (status = 403, body = Problem, description = "`forbidden`: operator keys only")),
    security(("bearer" = [])))]
pub(crate) async fn list_policies<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let app = app.app();
    let all = app.list_policies(&principal).await?;
    Ok(json(
        StatusCode::OK,
        &PolicyList {
            data: all.iter().map(PolicyView::from).collect(),
        },
    ))
}

/// One approval policy: `default`, or a merchant's own (404 when it has none: the default
/// applies to it).
#[utoipa::path(get, path = "/v1/approval-policies/{scope}", tag = "operators",
    params(("scope" = String, Path, description = "`default` or a merchant id")),
    responses((status = 200, body = PolicyView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_policy<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(scope): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_operator(&principal)?;
    let scope = policy_scope(&scope)?;
    Ok(json(
        StatusCode::OK,
        &PolicyView::from(&app.get_policy(&principal, &scope).await?),
    ))
}

/// Creates or replaces an approval policy. It applies to requests reviewed from then on;
/// requests already under review keep the decision they were given.
#[utoipa::path(put, path = "/v1/approval-policies/{scope}", tag = "operators", request_body = PolicyBody,
    params(("scope" = String, Path, description = "`default` or a merchant id")),
    responses((status = 200, body = PolicyView), (status = 403, body = Problem, description = "`forbidden`: admin operators only"),
        (status = 409, body = Problem, description = "`conflict`: not at `expected_version`"),
        (status = 422, body = Problem, description = "`invalid_body`: a rule out of bounds")),
    security(("bearer" = [])))]
pub(crate) async fn put_policy<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(scope): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_admin(&principal)?;
    let scope = policy_scope(&scope)?;
    let bytes = body(bytes)?;
    let input: PolicyInput = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    let policy = app.put_policy(&principal, scope, input).await?;
    Ok(json(StatusCode::OK, &PolicyView::from(&policy)))
}

/// Deletes a stored approval policy: the merchant falls back to the default, the default to
/// the configured one.
#[utoipa::path(delete, path = "/v1/approval-policies/{scope}", tag = "operators",
    params(("scope" = String, Path, description = "`default` or a merchant id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn delete_policy<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(scope): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_admin(&principal)?;
    let scope = policy_scope(&scope)?;
    app.delete_policy(&principal, &scope).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Approves several requests, each on its own: the answer gives each one's outcome (one
/// refused does not stop the others).
#[utoipa::path(post, path = "/v1/cashout-requests/bulk-approve", tag = "review", request_body = BulkApproveBody,
    responses((status = 200, body = BulkApproveAnswer), (status = 403, body = Problem, description = "`forbidden`: operator keys only")),
    security(("bearer" = [])))]
pub(crate) async fn bulk_approve<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_operator(&principal)?;
    let bytes = body(bytes)?;
    let input: BulkApproveBody = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    if input.ids.is_empty() || input.ids.len() > crate::review::MAX_BULK {
        return Err(ApiError(AppError::InvalidBody(format!(
            "ids: give 1 to {} request ids",
            crate::review::MAX_BULK
        ))));
    }
    let ids: Vec<CashoutRequestId> = input.ids.into_iter().map(CashoutRequestId::from_uuid).collect();
    let items = app.bulk_approve(&principal, &ids).await?;
    let data = items
        .into_iter()
        .map(|item| match item.result {
            Ok(view) => BulkApproveResult {
                id: item.id.to_string(),
                outcome: if view.status == cashout_core::status::CashoutStatus::UnderReview
                    || view.status == cashout_core::status::CashoutStatus::Requested
                {
                    "approval_recorded".into()
                } else {
                    "approved".into()
                },
                request: Some(view),
                problem: None,
            },
            Err(e) => BulkApproveResult {
                id: item.id.to_string(),
                outcome: "refused".into(),
                request: None,
                problem: serde_json::to_value(Problem::from_error(&e)).ok(),
            },
        })
        .collect();
    Ok(json(StatusCode::OK, &BulkApproveAnswer { data }))
}
