//! A payout invoice: what the simulator keeps of it, and how each API shows it (the private
//! API's JSON:API resource, the public API's flat invoice, the callback).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::lifecycle::ScriptStep;
use super::{RelData, SelfLink, Single, services};
use crate::book::{Detail, Payout};
use crate::config::SimConfig;
use crate::decimal::parse_decimal;
use crate::signing::cascad_signature;
use crate::sim::{number, pretty};

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
pub(super) struct InvoiceResource<'a> {
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
pub(super) fn paid_short(amount: Decimal) -> String {
    (amount * Decimal::new(99, 2))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero)
        .normalize()
        .to_string()
}

pub(super) fn invoice_resource<'a>(p: &'a Payout, inv: &'a Invoice, in_list: bool) -> InvoiceResource<'a> {
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
pub(super) struct PublicInvoice<'a> {
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

pub(super) fn public_invoice<'a>(p: &'a Payout, inv: &'a Invoice) -> PublicInvoice<'a> {
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

pub(super) fn invoice_of(p: &Payout) -> Option<&Invoice> {
    match &p.detail {
        Detail::Cascad(inv) => Some(inv),
        Detail::D24 { .. } => None,
    }
}

/// The single JSON:API document of an invoice (create, process and lookup answers, callbacks).
pub(super) fn invoice_doc(p: &Payout) -> Option<String> {
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
