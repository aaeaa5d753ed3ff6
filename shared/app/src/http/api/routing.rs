//! The handlers of `/v1/routing-rules` and `/v1/providers/health` (operator keys only).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashout_core::ids::{MerchantId, RoutingRuleId};
use cashout_core::money::{Currency, parse_decimal};
use cashout_core::party::Country;
use cashout_core::provider::ProviderName;
use cashout_core::routing::{PayoutMethodKind, RoutingRuleSpec, RuleMatch, RuleProvider};
use cashout_core::validation::ValidationErrors;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Caller, Segments, body, json};
use crate::access::require_operator;
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::views::{
    ProviderHealthList, ProviderHealthView, RoutingRuleList, RoutingRuleView, RuleMatchView, RuleProviderView,
};

/// A routing rule to create, or the new content of one (`PUT`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRuleBody {
    /// The merchant it applies to; absent: a default rule, for every merchant without a
    /// matching rule of its own.
    #[serde(default)]
    merchant_id: Option<String>,
    /// Lower first (default 0).
    #[serde(default)]
    priority: u32,
    /// For people (at most 200 characters).
    #[serde(default)]
    description: Option<String>,
    /// Which requests it takes; absent: every request.
    #[serde(default, rename = "match")]
    conditions: RuleMatchView,
    /// The providers in the order they are tried: at least one, each once.
    providers: Vec<RuleProviderView>,
    /// Whether a provider's decline of the beneficiary's data moves a request on to the next
    /// provider (default false: it ends `REJECTED`, as the next would decline it too).
    #[serde(default)]
    failover_on_decline: bool,
    /// `PUT` only: replace only if the rule is still at this version (409 `version_conflict`).
    #[serde(default)]
    expected_version: Option<u64>,
}

fn each<T: std::str::FromStr>(errors: &mut ValidationErrors, field: &str, values: &[String]) -> Vec<T>
where
    T::Err: std::fmt::Display,
{
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.parse()
                .map_err(|e: T::Err| errors.push(format!("{field}[{i}]"), "invalid", e.to_string()))
                .ok()
        })
        .collect()
}

impl RoutingRuleBody {
    /// The typed spec, every field problem at once; the rule's own checks follow.
    fn spec(self) -> Result<(RoutingRuleSpec, Option<u64>), AppError> {
        let mut errors = ValidationErrors::default();
        let merchant_id = self.merchant_id.as_deref().and_then(|m| {
            MerchantId::new(m)
                .map_err(|e| errors.push("merchant_id", "invalid", e.to_string()))
                .ok()
        });
        let m = &self.conditions;
        let amount = |errors: &mut ValidationErrors, field: &str, v: &Option<String>| {
            v.as_deref().and_then(|t| {
                parse_decimal(t)
                    .map_err(|e| errors.push(field, "invalid", e.to_string()))
                    .ok()
            })
        };
        let conditions = RuleMatch {
            countries: each::<Country>(&mut errors, "match.countries", &m.countries),
            currencies: each::<Currency>(&mut errors, "match.currencies", &m.currencies),
            amount_min: amount(&mut errors, "match.amount_min", &m.amount_min),
            amount_max: amount(&mut errors, "match.amount_max", &m.amount_max),
            payout_methods: each::<PayoutMethodKind>(&mut errors, "match.payout_methods", &m.payout_methods),
        };
        let providers = self
            .providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.provider.parse::<ProviderName>() {
                Ok(provider) => Some(RuleProvider {
                    provider,
                    weight: p.weight,
                }),
                Err(e) => {
                    errors.push(format!("providers[{i}].provider"), "invalid", e.to_string());
                    None
                }
            })
            .collect();
        let spec = RoutingRuleSpec {
            merchant_id,
            priority: self.priority,
            description: self.description,
            conditions,
            providers,
            failover_on_decline: self.failover_on_decline,
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        spec.check().map_err(AppError::Validation)?;
        Ok((spec, self.expected_version))
    }
}

fn rule_body(bytes: Result<Bytes, BytesRejection>) -> Result<(RoutingRuleSpec, Option<u64>), ApiError> {
    let bytes = body(bytes)?;
    let parsed: RoutingRuleBody = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    Ok(parsed.spec()?)
}

fn rule_id(text: &str) -> Result<RoutingRuleId, ApiError> {
    text.parse().map_err(|_| ApiError(AppError::NotFound))
}

/// Every routing rule, in the order they are tried: each merchant's own, then the default ones,
/// by priority, then age.
#[utoipa::path(get, path = "/v1/routing-rules", tag = "routing",
    responses((status = 200, body = RoutingRuleList), (status = 403, body = Problem, description = "`forbidden`: operator keys only")),
    security(("bearer" = [])))]
pub(crate) async fn list_routing_rules<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let app = app.app();
    let rules = app.list_routing_rules(&principal).await?;
    Ok(json(
        StatusCode::OK,
        &RoutingRuleList {
            data: rules.iter().map(RoutingRuleView::from).collect(),
        },
    ))
}

/// Creates a routing rule; approvals from now on follow it.
#[utoipa::path(post, path = "/v1/routing-rules", tag = "routing", request_body = RoutingRuleBody,
    responses((status = 201, body = RoutingRuleView), (status = 403, body = Problem, description = "`forbidden`: operator keys only"),
        (status = 422, body = Problem, description = "`validation_failed`: each field's problem"), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_routing_rule<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_operator(&principal)?;
    let (spec, _) = rule_body(bytes)?;
    let rule = app.create_routing_rule(&principal, spec).await?;
    Ok(json(StatusCode::CREATED, &RoutingRuleView::from(&rule)))
}

/// One routing rule.
#[utoipa::path(get, path = "/v1/routing-rules/{id}", tag = "routing",
    params(("id" = String, Path, description = "Rule id (`rr_…`)")),
    responses((status = 200, body = RoutingRuleView), (status = 404, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_routing_rule<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    let rule = app.get_routing_rule(&principal, rule_id(&id)?).await?;
    Ok(json(StatusCode::OK, &RoutingRuleView::from(&rule)))
}

/// Replaces a routing rule (with `expected_version`, only that version).
#[utoipa::path(put, path = "/v1/routing-rules/{id}", tag = "routing", request_body = RoutingRuleBody,
    params(("id" = String, Path, description = "Rule id (`rr_…`)")),
    responses((status = 200, body = RoutingRuleView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`version_conflict`: the rule changed since it was read"),
        (status = 422, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn replace_routing_rule<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = app.app();
    require_operator(&principal)?;
    let id = rule_id(&id)?;
    let (spec, expected) = rule_body(bytes)?;
    let rule = app.replace_routing_rule(&principal, id, spec, expected).await?;
    Ok(json(StatusCode::OK, &RoutingRuleView::from(&rule)))
}

/// Deletes a routing rule.
#[utoipa::path(delete, path = "/v1/routing-rules/{id}", tag = "routing",
    params(("id" = String, Path, description = "Rule id (`rr_…`)")),
    responses((status = 204), (status = 404, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn delete_routing_rule<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    let app = app.app();
    app.delete_routing_rule(&principal, rule_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every provider's health: its circuit (closed, open, half-open) and its counts over the
/// breaker's window.
#[utoipa::path(get, path = "/v1/providers/health", tag = "routing",
    responses((status = 200, body = ProviderHealthList), (status = 403, body = Problem, description = "`forbidden`: operator keys only")),
    security(("bearer" = [])))]
pub(crate) async fn providers_health<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let app = app.app();
    let now = app.clock.now();
    let window = app.config.breaker.window;
    let health = app.providers_health(&principal).await?;
    Ok(json(
        StatusCode::OK,
        &ProviderHealthList {
            data: health.iter().map(|h| ProviderHealthView::new(h, now, window)).collect(),
        },
    ))
}
