//! `POST /payout-invoices` (create, 201 only) and `POST /payout-invoices/{id}/process`. A create
//! is read, checked field by field against the service in the order the answers name them
//! (first fault wins), then booked: a used `reference_id` is 409, otherwise the invoice is made
//! with its script, and planned at once with `auto_process`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rand::Rng;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::errors::{self, bad_request, conflict, fault_body, field_errors, forbidden, not_found};
use super::invoice::{Invoice, invoice_doc, invoice_of, invoice_resource, paid_short};
use super::lifecycle::{expiry, planned, script};
use super::services::{self, Service};
use super::{CASCAD, authenticate};
use crate::book::{Book, Ctx, Detail, Payout, mask};
use crate::decimal::WireDecimal;
use crate::sim::Sim;
use crate::triggers::Trigger;

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

pub(super) async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
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

fn do_create(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    authenticate(headers, &sim.config)?;
    let attributes = read_attributes(body)?;
    let test_key = sim.config.cascad.api_key.starts_with("sk_test_");
    let production = sim.faults().get(CASCAD).production_services;
    let accepted = check(attributes, test_key, production)?;
    sim.with_book(|book, ctx| book_invoice(book, ctx, accepted))
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

/// The attributes of a `payout-invoice` document (422 naming `data`, `data.type` or
/// `data.attributes` when the document has none).
fn read_attributes(body: &[u8]) -> Result<CreateAttributes, Response> {
    let doc = read_create(body)?;
    let data = doc
        .data
        .ok_or_else(|| field_errors("data", "This value should not be blank."))?;
    if data.kind.as_deref() != Some("payout-invoice") {
        return Err(field_errors("data.type", "This value should be \"payout-invoice\"."));
    }
    data.attributes
        .ok_or_else(|| field_errors("data.attributes", "This value should not be blank."))
}

/// A create that passed every check, ready to be booked.
struct Accepted {
    reference: String,
    service: &'static Service,
    currency: String,
    amount: Decimal,
    /// The service's fields that were given, as text (not masked yet).
    fields: BTreeMap<String, String>,
    /// The value of the service's account field: it chooses the trigger.
    account: Option<String>,
    trigger: Trigger,
    test_mode: bool,
    auto_process: bool,
    description: Option<String>,
    metadata: Option<Box<RawValue>>,
    callback_url: Option<String>,
    customer: Option<String>,
}

/// Checks the attributes in the order seed 003's answers name them; the first fault is the
/// answer (403 for a live payout with a test key, 422 naming the field otherwise).
fn check(a: CreateAttributes, test_key: bool, production_services: bool) -> Result<Accepted, Response> {
    let test_mode = a.test_mode.unwrap_or(true);
    if !test_mode && test_key {
        // A known client (401 would be wrong) without the right: a test key cannot pay live.
        return Err(forbidden(
            "A test API key cannot create a live payout (test_mode: false).",
        ));
    }
    let reference = check_reference(a.reference_id.as_deref())?;
    let (service, currency, amount) = check_payment(a.service, a.currency, a.amount, production_services)?;
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
    Ok(Accepted {
        reference,
        service,
        currency,
        amount,
        fields,
        account,
        trigger,
        test_mode,
        auto_process: a.options.and_then(|o| o.auto_process).unwrap_or(false),
        description: a.description,
        metadata: a.metadata,
        callback_url: a.callback_url,
        customer: a.customer.and_then(|c| c.reference_id),
    })
}

/// `reference_id`: not blank once trimmed, at most 255 bytes.
fn check_reference(given: Option<&str>) -> Result<String, Response> {
    match given.map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 255 => Ok(r.to_owned()),
        _ => Err(field_errors("reference_id", "This value should not be blank.")),
    }
}

/// The service (offered under the current switches), the currency it pays and an amount
/// within its limits.
fn check_payment(
    service: Option<String>,
    currency: Option<String>,
    amount: Option<WireDecimal>,
    production_services: bool,
) -> Result<(&'static Service, String, Decimal), Response> {
    let service_code = service.ok_or_else(|| field_errors("service", "This value should not be blank."))?;
    let service = services::by_code(&service_code, production_services)
        .ok_or_else(|| field_errors("service", "The service is not available for the account."))?;
    let currency = currency.ok_or_else(|| field_errors("currency", "This value should not be blank."))?;
    if currency != service.currency {
        return Err(field_errors("currency", "The currency does not match the service."));
    }
    let amount = match amount {
        None => return Err(field_errors("amount", "This value should not be blank.")),
        Some(v) => v.0,
    };
    if let Some(problem) = service.amount_problem(amount) {
        return Err(field_errors("amount", problem));
    }
    Ok((service, currency, amount))
}

/// Books an accepted create: 409 naming the invoice that already has the reference (unless
/// `accept_duplicate_references`), otherwise a new invoice with its plan, answered 201.
fn book_invoice(book: &mut Book, ctx: &mut Ctx<'_>, c: Accepted) -> Result<Response, Response> {
    let accept_dups = ctx.faults.get(CASCAD).accept_duplicate_references;
    if !accept_dups && let Some(&i) = book.by_reference(CASCAD, &c.reference).first() {
        let existing = &book.payouts[i];
        return Err(match invoice_of(existing) {
            Some(inv) => conflict(&existing.id, &c.reference, invoice_resource(existing, inv, false)),
            None => conflict(&existing.id, &c.reference, ()),
        });
    }
    let token = loop {
        let t = random_token(ctx.rng);
        if book.find(CASCAD, &format!("cpoi_{t}")).is_none() {
            break t;
        }
    };
    let script = script(c.trigger, &c.fields, ctx);
    let now = ctx.now;
    let plan = if c.auto_process {
        planned(&script, now, ctx)
    } else {
        expiry(now, ctx)
    };
    let invoice = Invoice {
        serial_number: token.clone(),
        status: "created".into(),
        resolution: "ok".into(),
        amount: c.amount.to_string(),
        currency: c.currency.clone(),
        service: c.service.code.to_owned(),
        test_mode: c.test_mode,
        description: c.description,
        metadata: c.metadata.as_ref().map(|m| m.get().to_owned()),
        created: now.unix_timestamp(),
        updated: now.unix_timestamp(),
        processed: None,
        processed_amount: (c.trigger == Trigger::PaidShort).then(|| paid_short(c.amount)),
        fields: masked(&c.fields, c.service.account_field),
        callback_url: c.callback_url,
        customer_id: c.customer.as_deref().map(customer_id),
        auto_process: c.auto_process,
        script,
    };
    let payout = Payout {
        provider: CASCAD,
        id: format!("cpoi_{token}"),
        reference: c.reference,
        amount: c.amount.to_string(),
        currency: Some(c.currency),
        account_masked: c.account.as_deref().map(mask),
        created_at: now,
        updated_at: now,
        detail: Detail::Cascad(Box::new(invoice)),
        plan,
        history: Vec::new(),
        lost: false,
    };
    let doc = invoice_doc(&payout).unwrap_or_default();
    tracing::info!(provider = %CASCAD, id = %payout.id, reference = payout.reference.as_str(), "payout invoice created");
    book.push_payout(payout);
    Ok(crate::sim::json_text(StatusCode::CREATED, doc))
}

/// What an invoice made behind the client's back (`POST /_sim/payouts/cascad`) is made of.
pub(crate) struct ForeignInvoice {
    pub reference: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub resolution: String,
}

/// An invoice nobody asked this API for, as if someone else had made it on the account: no
/// fields, no callback URL, no lifecycle (it stays in its status until changed through the control
/// endpoint), processed with the success script should someone ask for processing while it is
/// `created`. Not booked: the caller pushes it.
pub(crate) fn foreign_invoice(book: &Book, ctx: &mut Ctx<'_>, f: ForeignInvoice) -> Payout {
    let token = loop {
        let t = random_token(ctx.rng);
        if book.find(CASCAD, &format!("cpoi_{t}")).is_none() {
            break t;
        }
    };
    let fields = BTreeMap::new();
    let script = script(Trigger::Success, &fields, ctx);
    let now = ctx.now;
    let test_mode = ctx.config.cascad.api_key.starts_with("sk_test_");
    let invoice = Invoice {
        serial_number: token.clone(),
        processed: (f.status == "processed").then(|| now.unix_timestamp()),
        status: f.status,
        resolution: f.resolution,
        amount: f.amount.to_string(),
        currency: f.currency.clone(),
        service: services::code_for_currency(&f.currency).to_owned(),
        test_mode,
        description: None,
        metadata: None,
        created: now.unix_timestamp(),
        updated: now.unix_timestamp(),
        processed_amount: None,
        fields,
        callback_url: None,
        customer_id: None,
        auto_process: false,
        script,
    };
    Payout {
        provider: CASCAD,
        id: format!("cpoi_{token}"),
        reference: f.reference,
        amount: f.amount.to_string(),
        currency: Some(f.currency),
        account_masked: None,
        created_at: now,
        updated_at: now,
        detail: Detail::Cascad(Box::new(invoice)),
        plan: Vec::new(),
        history: Vec::new(),
        lost: false,
    }
}

/// The fields as the invoice keeps them: the account (the service's account field, `account`,
/// `card_number`) masked.
fn masked(fields: &BTreeMap<String, String>, account_field: &str) -> BTreeMap<String, String> {
    let account_keys = [account_field, "account", "card_number"];
    fields
        .iter()
        .map(|(k, v)| {
            let v = if account_keys.contains(&k.as_str()) {
                mask(v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// `POST /payout-invoices/{id}/process` (seed 003 lines 424–495): the answer is the invoice,
/// still `created` (processing starts after it).
pub(super) async fn process(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
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
    fn create_bodies_that_are_not_json_are_400_and_wrong_shapes_422() {
        assert_eq!(read_create(b"{nope").err().unwrap().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            read_create(br#"{"data": 5}"#).err().unwrap().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(read_create(br#"{"data": {"type": "payout-invoice"}}"#).is_ok());
    }
}
