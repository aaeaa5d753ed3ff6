//! The pre-request (public API): `POST /payout-prerequest` (seed 003 lines 5–140), the services
//! paying a currency whose limits hold an amount, with their fields and methods.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::catalogue::SERVICES;
use super::{Label, Method, Name, Service};
use crate::cascad::CASCAD;
use crate::cascad::errors::{bad_request, fault_body, field_errors, unauthorized};
use crate::decimal::WireDecimal;
use crate::sim::{Sim, number, pretty_json};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prerequest_amounts_are_shown_at_the_service_scale() {
        assert_eq!(amount_text(Decimal::new(10, 0), 2), "10.00");
        assert_eq!(amount_text(Decimal::new(1500, 0), 0), "1500");
    }
}
