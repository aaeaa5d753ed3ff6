//! Which provider pays a request, and what each provider needs from the beneficiary.
//!
//! The coverage table is deliberately small and in one place: it is what the simulators and the
//! documented provider rules support. A deployment with other contracts changes it here.

use crate::money::Currency;
use crate::party::{Beneficiary, Country};
use crate::provider::ProviderName;
use crate::validation::ValidationErrors;

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

/// Currencies Cascad's payout services are configured for (any beneficiary country).
const CASCAD_CURRENCIES: &[Currency] = &[Currency::USD, Currency::EUR, Currency::GBP];

/// Whether `provider` can pay `currency` in `country`.
pub fn covers(provider: ProviderName, country: Country, currency: Currency) -> bool {
    match provider {
        ProviderName::D24 | ProviderName::Onspot => D24_COVERAGE
            .iter()
            .any(|(c, cur)| *c == country.code() && *cur == currency),
        ProviderName::Tupay => country.code() == "PE" && matches!(currency, Currency::PEN | Currency::USD),
        ProviderName::Cascad => CASCAD_CURRENCIES.contains(&currency),
    }
}

/// Every provider able to pay `currency` in `country`, in routing preference order.
pub fn candidates(country: Country, currency: Currency) -> Vec<ProviderName> {
    [
        ProviderName::Tupay,
        ProviderName::D24,
        ProviderName::Onspot,
        ProviderName::Cascad,
    ]
    .into_iter()
    .filter(|p| covers(*p, country, currency))
    .collect()
}

/// The provider used when the merchant names none: Tupay in Peru, D24 for its Latin American
/// pairs, Cascad for its currencies elsewhere. Onspot is only used when asked for.
pub fn default_provider(country: Country, currency: Currency) -> Option<ProviderName> {
    candidates(country, currency)
        .into_iter()
        .find(|p| *p != ProviderName::Onspot)
}

/// Checks the beneficiary against what `provider`'s create call requires, so that a request the
/// provider would decline for missing or malformed data is refused at creation instead.
pub fn check_beneficiary(provider: ProviderName, beneficiary: &Beneficiary, errors: &mut ValidationErrors) {
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
        ProviderName::Cascad => {
            // The default Cascad service (`test_usd` shape in the docs) pays to an `account` of
            // 1 to 15 digits.
            match &beneficiary.bank_account {
                None => errors.push(
                    "beneficiary.bank_account",
                    "required",
                    "cascad requires an account number",
                ),
                Some(a) if !(1..=15).contains(&a.expose().len()) || !a.expose().bytes().all(|b| b.is_ascii_digit()) => {
                    errors.push(
                        "beneficiary.bank_account",
                        "invalid",
                        "cascad accounts are 1 to 15 digits",
                    )
                }
                Some(_) => {}
            }
        }
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
mod tests {
    use super::*;

    fn country(c: &str) -> Country {
        c.parse().unwrap()
    }

    #[test]
    fn default_routes() {
        assert_eq!(
            default_provider(country("PE"), Currency::PEN),
            Some(ProviderName::Tupay)
        );
        assert_eq!(
            default_provider(country("PE"), Currency::USD),
            Some(ProviderName::Tupay)
        );
        assert_eq!(default_provider(country("BR"), Currency::BRL), Some(ProviderName::D24));
        assert_eq!(default_provider(country("MX"), Currency::MXN), Some(ProviderName::D24));
        assert_eq!(
            default_provider(country("US"), Currency::USD),
            Some(ProviderName::Cascad)
        );
        assert_eq!(default_provider(country("BR"), Currency::JPY), None);
        assert!(candidates(country("BR"), Currency::BRL).contains(&ProviderName::Onspot));
    }

    #[test]
    fn coverage_is_checked_for_explicit_providers() {
        assert!(covers(ProviderName::Onspot, country("CL"), Currency::CLP));
        assert!(!covers(ProviderName::Tupay, country("BR"), Currency::BRL));
        assert!(!covers(ProviderName::D24, country("BR"), Currency::USD));
        assert!(!covers(ProviderName::Cascad, country("BR"), Currency::BRL));
    }
}
