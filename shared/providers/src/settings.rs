//! Provider settings as a deployment stores them: one JSON document (an SSM `SecureString` on
//! AWS, a file or variable locally), read into a [`ProvidersConfig`]. Providers left out are not
//! configured; unknown fields are refused so that a typo is not silently ignored.
//!
//! ```json
//! {
//!   "d24":    {"base_url": "https://api-stg.directa24.com", "login": "…", "pass": "…", "api_secret": "…"},
//!   "tupay":  {"base_url": "https://api-stg.tupayonline.com", "login": "…", "pass": "…", "api_secret": "…"},
//!   "cascad": {"base_url": "https://…/api", "account_id": "coma_…", "api_key": "sk_test_…",
//!              "callback_secret": "…", "public_key": "pk_test_…",
//!              "services": [
//!                {"id": "card", "currency": "USD", "method": "card",
//!                 "fields": [{"key": "card_number", "required": true, "regexp": "^\\d{16}$"}]},
//!                {"id": "bank_transfer_zar", "currency": "ZAR", "method": "bank_transfer", "countries": ["ZA"],
//!                 "amount_min": "0.01", "amount_max": "1000000",
//!                 "fields": [{"key": "beneficiary_name", "from": "full_name", "required": true},
//!                            {"key": "account_number", "from": "bank_account", "required": true, "regexp": "^\\d{6,16}$"},
//!                            {"key": "branch_code", "from": "bank_branch", "required": true, "regexp": "^\\d{6}$"}]},
//!                "test_usd"
//!              ],
//!              "options": {"auto_process": false}, "test_mode": true},
//!   "http":   {"connect_timeout_ms": 5000, "request_timeout_ms": 30000}
//! }
//! ```
//!
//! Cascad's `services` are the account's payout services as its pre-request lists them
//! (`POST /payout-prerequest`): per service its code (`id`), `currency`, `method` (`card` or
//! Cascad's `payment_card`, `bank_transfer`, `swift`, `test`), optionally `countries`,
//! `amount_min`, `amount_max`, and its `fields`: `key`, `required`, `regexp` (written once
//! escaped in JSON, `"^\\d{16}$"`, not as seed 003 prints them) and `from`, the beneficiary
//! attribute that fills it (`card_number`, `bank_account`, `full_name`…, or
//! `extra_fields.<key>`; by default the attribute named like the key, `bank_account` for
//! `account_field`, else `extra_fields.<key>`). A service of cashout's own table (`test_usd`,
//! `test_eur`, `test_gbp`, `card`, `bank_transfer_zar`, `swift_jpy`) can be named by its code
//! alone. The earlier form, one service code per currency (`{"USD": "test_usd"}`), is still
//! read: a known code gets its definition, another one a service whose only field is
//! `account_field` (default `account`), required, from `bank_account`. Without `services`:
//! the test services. Every regexp is compiled here; one that does not compile, or that is
//! escaped twice, is an error at start-up.
//!
//! `options` (`split_mode`, `parallel_mode`, `allow_partially`, `auto_process`) and
//! `test_mode` are sent with every create only when configured; `auto_process` at the top
//! level is the earlier spelling of `options.auto_process`.

use std::collections::BTreeMap;
use std::time::Duration;

use cashout_core::money::{Currency, DecimalInput};
use cashout_core::party::Country;
use cashout_core::routing::{BeneficiaryField, CascadService, CascadServices, PayoutMethodKind, ServiceField};
use cashout_core::signing::ProviderSecret;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::{CascadConfig, CascadOptions, D24Config, HttpConfig, ProvidersConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    d24: Option<D24Settings>,
    onspot: Option<D24Settings>,
    tupay: Option<D24Settings>,
    cascad: Option<CascadSettings>,
    #[serde(default)]
    http: HttpSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct D24Settings {
    base_url: String,
    login: String,
    pass: String,
    api_secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CascadSettings {
    base_url: String,
    account_id: String,
    api_key: String,
    callback_secret: String,
    public_key: String,
    /// A list of services, or the earlier currency → code map (read in [`cascad_services`]).
    services: Option<Box<RawValue>>,
    #[serde(default)]
    options: OptionsSettings,
    test_mode: Option<bool>,
    /// The earlier spelling of `options.auto_process`.
    auto_process: Option<bool>,
    account_field: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsSettings {
    split_mode: Option<bool>,
    parallel_mode: Option<bool>,
    allow_partially: Option<bool>,
    auto_process: Option<bool>,
}

/// A service defined in the list (read from its own JSON text, so that amounts are read
/// exactly and a typo is named).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSettings {
    id: String,
    currency: Currency,
    method: Option<String>,
    #[serde(default)]
    countries: Vec<Country>,
    amount_min: Option<DecimalInput>,
    amount_max: Option<DecimalInput>,
    #[serde(default)]
    fields: Vec<FieldSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSettings {
    key: String,
    from: Option<String>,
    #[serde(default)]
    required: bool,
    regexp: Option<String>,
}

/// Reads Cascad's `services` (see the module documentation).
fn cascad_services(raw: Option<&RawValue>, account_field: &str) -> Result<CascadServices, SettingsError> {
    let Some(raw) = raw else {
        return Ok(CascadConfig::test_services());
    };
    let fail = |e: cashout_core::routing::ServiceError| SettingsError(format!("cascad services: {e}"));
    let read = |e: serde_json::Error| SettingsError(format!("cascad services: {}", describe(&e)));
    let services = if raw.get().trim_start().starts_with('{') {
        let map: BTreeMap<Currency, String> = serde_json::from_str(raw.get()).map_err(read)?;
        map.into_iter()
            .map(|(currency, id)| legacy_service(currency, &id, account_field).map_err(fail))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        // Each entry is a code (one of cashout's table) or a whole definition.
        let list: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).map_err(read)?;
        let mut services = Vec::with_capacity(list.len());
        for entry in list {
            services.push(if entry.get().starts_with('"') {
                let id: String = serde_json::from_str(entry.get()).map_err(read)?;
                crate::cascad::services::known(&id)
                    .ok_or_else(|| {
                        SettingsError(format!(
                            "cascad services: `{}` is not a service cashout knows: define it (id, currency, method, fields)",
                            id.chars().take(64).collect::<String>()
                        ))
                    })?
                    .map_err(fail)?
            } else {
                defined_service(serde_json::from_str(entry.get()).map_err(read)?, account_field)?
            });
        }
        services
    };
    CascadServices::new(services).map_err(fail)
}

/// One code per currency, the earlier form: a known code gets its definition (which must pay
/// that currency), another one a service whose only field is `account_field`.
fn legacy_service(
    currency: Currency,
    id: &str,
    account_field: &str,
) -> Result<CascadService, cashout_core::routing::ServiceError> {
    if let Some(known) = crate::cascad::services::known(id) {
        let known = known?;
        if known.currency() == currency {
            return Ok(known);
        }
    }
    CascadService::new(
        id,
        currency,
        None,
        vec![ServiceField::new(
            account_field,
            BeneficiaryField::BankAccount,
            true,
            None,
        )?],
    )
}

fn defined_service(s: ServiceSettings, account_field: &str) -> Result<CascadService, SettingsError> {
    let fail = |e: cashout_core::routing::ServiceError| SettingsError(format!("cascad services: {e}"));
    let method = s
        .method
        .as_deref()
        .map(|m| {
            PayoutMethodKind::from_cascad_method(m).ok_or_else(|| {
                SettingsError(format!(
                    "cascad service `{}`: method `{}` is not card (payment_card), bank_transfer, swift or test",
                    s.id,
                    m.chars().take(32).collect::<String>()
                ))
            })
        })
        .transpose()?;
    let fields = s
        .fields
        .iter()
        .map(|f| {
            let source = match &f.from {
                Some(from) => BeneficiaryField::parse(from).map_err(fail)?,
                None => BeneficiaryField::for_key(&f.key, account_field),
            };
            ServiceField::new(&f.key, source, f.required, f.regexp.as_deref()).map_err(fail)
        })
        .collect::<Result<Vec<_>, _>>()?;
    CascadService::new(&s.id, s.currency, method, fields)
        .and_then(|service| service.with_limits(s.amount_min.map(|d| d.0), s.amount_max.map(|d| d.0)))
        .map(|service| service.with_countries(s.countries))
        .map_err(fail)
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSettings {
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    read_retries: Option<u32>,
}

/// Settings that cannot be read. The message never contains a secret value.
#[derive(Debug, thiserror::Error)]
#[error("provider settings: {0}")]
pub struct SettingsError(String);

impl ProvidersConfig {
    /// Reads the JSON settings document (see the module documentation).
    pub fn from_json(text: &str) -> Result<ProvidersConfig, SettingsError> {
        let s: Settings = serde_json::from_str(text).map_err(|e| SettingsError(describe(&e)))?;
        let d24 = |d: D24Settings| D24Config {
            base_url: d.base_url,
            login: d.login,
            pass: SecretString::from(d.pass),
            api_secret: ProviderSecret::new(d.api_secret),
        };
        let defaults = HttpConfig::default();
        let cascad = s
            .cascad
            .map(|c| -> Result<CascadConfig, SettingsError> {
                let account_field = c.account_field.as_deref().unwrap_or("account");
                if c.auto_process.is_some() && c.options.auto_process.is_some() {
                    return Err(SettingsError(
                        "cascad: auto_process is given twice (top level and options)".into(),
                    ));
                }
                Ok(CascadConfig {
                    services: cascad_services(c.services.as_deref(), account_field)?,
                    base_url: c.base_url,
                    account_id: c.account_id,
                    api_key: SecretString::from(c.api_key),
                    callback_secret: ProviderSecret::new(c.callback_secret),
                    public_key: c.public_key,
                    options: CascadOptions {
                        split_mode: c.options.split_mode,
                        parallel_mode: c.options.parallel_mode,
                        allow_partially: c.options.allow_partially,
                        auto_process: c.options.auto_process.or(c.auto_process),
                    },
                    test_mode: c.test_mode,
                })
            })
            .transpose()?;
        Ok(ProvidersConfig {
            d24: s.d24.map(d24),
            onspot: s.onspot.map(d24),
            tupay: s.tupay.map(d24),
            cascad,
            http: HttpConfig {
                connect_timeout: s
                    .http
                    .connect_timeout_ms
                    .map_or(defaults.connect_timeout, Duration::from_millis),
                request_timeout: s
                    .http
                    .request_timeout_ms
                    .map_or(defaults.request_timeout, Duration::from_millis),
                read_retries: s.http.read_retries.unwrap_or(defaults.read_retries),
                ..defaults
            },
        })
    }
}

/// What is wrong, without quoting any value: serde's type errors quote the value they met
/// (`invalid type: string "…"`), which could be a secret in the wrong place. Messages about field
/// names are kept; the rest becomes the position and the kind of problem.
fn describe(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        return message;
    }
    let kind = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not valid JSON",
        serde_json::error::Category::Data => "a value of the wrong type or form",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_every_provider_and_refuse_typos() {
        let text = r#"{
            "d24": {"base_url": "https://api-stg.directa24.com", "login": "l", "pass": "p", "api_secret": "s3cr3t"},
            "cascad": {"base_url": "https://cascad.example/api", "account_id": "coma_1", "api_key": "sk_test_1",
                       "callback_secret": "cb", "public_key": "pk_test_1", "services": {"USD": "bank_usd"}},
            "http": {"request_timeout_ms": 10000}
        }"#;
        let c = ProvidersConfig::from_json(text).unwrap();
        assert_eq!(c.d24.as_ref().unwrap().base_url, "https://api-stg.directa24.com");
        assert!(c.onspot.is_none() && c.tupay.is_none());
        let cascad = c.cascad.as_ref().unwrap();
        let bank_usd = cascad.services.get("bank_usd").unwrap();
        assert_eq!((bank_usd.currency(), bank_usd.method()), (Currency::USD, None));
        assert_eq!(bank_usd.fields()[0].key(), "account");
        assert_eq!(bank_usd.fields()[0].source(), &BeneficiaryField::BankAccount);
        assert_eq!(cascad.options, CascadOptions::default(), "no options unless configured");
        assert_eq!(cascad.test_mode, None);
        assert_eq!(c.http.request_timeout, Duration::from_secs(10));
        assert!(!format!("{c:?}").contains("s3cr3t"), "secrets never print");

        let typo = r#"{"d24": {"base_url": "x", "login": "l", "password": "p", "api_secret": "s3cr3t"}}"#;
        let err = ProvidersConfig::from_json(typo).unwrap_err().to_string();
        assert!(err.contains("password") && !err.contains("s3cr3t"), "{err}");
        // A secret where a structure belongs is not repeated in the error.
        let misplaced = r#"{"cascad": "sk_live_s3cr3t"}"#;
        let err = ProvidersConfig::from_json(misplaced).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t") && err.contains("line 1"), "{err}");
    }

    fn cascad_with(services: &str) -> String {
        format!(
            r#"{{"cascad": {{"base_url": "https://cascad.example/api", "account_id": "coma_1", "api_key": "sk_test_1",
                "callback_secret": "cb", "public_key": "pk_test_1", "services": {services}}}}}"#
        )
    }

    #[test]
    fn cascad_services_are_read_with_their_fields_and_compiled() {
        let text = cascad_with(
            r#"[
                {"id": "card", "currency": "USD", "method": "payment_card",
                 "fields": [{"key": "card_number", "required": true, "regexp": "^\\d{16}$"}]},
                {"id": "sepa_eur", "currency": "EUR", "method": "bank_transfer", "countries": ["DE", "FR"],
                 "amount_min": 1, "amount_max": "15000.50",
                 "fields": [{"key": "iban", "from": "bank_account", "required": true, "regexp": "^[A-Z]{2}\\d{2}[A-Z0-9]{10,30}$"},
                            {"key": "bic", "regexp": "^[A-Z]{6}[A-Z0-9]{2,5}$"},
                            {"key": "holder", "from": "full_name", "required": true}]},
                "test_usd"
            ]"#,
        );
        let c = ProvidersConfig::from_json(&text).unwrap();
        let services = &c.cascad.as_ref().unwrap().services;
        let ids: Vec<_> = services.all().iter().map(|s| s.id()).collect();
        assert_eq!(ids, ["card", "sepa_eur", "test_usd"]);
        let card = services.get("card").unwrap();
        assert_eq!(card.method(), Some(PayoutMethodKind::Card));
        assert_eq!(card.fields()[0].source(), &BeneficiaryField::CardNumber);
        assert_eq!(card.fields()[0].regexp(), Some(r"^\d{16}$"));
        let sepa = services.get("sepa_eur").unwrap();
        assert_eq!(sepa.amount_max().unwrap().to_string(), "15000.50");
        assert_eq!(sepa.countries().len(), 2);
        let bic = &sepa.fields()[1];
        assert_eq!(
            (bic.source(), bic.required()),
            (&BeneficiaryField::Extra("bic".into()), false)
        );
        let coverage = c.coverage();
        assert!(coverage.covers(
            cashout_core::provider::ProviderName::Cascad,
            "FR".parse().unwrap(),
            Currency::EUR
        ));
        assert!(!coverage.covers(
            cashout_core::provider::ProviderName::Cascad,
            "US".parse().unwrap(),
            Currency::EUR
        ));
    }

    #[test]
    fn bad_cascad_services_are_errors_at_start_up_not_panics() {
        for (services, expect) in [
            (
                r#"[{"id": "card", "currency": "USD", "method": "card", "fields": [{"key": "card_number", "regexp": "^(\\d"}]}]"#,
                "regexp",
            ),
            // Copied from seed 003 as printed: escaped twice.
            (
                r#"[{"id": "t", "currency": "USD", "method": "test", "fields": [{"key": "account", "regexp": "^\\\\d{1,15}$"}]}]"#,
                "escaped twice",
            ),
            (r#"[{"id": "card", "currency": "USD", "method": "pigeon"}]"#, "pigeon"),
            (
                r#"[{"id": "card", "currency": "USD", "method": "card", "fields": [{"key": "n", "from": "iban"}]}]"#,
                "iban",
            ),
            (
                r#"[{"id": "card", "currency": "USD", "method": "card", "fields": [{"key": "card_number", "regex": "x"}]}]"#,
                "unknown field",
            ),
            (r#"["card", "card"]"#, "twice"),
            (r#"["paypal_usd"]"#, "paypal_usd"),
            (
                r#"[{"id": "a", "currency": "USD", "method": "card"}, {"id": "b", "currency": "USD", "method": "card"}]"#,
                "could not choose",
            ),
            (
                r#"[{"id": "a", "currency": "USD", "method": "card", "amount_min": "10", "amount_max": "1"}]"#,
                "amount_min",
            ),
        ] {
            let err = ProvidersConfig::from_json(&cascad_with(services))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{services}: {err}");
        }
    }

    #[test]
    fn the_earlier_currency_map_and_auto_process_are_still_read() {
        let text = r#"{"cascad": {"base_url": "https://cascad.example/api", "account_id": "coma_1", "api_key": "sk_test_1",
            "callback_secret": "cb", "public_key": "pk_test_1", "services": {"USD": "test_usd", "EUR": "sepa_eur"},
            "auto_process": true, "account_field": "iban"}}"#;
        let c = ProvidersConfig::from_json(text).unwrap();
        let cascad = c.cascad.unwrap();
        assert_eq!(cascad.options.auto_process, Some(true));
        let test_usd = cascad.services.get("test_usd").unwrap();
        assert_eq!(
            test_usd.method(),
            Some(PayoutMethodKind::Test),
            "a known code gets its definition"
        );
        assert_eq!(test_usd.fields().len(), 4);
        let sepa = cascad.services.get("sepa_eur").unwrap();
        assert_eq!(sepa.fields()[0].key(), "iban");
        let without = r#"{"cascad": {"base_url": "https://cascad.example/api", "account_id": "coma_1", "api_key": "sk_test_1",
            "callback_secret": "cb", "public_key": "pk_test_1"}}"#;
        let no_services = ProvidersConfig::from_json(without).unwrap().cascad.unwrap();
        let ids: Vec<_> = no_services.services.all().iter().map(|s| s.id().to_owned()).collect();
        assert_eq!(ids, ["test_usd", "test_eur", "test_gbp"]);
    }

    #[test]
    fn the_documented_settings_read() {
        // infra/local.env (cargo lambda watch against the simulator): every simulator service.
        let env = include_str!("../../../infra/local.env");
        let line = env.lines().find_map(|l| l.strip_prefix("CASHOUT_PROVIDERS='")).unwrap();
        let c = ProvidersConfig::from_json(line.trim_end_matches('\'')).unwrap();
        assert_eq!(
            c.cascad.unwrap().services,
            CascadConfig::simulator_services(),
            "infra/local.env offers what the simulator offers"
        );
        // docs/deploy.md's example.
        let doc = include_str!("../../../docs/deploy.md");
        let start = doc.find("cat > providers.json <<'EOF'\n").unwrap() + "cat > providers.json <<'EOF'\n".len();
        let end = start + doc[start..].find("\nEOF").unwrap();
        let c = ProvidersConfig::from_json(&doc[start..end].replace('…', "x")).unwrap();
        let ids: Vec<_> = c
            .cascad
            .unwrap()
            .services
            .all()
            .iter()
            .map(|s| s.id().to_owned())
            .collect();
        assert_eq!(ids, ["card", "test_usd"]);
    }
}
