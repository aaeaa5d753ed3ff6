//! Which provider pays a request, by which payout method and service, and what each needs from
//! the beneficiary: the one place that knows provider coverage.
//!
//! The D24 family's coverage is a table here (what the simulators and the documented provider
//! rules support; a deployment with other contracts changes it here). Cascad's is its configured
//! payout services ([`services`]): a [`Coverage`] value built from configuration at start-up and
//! passed to validation, so that this module reads no configuration and calls nobody.

pub mod rules;
pub mod services;

use crate::money::{Amount, Currency};
use crate::party::{Beneficiary, Country};
use crate::provider::ProviderName;
use crate::validation::ValidationErrors;

pub use rules::{RoutingChoice, RoutingRule, RoutingRuleSpec, RoutingSource, RuleMatch, RuleProvider};
pub use services::{
    BeneficiaryField, CascadService, CascadServices, PayoutMethodKind, ServiceChoiceError, ServiceError, ServiceField,
    UnknownPayoutMethod,
};

/// (country, local currency) pairs the D24 family (D24 and Onspot) pays in; USD is also taken in
/// the dollarised countries listed with it.
const D24_COVERAGE: &[(&str, Currency)] = &[
    ("AR", Currency::ARS),
    ("BO", Currency::BOB),
    ("BR", Currency::BRL),
    ("CL", Currency::CLP),
    ("CO", Currency::COP),
    ("CR", Currency::CRC),
    ("DO", Currency::DOP),
    ("EC", Currency::USD),
    ("GT", Currency::GTQ),
    ("MX", Currency::MXN),
    ("PA", Currency::USD),
    ("PY", Currency::PYG),
    ("SV", Currency::USD),
    ("UY", Currency::UYU),
];

/// The only payout method of the D24 family: a transfer to the beneficiary's bank account
/// (`bank_code`, `bank_account`).
const D24_METHOD: PayoutMethodKind = PayoutMethodKind::BankTransfer;

/// Whether a D24-family profile can pay `currency` in `country` (never for Cascad, whose
/// coverage is its configured services: [`Coverage::covers`]).
pub fn d24_family_covers(provider: ProviderName, country: Country, currency: Currency) -> bool {
    match provider {
        ProviderName::D24 | ProviderName::Onspot => D24_COVERAGE
            .iter()
            .any(|(c, cur)| *c == country.code() && *cur == currency),
        ProviderName::Tupay => country.code() == "PE" && matches!(currency, Currency::PEN | Currency::USD),
        ProviderName::Cascad => false,
    }
}

/// Where a provider stands in the default routing order (lower first): Tupay, the local
/// specialist, before D24 and Onspot; Cascad last. Every provider has a place (no wildcard).
fn preference(provider: ProviderName) -> u8 {
    match provider {
        ProviderName::Tupay => 0,
        ProviderName::D24 => 1,
        ProviderName::Onspot => 2,
        ProviderName::Cascad => 3,
    }
}

/// What the providers can pay: the D24 family's table and Cascad's configured services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    cascad: CascadServices,
}

/// How a request will be paid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub provider: ProviderName,
    /// The payout method (unknown for a Cascad service configured by its code only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<PayoutMethodKind>,
    /// The provider's service (Cascad's `card`, `bank_transfer_zar`), when it has services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// What a request asks of routing.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// The provider named by the merchant, if any.
    pub provider: Option<ProviderName>,
    /// The beneficiary's country.
    pub country: Country,
    pub currency: Currency,
    /// The payout method named by the merchant, if any.
    pub method: Option<PayoutMethodKind>,
    /// The amount to pay, when the invoices are valid.
    pub amount: Option<Amount>,
    /// Who receives it, when valid.
    pub beneficiary: Option<&'a Beneficiary>,
}

impl Coverage {
    /// The coverage with Cascad's configured services (none: Cascad pays nothing).
    pub fn new(cascad: CascadServices) -> Coverage {
        Coverage { cascad }
    }

    /// Cascad's services.
    pub fn cascad(&self) -> &CascadServices {
        &self.cascad
    }

    /// Whether `provider` can pay `currency` in `country`.
    pub fn covers(&self, provider: ProviderName, country: Country, currency: Currency) -> bool {
        match provider {
            ProviderName::Cascad => self.cascad.paying(country, currency).next().is_some(),
            ProviderName::D24 | ProviderName::Onspot | ProviderName::Tupay => {
                d24_family_covers(provider, country, currency)
            }
        }
    }

    /// Whether `provider` can pay `currency` in `country` by `method`.
    pub fn covers_by(
        &self,
        provider: ProviderName,
        country: Country,
        currency: Currency,
        method: PayoutMethodKind,
    ) -> bool {
        match provider {
            ProviderName::Cascad => self
                .cascad
                .paying(country, currency)
                .any(|s| s.method() == Some(method)),
            ProviderName::D24 | ProviderName::Onspot | ProviderName::Tupay => {
                method == D24_METHOD && d24_family_covers(provider, country, currency)
            }
        }
    }

    /// Every provider able to pay `currency` in `country`, in routing preference order.
    pub fn candidates(&self, country: Country, currency: Currency) -> Vec<ProviderName> {
        let mut providers: Vec<ProviderName> = ProviderName::ALL
            .into_iter()
            .filter(|p| self.covers(*p, country, currency))
            .collect();
        providers.sort_by_key(|p| preference(*p));
        providers
    }

    /// The provider used when the merchant names none: Tupay in Peru, D24 for its Latin
    /// American pairs, Cascad for its services elsewhere; with a payout method, the first of
    /// them paying by it. Onspot is only used when asked for.
    pub fn default_provider(
        &self,
        country: Country,
        currency: Currency,
        method: Option<PayoutMethodKind>,
    ) -> Option<ProviderName> {
        self.candidates(country, currency)
            .into_iter()
            .filter(|p| method.is_none_or(|m| self.covers_by(*p, country, currency, m)))
            .find(|p| *p != ProviderName::Onspot)
    }

    /// Routes a request: the provider (named, or the default), the payout method and the
    /// service, and checks the beneficiary against what they need, so that a request the
    /// provider would decline for missing or malformed data is refused at creation instead.
    /// Every problem goes to `errors` with the path of the field to fix.
    pub fn route(&self, q: RouteQuery<'_>, errors: &mut ValidationErrors) -> Option<Route> {
        let provider = match q.provider {
            Some(p) if !self.covers(p, q.country, q.currency) => {
                errors.push(
                    "provider",
                    "unsupported",
                    format!("{p} does not pay {} in {}", q.currency, q.country),
                );
                return None;
            }
            Some(p) => p,
            None => match self.default_provider(q.country, q.currency, q.method) {
                Some(p) => p,
                None => {
                    match q.method {
                        Some(m) if !self.candidates(q.country, q.currency).is_empty() => errors.push(
                            "payout_method",
                            "unsupported",
                            format!("no provider pays {} in {} by {m}", q.currency, q.country),
                        ),
                        _ => errors.push(
                            "currency",
                            "unsupported",
                            format!("no provider pays {} in {}", q.currency, q.country),
                        ),
                    }
                    return None;
                }
            },
        };
        match provider {
            ProviderName::D24 | ProviderName::Onspot | ProviderName::Tupay => {
                if let Some(m) = q.method
                    && m != D24_METHOD
                {
                    errors.push(
                        "payout_method",
                        "unsupported",
                        format!("{provider} pays by {D24_METHOD} only"),
                    );
                    return None;
                }
                if let Some(b) = q.beneficiary {
                    check_d24_family(provider, b, errors);
                }
                Some(Route {
                    provider,
                    method: Some(D24_METHOD),
                    service: None,
                })
            }
            ProviderName::Cascad => self.route_cascad(q, errors),
        }
    }

    fn route_cascad(&self, q: RouteQuery<'_>, errors: &mut ValidationErrors) -> Option<Route> {
        let service = match self.cascad.choose(q.country, q.currency, q.method) {
            Ok(s) => s,
            Err(ServiceChoiceError::NoService) => {
                let offered: Vec<String> = self
                    .cascad
                    .paying(q.country, q.currency)
                    .filter_map(|s| s.method().map(|m| m.to_string()))
                    .collect();
                errors.push(
                    "payout_method",
                    "unsupported",
                    format!(
                        "cascad has no {} service for {} in {} (it pays it by: {})",
                        q.method.map_or("such", PayoutMethodKind::as_str),
                        q.currency,
                        q.country,
                        offered.join(", ")
                    ),
                );
                return None;
            }
            Err(ServiceChoiceError::Ambiguous(methods)) => {
                let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                errors.push(
                    "payout_method",
                    "required",
                    format!(
                        "cascad pays {} in {} in several ways: name one of {}",
                        q.currency,
                        q.country,
                        names.join(", ")
                    ),
                );
                return None;
            }
        };
        if let Some(problem) = q.amount.and_then(|a| service.amount_problem(a)) {
            errors.push("invoices", "amount_out_of_range", problem);
        }
        if let Some(b) = q.beneficiary {
            service.check(b, errors);
        }
        Some(Route {
            provider: ProviderName::Cascad,
            method: service.method(),
            service: Some(service.id().to_owned()),
        })
    }
}

/// A beneficiary field a D24-family provider reads, as `GET /v1/payout-methods` lists it.
#[derive(Debug, Clone, Copy)]
pub struct D24FamilyField {
    /// Its path in the create body (`beneficiary.document_id`).
    pub key: &'static str,
    /// The pattern its value must match, where one says it all.
    pub regexp: Option<&'static str>,
    /// Whether the provider refuses a payout without it.
    pub required: bool,
    value: fn(&Beneficiary) -> Option<&str>,
}

impl D24FamilyField {
    /// The beneficiary's value of this field, if it has one.
    pub fn value<'a>(&self, beneficiary: &'a Beneficiary) -> Option<&'a str> {
        (self.value)(beneficiary)
    }
}

const fn field(
    key: &'static str,
    regexp: Option<&'static str>,
    required: bool,
    value: fn(&Beneficiary) -> Option<&str>,
) -> D24FamilyField {
    D24FamilyField {
        key,
        regexp,
        required,
        value,
    }
}

fn name_of(b: &Beneficiary) -> Option<&str> {
    Some(&b.name)
}
fn document_id_of(b: &Beneficiary) -> Option<&str> {
    b.document_id.as_deref()
}
fn document_type_of(b: &Beneficiary) -> Option<&str> {
    b.document_type.as_deref()
}
fn bank_account_of(b: &Beneficiary) -> Option<&str> {
    b.bank_account.as_ref().map(|a| a.expose())
}
fn bank_code_of(b: &Beneficiary) -> Option<&str> {
    b.bank_code.as_deref()
}
fn account_type_of(b: &Beneficiary) -> Option<&str> {
    b.account_type.as_deref()
}

/// D24 and Onspot: a name and a document id; bank details where the country needs them.
const D24_FIELDS: [D24FamilyField; 4] = [
    field("beneficiary.name", None, true, name_of),
    field("beneficiary.document_id", None, true, document_id_of),
    field("beneficiary.bank_account", None, false, bank_account_of),
    field("beneficiary.bank_code", None, false, bank_code_of),
];

/// Tupay (Peru): see [`check_tupay`], which also checks each document type's exact length.
const TUPAY_FIELDS: [D24FamilyField; 5] = [
    field("beneficiary.name", None, true, name_of),
    field("beneficiary.document_id", None, true, document_id_of),
    field(
        "beneficiary.document_type",
        Some("^(DNI|CE|RUC|PASS)$"),
        true,
        document_type_of,
    ),
    field("beneficiary.bank_account", Some(r"^\d{1,20}$"), true, bank_account_of),
    field("beneficiary.account_type", Some("^[CS]$"), true, account_type_of),
];

/// The beneficiary fields of a D24-family provider: the one list the payout-methods answer
/// shows and the adapter checks for presence before it sends a payout; the checks below enforce
/// it, and more, when a request is created (a test keeps the two in step).
pub fn d24_family_fields(provider: ProviderName) -> &'static [D24FamilyField] {
    match provider {
        ProviderName::D24 | ProviderName::Onspot => &D24_FIELDS,
        ProviderName::Tupay => &TUPAY_FIELDS,
        ProviderName::Cascad => &[],
    }
}

/// The D24 family's beneficiary rules: a document id for D24 and Onspot; Tupay's own rules.
fn check_d24_family(provider: ProviderName, beneficiary: &Beneficiary, errors: &mut ValidationErrors) {
    match provider {
        ProviderName::D24 | ProviderName::Onspot => {
            if beneficiary.document_id.is_none() {
                errors.push(
                    "beneficiary.document_id",
                    "required",
                    format!("{provider} requires a document id"),
                );
            }
        }
        ProviderName::Tupay => check_tupay(beneficiary, errors),
        ProviderName::Cascad => {}
    }
}

/// Tupay (Peru): document type with its exact length (DNI 8, CE 9, RUC 11, PASS 12), a CCI of
/// at most 20 digits, and an account type `C` (checking) or `S` (savings).
fn check_tupay(b: &Beneficiary, errors: &mut ValidationErrors) {
    let expected_len = match b.document_type.as_deref() {
        Some("DNI") => Some(8),
        Some("CE") => Some(9),
        Some("RUC") => Some(11),
        Some("PASS") => Some(12),
        Some(_) => {
            errors.push(
                "beneficiary.document_type",
                "invalid",
                "tupay accepts DNI, CE, RUC or PASS",
            );
            None
        }
        None => {
            errors.push(
                "beneficiary.document_type",
                "required",
                "tupay requires a document type",
            );
            None
        }
    };
    match (&b.document_id, expected_len) {
        (None, _) => errors.push("beneficiary.document_id", "required", "tupay requires a document id"),
        (Some(id), Some(len)) if id.chars().count() != len => errors.push(
            "beneficiary.document_id",
            "invalid",
            format!(
                "a {} has {len} characters",
                b.document_type.as_deref().unwrap_or_default()
            ),
        ),
        _ => {}
    }
    match &b.bank_account {
        None => errors.push(
            "beneficiary.bank_account",
            "required",
            "tupay requires the CCI account number",
        ),
        Some(a) if a.expose().len() > 20 || !a.expose().bytes().all(|c| c.is_ascii_digit()) => {
            errors.push("beneficiary.bank_account", "invalid", "a CCI is at most 20 digits")
        }
        Some(_) => {}
    }
    match b.account_type.as_deref() {
        Some("C" | "S") => {}
        Some(_) => errors.push("beneficiary.account_type", "invalid", "tupay account types are C or S"),
        None => errors.push("beneficiary.account_type", "required", "tupay requires an account type"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::party::{AccountNumber, CardNumber};

    fn country(c: &str) -> Country {
        c.parse().unwrap()
    }

    /// Cascad with a card service and a test service in USD, and a ZAR bank transfer in ZA.
    pub(crate) fn coverage() -> Coverage {
        let field = |key: &str, source: BeneficiaryField, regexp: &str| {
            ServiceField::new(key, source, true, Some(regexp)).unwrap()
        };
        let services = vec![
            CascadService::new(
                "test_usd",
                Currency::USD,
                Some(PayoutMethodKind::Test),
                vec![field("account", BeneficiaryField::BankAccount, r"^\d{1,15}$")],
            )
            .unwrap(),
            CascadService::new(
                "card",
                Currency::USD,
                Some(PayoutMethodKind::Card),
                vec![field("card_number", BeneficiaryField::CardNumber, r"^\d{16}$")],
            )
            .unwrap()
            .with_limits(Some("0.01".parse().unwrap()), Some("5000".parse().unwrap()))
            .unwrap(),
            CascadService::new(
                "bank_transfer_zar",
                Currency::ZAR,
                Some(PayoutMethodKind::BankTransfer),
                vec![
                    field("account_number", BeneficiaryField::BankAccount, r"^\d{6,16}$"),
                    field("branch_code", BeneficiaryField::BankBranch, r"^\d{6}$"),
                ],
            )
            .unwrap()
            .with_countries([country("ZA")]),
        ];
        Coverage::new(CascadServices::new(services).unwrap())
    }

    fn beneficiary() -> Beneficiary {
        Beneficiary::named("Thabo")
    }

    fn query<'a>(c: &str, currency: Currency, method: Option<PayoutMethodKind>, b: &'a Beneficiary) -> RouteQuery<'a> {
        RouteQuery {
            provider: None,
            country: country(c),
            currency,
            method,
            amount: Some(Amount::parse("100", currency).unwrap()),
            beneficiary: Some(b),
        }
    }

    #[test]
    fn default_routes() {
        let c = coverage();
        assert_eq!(
            c.default_provider(country("PE"), Currency::PEN, None),
            Some(ProviderName::Tupay)
        );
        assert_eq!(
            c.default_provider(country("PE"), Currency::USD, None),
            Some(ProviderName::Tupay)
        );
        assert_eq!(
            c.default_provider(country("BR"), Currency::BRL, None),
            Some(ProviderName::D24)
        );
        assert_eq!(
            c.default_provider(country("MX"), Currency::MXN, None),
            Some(ProviderName::D24)
        );
        assert_eq!(
            c.default_provider(country("US"), Currency::USD, None),
            Some(ProviderName::Cascad)
        );
        assert_eq!(
            c.default_provider(country("PE"), Currency::USD, Some(PayoutMethodKind::Card)),
            Some(ProviderName::Cascad),
            "Tupay pays no card: the next provider that does"
        );
        assert_eq!(c.default_provider(country("BR"), Currency::JPY, None), None);
        assert!(
            c.candidates(country("BR"), Currency::BRL)
                .contains(&ProviderName::Onspot)
        );
    }

    #[test]
    fn coverage_is_checked_for_explicit_providers() {
        let c = coverage();
        assert!(c.covers(ProviderName::Onspot, country("CL"), Currency::CLP));
        assert!(!c.covers(ProviderName::Tupay, country("BR"), Currency::BRL));
        assert!(!c.covers(ProviderName::D24, country("BR"), Currency::USD));
        assert!(!c.covers(ProviderName::Cascad, country("BR"), Currency::BRL));
        assert!(c.covers(ProviderName::Cascad, country("ZA"), Currency::ZAR));
        assert!(
            !c.covers(ProviderName::Cascad, country("NA"), Currency::ZAR),
            "ZAR in ZA only"
        );
    }

    #[test]
    fn cascad_covers_the_currencies_of_its_configured_services_only() {
        // Before the services came from configuration, Cascad was USD, EUR and GBP for ever.
        let c = coverage();
        assert!(c.covers(ProviderName::Cascad, country("ZA"), Currency::ZAR));
        assert!(!c.covers(ProviderName::Cascad, country("FR"), Currency::EUR));
        assert!(!Coverage::default().covers(ProviderName::Cascad, country("US"), Currency::USD));
    }

    #[test]
    fn a_currency_paid_several_ways_needs_a_payout_method() {
        let c = coverage();
        let mut b = beneficiary();
        b.card_number = Some(CardNumber::new("5123817234060000"));
        let mut errors = ValidationErrors::default();
        assert_eq!(c.route(query("US", Currency::USD, None, &b), &mut errors), None);
        let e = &errors.for_field("payout_method")[0];
        assert_eq!(e.code, "required");
        assert!(e.message.contains("card, test"), "{}", e.message);

        let mut errors = ValidationErrors::default();
        let route = c.route(
            query("US", Currency::USD, Some(PayoutMethodKind::Card), &b),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(
            route,
            Some(Route {
                provider: ProviderName::Cascad,
                method: Some(PayoutMethodKind::Card),
                service: Some("card".into())
            })
        );

        let mut errors = ValidationErrors::default();
        c.route(
            query("US", Currency::USD, Some(PayoutMethodKind::Swift), &b),
            &mut errors,
        );
        assert_eq!(errors.for_field("payout_method")[0].code, "unsupported", "{errors}");
    }

    #[test]
    fn the_chosen_service_checks_the_beneficiary_and_the_amount() {
        let c = coverage();
        let mut b = beneficiary();
        b.bank_account = Some(AccountNumber::new("62001234567"));
        b.bank_branch = Some("25065".into());
        let mut errors = ValidationErrors::default();
        let route = c.route(query("ZA", Currency::ZAR, None, &b), &mut errors);
        assert_eq!(route.unwrap().service.as_deref(), Some("bank_transfer_zar"));
        assert_eq!(
            errors.for_field("beneficiary.bank_branch")[0].code,
            "invalid",
            "{errors}"
        );

        let mut b = beneficiary();
        b.card_number = Some(CardNumber::new("5123817234060000"));
        let mut q = query("US", Currency::USD, Some(PayoutMethodKind::Card), &b);
        q.amount = Some(Amount::parse("5000.01", Currency::USD).unwrap());
        let mut errors = ValidationErrors::default();
        c.route(q, &mut errors);
        assert_eq!(errors.for_field("invoices")[0].code, "amount_out_of_range", "{errors}");
    }

    #[test]
    fn the_d24_family_pays_bank_transfers_only() {
        let c = coverage();
        let mut b = beneficiary();
        b.document_id = Some("12345678909".into());
        let mut errors = ValidationErrors::default();
        let route = c.route(
            query("BR", Currency::BRL, Some(PayoutMethodKind::BankTransfer), &b),
            &mut errors,
        );
        assert_eq!(route.unwrap().method, Some(PayoutMethodKind::BankTransfer));
        let mut q = query("BR", Currency::BRL, Some(PayoutMethodKind::Card), &b);
        q.provider = Some(ProviderName::D24);
        let mut errors = ValidationErrors::default();
        assert_eq!(c.route(q, &mut errors), None);
        assert_eq!(errors.for_field("payout_method")[0].code, "unsupported");
    }

    /// A Tupay beneficiary that passes every rule.
    fn tupay_beneficiary() -> Beneficiary {
        let mut b = beneficiary();
        b.document_type = Some("DNI".into());
        b.document_id = Some("12345678".into());
        b.bank_account = Some(AccountNumber::new("00212345678901234567"));
        b.account_type = Some("C".into());
        b
    }

    fn check(provider: ProviderName, b: &Beneficiary) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        check_d24_family(provider, b, &mut errors);
        errors
    }

    fn clear(b: &mut Beneficiary, key: &str) {
        match key {
            "beneficiary.name" => b.name.clear(),
            "beneficiary.document_id" => b.document_id = None,
            "beneficiary.document_type" => b.document_type = None,
            "beneficiary.bank_account" => b.bank_account = None,
            "beneficiary.account_type" => b.account_type = None,
            other => panic!("{other} is required but this test cannot remove it"),
        }
    }

    #[test]
    fn the_listed_d24_family_fields_are_the_rules_the_checks_enforce() {
        for provider in [ProviderName::D24, ProviderName::Onspot, ProviderName::Tupay] {
            let valid = tupay_beneficiary();
            assert!(check(provider, &valid).is_empty(), "{provider}");
            for f in d24_family_fields(provider) {
                if let (Some(pattern), Some(value)) = (f.regexp, f.value(&valid)) {
                    let re = regex::Regex::new(pattern).unwrap();
                    assert!(re.is_match(value), "{provider} {}: {value} against {pattern}", f.key);
                }
                if !f.required || f.key == "beneficiary.name" {
                    continue; // the name is required of every request by the input rules
                }
                let mut missing = valid.clone();
                clear(&mut missing, f.key);
                assert_eq!(f.value(&missing), None, "{}", f.key);
                let errors = check(provider, &missing);
                assert!(!errors.for_field(f.key).is_empty(), "{provider} {}: {errors}", f.key);
            }
        }
        let mut wrong = tupay_beneficiary();
        wrong.account_type = Some("X".into());
        let errors = check(ProviderName::Tupay, &wrong);
        assert_eq!(errors.for_field("beneficiary.account_type")[0].code, "invalid");
    }
}
