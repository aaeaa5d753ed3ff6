//! The payout services of the simulated Cascad account, the fields each requires, and the two
//! ways to read them: the public pre-request (`POST /payout-prerequest`, seed 003 lines 5–140)
//! and the private service list and service by id (`GET /payout-services[/{id}]`, lines
//! 142–284).
//!
//! The account has the `test_*` services and the production-shaped services seed 003 shows:
//! `card` (its create example), `swift_jpy` and `bank_transfer_zar` (its service list). With the
//! `production_services` switch off, it has the `test_*` services only, as seed 003's pre-request
//! sample shows the account (lines 31–114).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::errors::{bad_request, fault_body, field_errors, not_found, unauthorized};
use super::{CASCAD, authenticate};
use crate::decimal::{WireDecimal, parse_decimal};
use crate::sim::{Sim, number, pretty_json};

/// A text in the three languages of seed 003's samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Label {
    ru: &'static str,
    en: &'static str,
    uk: &'static str,
}

/// A method's name: seed 003 lists it `en`, `ru`, `uk` (lines 120–124), unlike field labels.
#[derive(Debug, Clone, Copy, Serialize)]
struct Name {
    en: &'static str,
    ru: &'static str,
    uk: &'static str,
}

/// A field a service requires in `fields` (seed 003 lines 37–108: `key`, `type`, `label`,
/// `example`, `hint`, `regexp`, `required`, `position`).
#[derive(Debug)]
pub(crate) struct Field {
    pub key: &'static str,
    label: Label,
    /// As served and as checked.
    pub regexp: &'static str,
    pub required: bool,
    position: u32,
}

/// A payout method (seed 003 lines 116–130).
#[derive(Debug)]
struct Method {
    code: &'static str,
    category: &'static str,
    name: Name,
}

/// A payout service of the account.
#[derive(Debug)]
pub(crate) struct Service {
    /// The account service id (`comcpos_…`), the `{id}` of `GET /payout-services/{id}`.
    pub id: &'static str,
    /// The service code a create names (`service`).
    pub code: &'static str,
    method: &'static Method,
    /// The currency paid out (`service_currency`); a create's `currency` must be it.
    pub currency: &'static str,
    /// The service list's `currency` attribute (seed 003 shows `swift_jpy` with `GBP`): the
    /// account side's currency. Served, not used.
    account_currency: &'static str,
    /// Decimal text, in `currency`.
    amount_min: &'static str,
    amount_max: &'static str,
    /// Decimals an amount may have in `currency`.
    decimals: u32,
    active: bool,
    pub fields: &'static [Field],
    /// The field whose last two digits choose the test trigger.
    pub account_field: &'static str,
    /// Offered only with the `production_services` switch.
    production: bool,
}

impl Service {
    pub(crate) fn method(&self) -> &'static str {
        self.method.code
    }

    fn amount_min(&self) -> Decimal {
        parse_decimal(self.amount_min).unwrap_or_default()
    }

    fn amount_max(&self) -> Decimal {
        parse_decimal(self.amount_max).unwrap_or_default()
    }

    /// Whether the account has the service under the current switches.
    pub(crate) fn offered(&self, production_services: bool) -> bool {
        !self.production || production_services
    }

    /// Why `amount` cannot be paid by the service, if it cannot.
    pub(crate) fn amount_problem(&self, amount: Decimal) -> Option<&'static str> {
        if amount <= Decimal::ZERO {
            Some("This value should be greater than 0.")
        } else if amount < self.amount_min() || amount > self.amount_max() {
            Some("The amount is out of the service limits.")
        } else if amount.normalize().scale() > self.decimals {
            Some("This value has too many decimals.")
        } else {
            None
        }
    }
}

/// Seed 003 lines 116–130.
static TEST_METHOD: Method = Method {
    code: "test",
    category: "alternative",
    name: Name {
        en: "Test",
        ru: "Test",
        uk: "Test",
    },
};
/// Seed 003's create answer: `payout-method` `payment_card` for the `card` service. Category and
/// names are not shown: the simulator's.
static CARD_METHOD: Method = Method {
    code: "payment_card",
    category: "bank_card",
    name: Name {
        en: "Payment card",
        ru: "Платёжная карта",
        uk: "Платіжна картка",
    },
};
/// Seed 003's service list: `service_method` `swift` (line 172).
static SWIFT_METHOD: Method = Method {
    code: "swift",
    category: "bank_transfer",
    name: Name {
        en: "SWIFT",
        ru: "SWIFT",
        uk: "SWIFT",
    },
};
/// Seed 003's service list: `service_method` `bank_transfer` (line 209).
static BANK_TRANSFER_METHOD: Method = Method {
    code: "bank_transfer",
    category: "bank_transfer",
    name: Name {
        en: "Bank transfer",
        ru: "Банковский перевод",
        uk: "Банківський переказ",
    },
};

/// The `test_usd` fields, as seed 003's pre-request sample lists them (lines 37–108). The seed
/// prints the regexps JSON-escaped twice (`"^\\\\d{1,15}$"`, i.e. a literal backslash before
/// `d`); that cannot be meant (no account would match), so they are served and checked as the
/// regexps it shows once unescaped: `^\d{1,15}$`, `^[A-Z\-\sa-z]{2,64}$`.
static TEST_FIELDS: [Field; 4] = [
    Field {
        key: "account",
        label: Label {
            ru: "Аккаунт",
            en: "Account",
            uk: "Акаунт",
        },
        regexp: r"^\d{1,15}$",
        required: true,
        position: 0,
    },
    Field {
        key: "test_details_success_rate",
        label: Label {
            ru: "Вероятность успеха (%)",
            en: "Success rate (%)",
            uk: "Імовірність успіху (%)",
        },
        regexp: r"^\d{1,15}$",
        required: false,
        position: 0,
    },
    Field {
        key: "test_details_payout_status",
        label: Label {
            ru: "Ожидаемый статус",
            en: "Expected status",
            uk: "Очікуваний статус",
        },
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
        position: 0,
    },
    Field {
        key: "test_details_payout_resolution",
        label: Label {
            ru: "Ожидаемый resolution",
            en: "Expected resolution",
            uk: "Очікуваний resolution",
        },
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
        position: 0,
    },
];

/// `card`: seed 003's create example sends `"fields": {"card_number": "5123817234060000"}`, 16
/// digits; the field's rule is not shown: 16 digits, required.
static CARD_FIELDS: [Field; 1] = [Field {
    key: "card_number",
    label: Label {
        ru: "Номер карты",
        en: "Card number",
        uk: "Номер картки",
    },
    regexp: r"^\d{16}$",
    required: true,
    position: 0,
}];

/// `swift_jpy`: seed 003 does not show its fields; the simulator asks what a SWIFT transfer
/// needs (beneficiary, IBAN or account number, BIC).
static SWIFT_FIELDS: [Field; 3] = [
    Field {
        key: "beneficiary_name",
        label: Label {
            ru: "Имя получателя",
            en: "Beneficiary name",
            uk: "Ім'я отримувача",
        },
        regexp: r"^[A-Za-z][A-Za-z .,'\-]{1,69}$",
        required: true,
        position: 0,
    },
    Field {
        key: "account_number",
        label: Label {
            ru: "Номер счёта",
            en: "Account number",
            uk: "Номер рахунку",
        },
        regexp: r"^[A-Z0-9]{4,34}$",
        required: true,
        position: 1,
    },
    Field {
        key: "swift_code",
        label: Label {
            ru: "SWIFT-код",
            en: "SWIFT code",
            uk: "SWIFT-код",
        },
        regexp: r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$",
        required: true,
        position: 2,
    },
];

/// `bank_transfer_zar`: not shown in seed 003; a South African transfer needs an account number
/// and a six-digit branch code.
static ZAR_FIELDS: [Field; 3] = [
    Field {
        key: "beneficiary_name",
        label: Label {
            ru: "Имя получателя",
            en: "Beneficiary name",
            uk: "Ім'я отримувача",
        },
        regexp: r"^[A-Za-z][A-Za-z .,'\-]{1,69}$",
        required: true,
        position: 0,
    },
    Field {
        key: "account_number",
        label: Label {
            ru: "Номер счёта",
            en: "Account number",
            uk: "Номер рахунку",
        },
        regexp: r"^\d{6,16}$",
        required: true,
        position: 1,
    },
    Field {
        key: "branch_code",
        label: Label {
            ru: "Код отделения",
            en: "Branch code",
            uk: "Код відділення",
        },
        regexp: r"^\d{6}$",
        required: true,
        position: 2,
    },
];

/// The catalogue. `test_usd`'s limits: seed 003 lines 110–111; `test_eur` and `test_gbp` are
/// the simulator's twins of it (not in the seed). `swift_jpy` and `bank_transfer_zar`: seed
/// 003's service list (lines 167–231: ids, method, currencies, limits, `active: false`). `card`:
/// seed 003's create example (service `card`, USD); its limits are not shown: the test
/// service's.
pub(crate) static SERVICES: [Service; 6] = [
    Service {
        id: "comcpos_SimTestUsd000001",
        code: "test_usd",
        method: &TEST_METHOD,
        currency: "USD",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimTestEur000001",
        code: "test_eur",
        method: &TEST_METHOD,
        currency: "EUR",
        account_currency: "EUR",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimTestGbp000001",
        code: "test_gbp",
        method: &TEST_METHOD,
        currency: "GBP",
        account_currency: "GBP",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimCardUsd000001",
        code: "card",
        method: &CARD_METHOD,
        currency: "USD",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &CARD_FIELDS,
        account_field: "card_number",
        production: true,
    },
    Service {
        id: "comcpos_RHUGUgEnmmedR7h3",
        code: "swift_jpy",
        method: &SWIFT_METHOD,
        currency: "JPY",
        account_currency: "GBP",
        amount_min: "1",
        amount_max: "999999",
        decimals: 0,
        active: false,
        fields: &SWIFT_FIELDS,
        account_field: "account_number",
        production: true,
    },
    Service {
        id: "comcpos_giKmqeYwcuWV4QSt",
        code: "bank_transfer_zar",
        method: &BANK_TRANSFER_METHOD,
        currency: "ZAR",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "1000000",
        decimals: 2,
        active: false,
        fields: &ZAR_FIELDS,
        account_field: "account_number",
        production: true,
    },
];

/// Every service field's compiled regexp, by `service code/field key`.
static REGEXPS: LazyLock<HashMap<(&'static str, &'static str), Regex>> = LazyLock::new(|| {
    SERVICES
        .iter()
        .flat_map(|s| s.fields.iter().map(move |f| (s, f)))
        .map(|(s, f)| {
            let re = Regex::new(f.regexp).unwrap_or_else(|e| panic!("built-in pattern {} is invalid: {e}", f.regexp));
            ((s.code, f.key), re)
        })
        .collect()
});

/// A service the account offers under the current switches, by code.
pub(crate) fn by_code(code: &str, production_services: bool) -> Option<&'static Service> {
    SERVICES
        .iter()
        .find(|s| s.code == code && s.offered(production_services))
}

/// The method code of a service, for invoices made earlier (a service the switch now hides
/// still names its method).
pub(crate) fn method_of(code: &str) -> &'static str {
    SERVICES
        .iter()
        .find(|s| s.code == code)
        .map_or(TEST_METHOD.code, Service::method)
}

/// A field value as text: strings as they are, numbers and booleans written out.
fn field_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

/// Checks a create's `fields` against the service's `required` and `regexp` (seed 003: "fields
/// — depends on required parameters of the payout service"). Returns the service's fields that
/// were given (others are ignored), or 422 naming the first field at fault (`fields.<key>`, in
/// the seed's `{"errors": {"field": "message"}}` shape).
pub(crate) fn check_fields(
    service: &Service,
    given: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, Response> {
    let mut fields = BTreeMap::new();
    for rule in service.fields {
        let re = REGEXPS.get(&(service.code, rule.key));
        match given.get(rule.key).and_then(field_text) {
            Some(v) if re.is_some_and(|re| re.is_match(&v)) => {
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
    Ok(fields)
}

// ---------------------------------------------------------------------------------------------
// The pre-request (public API)

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

#[derive(Serialize)]
struct PrerequestMethod {
    code: &'static str,
    category: &'static str,
    description: &'static str,
    name: Name,
    logo: String,
    icon: String,
    metadata: Option<()>,
    position: Option<()>,
    hide: Option<()>,
}

/// Seed 003 lines 132–137: the account of the docs' sample, served as the simulated account.
#[derive(Serialize)]
struct PrerequestAccount {
    name: &'static str,
    description: &'static str,
    icon: &'static str,
    website: &'static str,
}

const ACCOUNT: PrerequestAccount = PrerequestAccount {
    name: "4Docs",
    description: "for documenting and testing",
    icon: "https://static-dev.psp.name/images/default.svg?1595852370",
    website: "https://lets.doc.it",
};

/// An entry of `data.services`. Seed 003 puts the `methods` and `account` objects inside the
/// `services` object, next to the services (lines 31–138): served that way.
#[derive(Serialize)]
#[serde(untagged)]
enum ServicesEntry {
    Service(Box<PrerequestService>),
    Methods(BTreeMap<&'static str, PrerequestMethod>),
    Account(PrerequestAccount),
}

#[derive(Deserialize)]
struct PrerequestBody {
    currency: Option<String>,
    amount: Option<WireDecimal>,
    public_key: Option<String>,
}

/// A map written in the given order (serde writes a sequence of pairs as an object this way).
mod ordered {
    use serde::ser::{SerializeMap, Serializer};

    pub(super) fn serialize<K: serde::Serialize, V: serde::Serialize, S: Serializer>(
        pairs: &[(K, V)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct OrderedData<'a> {
    currency: &'a str,
    amount: &'a RawValue,
    test_mode: bool,
    #[serde(serialize_with = "ordered::serialize")]
    services: &'a [(&'static str, ServicesEntry)],
}

#[derive(Serialize)]
struct OrderedDoc<'a> {
    data: OrderedData<'a>,
}

/// The amount as the pre-request shows it per service: text at the service's decimals
/// (`"amount": "10.00"`, seed 003 line 113).
fn amount_text(amount: Decimal, decimals: u32) -> String {
    let mut a = amount;
    a.rescale(decimals);
    a.to_string()
}

fn prerequest_service(s: &Service, amount: Decimal) -> PrerequestService {
    PrerequestService {
        code: s.code,
        method: s.method.code,
        currency: s.currency,
        fields: s
            .fields
            .iter()
            .map(|f| PrerequestField {
                key: f.key,
                kind: "string",
                label: f.label,
                example: None,
                hint: f.label,
                regexp: f.regexp,
                required: f.required,
                position: f.position,
            })
            .collect(),
        amount_min: number(s.amount_min),
        amount_max: number(s.amount_max),
        exchange_rate: 1,
        amount: amount_text(amount, s.decimals),
    }
}

fn prerequest_method(m: &Method) -> PrerequestMethod {
    PrerequestMethod {
        code: m.code,
        category: m.category,
        description: "",
        name: m.name,
        logo: format!("https://static.openfintech.io/payout_methods/{}/logo.png", m.code),
        icon: format!("https://static.openfintech.io/payout_methods/{}/icon.svg", m.code),
        metadata: None,
        position: None,
        hide: None,
    }
}

/// `POST /payout-prerequest` with `{currency, amount, public_key}`: the services paying that
/// currency whose limits hold the amount.
pub(crate) async fn prerequest(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        let req: PrerequestBody = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(&e.to_string()),
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
        let production = sim2.faults().get(CASCAD).production_services;
        let offered: Vec<&Service> = SERVICES
            .iter()
            .filter(|s| s.offered(production) && s.currency == currency)
            .filter(|s| s.amount_min() <= amount && amount <= s.amount_max())
            .collect();
        let mut entries: Vec<(&'static str, ServicesEntry)> = offered
            .iter()
            .map(|s| (s.code, ServicesEntry::Service(Box::new(prerequest_service(s, amount)))))
            .collect();
        let methods = offered
            .iter()
            .map(|s| (s.method.code, prerequest_method(s.method)))
            .collect();
        entries.push(("methods", ServicesEntry::Methods(methods)));
        entries.push(("account", ServicesEntry::Account(ACCOUNT)));
        let amount_token = number(&amount.normalize().to_string());
        pretty_json(
            StatusCode::OK,
            &OrderedDoc {
                data: OrderedData {
                    currency: &currency,
                    amount: &amount_token,
                    test_mode: true,
                    services: &entries,
                },
            },
        )
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The service list and a service by id (private API)

/// Seed 003 lines 167–203 and 246–284.
#[derive(Serialize)]
struct ServiceResource {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    attributes: ServiceAttributes,
    relationships: ServiceRelationships,
    links: super::SelfLink,
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
    payout_method: super::RelData,
    #[serde(rename = "payout-service")]
    payout_service: super::RelData,
}

fn service_resource(s: &Service) -> ServiceResource {
    ServiceResource {
        kind: "payout-services",
        id: s.id,
        attributes: ServiceAttributes {
            service: s.code,
            service_method: s.method.code,
            service_currency: s.currency,
            available: true,
            active: s.active,
            enabled: true,
            amount_min: number(s.amount_min),
            amount_max: number(s.amount_max),
            fee_min: 0,
            fee_max: 0,
            fee_rate: 0,
            fee_fix: 0,
            currency: s.account_currency,
            test_mode: true,
        },
        relationships: ServiceRelationships {
            payout_method: super::RelData::new("payout-methods", s.method.code),
            payout_service: super::RelData::new("payout-services", s.code),
        },
        links: super::SelfLink {
            this: format!("/api/payout-services/{}", s.id),
        },
    }
}

pub(crate) fn page_param(q: &HashMap<String, String>, key: &str, default: usize) -> usize {
    q.get(key)
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

#[derive(Serialize)]
struct ServiceList {
    meta: ServiceListMeta,
    links: ServiceListLinks,
    data: Vec<ServiceResource>,
}

#[derive(Serialize)]
struct ServiceListMeta {
    total: usize,
    pages: usize,
    page: usize,
}

#[derive(Serialize)]
struct ServiceListLinks {
    first: String,
    next: String,
    last: String,
}

/// `GET /payout-services?page[number]=N&page[size]=M` (seed 003 lines 148–233).
pub(crate) async fn services(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let production = sim2.faults().get(CASCAD).production_services;
        let all: Vec<&Service> = SERVICES.iter().filter(|s| s.offered(production)).collect();
        let size = page_param(&q, "page[size]", 20).min(100);
        let number = page_param(&q, "page[number]", 1);
        let pages = all.len().div_ceil(size).max(1);
        let link = |n: usize| format!("/api/payout-services?page[number]={n}&page[size]={size}");
        let list = ServiceList {
            meta: ServiceListMeta {
                total: all.len(),
                pages,
                page: number,
            },
            links: ServiceListLinks {
                first: link(1),
                next: if number < pages {
                    link(number + 1)
                } else {
                    String::new()
                },
                last: link(pages),
            },
            data: all
                .iter()
                .skip((number - 1).saturating_mul(size))
                .take(size)
                .map(|s| service_resource(s))
                .collect(),
        };
        pretty_json(StatusCode::OK, &list)
    })
    .await
}

/// `GET /payout-services/{id}`, `id` "taken from the previous request" (seed 003 line 239): the
/// account service id, not the code.
pub(crate) async fn service(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let production = sim2.faults().get(CASCAD).production_services;
        match SERVICES.iter().find(|s| s.id == id && s.offered(production)) {
            Some(s) => pretty_json(
                StatusCode::OK,
                &super::Single {
                    data: service_resource(s),
                },
            ),
            None => not_found(),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, serde_json::Value)]) -> BTreeMap<String, serde_json::Value> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn the_documented_field_regexps_hold() {
        let test_usd = by_code("test_usd", false).unwrap();
        assert!(check_fields(test_usd, &fields(&[("account", "123456789012345".into())])).is_ok());
        assert!(check_fields(test_usd, &fields(&[("account", "1234567890123456".into())])).is_err());
        let ok = check_fields(
            test_usd,
            &fields(&[
                ("account", serde_json::json!(42)),
                ("test_details_payout_status", "process failed".into()),
                ("unknown", "ignored".into()),
            ]),
        )
        .unwrap();
        assert_eq!(ok.keys().collect::<Vec<_>>(), ["account", "test_details_payout_status"]);
        assert!(
            check_fields(
                test_usd,
                &fields(&[
                    ("account", "1".into()),
                    ("test_details_payout_status", "process_failed".into())
                ])
            )
            .is_err()
        );
        assert!(check_fields(test_usd, &fields(&[])).is_err(), "account is required");
    }

    #[test]
    fn production_services_need_the_switch_and_have_their_own_fields() {
        assert!(by_code("card", false).is_none());
        let card = by_code("card", true).unwrap();
        assert_eq!((card.method(), card.account_field), ("payment_card", "card_number"));
        assert!(check_fields(card, &fields(&[("card_number", "5123817234060000".into())])).is_ok());
        assert!(check_fields(card, &fields(&[("card_number", "512381723406000".into())])).is_err());
        let jpy = by_code("swift_jpy", true).unwrap();
        assert_eq!(
            jpy.amount_problem(Decimal::new(15, 1)),
            Some("This value has too many decimals.")
        );
        assert_eq!(
            jpy.amount_problem(Decimal::new(1_000_000, 0)),
            Some("The amount is out of the service limits.")
        );
        assert_eq!(jpy.amount_problem(Decimal::new(1500, 0)), None);
        assert_eq!(method_of("swift_jpy"), "swift");
        assert_eq!(method_of("gone"), "test");
    }

    #[test]
    fn prerequest_amounts_are_shown_at_the_service_scale() {
        assert_eq!(amount_text(Decimal::new(10, 0), 2), "10.00");
        assert_eq!(amount_text(Decimal::new(1500, 0), 0), "1500");
    }
}
