//! Cascad's payout services as a deployment configures them: which currency (and countries)
//! each pays, by which payout method, within which amounts, and the `fields` it needs (seed 003
//! line 302: "fields — depends on required parameters of the payout service"), each with its
//! `required` flag and `regexp` (seed 003 lines 37–108) and the beneficiary attribute it is read
//! from.
//!
//! A catalogue is built once, at configuration time: every regexp is compiled then, and a bad
//! one is a [`ServiceError`], never a panic. Routing ([`super::Coverage`]) receives it as a
//! value: nothing here reads configuration or calls Cascad.

use std::borrow::Cow;
use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::money::{Amount, Currency};
use crate::party::{Beneficiary, Country};
use crate::validation::ValidationErrors;

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{BeneficiaryField, FieldPattern, ServiceField};

/// The most services one catalogue holds (seed 003's sample account has 168).
pub const MAX_SERVICES: usize = 500;
/// The most fields one service asks for.
pub const MAX_FIELDS: usize = 50;
/// The longest regexp accepted from configuration, in bytes.
pub const MAX_REGEXP_LEN: usize = 1024;

crate::named::named_enum! {
    /// How a payout reaches the beneficiary: what a create request names in `payout_method` when a
    /// currency can be paid more than one way.
    pub enum PayoutMethodKind / UnknownPayoutMethod(32) {
        /// To a payment card (Cascad's method `payment_card`, seed 003 line 408).
        Card = "card",
        /// To a bank account in its country (Cascad's `bank_transfer`, seed 003 line 227; the D24
        /// family's only kind).
        BankTransfer = "bank_transfer",
        /// An international bank transfer (Cascad's `swift`, seed 003 line 190).
        Swift = "swift",
        /// Cascad's test services (method `test`, seed 003 line 34): they pay nobody.
        Test = "test",
    }
}

impl PayoutMethodKind {
    /// Cascad's payout method code (`payment_card` for cards, as seed 003's invoice shows it).
    pub const fn cascad_method(self) -> &'static str {
        match self {
            PayoutMethodKind::Card => "payment_card",
            PayoutMethodKind::BankTransfer => "bank_transfer",
            PayoutMethodKind::Swift => "swift",
            PayoutMethodKind::Test => "test",
        }
    }

    /// The kind of a Cascad method code, or of one of our names.
    pub fn from_cascad_method(code: &str) -> Option<PayoutMethodKind> {
        PayoutMethodKind::ALL
            .into_iter()
            .find(|k| k.cascad_method() == code || k.as_str() == code)
    }
}

/// A payout method name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a payout method: card, bank_transfer, swift or test")]
pub struct UnknownPayoutMethod(pub String);

/// One payout service of the Cascad account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadService {
    id: String,
    currency: Currency,
    method: Option<PayoutMethodKind>,
    countries: BTreeSet<Country>,
    amount_min: Option<Decimal>,
    amount_max: Option<Decimal>,
    fields: Vec<ServiceField>,
}

impl CascadService {
    /// A service paying `currency` by `method` (unknown for a service configured by its id
    /// only), asking for `fields`.
    pub fn new(
        id: &str,
        currency: Currency,
        method: Option<PayoutMethodKind>,
        fields: Vec<ServiceField>,
    ) -> Result<CascadService, ServiceError> {
        let valid_id = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_id {
            return Err(ServiceError::Id(id.chars().take(80).collect()));
        }
        if fields.len() > MAX_FIELDS {
            return Err(ServiceError::Service {
                id: id.to_owned(),
                why: format!("more than {MAX_FIELDS} fields"),
            });
        }
        let mut keys = BTreeSet::new();
        if let Some(dup) = fields.iter().find(|f| !keys.insert(f.key.as_str())) {
            return Err(ServiceError::Service {
                id: id.to_owned(),
                why: format!("the field `{}` is listed twice", dup.key),
            });
        }
        let mut sources = BTreeSet::new();
        if let Some(dup) = fields.iter().find(|f| !sources.insert(&f.source)) {
            return Err(ServiceError::Service {
                id: id.to_owned(),
                why: format!("two fields read `{}`", dup.source.name()),
            });
        }
        Ok(CascadService {
            id: id.to_owned(),
            currency,
            method,
            countries: BTreeSet::new(),
            amount_min: None,
            amount_max: None,
            fields,
        })
    }

    /// Pays beneficiaries in these countries only (none: any country).
    pub fn with_countries(mut self, countries: impl IntoIterator<Item = Country>) -> CascadService {
        self.countries = countries.into_iter().collect();
        self
    }

    /// Pays amounts from `min` to `max` (in its currency), as the service list shows them
    /// (`amount_min`, `amount_max`).
    pub fn with_limits(mut self, min: Option<Decimal>, max: Option<Decimal>) -> Result<CascadService, ServiceError> {
        let bad = |why: &str| ServiceError::Service {
            id: self.id.clone(),
            why: why.to_owned(),
        };
        if min.is_some_and(|m| m < Decimal::ZERO) || max.is_some_and(|m| m <= Decimal::ZERO) {
            return Err(bad("amount limits must be positive"));
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            return Err(bad("amount_min is above amount_max"));
        }
        self.amount_min = min;
        self.amount_max = max;
        Ok(self)
    }

    /// Cascad's service code (`card`, `bank_transfer_zar`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The currency it pays out.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// How it pays, if configured.
    pub fn method(&self) -> Option<PayoutMethodKind> {
        self.method
    }

    /// The countries it pays in (empty: any).
    pub fn countries(&self) -> &BTreeSet<Country> {
        &self.countries
    }

    /// Smallest amount, if limited.
    pub fn amount_min(&self) -> Option<Decimal> {
        self.amount_min
    }

    /// Largest amount, if limited.
    pub fn amount_max(&self) -> Option<Decimal> {
        self.amount_max
    }

    /// The fields it needs.
    pub fn fields(&self) -> &[ServiceField] {
        &self.fields
    }

    /// Whether it pays `currency` in `country`.
    pub fn pays(&self, country: Country, currency: Currency) -> bool {
        self.currency == currency && (self.countries.is_empty() || self.countries.contains(&country))
    }

    /// Why `amount` is out of its limits, if it is.
    pub fn amount_problem(&self, amount: Amount) -> Option<String> {
        let value = amount.value();
        match (self.amount_min, self.amount_max) {
            (Some(min), _) if value < min => Some(format!(
                "{amount} {} is below the minimum of cascad service `{}` ({})",
                self.currency,
                self.id,
                min.normalize()
            )),
            (_, Some(max)) if value > max => Some(format!(
                "{amount} {} is above the maximum of cascad service `{}` ({})",
                self.currency,
                self.id,
                max.normalize()
            )),
            _ => None,
        }
    }

    /// The `fields` of a create for `beneficiary`: every field it has a value for.
    pub fn fields_of<'a>(&'a self, beneficiary: &'a Beneficiary) -> Vec<(&'a str, Cow<'a, str>)> {
        self.fields
            .iter()
            .filter_map(|f| f.source.value(beneficiary).map(|v| (f.key.as_str(), v)))
            .collect()
    }

    /// Checks `beneficiary` as Cascad would check the create's `fields`: each required field
    /// present, each present field matching its regexp; and no `extra_fields` the service does
    /// not read (a misspelt key would otherwise be dropped unseen). Problems name the path in
    /// the create request; messages never repeat the value.
    pub fn check(&self, beneficiary: &Beneficiary, errors: &mut ValidationErrors) {
        for field in &self.fields {
            match field.source.value(beneficiary) {
                None if field.required => errors.push(
                    field.source.path(),
                    "required",
                    format!("cascad service `{}` requires it (its field `{}`)", self.id, field.key),
                ),
                None => {}
                Some(value) => {
                    if let Some(re) = &field.regexp
                        && !re.is_match(&value)
                    {
                        errors.push(
                            field.source.path(),
                            "invalid",
                            format!(
                                "does not match `{}`, the rule of cascad service `{}` for its field `{}`",
                                re.as_str(),
                                self.id,
                                field.key
                            ),
                        );
                    }
                }
            }
        }
        for key in beneficiary.extra_fields.keys() {
            let read = self
                .fields
                .iter()
                .any(|f| matches!(&f.source, BeneficiaryField::Extra(k) if k == key));
            if !read {
                errors.push(
                    format!("beneficiary.extra_fields.{key}"),
                    "unknown",
                    format!("cascad service `{}` has no such field", self.id),
                );
            }
        }
    }
}

/// Cascad's services, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CascadServices {
    services: Vec<CascadService>,
}

/// Why no single service can pay a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceChoiceError {
    /// No service pays the currency in the country (by the method asked for).
    NoService,
    /// Several do, and the request does not say which method: these are the choices.
    Ambiguous(Vec<PayoutMethodKind>),
}

impl CascadServices {
    /// A catalogue: ids unique, and no two services a request could not tell apart (same
    /// currency and method in a common country).
    pub fn new(services: Vec<CascadService>) -> Result<CascadServices, ServiceError> {
        if services.len() > MAX_SERVICES {
            return Err(ServiceError::TooMany(services.len()));
        }
        for (i, a) in services.iter().enumerate() {
            for b in &services[..i] {
                if a.id == b.id {
                    return Err(ServiceError::Service {
                        id: a.id.clone(),
                        why: "configured twice".to_owned(),
                    });
                }
                let shared_country =
                    a.countries.is_empty() || b.countries.is_empty() || !a.countries.is_disjoint(&b.countries);
                if a.currency == b.currency && a.method == b.method && shared_country {
                    return Err(ServiceError::Service {
                        id: a.id.clone(),
                        why: format!(
                            "`{}` also pays {} by {}: a request could not choose between them",
                            b.id,
                            a.currency,
                            a.method.map_or("an unnamed method", PayoutMethodKind::as_str)
                        ),
                    });
                }
            }
        }
        Ok(CascadServices { services })
    }

    /// Every service, in configuration order.
    pub fn all(&self) -> &[CascadService] {
        &self.services
    }

    /// A service by its code.
    pub fn get(&self, id: &str) -> Option<&CascadService> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The services paying `currency` in `country`.
    pub fn paying(&self, country: Country, currency: Currency) -> impl Iterator<Item = &CascadService> {
        self.services.iter().filter(move |s| s.pays(country, currency))
    }

    /// The one service for a payout of `currency` in `country` by `method` (any method when
    /// `None`, as long as only one service pays it).
    pub fn choose(
        &self,
        country: Country,
        currency: Currency,
        method: Option<PayoutMethodKind>,
    ) -> Result<&CascadService, ServiceChoiceError> {
        let mut matching = self
            .paying(country, currency)
            .filter(|s| method.is_none() || s.method == method);
        match (matching.next(), matching.next()) {
            (None, _) => Err(ServiceChoiceError::NoService),
            (Some(one), None) => Ok(one),
            (Some(_), Some(_)) => Err(ServiceChoiceError::Ambiguous(
                self.paying(country, currency)
                    .filter_map(|s| s.method)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )),
        }
    }
}

/// A catalogue that cannot be used. Messages name the service, field or regexp at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// A service code that is not 1 to 64 lowercase letters, digits, `_` or `-`.
    #[error("cascad service `{0}`: not a service code")]
    Id(String),
    /// A field key that is not 1 to 64 letters, digits or `_`.
    #[error("cascad service field `{0}`: not a field key")]
    Key(String),
    /// A field source that is no beneficiary attribute.
    #[error(
        "`{0}` is not a beneficiary attribute (name, last_name, full_name, document_type, document_id, email, phone, bank_code, bank_branch, bank_account, card_number, account_type, address, city, postal_code, birthdate or extra_fields.<key>)"
    )]
    Source(String),
    /// A regexp that does not compile, or is escaped twice.
    #[error("regexp `{regexp}`: {why}")]
    Regexp {
        /// The regexp (its first 120 characters).
        regexp: String,
        /// What is wrong.
        why: String,
    },
    /// A service that breaks a rule of the catalogue.
    #[error("cascad service `{id}`: {why}")]
    Service {
        /// The service.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// Too many services.
    #[error("{0} cascad services configured; at most {MAX_SERVICES}")]
    TooMany(usize),
}
