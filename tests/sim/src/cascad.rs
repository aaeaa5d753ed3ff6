//! Cascad (Corefy/PayCore) payouts by reference: pre-request, payout services, payout invoices
//! (JSON:API) created then processed, lookups by id and by `filter[reference_id]`, the cursor
//! list, and signed callbacks. Wire types are the simulator's own reading of the docs.

// Handlers exit early with `Err(Response)`; its size does not matter at HTTP speeds.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cashout_core::money::DecimalInput;
use cashout_core::provider::ProviderName;
use cashout_core::signing::{ProviderSecret, cascad_signature};
use rand::Rng;
use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::book::{Book, Change, Ctx, Detail, Payout, Step, mask};
use crate::config::SimConfig;
use crate::sim::{Sim, json_text, number};
use crate::triggers::{Trigger, delays};

const CASCAD: ProviderName = ProviderName::Cascad;

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/payout-prerequest", post(prerequest))
        .route("/payout-services", get(services))
        .route("/payout-services/{id}", get(service))
        .route("/payout-invoices", post(create).get(list))
        .route("/payout-invoices/{id}", get(show))
        .route("/payout-invoices/{id}/process", post(process))
        .with_state(sim)
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Serialize)]
struct ErrorItem {
    status: String,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

fn errors(http: StatusCode, title: Option<&str>, detail: Option<&str>) -> Response {
    #[derive(Serialize)]
    struct Body {
        errors: Vec<ErrorItem>,
    }
    let item = ErrorItem {
        status: http.canonical_reason().unwrap_or("Error").to_owned(),
        code: http.as_u16().to_string(),
        title: title.map(str::to_owned),
        detail: detail.map(str::to_owned),
    };
    (http, axum::Json(Body { errors: vec![item] })).into_response()
}

/// `{"errors": {"field": "message"}}`, the validation shape.
fn field_errors(field: &str, message: &str) -> Response {
    let mut map = BTreeMap::new();
    map.insert(field.to_owned(), message.to_owned());
    #[derive(Serialize)]
    struct Body {
        errors: BTreeMap<String, String>,
    }
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(Body { errors: map })).into_response()
}

/// An injected 5xx, in the documented shape.
fn server_error(status: StatusCode) -> Response {
    #[derive(Serialize)]
    struct Body {
        errors: Vec<ErrorItem>,
    }
    let item = ErrorItem {
        status: "internal_error".into(),
        code: status.as_u16().to_string(),
        title: Some("internal_error".into()),
        detail: Some("Internal server error.".into()),
    };
    (status, axum::Json(Body { errors: vec![item] })).into_response()
}

fn unauthorized() -> Response {
    errors(StatusCode::UNAUTHORIZED, None, None)
}

fn not_found() -> Response {
    errors(StatusCode::NOT_FOUND, None, None)
}

/// HTTP Basic auth: commerce account id and API key.
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

// ---------------------------------------------------------------------------------------------
// Services

struct Service {
    id: &'static str,
    code: &'static str,
    currency: &'static str,
    amount_min: &'static str,
    amount_max: &'static str,
}

const SERVICES: &[Service] = &[
    Service {
        id: "comcpos_SimTestUsd000001",
        code: "test_usd",
        currency: "USD",
        amount_min: "0.01",
        amount_max: "9999999",
    },
    Service {
        id: "comcpos_SimTestEur000001",
        code: "test_eur",
        currency: "EUR",
        amount_min: "0.01",
        amount_max: "9999999",
    },
    Service {
        id: "comcpos_SimTestGbp000001",
        code: "test_gbp",
        currency: "GBP",
        amount_min: "0.01",
        amount_max: "9999999",
    },
];

struct FieldRule {
    key: &'static str,
    label: &'static str,
    regexp: &'static str,
    required: bool,
}

/// The fields of every `test_*` service, with the documented regexps.
const FIELDS: &[FieldRule] = &[
    FieldRule {
        key: "account",
        label: "Account",
        regexp: r"^\d{1,15}$",
        required: true,
    },
    FieldRule {
        key: "test_details_success_rate",
        label: "Success rate (%)",
        regexp: r"^\d{1,15}$",
        required: false,
    },
    FieldRule {
        key: "test_details_payout_status",
        label: "Expected status",
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
    },
    FieldRule {
        key: "test_details_payout_resolution",
        label: "Expected resolution",
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
    },
];

static FIELD_REGEXPS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    FIELDS
        .iter()
        .map(|f| Regex::new(f.regexp).unwrap_or_else(|e| panic!("built-in pattern {} is invalid: {e}", f.regexp)))
        .collect()
});

#[derive(Serialize)]
struct Label {
    en: &'static str,
}

#[derive(Serialize)]
struct PrerequestField {
    key: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    label: Label,
    example: Option<()>,
    hint: Label,
    regexp: &'static str,
    required: bool,
    position: u32,
}

#[derive(Serialize)]
struct PrerequestService {
    code: &'static str,
    method: &'static str,
    currency: &'static str,
    fields: Vec<PrerequestField>,
    amount_min: Box<RawValue>,
    amount_max: Box<RawValue>,
    exchange_rate: u32,
    amount: String,
}

#[derive(Deserialize)]
struct PrerequestBody {
    currency: Option<String>,
    amount: Option<DecimalInput>,
    public_key: Option<String>,
}

fn decimal(text: &str) -> Decimal {
    cashout_core::money::parse_decimal(text).unwrap_or_default()
}

#[derive(Serialize)]
struct PrerequestDoc {
    data: PrerequestData,
}

#[derive(Serialize)]
struct PrerequestData {
    currency: String,
    amount: Box<RawValue>,
    test_mode: bool,
    services: BTreeMap<&'static str, PrerequestService>,
}

async fn prerequest(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        let req: PrerequestBody = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return errors(StatusCode::BAD_REQUEST, Some("bad_request"), Some(&e.to_string()));
            }
        };
        if req.public_key.as_deref() != Some(sim2.config.cascad.public_key.as_str()) {
            return unauthorized();
        }
        let Some(currency) = req.currency else {
            return field_errors("currency", "This value should not be blank.");
        };
        let amount = match req.amount {
            Some(a) if a.0 > Decimal::ZERO => a.0,
            _ => return field_errors("amount", "This value should be greater than 0."),
        };
        let services = SERVICES
            .iter()
            .filter(|s| s.currency == currency && decimal(s.amount_min) <= amount && amount <= decimal(s.amount_max))
            .map(|s| {
                let svc = PrerequestService {
                    code: s.code,
                    method: "test",
                    currency: s.currency,
                    fields: FIELDS
                        .iter()
                        .map(|f| PrerequestField {
                            key: f.key,
                            kind: "string",
                            label: Label { en: f.label },
                            example: None,
                            hint: Label { en: f.label },
                            regexp: f.regexp,
                            required: f.required,
                            position: 0,
                        })
                        .collect(),
                    amount_min: number(s.amount_min),
                    amount_max: number(s.amount_max),
                    exchange_rate: 1,
                    amount: amount.round_dp(2).to_string(),
                };
                (s.code, svc)
            })
            .collect();
        let doc = PrerequestDoc {
            data: PrerequestData {
                currency,
                amount: number(&amount.normalize().to_string()),
                test_mode: true,
                services,
            },
        };
        match serde_json::to_string(&doc) {
            Ok(t) => json_text(StatusCode::OK, t),
            Err(_) => server_error(StatusCode::INTERNAL_SERVER_ERROR),
        }
    })
    .await
}

#[derive(Serialize)]
struct ServiceResource {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    attributes: ServiceAttributes,
    relationships: ServiceRelationships,
    links: SelfLink,
}

#[derive(Serialize)]
struct ServiceAttributes {
    service: &'static str,
    service_method: &'static str,
    service_currency: &'static str,
    available: bool,
    active: bool,
    enabled: bool,
    amount_min: Box<RawValue>,
    amount_max: Box<RawValue>,
    fee_min: u32,
    fee_max: u32,
    fee_rate: u32,
    fee_fix: u32,
    currency: &'static str,
    test_mode: bool,
}

#[derive(Serialize)]
struct ServiceRelationships {
    #[serde(rename = "payout-method")]
    payout_method: RelData,
    #[serde(rename = "payout-service")]
    payout_service: RelData,
}

#[derive(Serialize)]
struct RelData {
    data: TypeId,
}

#[derive(Serialize)]
struct TypeId {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
}

#[derive(Serialize)]
struct SelfLink {
    #[serde(rename = "self")]
    this: String,
}

fn service_resource(s: &Service) -> ServiceResource {
    ServiceResource {
        kind: "payout-services",
        id: s.id,
        attributes: ServiceAttributes {
            service: s.code,
            service_method: "test",
            service_currency: s.currency,
            available: true,
            active: true,
            enabled: true,
            amount_min: number(s.amount_min),
            amount_max: number(s.amount_max),
            fee_min: 0,
            fee_max: 0,
            fee_rate: 0,
            fee_fix: 0,
            currency: s.currency,
            test_mode: true,
        },
        relationships: ServiceRelationships {
            payout_method: RelData {
                data: TypeId {
                    kind: "payout-methods",
                    id: "test".into(),
                },
            },
            payout_service: RelData {
                data: TypeId {
                    kind: "payout-services",
                    id: s.code.into(),
                },
            },
        },
        links: SelfLink {
            this: format!("/cascad/payout-services/{}", s.id),
        },
    }
}

fn page_param(q: &HashMap<String, String>, key: &str, default: usize) -> usize {
    q.get(key)
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

async fn services(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let size = page_param(&q, "page[size]", 20).min(100);
        let number = page_param(&q, "page[number]", 1);
        let pages = SERVICES.len().div_ceil(size).max(1);
        let data: Vec<ServiceResource> = SERVICES
            .iter()
            .skip((number - 1) * size)
            .take(size)
            .map(service_resource)
            .collect();
        let link = |n: usize| format!("/cascad/payout-services?page[number]={n}&page[size]={size}");
        let body = serde_json::json!({
            "meta": {"total": SERVICES.len(), "pages": pages, "page": number},
            "links": {
                "first": link(1),
                "next": if number < pages { link(number + 1) } else { String::new() },
                "last": link(pages),
            },
            "data": serde_json::to_value(&data).unwrap_or_default(),
        });
        axum::Json(body).into_response()
    })
    .await
}

async fn service(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        match SERVICES.iter().find(|s| s.id == id || s.code == id) {
            Some(s) => match serde_json::to_string(&Single {
                data: service_resource(s),
            }) {
                Ok(t) => json_text(StatusCode::OK, t),
                Err(_) => server_error(StatusCode::INTERNAL_SERVER_ERROR),
            },
            None => not_found(),
        }
    })
    .await
}

#[derive(Serialize)]
struct Single<T> {
    data: T,
}

// ---------------------------------------------------------------------------------------------
// Invoices

/// What happens after processing starts: delays (before scaling) and statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScriptStep {
    pub after_ms: u64,
    pub status: String,
    pub resolution: String,
}

/// A payout invoice as the simulator keeps it (account fields already masked).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Invoice {
    pub serial_number: String,
    pub status: String,
    pub resolution: String,
    pub amount: String,
    pub currency: String,
    pub service: String,
    pub test_mode: bool,
    pub description: Option<String>,
    /// Raw JSON, as received.
    pub metadata: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub processed: Option<i64>,
    pub fields: BTreeMap<String, String>,
    pub callback_url: Option<String>,
    pub customer_id: Option<String>,
    pub auto_process: bool,
    pub script: Vec<ScriptStep>,
}

#[derive(Serialize)]
struct InvoiceResource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    attributes: InvoiceAttributes<'a>,
    relationships: InvoiceRelationships,
    links: SelfLink,
}

#[derive(Serialize)]
struct InvoiceAttributes<'a> {
    serial_number: &'a str,
    status: &'a str,
    resolution: &'a str,
    amount: Box<RawValue>,
    payout_amount: Box<RawValue>,
    currency: &'a str,
    service_currency: &'a str,
    service_amount: Box<RawValue>,
    service_payout_amount: Box<RawValue>,
    reference_id: &'a str,
    test_mode: bool,
    description: Option<&'a str>,
    fee: u32,
    writeoff: Box<RawValue>,
    exchange_rate: u32,
    processed: Option<i64>,
    processed_amount: Option<Box<RawValue>>,
    processed_fee: u32,
    processed_writeoff: Option<Box<RawValue>>,
    metadata: Option<Box<RawValue>>,
    created: i64,
    updated: i64,
    fields: &'a BTreeMap<String, String>,
    callback_url: Option<&'a str>,
    source: &'static str,
    callback_logs: Vec<()>,
}

#[derive(Serialize)]
struct InvoiceRelationships {
    #[serde(rename = "payout-service")]
    payout_service: RelData,
    #[serde(rename = "payout-method")]
    payout_method: RelData,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<RelData>,
}

fn invoice_resource<'a>(p: &'a Payout, inv: &'a Invoice) -> InvoiceResource<'a> {
    let amount = decimal(&p.amount).normalize().to_string();
    let n = || number(&amount);
    let processed = inv.processed.is_some();
    InvoiceResource {
        kind: "payout-invoices",
        id: &p.id,
        attributes: InvoiceAttributes {
            serial_number: &inv.serial_number,
            status: &inv.status,
            resolution: &inv.resolution,
            amount: n(),
            payout_amount: n(),
            currency: &inv.currency,
            service_currency: &inv.currency,
            service_amount: n(),
            service_payout_amount: n(),
            reference_id: &p.reference,
            test_mode: inv.test_mode,
            description: inv.description.as_deref(),
            fee: 0,
            writeoff: n(),
            exchange_rate: 1,
            processed: inv.processed,
            processed_amount: processed.then(n),
            processed_fee: 0,
            processed_writeoff: processed.then(n),
            metadata: inv
                .metadata
                .as_deref()
                .and_then(|m| RawValue::from_string(m.to_owned()).ok()),
            created: inv.created,
            updated: inv.updated,
            fields: &inv.fields,
            callback_url: inv.callback_url.as_deref(),
            source: "merchant_api",
            callback_logs: Vec::new(),
        },
        relationships: InvoiceRelationships {
            payout_service: RelData {
                data: TypeId {
                    kind: "payout-services",
                    id: inv.service.clone(),
                },
            },
            payout_method: RelData {
                data: TypeId {
                    kind: "payout-methods",
                    id: "test".into(),
                },
            },
            customer: inv.customer_id.as_ref().map(|c| RelData {
                data: TypeId {
                    kind: "customers",
                    id: c.clone(),
                },
            }),
        },
        links: SelfLink {
            this: format!("/cascad/payout-invoices/{}", p.id),
        },
    }
}

fn invoice_of(p: &Payout) -> Option<&Invoice> {
    match &p.detail {
        Detail::Cascad(inv) => Some(inv),
        Detail::D24 { .. } => None,
    }
}

fn invoice_doc(p: &Payout) -> Option<String> {
    let inv = invoice_of(p)?;
    serde_json::to_string(&Single {
        data: invoice_resource(p, inv),
    })
    .ok()
}

/// The callback of a payout's current state: the JSON:API document and its `X-Signature`.
pub(crate) fn callback(p: &Payout, config: &SimConfig) -> Option<(String, Vec<(String, String)>)> {
    let body = invoice_doc(p)?;
    let sig = cascad_signature(&ProviderSecret::new(config.cascad.secret.clone()), body.as_bytes());
    Some((body, vec![("X-Signature".to_owned(), sig)]))
}

#[derive(Deserialize)]
struct CreateDoc {
    data: Option<CreateData>,
}

#[derive(Deserialize)]
struct CreateData {
    #[serde(rename = "type")]
    kind: Option<String>,
    attributes: Option<CreateAttributes>,
}

#[derive(Deserialize)]
struct CreateAttributes {
    reference_id: Option<String>,
    service: Option<String>,
    currency: Option<String>,
    amount: Option<DecimalInput>,
    fields: Option<BTreeMap<String, serde_json::Value>>,
    callback_url: Option<String>,
    description: Option<String>,
    customer: Option<Customer>,
    options: Option<Options>,
    metadata: Option<Box<RawValue>>,
    test_mode: Option<bool>,
}

#[derive(Deserialize)]
struct Customer {
    reference_id: Option<String>,
}

#[derive(Deserialize)]
struct Options {
    auto_process: Option<bool>,
}

#[derive(Deserialize)]
struct ReferenceOnly {
    data: Option<ReferenceData>,
}
#[derive(Deserialize)]
struct ReferenceData {
    attributes: Option<ReferenceAttributes>,
}
#[derive(Deserialize)]
struct ReferenceAttributes {
    reference_id: Option<String>,
}

fn random_token(rng: &mut rand::rngs::StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `process failed` / `process-failed` → `process_failed` (the documented regexp allows no `_`).
fn status_word(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn step(after_ms: u64, status: &str, resolution: &str) -> ScriptStep {
    ScriptStep {
        after_ms,
        status: status.to_owned(),
        resolution: resolution.to_owned(),
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What happens once processing starts, from the account trigger and the test fields.
fn script(trigger: Trigger, fields: &BTreeMap<String, String>, ctx: &mut Ctx<'_>) -> Vec<ScriptStep> {
    let start = ms(delays::CASCAD_START);
    let failure = || {
        vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_ERROR), "process_error", "bank_error"),
            step(ms(delays::CASCAD_FAIL), "process_failed", "declined"),
        ]
    };
    if let Some(status) = fields.get("test_details_payout_status") {
        let resolution = fields
            .get("test_details_payout_resolution")
            .map_or_else(|| "ok".to_owned(), |r| status_word(r));
        return vec![
            step(start, "processing", "ok"),
            ScriptStep {
                after_ms: ms(delays::CASCAD_SETTLE),
                status: status_word(status),
                resolution,
            },
        ];
    }
    if let Some(rate) = fields
        .get("test_details_success_rate")
        .and_then(|r| r.parse::<u32>().ok())
        && ctx.rng.random_range(0u32..100) >= rate
    {
        return failure();
    }
    match trigger {
        Trigger::BankRejects => failure(),
        Trigger::SlowBank => vec![
            step(start, "processing", "ok"),
            step(ms(delays::SLOW_BANK), "processed", "ok"),
        ],
        Trigger::OnHold => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_ERROR), "process_error", "bank_error"),
            step(ms(delays::CASCAD_SETTLE), "processing", "ok"),
            step(ms(delays::CASCAD_FAIL), "processed", "ok"),
        ],
        Trigger::Success | Trigger::Reversal | Trigger::DeclinedCreate => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_SETTLE), "processed", "ok"),
        ],
    }
}

/// Plans a script from `t0`.
fn planned(script: &[ScriptStep], t0: time::OffsetDateTime, ctx: &Ctx<'_>) -> Vec<Step> {
    script
        .iter()
        .map(|s| Step {
            at: t0 + ctx.scaled(std::time::Duration::from_millis(s.after_ms)),
            change: Change::Cascad {
                status: s.status.clone(),
                resolution: s.resolution.clone(),
            },
        })
        .collect()
}

fn expiry(t0: time::OffsetDateTime, ctx: &Ctx<'_>) -> Vec<Step> {
    vec![Step {
        at: t0 + ctx.scaled(delays::CASCAD_EXPIRY),
        change: Change::Cascad {
            status: "expired".into(),
            resolution: "ok".into(),
        },
    }]
}

async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let reference = serde_json::from_slice::<ReferenceOnly>(&body)
        .ok()
        .and_then(|d| d.data)
        .and_then(|d| d.attributes)
        .and_then(|a| a.reference_id);
    sim.count_attempt(CASCAD, reference.as_deref());
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        do_create(&sim2, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

fn field_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

fn do_create(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    authenticate(headers, &sim.config)?;
    let doc: CreateDoc = serde_json::from_slice(body)
        .map_err(|e| errors(StatusCode::BAD_REQUEST, Some("bad_request"), Some(&e.to_string())))?;
    let data = doc
        .data
        .ok_or_else(|| field_errors("data", "This value should not be blank."))?;
    if data.kind.as_deref() != Some("payout-invoice") {
        return Err(field_errors("data.type", "This value should be \"payout-invoice\"."));
    }
    let a = data
        .attributes
        .ok_or_else(|| field_errors("data.attributes", "This value should not be blank."))?;
    let reference = match a.reference_id.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 255 => r.to_owned(),
        _ => {
            return Err(field_errors("reference_id", "This value should not be blank."));
        }
    };
    let service_code = a
        .service
        .ok_or_else(|| field_errors("service", "This value should not be blank."))?;
    let service = SERVICES
        .iter()
        .find(|s| s.code == service_code)
        .ok_or_else(|| field_errors("service", "The service is not available for the account."))?;
    let currency = a
        .currency
        .ok_or_else(|| field_errors("currency", "This value should not be blank."))?;
    if currency != service.currency {
        return Err(field_errors("currency", "The currency does not match the service."));
    }
    let amount = match a.amount {
        None => return Err(field_errors("amount", "This value should not be blank.")),
        Some(v) if v.0 <= Decimal::ZERO => {
            return Err(field_errors("amount", "This value should be greater than 0."));
        }
        Some(v) => v.0,
    };
    if amount < decimal(service.amount_min) || amount > decimal(service.amount_max) {
        return Err(field_errors("amount", "The amount is out of the service limits."));
    }
    if amount.normalize().scale() > 2 {
        return Err(field_errors("amount", "This value has too many decimals."));
    }
    let raw_fields = a
        .fields
        .ok_or_else(|| field_errors("fields", "This value should not be blank."))?;
    let mut fields = BTreeMap::new();
    for (rule, re) in FIELDS.iter().zip(FIELD_REGEXPS.iter()) {
        match raw_fields.get(rule.key).and_then(field_text) {
            Some(v) if re.is_match(&v) => {
                fields.insert(rule.key.to_owned(), v);
            }
            Some(_) => {
                return Err(field_errors(
                    &format!("fields.{}", rule.key),
                    "This value is not valid.",
                ));
            }
            None if rule.required => {
                return Err(field_errors(
                    &format!("fields.{}", rule.key),
                    "This value should not be blank.",
                ));
            }
            None => {}
        }
    }
    if let Some(url) = &a.callback_url
        && url::Url::parse(url).is_err()
    {
        return Err(field_errors("callback_url", "This value is not a valid URL."));
    }
    if let Some(c) = &a.customer
        && c.reference_id.as_deref().is_none_or(str::is_empty)
    {
        return Err(field_errors("customer.reference_id", "This value should not be blank."));
    }
    let account = fields.get("account").cloned();
    let trigger = Trigger::of(account.as_deref());
    if trigger == Trigger::DeclinedCreate {
        return Err(field_errors(
            "fields.account",
            "The account was refused by the payment system (test trigger ...30).",
        ));
    }
    let auto_process = a.options.and_then(|o| o.auto_process).unwrap_or(false);
    let has_customer = a.customer.is_some();
    sim.with_book(|book: &mut Book, ctx| {
        let accept_dups = ctx.faults.get(CASCAD).accept_duplicate_references;
        if !accept_dups && !book.by_reference(CASCAD, &reference).is_empty() {
            return Err(errors(
                StatusCode::CONFLICT,
                Some("conflict"),
                Some("A payout invoice with this reference_id already exists."),
            ));
        }
        let token = loop {
            let t = random_token(ctx.rng);
            if book.find(CASCAD, &format!("cpoi_{t}")).is_none() {
                break t;
            }
        };
        let script = script(trigger, &fields, ctx);
        let now = ctx.now;
        let plan = if auto_process {
            planned(&script, now, ctx)
        } else {
            expiry(now, ctx)
        };
        let masked: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| {
                let v = if k == "account" || k == "card_number" {
                    mask(v)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        let invoice = Invoice {
            serial_number: token.clone(),
            status: "created".into(),
            resolution: "ok".into(),
            amount: amount.to_string(),
            currency: currency.clone(),
            service: service.code.to_owned(),
            test_mode: a.test_mode.unwrap_or(true),
            description: a.description.clone(),
            metadata: a.metadata.as_ref().map(|m| m.get().to_owned()),
            created: now.unix_timestamp(),
            updated: now.unix_timestamp(),
            processed: None,
            fields: masked,
            callback_url: a.callback_url.clone(),
            customer_id: has_customer.then(|| format!("cus_{}", random_token(ctx.rng))),
            auto_process,
            script,
        };
        let payout = Payout {
            provider: CASCAD,
            id: format!("cpoi_{token}"),
            reference: reference.clone(),
            amount: amount.to_string(),
            currency: Some(currency.clone()),
            account_masked: account.as_deref().map(mask),
            created_at: now,
            updated_at: now,
            detail: Detail::Cascad(Box::new(invoice)),
            plan,
            history: Vec::new(),
        };
        let doc = invoice_doc(&payout).unwrap_or_default();
        tracing::info!(provider = %CASCAD, id = %payout.id, reference, "payout invoice created");
        book.payouts.push(payout);
        Ok(json_text(StatusCode::CREATED, doc))
    })
}

async fn process(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        sim2.with_book(|book, ctx| {
            let Some(i) = book.find(CASCAD, &id) else {
                return not_found();
            };
            let Some(inv) = invoice_of(&book.payouts[i]) else {
                return not_found();
            };
            if inv.status != "created" || inv.auto_process {
                return errors(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("invalid_status"),
                    Some(&format!("The invoice is {} and cannot be processed.", inv.status)),
                );
            }
            let script = inv.script.clone();
            book.payouts[i].plan = planned(&script, ctx.now, ctx);
            if let Detail::Cascad(inv) = &mut book.payouts[i].detail {
                // Processing was asked for: it cannot be asked again.
                inv.auto_process = true;
            }
            json_text(StatusCode::OK, invoice_doc(&book.payouts[i]).unwrap_or_default())
        })
    })
    .await
}

async fn show(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        sim2.read_book(
            |book, _| match book.find(CASCAD, &id).and_then(|i| invoice_doc(&book.payouts[i])) {
                Some(doc) => json_text(StatusCode::OK, doc),
                None => not_found(),
            },
        )
    })
    .await
}

#[derive(Serialize)]
struct ListDoc<'a> {
    meta: ListMeta,
    links: ListLinks,
    data: Vec<InvoiceResource<'a>>,
}

#[derive(Serialize)]
struct ListMeta {
    count: usize,
    size: usize,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Serialize)]
struct ListLinks {
    prev: String,
    next: String,
}

/// `GET /payout-invoices`: by `filter[reference_id]`, or every invoice newest first with the
/// cursors `page[after]` / `page[before]` (ids) and `page[size]`.
async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, server_error, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let size = page_param(&q, "page[size]", 20).min(100);
        sim2.read_book(|book, _| {
            let mut all: Vec<&Payout> = book.payouts.iter().filter(|p| p.provider == CASCAD).collect();
            all.reverse();
            if let Some(r) = q.get("filter[reference_id]") {
                all.retain(|p| &p.reference == r);
            }
            let start = match (q.get("page[after]"), q.get("page[before]")) {
                (Some(after), _) => match all.iter().position(|p| &p.id == after) {
                    Some(i) => i + 1,
                    None => return field_errors("page[after]", "Unknown cursor."),
                },
                (None, Some(before)) => match all.iter().position(|p| &p.id == before) {
                    Some(i) => i.saturating_sub(size),
                    None => return field_errors("page[before]", "Unknown cursor."),
                },
                (None, None) => 0,
            };
            let end = match q.get("page[before]") {
                Some(before) if !q.contains_key("page[after]") => all.iter().position(|p| &p.id == before).unwrap_or(0),
                _ => (start + size).min(all.len()),
            };
            let page = &all[start.min(end)..end];
            let link = |k: &str, id: &str| format!("/cascad/payout-invoices?page[{k}]={id}&page[size]={size}");
            let data: Vec<InvoiceResource<'_>> = page
                .iter()
                .filter_map(|p| invoice_of(p).map(|inv| invoice_resource(p, inv)))
                .collect();
            let first = page.first().map(|p| p.id.clone());
            let last = page.last().map(|p| p.id.clone());
            let doc = ListDoc {
                meta: ListMeta {
                    count: data.len(),
                    size,
                    before: first.clone(),
                    after: last.clone(),
                },
                links: ListLinks {
                    prev: match &first {
                        Some(id) if start > 0 => link("before", id),
                        _ => String::new(),
                    },
                    next: match &last {
                        Some(id) if end < all.len() => link("after", id),
                        _ => String::new(),
                    },
                },
                data,
            };
            match serde_json::to_string(&doc) {
                Ok(t) => json_text(StatusCode::OK, t),
                Err(_) => server_error(StatusCode::INTERNAL_SERVER_ERROR),
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_statuses_read_spaces_and_dashes_as_underscores() {
        assert_eq!(status_word("process failed"), "process_failed");
        assert_eq!(status_word("Terminated"), "terminated");
        assert_eq!(status_word("cancel-failed"), "cancel_failed");
    }

    #[test]
    fn documented_field_regexps_hold() {
        assert!(FIELD_REGEXPS[0].is_match("123456789012345"));
        assert!(!FIELD_REGEXPS[0].is_match("1234567890123456"));
        assert!(FIELD_REGEXPS[2].is_match("process failed"));
        assert!(!FIELD_REGEXPS[2].is_match("process_failed"));
    }
}
