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
//!              "services": {"USD": "test_usd"}, "auto_process": false, "account_field": "account"},
//!   "http":   {"connect_timeout_ms": 5000, "request_timeout_ms": 30000}
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use cashout_core::money::Currency;
use cashout_core::signing::ProviderSecret;
use secrecy::SecretString;
use serde::Deserialize;

use crate::config::{CascadConfig, D24Config, HttpConfig, ProvidersConfig};

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
    services: Option<BTreeMap<Currency, String>>,
    #[serde(default)]
    auto_process: bool,
    account_field: Option<String>,
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
        Ok(ProvidersConfig {
            d24: s.d24.map(d24),
            onspot: s.onspot.map(d24),
            tupay: s.tupay.map(d24),
            cascad: s.cascad.map(|c| CascadConfig {
                base_url: c.base_url,
                account_id: c.account_id,
                api_key: SecretString::from(c.api_key),
                callback_secret: ProviderSecret::new(c.callback_secret),
                public_key: c.public_key,
                services: c.services.unwrap_or_else(CascadConfig::test_services),
                auto_process: c.auto_process,
                account_field: c.account_field.unwrap_or_else(|| "account".to_owned()),
            }),
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
        assert_eq!(
            cascad.services.get(&Currency::USD).map(String::as_str),
            Some("bank_usd")
        );
        assert_eq!(cascad.account_field, "account");
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
}
