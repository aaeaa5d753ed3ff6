//! Cascad wire types (JSON:API): payout invoices, services, the pre-request, error bodies and
//! callbacks. Amounts are read exactly ([`DecimalInput`]) and written as JSON number tokens from
//! the decimal text. Nothing here leaves the `cascad` module.

// Wire types mirror the documented shapes; not every field is read by the adapter.

use std::borrow::Cow;
use std::collections::BTreeMap;

use cashout_core::money::DecimalInput;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST /payout-invoices`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateInvoiceDoc<'a> {
    pub data: CreateInvoiceData<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateInvoiceData<'a> {
    /// Always `payout-invoice`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: CreateInvoiceAttributes<'a>,
}

/// The attributes in seed 003's order (lines 331–358); what is not configured or given is
/// left out.
#[derive(Debug, Serialize)]
pub(crate) struct CreateInvoiceAttributes<'a> {
    pub service: &'a str,
    pub currency: &'a str,
    /// "Float format": a JSON number written from the exact decimal text.
    pub amount: Box<RawValue>,
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_mode: Option<bool>,
    /// The service's fields, read from the beneficiary (full card and account numbers).
    pub fields: BTreeMap<&'a str, Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<InvoiceOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<InvoiceCustomer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Seed 003 lines 341–346, each only when configured.
#[derive(Debug, Serialize)]
pub(crate) struct InvoiceOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_partially: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_process: Option<bool>,
}

/// Seed 003 lines 309–322 (`customer`: `reference_id` required, then the client's data), in
/// the order of its example (lines 347–355).
#[derive(Debug, Serialize)]
pub(crate) struct InvoiceCustomer<'a> {
    pub reference_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub individual_tax_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<CustomerAddress<'a>>,
}

/// Seed 003 lines 317–322.
#[derive(Debug, Serialize)]
pub(crate) struct CustomerAddress<'a> {
    pub country: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_code: Option<&'a str>,
}

/// One invoice: the answer to create, process, get, and a callback's body.
#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceDoc {
    pub data: InvoiceResource,
}

/// A 409 on create: seed 003 says to "process the response body with the previously created
/// transaction". The seed shows no such body; when it carries the invoice (`meta.invoice`, or
/// `data`), it is read from there, otherwise the invoice is looked up by reference.
#[derive(Debug, Deserialize)]
pub(crate) struct ConflictDoc {
    #[serde(default)]
    pub meta: Option<ConflictMeta>,
    #[serde(default)]
    pub data: Option<InvoiceResource>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConflictMeta {
    #[serde(default)]
    pub invoice: Option<InvoiceResource>,
}

impl ConflictDoc {
    /// The existing invoice the body names, if it carries one whole.
    pub fn invoice(self) -> Option<InvoiceResource> {
        self.data.or_else(|| self.meta.and_then(|m| m.invoice))
    }
}

/// A list: `filter[reference_id]` answers and the cursor list.
#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceListDoc {
    #[serde(default)]
    pub meta: Option<ListMeta>,
    #[serde(default)]
    pub links: Option<ListLinks>,
    pub data: Vec<InvoiceResource>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListMeta {
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListLinks {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceResource {
    pub id: String,
    pub attributes: InvoiceAttributes,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceAttributes {
    pub status: String,
    #[serde(default)]
    pub resolution: Option<String>,
    /// What the invoice asks to pay (seed 003: `amount`, a JSON number), read exactly.
    #[serde(default)]
    pub amount: Option<DecimalInput>,
    /// The invoice's currency (`currency`).
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub reference_id: Option<String>,
    #[serde(default)]
    pub processed: Option<i64>,
    #[serde(default)]
    pub processed_amount: Option<DecimalInput>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub updated: Option<i64>,
}

/// `GET /payout-services`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceListDoc {
    #[serde(default)]
    pub meta: Option<ServiceListMeta>,
    pub data: Vec<ServiceResource>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServiceListMeta {
    #[serde(default)]
    pub pages: Option<u64>,
}

/// `GET /payout-services/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceDoc {
    pub data: ServiceResource,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServiceResource {
    pub id: String,
    pub attributes: ServiceAttributes,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServiceAttributes {
    pub service: String,
    #[serde(default)]
    pub service_method: Option<String>,
    #[serde(default)]
    pub service_currency: Option<String>,
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub amount_min: Option<DecimalInput>,
    #[serde(default)]
    pub amount_max: Option<DecimalInput>,
}

/// `POST /payout-prerequest` (public API).
#[derive(Debug, Serialize)]
pub(crate) struct PrerequestBody<'a> {
    pub currency: &'a str,
    pub amount: Box<RawValue>,
    pub public_key: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PrerequestDoc {
    pub data: PrerequestData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PrerequestData {
    /// Services by code. The documented sample also puts `methods` and `account` objects in
    /// this map: entries that are not services are skipped by the caller.
    pub services: BTreeMap<String, Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PrerequestService {
    pub code: String,
    #[serde(default)]
    pub method: Option<String>,
    pub fields: Vec<PrerequestField>,
    #[serde(default)]
    pub amount_min: Option<DecimalInput>,
    #[serde(default)]
    pub amount_max: Option<DecimalInput>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PrerequestField {
    pub key: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub regexp: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// `{"errors": [{"status", "code", "title", "detail"}]}` or `{"errors": {"field": "message"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDoc {
    pub errors: Errors,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Errors {
    List(Vec<ErrorItem>),
    Fields(BTreeMap<String, serde_json::Value>),
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorItem {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl ErrorDoc {
    /// One line for people: `title: detail` items or `field: message` pairs.
    pub(crate) fn summary(&self) -> String {
        match &self.errors {
            Errors::List(items) => items
                .iter()
                .map(|i| {
                    [&i.code, &i.status, &i.title, &i.detail]
                        .iter()
                        .filter_map(|v| v.as_deref())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("; "),
            Errors::Fields(map) => map
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}
