//! Cascad (Corefy/PayCore): payouts by reference. Basic auth (commerce account id + API key),
//! payout invoices created (JSON:API) then processed (or `auto_process`), lookups by id and by
//! `filter[reference_id]`, the cursor list, services and the pre-request, and callbacks checked
//! with `X-Signature`.
//!
//! Every HTTP status follows seed 003's directives table. Creation is done only on HTTP 201; 409
//! means the invoice exists: the one the body carries (or, failing that, the reference's) is
//! adopted. A 400 is not final: the reference is looked up first, and only when Cascad holds
//! nothing for it is the create refused. 5xx, a timeout or a dropped connection after a create is
//! ambiguous (the caller looks the reference up before any new create). A 404 on the reference
//! lookup means no invoice. The process call is never retried blind: after a failure the
//! invoice is read again, and one left `created` is processed when it is next looked at, so a
//! payout never stalls; reconciliation's reads (`record`, `list_records`) only read.
//! Cascad documents no cancel operation: cancelling is refused with `InvalidState`.
//!
//! The payout service of a create is the one chosen at creation (`PayoutOrder::service`) from
//! the configured services ([`services`], the deployment's settings); its `fields` are read from
//! the beneficiary as the service says, and the beneficiary is checked against the service's
//! `required` and `regexp` once more before anything is sent. `options` and `test_mode` are sent
//! only when configured, `customer` only when the beneficiary has a `reference_id`, `metadata`
//! only when the request has some.

mod callbacks;
mod invoices;
mod mapping;
mod methods;
pub mod services;
mod transformers;

use std::sync::Arc;

use cashout_core::ports::{ProviderError, ProviderErrorKind};
use cashout_core::provider::{ProviderName, ProviderPayout};
use cashout_core::routing::{CascadService, CascadServices};
use cashout_core::signing::ProviderSecret;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{CascadConfig, CascadOptions, ConfigError};
use crate::http::{Http, HttpRequest, Reply, body_excerpt, excerpt};
use transformers::ErrorDoc;

const CASCAD: ProviderName = ProviderName::Cascad;

/// A page of the payout invoice list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    /// The invoices, newest first.
    pub payouts: Vec<ProviderPayout>,
    /// The cursor of the next (older) page, if any.
    pub next: Option<String>,
}

/// A payout service of the account (`GET /payout-services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutService {
    /// Account service id (`comcpos_…`).
    pub id: String,
    /// Service code (`test_usd`).
    pub code: String,
    /// Payout method (`test`, `swift`).
    pub method: Option<String>,
    /// Currency paid out.
    pub currency: Option<String>,
    /// Whether it can be used now (available and enabled).
    pub usable: bool,
    /// Smallest amount, decimal text.
    pub amount_min: Option<String>,
    /// Largest amount, decimal text.
    pub amount_max: Option<String>,
}

/// The Cascad API client.
pub struct CascadClient {
    base_url: String,
    account_id: String,
    api_key: SecretString,
    callback_secret: ProviderSecret,
    public_key: String,
    services: CascadServices,
    options: CascadOptions,
    test_mode: Option<bool>,
    http: Arc<Http>,
}

impl std::fmt::Debug for CascadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadClient")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field(
                "services",
                &self.services.all().iter().map(CascadService::id).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .field("test_mode", &self.test_mode)
            .finish_non_exhaustive()
    }
}

fn error(kind: ProviderErrorKind, message: impl Into<String>) -> ProviderError {
    ProviderError::new(CASCAD, kind, message)
}

/// Which kind of call failed: it decides what a 5xx or a lost answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Other,
}

impl CascadClient {
    pub(crate) fn new(config: CascadConfig, http: Arc<Http>) -> Result<CascadClient, ConfigError> {
        let base_url = crate::checked_base_url(CASCAD, &config.base_url)?;
        let credential = |what| ConfigError::Credential { provider: CASCAD, what };
        if config.account_id.is_empty() || config.api_key.expose_secret().is_empty() {
            return Err(credential("the account id and API key are required"));
        }
        if config.callback_secret.expose().is_empty() {
            return Err(credential("the callback secret is empty"));
        }
        Ok(CascadClient {
            base_url,
            account_id: config.account_id,
            api_key: config.api_key,
            callback_secret: config.callback_secret,
            public_key: config.public_key,
            services: config.services,
            options: config.options,
            test_mode: config.test_mode,
            http,
        })
    }

    fn private(&self, method: Method, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{path}", self.base_url))
            .basic_auth(&self.account_id, self.api_key.expose_secret())
            .header("accept", "application/json")
    }

    /// Classifies an answer that is not the expected success.
    fn failure(call: Call, reply: &Reply) -> ProviderError {
        let detail = serde_json::from_slice::<ErrorDoc>(&reply.body)
            .map(|d| d.summary())
            .unwrap_or_else(|_| body_excerpt(&reply.body));
        let status = reply.status.as_u16();
        let kind = match status {
            429 => ProviderErrorKind::Retryable {
                retry_after: reply.retry_after,
            },
            500..=599 => match call {
                // The directive: check the status by reference before creating again.
                Call::Create => ProviderErrorKind::Ambiguous,
                Call::Other => ProviderErrorKind::Retryable {
                    retry_after: reply.retry_after,
                },
            },
            400 | 422 => ProviderErrorKind::Declined,
            401 | 402 | 403 | 405 => ProviderErrorKind::Configuration,
            404 => match call {
                // A create answered 404: the URL or the account is wrong.
                Call::Create => ProviderErrorKind::Configuration,
                Call::Other => ProviderErrorKind::NotFound,
            },
            409 => ProviderErrorKind::InvalidState,
            408 => ProviderErrorKind::Retryable { retry_after: None },
            _ => ProviderErrorKind::Protocol,
        };
        error(kind, format!("HTTP {status}: {}", excerpt(&detail))).with_code(status.to_string())
    }
}

#[cfg(test)]
mod tests;
