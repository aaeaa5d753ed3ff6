//! `POST /v3/cashout`: the create call, its field rules (the digest's, then Tupay's) and the
//! countries and currencies each profile pays; a used `external_id` is 511.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::table::{self, D24State, ErrorCode};
use super::{Profile, Reply, check_credentials, check_request, error, fault_body, invalid, parse, plan};
use crate::Provider;
use crate::book::{Detail, Payout, mask};
use crate::decimal::WireDecimal;
use crate::sim::pretty_json;
use crate::triggers::Trigger;

#[derive(Deserialize)]
struct ExternalIdOnly {
    external_id: Option<String>,
}

/// The create body (PROVIDERS.md, D24 family, "create" row). Free-text optional fields are
/// accepted as documented and not used: they are declared (hence the `allow`) so that a value of
/// the wrong type is still refused with 300.
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

pub(super) async fn create(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
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
            lost: false,
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
