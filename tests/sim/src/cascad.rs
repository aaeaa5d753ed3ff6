//! Cascad (Corefy/PayCore) payouts by reference, read from seed 003 and the digest
//! (PROVIDERS.md, "Cascad"): payout invoices (JSON:API) created (201 only) then processed,
//! lookups by id and by `filter[reference_id]` through the private API (Basic auth) or the
//! public one (public key), the cursor list, and callbacks signed with `X-Signature`. Services
//! and the pre-request are in [`services`]; every error answer is in [`errors`].
//!
//! Documents are written with four-space indentation, as seed 003 prints its samples, so that
//! they compare byte for byte.

// Handlers exit early with `Err(Response)`; its size does not matter at HTTP speeds.
#![allow(clippy::result_large_err)]

mod errors;
mod services;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Provider;
use crate::book::{Book, Change, Ctx, Detail, Payout, Step, mask};
use crate::config::SimConfig;
use crate::decimal::{WireDecimal, parse_decimal};
use crate::signing::cascad_signature;
use crate::sim::{Sim, number, pretty, pretty_json};
use crate::triggers::{Trigger, delays};
use errors::{bad_request, conflict, fault_body, field_errors, forbidden, not_found, unauthorized};

const CASCAD: Provider = Provider::Cascad;

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/payout-prerequest", post(services::prerequest))
        .route("/payout-services", get(services::services))
        .route("/payout-services/{id}", get(services::service))
        .route("/payout-invoices", post(create).get(list))
        .route("/payout-invoices/{id}", get(show))
        .route("/payout-invoices/{id}/process", post(process))
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
// JSON:API pieces shared with the services

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
    /// What processing pays when it is not `amount` (trigger `…44`), decimal text.
    #[serde(default)]
    pub processed_amount: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub callback_url: Option<String>,
    pub customer_id: Option<String>,
    pub auto_process: bool,
    pub script: Vec<ScriptStep>,
}

/// An invoice as seed 003's private API shows it (create answer lines 362–422, process answer
/// 435–495, lookup 555–615, list items 640–697).
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
    metadata: Option<serde_json::Value>,
    created: i64,
    updated: i64,
    fields: &'a BTreeMap<String, String>,
    callback_url: Option<&'a str>,
    source: &'static str,
    /// Single documents carry it (empty); list items do not (seed 003 lines 672–673).
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_logs: Option<Vec<()>>,
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

/// The amount as a JSON number token (`10`, `10.25`), from exact decimal text.
fn amount_token(p: &Payout) -> Box<RawValue> {
    number(&parse_decimal(&p.amount).unwrap_or_default().normalize().to_string())
}

/// What a processed invoice paid: `amount`, unless the trigger paid it short.
fn processed_amount(p: &Payout, inv: &Invoice) -> Box<RawValue> {
    match &inv.processed_amount {
        Some(paid) => number(paid),
        None => amount_token(p),
    }
}

/// Trigger `…44`: 1 % below `amount`, rounded down to the cent.
fn paid_short(amount: Decimal) -> String {
    (amount * Decimal::new(99, 2))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero)
        .normalize()
        .to_string()
}

fn invoice_resource<'a>(p: &'a Payout, inv: &'a Invoice, in_list: bool) -> InvoiceResource<'a> {
    let n = || amount_token(p);
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
            processed_amount: processed.then(|| processed_amount(p, inv)),
            processed_fee: 0,
            processed_writeoff: processed.then(n),
            metadata: inv.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created: inv.created,
            updated: inv.updated,
            fields: &inv.fields,
            callback_url: inv.callback_url.as_deref(),
            source: "merchant_api",
            callback_logs: (!in_list).then(Vec::new),
        },
        relationships: InvoiceRelationships {
            payout_service: RelData::new("payout-services", inv.service.as_str()),
            payout_method: RelData::new("payout-methods", services::method_of(&inv.service)),
            customer: inv.customer_id.as_ref().map(|c| RelData::new("customers", c.as_str())),
        },
        links: SelfLink {
            this: format!("/api/payout-invoices/{}", p.id),
        },
    }
}

/// The public API's flat invoice (seed 003 lines 520–539).
#[derive(Serialize)]
struct PublicInvoice<'a> {
    id: &'a str,
    serial_number: &'a str,
    created: i64,
    status: &'a str,
    resolution: &'a str,
    test_mode: bool,
    currency: &'a str,
    amount: Box<RawValue>,
    payout_amount: Box<RawValue>,
    service: &'a str,
    service_amount: Box<RawValue>,
    service_payout_amount: Box<RawValue>,
    service_method: &'static str,
    service_currency: &'a str,
    processed: Option<i64>,
    processed_amount: Option<Box<RawValue>>,
}

fn public_invoice<'a>(p: &'a Payout, inv: &'a Invoice) -> PublicInvoice<'a> {
    let n = || amount_token(p);
    PublicInvoice {
        id: &p.id,
        serial_number: &inv.serial_number,
        created: inv.created,
        status: &inv.status,
        resolution: &inv.resolution,
        test_mode: inv.test_mode,
        currency: &inv.currency,
        amount: n(),
        payout_amount: n(),
        service: &inv.service,
        service_amount: n(),
        service_payout_amount: n(),
        service_method: services::method_of(&inv.service),
        service_currency: &inv.currency,
        processed: inv.processed,
        processed_amount: inv.processed.is_some().then(|| processed_amount(p, inv)),
    }
}

fn invoice_of(p: &Payout) -> Option<&Invoice> {
    match &p.detail {
        Detail::Cascad(inv) => Some(inv),
        Detail::D24 { .. } => None,
    }
}

/// The single JSON:API document of an invoice (create, process and lookup answers, callbacks).
fn invoice_doc(p: &Payout) -> Option<String> {
    let inv = invoice_of(p)?;
    pretty(&Single {
        data: invoice_resource(p, inv, false),
    })
}

/// The callback of a payout's current state: the JSON:API document and its `X-Signature`
/// (PROVIDERS.md, Cascad, "Callbacks": "JSON:API body shaped like the GET response").
pub(crate) fn callback(p: &Payout, config: &SimConfig) -> Option<(String, Vec<(String, String)>)> {
    let body = invoice_doc(p)?;
    let sig = cascad_signature(&config.cascad.secret, body.as_bytes());
    Some((body, vec![("X-Signature".to_owned(), sig)]))
}

/// `POST /payout-invoices` (seed 003 "Invoice Initiation", lines 286–361).
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

/// Required: `reference_id`, `service`, `currency`, `amount`, `fields`; the rest optional.
#[derive(Deserialize)]
struct CreateAttributes {
    reference_id: Option<String>,
    service: Option<String>,
    currency: Option<String>,
    amount: Option<WireDecimal>,
    fields: Option<BTreeMap<String, serde_json::Value>>,
    callback_url: Option<String>,
    description: Option<String>,
    customer: Option<Customer>,
    options: Option<Options>,
    metadata: Option<Box<RawValue>>,
    test_mode: Option<bool>,
}

/// "reference_id required attribute for the customer object in the request".
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

/// The characters of Cascad's ids (`cpoi_VdHYVxq4RsLEebAQ`, `cus_Tjhe1ufEB3kRrgWy`).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_token(rng: &mut rand::rngs::StdRng) -> String {
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The customer's id (`cus_…`) for the merchant's `customer.reference_id`: one customer, one id
/// (seed 003's list shows two invoices of one customer with the same `cus_Tjhe1ufEB3kRrgWy`).
/// Derived from the reference, so that nothing more needs storing.
fn customer_id(reference: &str) -> String {
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(reference.as_bytes());
    let token: String = digest
        .iter()
        .take(16)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("cus_{token}")
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

/// What happens once processing starts, from the account trigger and the test fields
/// (PROVIDERS.md: "service `test_usd` honours `test_details_payout_status`,
/// `test_details_payout_resolution`, `test_details_success_rate`").
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
        // The digest: `resolution` is `ok` on success, other values exist; a `processed`
        // invoice whose resolution is not `ok` must not be taken as paid.
        Trigger::UnclearOutcome => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_SETTLE), "processed", "error"),
        ],
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
        Trigger::Success | Trigger::Reversal | Trigger::DeclinedCreate | Trigger::PaidShort => vec![
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
    sim.faulted_create(CASCAD, fault_body, async move {
        do_create(&sim2, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

/// Reads the create document: 400 if it is not JSON ("invalid syntax"), 422 naming `data` if
/// it is JSON of the wrong shape.
fn read_create(body: &[u8]) -> Result<CreateDoc, Response> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => field_errors("data", &format!("This value is not valid: {e}.")),
        serde_json::error::Category::Io | serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            bad_request(&e.to_string())
        }
    })
}

fn do_create(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    authenticate(headers, &sim.config)?;
    let doc = read_create(body)?;
    let data = doc
        .data
        .ok_or_else(|| field_errors("data", "This value should not be blank."))?;
    if data.kind.as_deref() != Some("payout-invoice") {
        return Err(field_errors("data.type", "This value should be \"payout-invoice\"."));
    }
    let a = data
        .attributes
        .ok_or_else(|| field_errors("data.attributes", "This value should not be blank."))?;
    let test_mode = a.test_mode.unwrap_or(true);
    if !test_mode && sim.config.cascad.api_key.starts_with("sk_test_") {
        // A known client (401 would be wrong) without the right: a test key cannot pay live.
        return Err(forbidden(
            "A test API key cannot create a live payout (test_mode: false).",
        ));
    }
    let reference = match a.reference_id.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 255 => r.to_owned(),
        _ => {
            return Err(field_errors("reference_id", "This value should not be blank."));
        }
    };
    let service_code = a
        .service
        .ok_or_else(|| field_errors("service", "This value should not be blank."))?;
    let production = sim.faults().get(CASCAD).production_services;
    let service = services::by_code(&service_code, production)
        .ok_or_else(|| field_errors("service", "The service is not available for the account."))?;
    let currency = a
        .currency
        .ok_or_else(|| field_errors("currency", "This value should not be blank."))?;
    if currency != service.currency {
        return Err(field_errors("currency", "The currency does not match the service."));
    }
    let amount = match a.amount {
        None => return Err(field_errors("amount", "This value should not be blank.")),
        Some(v) => v.0,
    };
    if let Some(problem) = service.amount_problem(amount) {
        return Err(field_errors("amount", problem));
    }
    let raw_fields = a
        .fields
        .ok_or_else(|| field_errors("fields", "This value should not be blank."))?;
    let fields = services::check_fields(service, &raw_fields)?;
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
    let account = fields.get(service.account_field).cloned();
    let trigger = Trigger::of(account.as_deref());
    if trigger == Trigger::DeclinedCreate {
        return Err(field_errors(
            &format!("fields.{}", service.account_field),
            "The account was refused by the payment system (test trigger ...30).",
        ));
    }
    let auto_process = a.options.and_then(|o| o.auto_process).unwrap_or(false);
    let customer = a.customer.as_ref().and_then(|c| c.reference_id.clone());
    sim.with_book(|book: &mut Book, ctx| {
        let accept_dups = ctx.faults.get(CASCAD).accept_duplicate_references;
        if !accept_dups && let Some(&i) = book.by_reference(CASCAD, &reference).first() {
            let existing = &book.payouts[i];
            return Err(match invoice_of(existing) {
                Some(inv) => conflict(&existing.id, &reference, invoice_resource(existing, inv, false)),
                None => conflict(&existing.id, &reference, ()),
            });
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
        let account_keys = [service.account_field, "account", "card_number"];
        let masked: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| {
                let v = if account_keys.contains(&k.as_str()) {
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
            test_mode,
            description: a.description.clone(),
            metadata: a.metadata.as_ref().map(|m| m.get().to_owned()),
            created: now.unix_timestamp(),
            updated: now.unix_timestamp(),
            processed: None,
            processed_amount: (trigger == Trigger::PaidShort).then(|| paid_short(amount)),
            fields: masked,
            callback_url: a.callback_url.clone(),
            customer_id: customer.as_deref().map(customer_id),
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
        book.push_payout(payout);
        Ok(crate::sim::json_text(StatusCode::CREATED, doc))
    })
}

/// `POST /payout-invoices/{id}/process` (seed 003 lines 424–495): the answer is the invoice,
/// still `created` (processing starts after it).
async fn process(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
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
                return errors::errors(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("invalid_status"),
                    Some(&format!("The invoice is {} and cannot be processed.", inv.status)),
                );
            }
            let script = inv.script.clone();
            let plan = planned(&script, ctx.now, ctx);
            book.set_plan(i, plan);
            if let Detail::Cascad(inv) = &mut book.payouts[i].detail {
                // Processing was asked for: it cannot be asked again.
                inv.auto_process = true;
            }
            crate::sim::json_text(StatusCode::OK, invoice_doc(&book.payouts[i]).unwrap_or_default())
        })
    })
    .await
}

/// `GET /payout-invoices/{id}`: 404 when no invoice has the id (seed 003: "the transaction does
/// not exist (if the status request is valid)").
async fn show(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        let api = match reader(&headers, &q, &sim2.config) {
            Ok(api) => api,
            Err(r) => return r,
        };
        sim2.read_book(|book, _| {
            let Some(p) = book.find(CASCAD, &id).map(|i| &book.payouts[i]) else {
                return not_found();
            };
            let Some(inv) = invoice_of(p) else {
                return not_found();
            };
            match api {
                Api::Private => pretty_json(
                    StatusCode::OK,
                    &Single {
                        data: invoice_resource(p, inv, false),
                    },
                ),
                Api::Public => pretty_json(
                    StatusCode::OK,
                    &Single {
                        data: public_invoice(p, inv),
                    },
                ),
            }
        })
    })
    .await
}

/// Seed 003 lines 628–757.
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
/// cursors `page[after]` / `page[before]` (ids) and `page[size]`. The public API answers the
/// reference filter only, with flat invoices.
async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        let api = match reader(&headers, &q, &sim2.config) {
            Ok(api) => api,
            Err(r) => return r,
        };
        let size = services::page_param(&q, "page[size]", 20).min(100);
        let empty_is_404 = sim2.faults().get(CASCAD).not_found_on_empty_filter;
        sim2.read_book(|book, _| {
            let mut all: Vec<&Payout> = book.payouts.iter().filter(|p| p.provider == CASCAD).collect();
            all.reverse();
            let filter = q.get("filter[reference_id]");
            if let Some(r) = filter {
                all.retain(|p| &p.reference == r);
                if all.is_empty() && empty_is_404 {
                    return not_found();
                }
            }
            if api == Api::Public {
                let Some(_) = filter else {
                    return errors::forbidden("The public API lists invoices by filter[reference_id] only.");
                };
                let data: Vec<PublicInvoice<'_>> = all
                    .iter()
                    .filter_map(|p| invoice_of(p).map(|inv| public_invoice(p, inv)))
                    .collect();
                return pretty_json(StatusCode::OK, &Single { data });
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
            let link = |k: &str, id: &str| format!("/api/payout-invoices?page[{k}]={id}&page[size]={size}");
            let data: Vec<InvoiceResource<'_>> = page
                .iter()
                .filter_map(|p| invoice_of(p).map(|inv| invoice_resource(p, inv, true)))
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
            pretty_json(StatusCode::OK, &doc)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_customer_reference_is_one_customer_id() {
        assert_eq!(customer_id("1203515"), customer_id("1203515"));
        assert_ne!(customer_id("1203515"), customer_id("1203516"));
        assert_eq!(customer_id("1203515").len(), "cus_Tjhe1ufEB3kRrgWy".len());
    }

    #[test]
    fn test_statuses_read_spaces_and_dashes_as_underscores() {
        assert_eq!(status_word("process failed"), "process_failed");
        assert_eq!(status_word("Terminated"), "terminated");
        assert_eq!(status_word("cancel-failed"), "cancel_failed");
    }

    #[test]
    fn create_bodies_that_are_not_json_are_400_and_wrong_shapes_422() {
        assert_eq!(read_create(b"{nope").err().unwrap().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            read_create(br#"{"data": 5}"#).err().unwrap().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(read_create(br#"{"data": {"type": "payout-invoice"}}"#).is_ok());
    }
}
