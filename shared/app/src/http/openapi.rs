//! The OpenAPI 3.1 document of the API, generated from the handlers and views by `utoipa`
//! ([`ApiDoc`]) and committed as `docs/openapi.json`, which the API serves as it is: the Lambda
//! binary then carries a string instead of the code that builds the document. A test keeps the
//! file equal to what the code generates (`UPDATE_OPENAPI=1` rewrites it).

use axum::http::header;
use axum::response::IntoResponse;
use cashout_core::event::EventType;
use cashout_core::money::Currency;
use cashout_core::party::Country;
use cashout_core::provider::ProviderName;
use cashout_core::routing::PayoutMethodKind;
use cashout_core::status::{CashoutStatus, InvoiceStatus};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Responses};
use utoipa::{Modify, OpenApi};

use crate::http::api;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "cashout", description = "Merchant and operator API of cashout: cashout requests (invoices advanced at a percentage), review, webhook endpoints, payout methods. Errors are application/problem+json with a stable `code`."),
    paths(
        api::create_cashout, api::list_cashouts, api::get_cashout, api::list_events, api::cancel,
        api::approve, api::reject, api::retry, api::hold, api::release, api::resolve_attention, api::exclude_invoice,
        api::create_endpoint, api::list_endpoints, api::get_endpoint, api::delete_endpoint, api::rotate_secret, api::list_attempts,
        api::update_endpoint, api::test_endpoint, api::recover_endpoint, api::list_merchant_events,
        api::redeliver, api::payout_methods, api::create_portal_session,
        api::list_routing_rules, api::create_routing_rule, api::get_routing_rule, api::replace_routing_rule,
        api::delete_routing_rule, api::providers_health,
        api::statement, api::start_reconciliation, api::get_reconciliation,
        api::bulk_approve, api::create_operator, api::list_operators, api::create_operator_key, api::revoke_operator,
        api::list_policies, api::get_policy, api::put_policy, api::delete_policy,
        crate::http::webhooks::provider_notification,
    ),
    components(schemas(
        crate::views::CashoutRequestView, crate::views::InvoiceView, crate::views::PayerView, crate::views::BeneficiaryView,
        crate::views::CashoutRequestPage, crate::views::EventView, crate::views::EventList,
        crate::views::EndpointView, crate::views::EndpointList, crate::views::AttemptView, crate::views::AttemptPage,
        crate::views::PayoutMethodView, crate::views::MethodFieldView, crate::views::PayoutMethodList,
        crate::http::problem::Problem, crate::endpoints::NewEndpoint, api::RejectBody,
        crate::selfservice::EndpointPatch, crate::selfservice::RecoverRequest, crate::selfservice::RotateRequest,
        crate::views::EventPage, crate::views::RecoverAnswer, api::PortalSessionView, crate::views::EndpointTestWebhook, crate::views::EndpointDisabledWebhook,
        crate::views::CreatedWebhook, crate::views::StatusUpdateWebhook, crate::views::InvoiceStatusUpdateWebhook,
        crate::views::ProviderFailoverWebhook, crate::views::ProviderAttemptView, crate::views::RoutingView,
        crate::views::RoutingRuleView, crate::views::RoutingRuleList, crate::views::RuleMatchView, crate::views::RuleProviderView,
        crate::views::ProviderHealthView, crate::views::ProviderHealthList, crate::views::HealthWindowView,
        crate::http::api::RoutingRuleBody, crate::http::api::ReconciliationBody,
        crate::views::StatementView, crate::views::StatementPageView, crate::views::StatementAnswer, crate::views::StatementLineView,
        crate::views::CurrencyTotalsView, crate::views::StatusTotalsView, crate::views::ReconciliationView,
        crate::views::DifferenceView,
        crate::views::ActorView, crate::views::ReviewView, crate::views::FiredRuleView, crate::views::ApprovalView,
        crate::views::OperatorView, crate::views::OperatorKeyView, crate::views::OperatorList, crate::views::PolicyView,
        crate::views::PolicyList, crate::views::BulkApproveResult, crate::views::BulkApproveAnswer,
        api::OperatorBody, api::PolicyBody, api::BulkApproveBody, api::PolicyRuleSchema, api::LimitSchema,
        CashoutStatusSchema, InvoiceStatusSchema, EventTypeSchema, CurrencySchema, CountrySchema, ProviderSchema,
        PayoutMethodSchema, DecimalSchema, crate::http::input_doc::CashoutInputDoc, crate::http::input_doc::BeneficiaryInputDoc,
        crate::http::input_doc::InvoiceInputDoc, crate::http::input_doc::PayerInputDoc,
    )),
    modifiers(&BearerAuth, &EveryAnswer),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds to every operation the answers that do not depend on the operation, so that the
/// document lists every status code the server can give (and only those), and types every error
/// answer as `application/problem+json`:
/// - with an API key (`security`): 401 `unauthorized`, 429 `rate_limited` with `Retry-After`;
/// - with a body: 400 `invalid_json`, 413 `body_too_large`, 422 `invalid_body`;
/// - with query parameters: 400 `invalid_parameter`;
/// - with path parameters: 404 `not_found` (an id that does not parse is not found either);
/// - always: 500 `unavailable` or `internal_error`, and 503 `unavailable` (the store or the
///   queue failed; safe to retry).
struct EveryAnswer;

impl Modify for EveryAnswer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        add_links(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_answers(path, operation);
            }
        }
    }
}

/// OpenAPI links from what creates or answers a resource to what acts on it (the created
/// request's or endpoint's `id` into every `…/{id}…` operation under its collection, each action
/// on a request into the others, an event of a request's history into `redeliver`): clients and
/// API fuzzers follow them from one call to the next.
fn add_links(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    let mut targets: Vec<(String, String, String)> = Vec::new(); // (path, operation id, first path parameter)
    for (path, item) in &openapi.paths.paths {
        for operation in [&item.get, &item.post, &item.delete, &item.put, &item.patch]
            .into_iter()
            .flatten()
        {
            let first = path.split('{').nth(1).and_then(|rest| rest.split('}').next());
            if let (Some(id), Some(parameter)) = (&operation.operation_id, first) {
                targets.push((path.clone(), id.clone(), parameter.to_owned()));
            }
        }
    }
    let mut add = |path: &str, status: &str, pointer: &str, wanted: &dyn Fn(&str, &str) -> bool| {
        let Some(item) = openapi.paths.paths.get_mut(path) else {
            return;
        };
        let responses = [&mut item.get, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
            .filter_map(|o| match o.responses.responses.get_mut(status) {
                Some(RefOr::T(response)) => Some(response),
                _ => None,
            });
        for response in responses {
            for (target_path, id, parameter) in targets.iter().filter(|(p, _, param)| wanted(p, param)) {
                let mut link = LinkBuilder::new()
                    .operation_id(id.clone())
                    .parameter(parameter.clone(), serde_json::Value::String(pointer.to_owned()))
                    .description(format!("`{target_path}` for this resource"));
                if target_path.contains("{invoice_id}") {
                    link = link.parameter("invoice_id", "$response.body#/invoices/0/invoice_id");
                }
                response.links.insert(id.clone(), RefOr::T(link.build()));
            }
        }
    };
    for collection in ["/v1/cashout-requests", "/v1/webhook-endpoints"] {
        let prefix = format!("{collection}/{{id}}");
        add(collection, "201", "$response.body#/id", &|p, param| {
            param == "id" && p.starts_with(&prefix)
        });
    }
    // every action on a request answers the request: from each to the others
    let actions: Vec<String> = targets
        .iter()
        .filter(|(p, _, _)| p.starts_with("/v1/cashout-requests/{id}") && !p.ends_with("/events"))
        .map(|(p, _, _)| p.clone())
        .collect();
    for path in &actions {
        add(path, "200", "$response.body#/id", &|p, param| {
            param == "id" && p.starts_with("/v1/cashout-requests/{id}") && p != path
        });
    }
    add(
        "/v1/cashout-requests/{id}/events",
        "200",
        "$response.body#/data/0/id",
        &|_, param| param == "event_id",
    );
}

fn add_common_answers(path: &str, operation: &mut Operation) {
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let mut common: Vec<(u16, &str)> = Vec::new();
    if operation.security.is_some() {
        common.push((
            401,
            "`unauthorized`: no `Authorization: Bearer` key, or an unknown or revoked one",
        ));
    }
    if operation.request_body.is_some() {
        common.push((413, "`body_too_large`: the body is over 1 MiB"));
        if operation.security.is_some() {
            common.push((400, "`invalid_json`: the body is not JSON"));
            common.push((422, "`invalid_body` or `validation_failed`: the body does not match the schema or the rules; `errors` names each field"));
        }
    }
    if has_query {
        common.push((
            400,
            "`invalid_parameter`: a query parameter is malformed or out of range",
        ));
    }
    if path.contains('{') {
        common.push((404, "`not_found`: no such resource visible to this key"));
    }
    common.push((
        500,
        "`unavailable` (the store or the queue failed) or `internal_error` (a fault of ours, logged): \
         nothing was changed that a retry would repeat",
    ));
    common.push((
        503,
        "`unavailable`: the store, the queue or the provider is unavailable; safe to retry",
    ));
    let responses: &mut Responses = &mut operation.responses;
    if operation.security.is_some() {
        add_rate_limited(responses);
    }
    for (status, description) in common {
        responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(description));
    }
    for response in responses.responses.values_mut() {
        if let RefOr::T(response) = response
            && let Some(content) = response.content.shift_remove("application/json")
        {
            let is_problem = matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
            let media = if is_problem {
                "application/problem+json"
            } else {
                "application/json"
            };
            response.content.insert(media.to_owned(), content);
        }
    }
}

/// The answer of a caller over its rate limit (`crate::limits`), beside any other 429 the
/// operation gives (a create's `overloaded`).
fn add_rate_limited(responses: &mut Responses) {
    const RATE_LIMITED: &str = "`rate_limited`: this merchant or operator is over its rate limit, or this address over its \
         failed authentications; nothing was done; retry after the `Retry-After` seconds (1 to 60)";
    match responses.responses.entry("429".to_owned()) {
        std::collections::btree_map::Entry::Occupied(mut given) => {
            if let RefOr::T(response) = given.get_mut() {
                response.description = format!("{RATE_LIMITED}; or {}", response.description);
            }
        }
        std::collections::btree_map::Entry::Vacant(none) => {
            let mut answer = problem_response(RATE_LIMITED);
            if let RefOr::T(response) = &mut answer {
                let seconds = ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(1))
                    .maximum(Some(crate::limits::MAX_RETRY_AFTER_S));
                response.headers.insert(
                    "Retry-After".to_owned(),
                    utoipa::openapi::header::HeaderBuilder::new()
                        .schema(seconds)
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            none.insert(answer);
        }
    }
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::response::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))))
                    .build(),
            )
            .build(),
    )
}

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
            .description(Some(description))
            .build(),
    )
}

/// Declares a schema-only type: a named component whose schema comes from the domain's own list
/// of values, so that the document cannot drift from the code. Use it as `value_type`.
macro_rules! listed {
    ($(#[$doc:meta])* $type:ident, $name:literal, $description:literal, $values:expr) => {
        $(#[$doc])*
        pub struct $type;

        impl utoipa::PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                RefOr::T(string_enum($values, $description))
            }
        }

        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

listed!(
    /// The eight request statuses, from [`CashoutStatus::ALL`].
    CashoutStatusSchema, "CashoutStatus", "A request status",
    CashoutStatus::ALL.iter().map(|s| s.as_str())
);
listed!(
    /// The invoice statuses, from [`InvoiceStatus::ALL`].
    InvoiceStatusSchema, "InvoiceStatus", "An invoice status: its request's, or EXCLUDED",
    InvoiceStatus::ALL.iter().map(|s| s.as_str())
);
listed!(
    /// The webhook event types, from [`EventType::ALL`].
    EventTypeSchema, "EventType", "A webhook event type",
    EventType::ALL.iter().map(|t| t.as_str())
);
listed!(
    /// ISO 4217 codes cashout pays in, from [`Currency::SUPPORTED`].
    CurrencySchema, "Currency", "ISO 4217 currency code",
    Currency::SUPPORTED.iter().map(|c| c.code())
);
listed!(
    /// The payout providers, from [`ProviderName::ALL`].
    ProviderSchema, "Provider", "A payout provider",
    ProviderName::ALL.iter().map(|p| p.as_str())
);
listed!(
    /// The payout methods, from [`PayoutMethodKind::ALL`].
    PayoutMethodSchema, "PayoutMethod", "How a payout reaches the beneficiary",
    PayoutMethodKind::ALL.iter().map(|m| m.as_str())
);
listed!(
    /// ISO 3166-1 alpha-2 codes, from [`Country::codes`].
    CountrySchema, "Country", "ISO 3166-1 alpha-2 country code",
    Country::codes()
);

/// An exact decimal as a client may send it: a string such as `"1500.25"`, or a JSON number
/// written without an exponent (read exactly, never through a float).
pub struct DecimalSchema;

impl utoipa::PartialSchema for DecimalSchema {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
            .max_length(Some(40));
        let number = ObjectBuilder::new().schema_type(Type::Number);
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(text)
                .item(number)
                .description(Some(
                    "An exact decimal: a string such as \"1500.25\", or a JSON number without exponent",
                ))
                .build(),
        ))
    }
}

impl utoipa::ToSchema for DecimalSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Decimal")
    }
}

/// A webhook endpoint's URL: an absolute `http(s)` URI of at most 2,048 characters.
pub(crate) fn endpoint_url() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::Custom("uri".to_owned())))
            .pattern(Some("^https?://"))
            .max_length(Some(2048))
            .description(Some(
                "`https://…` (plain `http` and private addresses only where the deployment allows them)",
            ))
            .build(),
    )
}

/// Custom delivery headers: at most 10, names RFC 7230 tokens (the reserved ones are refused by
/// the server), values printable ASCII.
pub(crate) fn custom_headers() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(10))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"))
                    .build(),
            ))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
                utoipa::openapi::RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[ -~]{0,256}$"))
                        .max_length(Some(256))
                        .build(),
                )),
            )))
            .description(Some(
                "Headers sent with every delivery. Refused names (any case): `webhook-*`, `proxy-*`, `content-type`, `content-length`, `content-encoding`, `host`, `connection`, `keep-alive`, `transfer-encoding`, `te`, `trailer`, `upgrade`, `user-agent`, `expect`, `cookie`.",
            ))
            .build(),
    )
}

/// The outgoing webhooks (OpenAPI 3.1 `webhooks`), one per event type: what each endpoint
/// receives, signed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
fn webhooks() -> serde_json::Value {
    let entry = |schema: &str, summary: &str| {
        serde_json::json!({
            "post": {
                "summary": summary,
                "description": "Delivered to every enabled endpoint subscribed to the event type, signed as Standard Webhooks: `webhook-id` (the event id), `webhook-timestamp`, `webhook-signature` (`v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, one per live secret). Any 2xx acknowledges it; anything else is retried with backoff for three days.",
                "parameters": [
                    {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                    {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
                },
                "responses": {"2XX": {"description": "Received; not sent again"}}
            }
        })
    };
    let mut hooks = serde_json::Map::new();
    for event_type in EventType::ALL {
        let (schema, summary) = match event_type {
            EventType::Created => ("CreatedWebhook", "A request was created (REQUESTED)"),
            EventType::StatusUpdate => ("StatusUpdateWebhook", "A request changed status"),
            EventType::InvoiceStatusUpdate => {
                ("InvoiceStatusUpdateWebhook", "An invoice was excluded from its request")
            }
            EventType::ProviderFailover => (
                "ProviderFailoverWebhook",
                "A request moved to its next provider (the one it left provably holds nothing)",
            ),
            EventType::EndpointTest => (
                "EndpointTestWebhook",
                "Operational: a test the merchant asked for (POST /v1/webhook-endpoints/{id}/test)",
            ),
            EventType::EndpointDisabled => (
                "EndpointDisabledWebhook",
                "Operational: another endpoint of the merchant was disabled (sent to the other enabled ones)",
            ),
        };
        hooks.insert(event_type.as_str().to_owned(), entry(schema, summary));
    }
    serde_json::Value::Object(hooks)
}

/// `utoipa` writes a link's `operationId` as `operation_id` (and an empty `operation_ref`): put
/// them as OpenAPI spells them.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            if let Some(id) = link.remove("operation_id") {
                link.insert("operationId".to_owned(), id);
            }
            if let Some(reference) = link.remove("operation_ref")
                && reference.as_str().is_some_and(|r| !r.is_empty())
            {
                link.insert("operationRef".to_owned(), reference);
            }
        }
    }
}

/// The committed document.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// `GET /v1/openapi.json` (public).
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

/// The document the code generates now: the handlers' and views' document, with the outgoing
/// webhooks (which `utoipa` has no field for).
pub fn generate() -> String {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    camel_case_links(&mut document);
    // The top-level members in the order a reader expects (`openapi` first); inside, JSON
    // objects are sorted by key.
    #[derive(serde::Serialize)]
    struct Ordered<'a> {
        openapi: &'a serde_json::Value,
        info: &'a serde_json::Value,
        paths: &'a serde_json::Value,
        webhooks: serde_json::Value,
        components: &'a serde_json::Value,
        #[serde(skip_serializing_if = "serde_json::Value::is_null")]
        tags: &'a serde_json::Value,
    }
    let ordered = Ordered {
        openapi: &document["openapi"],
        info: &document["info"],
        paths: &document["paths"],
        webhooks: webhooks(),
        components: &document["components"],
        tags: &document["tags"],
    };
    let mut text = serde_json::to_string_pretty(&ordered).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use cashout_core::cashout::{FailoverReason, ProviderAttempt};
    use cashout_core::event::{EventPayload, StatusEvent, StatusReason};
    use cashout_core::ids::{CashoutRequestId, EventId, InvoiceId, MerchantId, PayoutReference};
    use cashout_core::money::Amount;
    use cashout_core::provider::ProviderName;
    use serde_json::Value;

    /// One event of every type, with every optional field set and with none set.
    fn every_event() -> Vec<StatusEvent> {
        let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let amount = Amount::parse("10.50", Currency::USD).unwrap();
        let attempts = vec![
            ProviderAttempt {
                provider: ProviderName::D24,
                reference: PayoutReference::first(id),
                started_at: at,
                ended_at: Some(at),
                failover: Some(FailoverReason::CircuitOpen),
                checked_at: None,
            },
            ProviderAttempt {
                provider: ProviderName::Onspot,
                reference: PayoutReference::new(id, 2).unwrap(),
                started_at: at,
                ended_at: None,
                failover: None,
                checked_at: None,
            },
        ];
        let payloads = [
            EventPayload::Created {
                cashout_request_id: id,
                currency_code: Currency::USD,
                requested_amount: amount,
                requested_invoice_count: 1,
                request_date: at,
                status: CashoutStatus::Requested,
            },
            EventPayload::StatusUpdate {
                cashout_request_id: id,
                status: CashoutStatus::Paid,
                previous_status: CashoutStatus::PendingPayment,
                paid_amount: Some(amount),
                paid_invoice_count: 1,
                payment_date: Some(at),
                payment_reference: Some("ref".into()),
                reason: StatusReason::ProviderPaid,
                provider: Some(ProviderName::Onspot),
                provider_attempts: attempts.clone(),
                routing_rule_id: Some(cashout_core::ids::RoutingRuleId::from_uuid(uuid::Uuid::now_v7())),
                actor: None,
            },
            EventPayload::StatusUpdate {
                cashout_request_id: id,
                status: CashoutStatus::Approved,
                previous_status: CashoutStatus::Requested,
                paid_amount: None,
                paid_invoice_count: 0,
                payment_date: None,
                payment_reference: None,
                reason: StatusReason::AutoApproved,
                provider: Some(ProviderName::D24),
                provider_attempts: Vec::new(),
                routing_rule_id: None,
                actor: Some(cashout_core::auth::Actor::Operator {
                    id: cashout_core::auth::OperatorName::new("alice").unwrap(),
                }),
            },
            EventPayload::InvoiceStatusUpdate {
                cashout_request_id: id,
                invoice_id: InvoiceId::new("INV-1").unwrap(),
                status: InvoiceStatus::Excluded,
                previous_status: InvoiceStatus::UnderReview,
                actor: Some(cashout_core::auth::Actor::Operator {
                    id: cashout_core::auth::OperatorName::new("alice").unwrap(),
                }),
            },
            EventPayload::ProviderFailover {
                cashout_request_id: id,
                from_provider: ProviderName::D24,
                to_provider: ProviderName::Onspot,
                reason: FailoverReason::CircuitOpen,
                provider_attempts: attempts,
            },
        ];
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| StatusEvent {
                id: EventId::new(id, i as u64 + 1),
                cashout_request_id: id,
                merchant_id: MerchantId::new("m").unwrap(),
                sequence: i as u64 + 1,
                occurred_at: at,
                payload,
            })
            .collect()
    }

    fn json_type_matches(schema: &Value, value: &Value) -> bool {
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        types.contains(&actual) || (actual == "integer" && types.contains(&"number"))
    }

    #[test]
    fn every_webhook_body_is_what_the_documents_webhooks_entry_says() {
        let document: Value = serde_json::from_str(&generate()).unwrap();
        for event in every_event() {
            let body: Value = serde_json::from_str(&event.webhook_body()).unwrap();
            let name = event.event_type().as_str();
            let reference = document["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("no webhooks entry for {name}"));
            let schema = &document["components"]["schemas"][reference.rsplit('/').next().unwrap()];
            let properties = schema["properties"].as_object().unwrap();
            let fields = body.as_object().unwrap();
            let mut documented: Vec<&String> = properties.keys().collect();
            let mut sent: Vec<&String> = fields.keys().collect();
            documented.sort();
            sent.sort();
            assert_eq!(sent, documented, "{name}: the body's fields against the schema's");
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    fields.contains_key(required.as_str().unwrap()),
                    "{name}: {required} missing"
                );
            }
            for (field, value) in fields {
                let property = match properties[field]["$ref"].as_str() {
                    Some(r) => &document["components"]["schemas"][r.rsplit('/').next().unwrap()],
                    None => &properties[field],
                };
                assert!(
                    json_type_matches(property, value),
                    "{name}.{field}: {value} against {property}"
                );
                if let Some(allowed) = property["enum"].as_array() {
                    assert!(allowed.contains(value), "{name}.{field}: {value} is not in {allowed:?}");
                }
            }
            assert_eq!(body["event"], name);
        }
    }

    #[test]
    fn the_document_keeps_every_top_level_member_and_starts_with_openapi() {
        let generated = generate();
        assert!(
            generated.starts_with("{\n  \"openapi\": \"3.1.0\","),
            "{}",
            &generated[..80]
        );
        let document: Value = serde_json::from_str(&generated).unwrap();
        let mut members: Vec<&String> = document.as_object().unwrap().keys().collect();
        members.sort();
        let original = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut expected: Vec<&String> = original.as_object().unwrap().keys().collect();
        let webhooks = "webhooks".to_owned();
        expected.push(&webhooks);
        expected.sort();
        assert_eq!(members, expected);
    }

    #[test]
    fn every_error_answer_is_a_problem_and_every_operation_lists_401_500_and_503_where_they_apply() {
        let document: Value = serde_json::from_str(&generate()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let content = response["content"].as_object().unwrap();
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            ["application/problem+json"],
                            "{method} {path} {status}"
                        );
                    }
                }
                for status in ["500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path} lacks {status}");
                }
                if operation.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path} lacks 401");
                }
            }
        }
    }

    #[test]
    fn the_committed_document_is_what_the_code_generates() {
        let generated = generate();
        if generated != DOCUMENT {
            if std::env::var_os("UPDATE_OPENAPI").is_some() {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
                std::fs::write(path, &generated).unwrap();
            }
            panic!(
                "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p cashout-app openapi` and commit it"
            );
        }
    }
}
