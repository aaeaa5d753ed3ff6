//! The Cascad payout services cashout knows without being told: seed 003's test services and
//! its production-shaped ones (`card`, `bank_transfer_zar`, `swift_jpy`), as the simulator
//! offers them. A deployment lists its account's services in its settings (`services`, see
//! `settings.rs`); these are the defaults for the simulator and the local runner, and the
//! definitions a settings file that names a service by its code only (`{"USD": "test_usd"}`)
//! gets.
//!
//! Seed 003 prints its regexps escaped twice (`"^\\\\d{1,15}$"`, line 51: a literal backslash
//! before `d`, which no account would match): they are written here once unescaped.

use cashout_core::money::Currency;
use cashout_core::routing::{
    BeneficiaryField, CascadService, CascadServices, PayoutMethodKind, ServiceError, ServiceField,
};
use rust_decimal::Decimal;

/// `^\d{1,15}$`: seed 003 lines 51 and 69.
const DIGITS_1_15: &str = r"^\d{1,15}$";
/// `^[A-Z\-\sa-z]{2,64}$`: seed 003 lines 87 and 105.
const WORDS_2_64: &str = r"^[A-Z\-\sa-z]{2,64}$";
/// A name as the simulator's bank services ask for it (not in seed 003).
const LATIN_NAME: &str = r"^[A-Za-z][A-Za-z .,'\-]{1,69}$";

fn field(key: &str, source: BeneficiaryField, required: bool, regexp: &str) -> Result<ServiceField, ServiceError> {
    ServiceField::new(key, source, required, Some(regexp))
}

fn decimal(text: &str) -> Option<Decimal> {
    cashout_core::money::parse_decimal(text).ok()
}

/// A `test_*` service: seed 003's pre-request sample (lines 32–113) for `test_usd`: the
/// account (required, line 38–53) and the three test details (optional, lines 55–107), amounts
/// 0.01 to 9,999,999 (lines 110–111). `test_eur` and `test_gbp` are its twins.
fn test_service(id: &str, currency: Currency) -> Result<CascadService, ServiceError> {
    let extra = |key: &str| BeneficiaryField::Extra(key.to_owned());
    CascadService::new(
        id,
        currency,
        Some(PayoutMethodKind::Test),
        vec![
            field("account", BeneficiaryField::BankAccount, true, DIGITS_1_15)?,
            field(
                "test_details_success_rate",
                extra("test_details_success_rate"),
                false,
                DIGITS_1_15,
            )?,
            field(
                "test_details_payout_status",
                extra("test_details_payout_status"),
                false,
                WORDS_2_64,
            )?,
            field(
                "test_details_payout_resolution",
                extra("test_details_payout_resolution"),
                false,
                WORDS_2_64,
            )?,
        ],
    )?
    .with_limits(decimal("0.01"), decimal("9999999"))
}

/// The services of one definition, by code (`test_usd`, `card`…), if it is one of these.
pub(crate) fn known(id: &str) -> Option<Result<CascadService, ServiceError>> {
    Some(match id {
        "test_usd" => test_service(id, Currency::USD),
        "test_eur" => test_service(id, Currency::EUR),
        "test_gbp" => test_service(id, Currency::GBP),
        "card" => card(),
        "bank_transfer_zar" => bank_transfer_zar(),
        "swift_jpy" => swift_jpy(),
        _ => return None,
    })
}

/// `card`: seed 003's create example (lines 331–339) pays `service: card` in USD to
/// `fields.card_number` `5123817234060000`; its method is `payment_card` (line 408). The field's
/// rule is not shown: sixteen digits, required. Its limits are not shown either: none here
/// (Cascad applies its own).
fn card() -> Result<CascadService, ServiceError> {
    CascadService::new(
        "card",
        Currency::USD,
        Some(PayoutMethodKind::Card),
        vec![field("card_number", BeneficiaryField::CardNumber, true, r"^\d{16}$")?],
    )
}

/// `bank_transfer_zar`: seed 003's service list (lines 208–215): method `bank_transfer`,
/// service currency ZAR, 0.01 to 1,000,000. Its fields are not in the seed: the simulator's (the
/// beneficiary's name, a 6–16 digit account number, the 6-digit branch code), read from the
/// beneficiary's name, `bank_account` and `bank_branch`. Paid in South Africa only (our choice:
/// a domestic rand transfer).
fn bank_transfer_zar() -> Result<CascadService, ServiceError> {
    let za = "ZA".parse().map_err(|_| ServiceError::Id("ZA".into()))?;
    Ok(CascadService::new(
        "bank_transfer_zar",
        Currency::ZAR,
        Some(PayoutMethodKind::BankTransfer),
        vec![
            field("beneficiary_name", BeneficiaryField::FullName, true, LATIN_NAME)?,
            field("account_number", BeneficiaryField::BankAccount, true, r"^\d{6,16}$")?,
            field("branch_code", BeneficiaryField::BankBranch, true, r"^\d{6}$")?,
        ],
    )?
    .with_limits(decimal("0.01"), decimal("1000000"))?
    .with_countries([za]))
}

/// `swift_jpy`: seed 003's service list (lines 171–178): method `swift`, service currency JPY,
/// 1 to 999,999. Its fields are not in the seed: the simulator's (name, IBAN or account number,
/// BIC), the BIC from `extra_fields.swift_code`.
fn swift_jpy() -> Result<CascadService, ServiceError> {
    CascadService::new(
        "swift_jpy",
        Currency::JPY,
        Some(PayoutMethodKind::Swift),
        vec![
            field("beneficiary_name", BeneficiaryField::FullName, true, LATIN_NAME)?,
            field(
                "account_number",
                BeneficiaryField::BankAccount,
                true,
                r"^[A-Z0-9]{4,34}$",
            )?,
            field(
                "swift_code",
                BeneficiaryField::Extra("swift_code".into()),
                true,
                r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$",
            )?,
        ],
    )?
    .with_limits(decimal("1"), decimal("999999"))
}

fn catalogue(ids: &[&str]) -> Result<CascadServices, ServiceError> {
    let services = ids.iter().filter_map(|id| known(id)).collect::<Result<Vec<_>, _>>()?;
    CascadServices::new(services)
}

/// The built-in tables are tested to build; should one ever fail, Cascad pays nothing (every
/// Cascad request is refused at creation) and the reason is logged, rather than a panic.
fn or_nothing(built: Result<CascadServices, ServiceError>) -> CascadServices {
    built.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a built-in Cascad service does not build: Cascad pays nothing");
        CascadServices::default()
    })
}

/// The test services: `test_usd`, `test_eur`, `test_gbp` (what a settings file without
/// `services` gets, as before services were configurable).
pub fn test_services() -> CascadServices {
    or_nothing(catalogue(&["test_usd", "test_eur", "test_gbp"]))
}

/// Every service the simulator offers: the test services, `card`, `bank_transfer_zar` and
/// `swift_jpy`.
pub fn simulator_services() -> CascadServices {
    or_nothing(catalogue(&SIMULATOR_SERVICES))
}

/// The codes of [`simulator_services`].
const SIMULATOR_SERVICES: [&str; 6] = [
    "test_usd",
    "test_eur",
    "test_gbp",
    "card",
    "bank_transfer_zar",
    "swift_jpy",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_services_build() {
        for id in SIMULATOR_SERVICES {
            assert!(known(id).unwrap().is_ok(), "{id}");
        }
        assert_eq!(catalogue(&["test_usd", "test_eur", "test_gbp"]).unwrap().all().len(), 3);
        assert_eq!(
            catalogue(&[
                "test_usd",
                "test_eur",
                "test_gbp",
                "card",
                "bank_transfer_zar",
                "swift_jpy"
            ])
            .unwrap()
            .all()
            .len(),
            6
        );
        assert!(known("sepa_eur").is_none());
    }
}
