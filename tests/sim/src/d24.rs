//! The D24 cashouts API v3, as D24, Onspot and Tupay serve it: create, status, hold/release,
//! cancel, and form-encoded notifications without a status. Wire types and rules are the
//! simulator's own reading of seed 001 (D24/Onspot status endpoint), seed 002 (Tupay) and the
//! digest (PROVIDERS.md, "D24 family"); the tables are in [`table`].
//!
//! JSON answers are written with four-space indentation, as seed 001 prints them, so that its
//! examples can be compared byte for byte.

// Handlers exit early with `Err(Response)`; its size does not matter at HTTP speeds.
#![allow(clippy::result_large_err)]

pub(crate) mod table;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use regex::Regex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Provider;
use crate::book::{Book, Change, Ctx, Detail, Payout, Step, mask};
use crate::config::SimConfig;
use crate::decimal::WireDecimal;
use crate::signing::{d24_payload_signature, verify_d24_payload_signature};
use crate::sim::{Sim, pretty_json};
use crate::triggers::{Trigger, delays};
use table::{D24State, ErrorCode, rejection_reason};

#[derive(Clone)]
struct Profile {
    sim: Arc<Sim>,
    name: Provider,
}

pub(crate) fn router(sim: Arc<Sim>, name: Provider) -> Router {
    Router::new()
        .route("/v3/cashout", post(create))
        .route("/v3/cashout/status", post(status).put(hold_or_release))
        .route("/v3/cashout/cancel", axum::routing::delete(cancel))
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
/// gateway's plain text for the other 5xx.
fn fault_body(status: StatusCode) -> Response {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        error(ErrorCode::Internal, "Internal server error")
    } else if status == StatusCode::BAD_REQUEST {
        let mut r = error(ErrorCode::InvalidParams, "Invalid params");
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    } else {
        (status, status.canonical_reason().unwrap_or("error")).into_response()
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

#[derive(Deserialize)]
struct ExternalIdOnly {
    external_id: Option<String>,
}

/// The create body (PROVIDERS.md, D24 family, "create" row). Free-text optional fields are
/// accepted as documented and not used.
#[derive(Deserialize)]
#[allow(dead_code)]
struct CreateRequest {
    login: Option<String>,
    pass: Option<String>,
    external_id: Option<String>,
    country: Option<String>,
    amount: Option<WireDecimal>,
    currency: Option<String>,
    document_id: Option<String>,
    document_type: Option<String>,
    beneficiary_name: Option<String>,
    beneficiary_lastname: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    bank_code: Option<String>,
    bank_account: Option<String>,
    bank_branch: Option<String>,
    account_type: Option<String>,
    address: Option<String>,
    city: Option<String>,
    postal_code: Option<String>,
    beneficiary_birthdate: Option<String>,
    comments: Option<String>,
    notification_url: Option<String>,
    on_hold: Option<bool>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("the built-in pattern {pattern} is invalid: {e}"))
}

static COUNTRY: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z]{2}$"));
static CURRENCY: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z]{3}$"));
static DOCUMENT: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9A-Za-z.\-]{1,30}$"));
static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9A-Za-z\-]{1,34}$"));
static CCI: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9]{1,20}$"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"));
static BIRTHDATE: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{4}-?\d{2}-?\d{2}$"));

/// The field rules of the create call: the digest's required fields and `external_id (≤100)`,
/// then Tupay's Peru rules. Formats the digest does not give (document, account, e-mail) are
/// the simulator's. Returns the first problem.
fn validate(r: &CreateRequest, p: Provider) -> Result<(), Response> {
    let required = |v: &Option<String>, f: &str| -> Result<(), Response> {
        match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(invalid(f, "is required")),
        }
    };
    required(&r.external_id, "external_id")?;
    if r.external_id.as_deref().is_some_and(|e| e.chars().count() > 100) {
        return Err(invalid("external_id", "is longer than 100 characters"));
    }
    required(&r.country, "country")?;
    if !r.country.as_deref().is_some_and(|c| COUNTRY.is_match(c)) {
        return Err(invalid("country", "must be an ISO 3166-1 alpha-2 code"));
    }
    match &r.amount {
        None => return Err(invalid("amount", "is required")),
        Some(a) if a.0 <= rust_decimal::Decimal::ZERO => {
            return Err(invalid("amount", "must be greater than 0"));
        }
        Some(_) => {}
    }
    if let Some(c) = &r.currency
        && !CURRENCY.is_match(c)
    {
        return Err(invalid("currency", "must be an ISO 4217 code"));
    }
    required(&r.document_id, "document_id")?;
    if !r.document_id.as_deref().is_some_and(|d| DOCUMENT.is_match(d)) {
        return Err(invalid("document_id", "is not a valid document"));
    }
    required(&r.beneficiary_name, "beneficiary_name")?;
    if r.beneficiary_name.as_deref().is_some_and(|n| n.chars().count() > 100) {
        return Err(invalid("beneficiary_name", "is too long"));
    }
    required(&r.notification_url, "notification_url")?;
    if !r
        .notification_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(invalid("notification_url", "is not a valid URL"));
    }
    if let Some(e) = &r.email
        && !EMAIL.is_match(e)
    {
        return Err(invalid("email", "is not a valid e-mail address"));
    }
    if let Some(a) = &r.bank_account
        && !ACCOUNT.is_match(a)
    {
        return Err(invalid("bank_account", "is not a valid account"));
    }
    if let Some(b) = &r.beneficiary_birthdate
        && !BIRTHDATE.is_match(b)
    {
        return Err(invalid("beneficiary_birthdate", "is not a date"));
    }
    if p == Provider::Tupay {
        validate_tupay(r)?;
    }
    Ok(())
}

/// Tupay (PROVIDERS.md: "Tupay (Peru) also requires currency (PEN/USD), document_type,
/// bank_account (CCI, digits, ≤20) and account_type (C or S); document lengths DNI 8, CE 9,
/// RUC 11, PASS 12").
///
/// `on_hold: true` is **refused** (300), not ignored: seed 002 has no ON_HOLD status at all
/// ("Cashout Statuses" 1–6; PENDING "can also be manually changed to CANCELLED" only), so the
/// hold cannot be honoured, and silently paying a cashout the merchant asked to hold would be
/// worse than saying no. `on_hold: false` asks for nothing and is accepted.
fn validate_tupay(r: &CreateRequest) -> Result<(), Response> {
    if !matches!(r.currency.as_deref(), Some("PEN" | "USD")) {
        return Err(invalid("currency", "is required: PEN or USD"));
    }
    let len = match r.document_type.as_deref() {
        Some("DNI") => 8,
        Some("CE") => 9,
        Some("RUC") => 11,
        Some("PASS") => 12,
        _ => {
            return Err(invalid("document_type", "is required: DNI, CE, RUC or PASS"));
        }
    };
    if r.document_id.as_deref().map(|d| d.chars().count()) != Some(len) {
        return Err(invalid("document_id", "has the wrong length for its document_type"));
    }
    if !r.bank_account.as_deref().is_some_and(|a| CCI.is_match(a)) {
        return Err(invalid("bank_account", "is required: a CCI of at most 20 digits"));
    }
    if !matches!(r.account_type.as_deref(), Some("C" | "S")) {
        return Err(invalid("account_type", "is required: C or S"));
    }
    if r.on_hold == Some(true) {
        return Err(invalid("on_hold", "is not available: Tupay has no ON_HOLD"));
    }
    Ok(())
}

/// Country and currency the profile pays (518, 526), from [`table::currencies`].
fn check_coverage(r: &CreateRequest, p: Provider) -> Result<(), Response> {
    let local = table::currencies(p, r.country.as_deref().unwrap_or_default());
    if local.is_empty() {
        return Err(error(ErrorCode::CountryNotAvailable, "Country not available"));
    }
    if let Some(cur) = &r.currency
        && !local.contains(&cur.as_str())
    {
        return Err(error(ErrorCode::InvalidCurrency, "Invalid currency"));
    }
    Ok(())
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

async fn create(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let reference = serde_json::from_slice::<ExternalIdOnly>(&body)
        .ok()
        .and_then(|r| r.external_id);
    p.sim.count_attempt(p.name, reference.as_deref());
    let sim = p.sim.clone();
    sim.faulted_create(p.name, fault_body, async move {
        do_create(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

fn do_create(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: CreateRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    validate(&req, p.name)?;
    check_coverage(&req, p.name)?;
    let trigger = Trigger::of(req.bank_account.as_deref());
    if trigger == Trigger::DeclinedCreate {
        return Err(invalid(
            "bank_account",
            "was refused by the beneficiary bank (test trigger ...30)",
        ));
    }
    let external_id = req.external_id.clone().unwrap_or_default();
    // Seed 001 item 3: "created with ON_HOLD status only if specified while creating the
    // cashout with on_hold: true"; the …55 trigger stands for a hold set from the Merchant
    // Panel at once. Tupay refused `on_hold: true` above and has no hold trigger.
    let hold = D24State::OnHold.exists_on(p.name) && (req.on_hold == Some(true) || trigger == Trigger::OnHold);
    let first_id = config.d24_first_cashout_id;
    let id = p.sim.with_book(|book, ctx| {
        let accept_dups = ctx.faults.get(p.name).accept_duplicate_references;
        if !accept_dups && !book.by_reference(p.name, &external_id).is_empty() {
            return Err(error(ErrorCode::ExternalIdUsed, "External ID already used"));
        }
        let id = book.next_d24_id(first_id);
        let status = if hold { D24State::OnHold } else { D24State::Pending };
        let plan = if hold { Vec::new() } else { plan(trigger, ctx.now, ctx) };
        book.push_payout(Payout {
            provider: p.name,
            id: id.clone(),
            reference: external_id.clone(),
            amount: req.amount.map(|a| a.0.to_string()).unwrap_or_default(),
            currency: req.currency.clone(),
            account_masked: req.bank_account.as_deref().map(mask),
            created_at: ctx.now,
            updated_at: ctx.now,
            detail: Detail::D24 {
                status,
                rejection_code: None,
                notification_url: req.notification_url.clone().unwrap_or_default(),
            },
            plan,
            history: Vec::new(),
        });
        Ok(id)
    })?;
    tracing::info!(provider = %p.name, cashout_id = %id, external_id, "cashout created");
    /// PROVIDERS.md, "create" row: `200 {"cashout_id": "8405147"}` (a string here).
    #[derive(Serialize)]
    struct Created {
        cashout_id: String,
    }
    Ok(pretty_json(StatusCode::OK, &Created { cashout_id: id }))
}

/// The body of the status, hold/release and cancel calls (seed 001 "Request Body"; the digest's
/// hold/release and cancel rows).
#[derive(Debug, Deserialize)]
struct StatusRequest {
    login: Option<String>,
    pass: Option<String>,
    /// Seed 001: `cashout_id` is a "Number".
    cashout_id: Option<serde_json::Value>,
    /// Seed 001: `external_id` is a "String".
    external_id: Option<String>,
    /// Only for `PUT` (hold/release): `PENDING` or `ON_HOLD`.
    status: Option<String>,
}

/// The `cashout_id` of a request: a JSON number, as seed 001 documents it (`"cashout_id":
/// 11954`). A string, even of digits, is a wrong type: 300.
fn cashout_id(v: &Option<serde_json::Value>) -> Result<Option<String>, Response> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(invalid("cashout_id", "must be a number")),
    }
}

fn not_found() -> Response {
    error(ErrorCode::NotFound, "Cashout not found")
}

/// The payout a request names: by `cashout_id` (checked against `external_id` when both are
/// given) or by `external_id` (the latest, should a faulty client have made several). Seed
/// 001: "You can opt to send this field or cashout_id".
fn locate(book: &Book, p: Provider, cashout_id: Option<&str>, external_id: Option<&str>) -> Result<usize, Response> {
    match (cashout_id, external_id) {
        (Some(id), ext) => {
            let i = book.find(p, id).ok_or_else(not_found)?;
            match ext {
                Some(e) if book.payouts[i].reference != e => Err(not_found()),
                _ => Ok(i),
            }
        }
        (None, Some(ext)) => book.by_reference(p, ext).last().copied().ok_or_else(not_found),
        (None, None) => Err(invalid("cashout_id", "or external_id is required")),
    }
}

/// Seed 001 "Cashout Status Response": `cashout_status` and `cashout_status_description`;
/// `rejection_code` and `rejection_reason` only on a rejection (lines 120–130).
#[derive(Serialize)]
struct StatusBody {
    cashout_status: u8,
    cashout_status_description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_reason: Option<&'static str>,
}

fn status_body(payout: &Payout) -> Response {
    let (status, code) = match &payout.detail {
        Detail::D24 {
            status, rejection_code, ..
        } => (*status, *rejection_code),
        Detail::Cascad(_) => (D24State::Pending, None),
    };
    let rejected = status == D24State::Rejected;
    pretty_json(
        StatusCode::OK,
        &StatusBody {
            cashout_status: status.code(),
            cashout_status_description: status.description(),
            rejection_code: code.filter(|_| rejected),
            rejection_reason: code.filter(|_| rejected).and_then(rejection_reason),
        },
    )
}

async fn status(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_status(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

fn do_status(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    let cashout_id = cashout_id(&req.cashout_id)?;
    p.sim.read_book(|book, _| {
        let i = locate(book, p.name, cashout_id.as_deref(), req.external_id.as_deref())?;
        Ok(status_body(&book.payouts[i]))
    })
}

async fn hold_or_release(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_hold_or_release(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

/// `PUT /v3/cashout/status` (PROVIDERS.md, "hold / release": "only PENDING → ON_HOLD,
/// ON_HOLD → PENDING"); 510 for any other transition. Tupay has no ON_HOLD (seed 002): 300.
fn do_hold_or_release(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    if !D24State::OnHold.exists_on(p.name) {
        return Err(invalid("status", "ON_HOLD is not available"));
    }
    let target = match req.status.as_deref() {
        Some("ON_HOLD") => D24State::OnHold,
        Some("PENDING") => D24State::Pending,
        _ => return Err(invalid("status", "must be PENDING or ON_HOLD")),
    };
    let cashout_id = cashout_id(&req.cashout_id)?.ok_or_else(|| invalid("cashout_id", "is required"))?;
    p.sim.with_book(|book, ctx| {
        let i = locate(book, p.name, Some(&cashout_id), None)?;
        let current = match &book.payouts[i].detail {
            Detail::D24 { status, .. } => *status,
            Detail::Cascad(_) => return Err(not_found()),
        };
        let allowed = matches!(
            (current, target),
            (D24State::Pending, D24State::OnHold) | (D24State::OnHold, D24State::Pending)
        );
        if !allowed {
            return Err(error(
                ErrorCode::InvalidTransition,
                format!("Invalid status transition: {} to {}", current.name(), target.name()),
            ));
        }
        let now = ctx.now;
        book.set_plan(i, Vec::new());
        book.apply(
            i,
            Change::D24 {
                status: target,
                rejection_code: None,
            },
            now,
            ctx,
        );
        if target == D24State::Pending {
            let trigger = Trigger::of(book.payouts[i].account_masked.as_deref());
            let steps = plan(trigger, now, ctx);
            book.set_plan(i, steps);
        }
        Ok(status_body(&book.payouts[i]))
    })
}

async fn cancel(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_cancel(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

/// `DELETE /v3/cashout/cancel` with `cashout_id` **and** `external_id` (PROVIDERS.md, "cancel").
fn do_cancel(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    let cashout_id = cashout_id(&req.cashout_id)?.ok_or_else(|| invalid("cashout_id", "is required"))?;
    let external_id = req
        .external_id
        .clone()
        .ok_or_else(|| invalid("external_id", "is required"))?;
    p.sim.with_book(|book, ctx| {
        let i = locate(book, p.name, Some(&cashout_id), Some(&external_id))?;
        let current = match &book.payouts[i].detail {
            Detail::D24 { status, .. } => *status,
            Detail::Cascad(_) => return Err(not_found()),
        };
        // The digest: cancel "only while PENDING"; seed 001 item 3 lets an ON_HOLD cashout be
        // cancelled too ("It can still be CANCELLED"); item 5: once DELIVERED "it can't be
        // cancelled anymore".
        if !matches!(current, D24State::Pending | D24State::OnHold) {
            return Err(error(
                ErrorCode::CouldNotCancel,
                format!("Could not cancel the cashout: it is {}", current.name()),
            ));
        }
        let now = ctx.now;
        book.set_plan(i, Vec::new());
        book.apply(
            i,
            Change::D24 {
                status: D24State::Cancelled,
                rejection_code: None,
            },
            now,
            ctx,
        );
        Ok(status_body(&book.payouts[i]))
    })
}

/// The form D24 posts to `notification_url` (PROVIDERS.md, "Notifications"): `date`
/// (`YYYY-MM-DD HH:MM:SS`, GMT), `bank_reference_id`, `comments`, `external_id`, `control`,
/// `cashout_id`, `status_reason`, and no status on purpose. `control` is uppercase hex
/// HMAC-SHA256 with the API Signature secret; D24 does not document its message, so the
/// simulator signs `date ‖ cashout_id ‖ external_id` (receivers must not rely on it).
pub(crate) fn notification(
    payout: &Payout,
    at: OffsetDateTime,
    config: &SimConfig,
) -> Option<(String, Vec<(String, String)>)> {
    let Detail::D24 {
        status, rejection_code, ..
    } = &payout.detail
    else {
        return None;
    };
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let secret = &config.d24_credentials(payout.provider).secret;
    let control =
        d24_payload_signature(secret, format!("{date}{}{}", payout.id, payout.reference).as_bytes()).to_uppercase();
    let bank_reference = match status {
        D24State::Delivered | D24State::Completed | D24State::Rejected => {
            format!("BR{}", payout.id)
        }
        D24State::Pending | D24State::OnHold | D24State::Cancelled => String::new(),
    };
    let reason = rejection_code
        .and_then(rejection_reason)
        .map(str::to_owned)
        .unwrap_or_default();
    let fields = [
        ("date", date),
        ("bank_reference_id", bank_reference),
        ("comments", String::new()),
        ("external_id", payout.reference.clone()),
        ("control", control),
        ("cashout_id", payout.id.clone()),
        ("status_reason", reason),
    ];
    serde_urlencoded::to_string(fields).ok().map(|body| (body, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_told_apart_from_wrong_types() {
        let bad = parse::<StatusRequest>(b"{not json").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let wrong = parse::<StatusRequest>(br#"{"login": 5}"#).unwrap_err();
        assert_eq!(wrong.status(), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn cashout_ids_are_numbers_as_seed_001_documents() {
        assert_eq!(
            cashout_id(&Some(serde_json::json!(11954))).unwrap().as_deref(),
            Some("11954")
        );
        assert_eq!(cashout_id(&None).unwrap(), None);
        assert!(cashout_id(&Some(serde_json::json!("11954"))).is_err());
        assert!(cashout_id(&Some(serde_json::json!(-1))).is_err());
    }
}
