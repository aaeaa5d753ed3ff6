//! The payout services of the simulated Cascad account, the fields each requires, and the two
//! ways to read them: the public pre-request (`POST /payout-prerequest`, seed 003 lines 5–140)
//! and the private service list and service by id (`GET /payout-services[/{id}]`, lines
//! 142–284).
//!
//! The account has the `test_*` services and the production-shaped services seed 003 shows:
//! `card` (its create example), `swift_jpy` and `bank_transfer_zar` (its service list). With the
//! `production_services` switch off, it has the `test_*` services only, as seed 003's pre-request
//! sample shows the account (lines 31–114).
//!
//! The catalogue itself is in [`catalogue`]; the pre-request in [`prerequest`]; the private
//! service list and service by id in [`listing`].

mod catalogue;
mod listing;
mod prerequest;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use axum::response::Response;
use regex::Regex;
use rust_decimal::Decimal;
use serde::Serialize;

use super::errors::field_errors;
use crate::decimal::parse_decimal;
use catalogue::{SERVICES, TEST_METHOD};

pub(crate) use listing::{service, services};
pub(crate) use prerequest::prerequest;

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

/// The code of the first service paying `currency` (`test_usd` when none does): the service an
/// invoice made behind the client's back (`POST /_sim/payouts/cascad`) is booked under.
pub(crate) fn code_for_currency(currency: &str) -> &'static str {
    SERVICES
        .iter()
        .find(|s| s.currency == currency)
        .map_or("test_usd", |s| s.code)
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
}
