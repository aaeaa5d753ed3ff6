//! The D24 family (D24, Onspot, Tupay): one client, three profiles. URLs, the signed JSON body
//! (`Payload-Signature` over the exact bytes sent), error bodies and their classification, and
//! the conversion of answers and notifications to core types.
//!
//! D24's status endpoint does not return the `cashout_id`. A payout adopted by `external_id`
//! (after a 511 or an ambiguous create) therefore gets the payout id `ext:<external_id>` until a
//! notification names the real one; status calls with such an id query by `external_id`, and
//! cancel (which needs both ids) refuses it with `InvalidState`. A status call by `cashout_id`
//! also sends our `external_id` (seed 001 marks both required), so that its answer confirms the
//! pair: the poller checks a notification's `cashout_id` that way before it replaces the
//! placeholder (notifications are not authenticated).

mod cashouts;
mod mapping;
mod notifications;
mod transformers;

use std::sync::Arc;

use cashout_core::ids::ProviderPayoutId;
use cashout_core::ports::{MethodField, PayoutMethod, PayoutMethodQuery, ProviderError, ProviderErrorKind};
use cashout_core::provider::ProviderName;
use cashout_core::provider::d24::{D24ErrorClass, D24ErrorCode, D24Profile};
use cashout_core::signing::{ProviderSecret, d24_payload_signature};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::{ConfigError, D24Config};
use crate::http::{Http, HttpRequest, Reply, excerpt};
use transformers::{CashoutId, ErrorBody};

/// Which kind of call failed: it decides what a 5xx or a lost answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Other,
}

/// A D24-family API client for one profile.
pub struct D24Client {
    name: ProviderName,
    profile: D24Profile,
    base_url: String,
    login: String,
    pass: SecretString,
    secret: ProviderSecret,
    http: Arc<Http>,
}

impl std::fmt::Debug for D24Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("D24Client")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl D24Client {
    pub(crate) fn new(name: ProviderName, config: D24Config, http: Arc<Http>) -> Result<D24Client, ConfigError> {
        let profile = match name.family() {
            cashout_core::provider::ProviderFamily::D24(p) => p,
            cashout_core::provider::ProviderFamily::Cascad => {
                return Err(ConfigError::Credential {
                    provider: name,
                    what: "not a D24-family provider",
                });
            }
        };
        let base_url = crate::checked_base_url(name, &config.base_url)?;
        let credential = |what| ConfigError::Credential { provider: name, what };
        if config.login.is_empty() || config.login.chars().count() > 32 {
            return Err(credential("login must be 1 to 32 characters"));
        }
        let pass = config.pass.expose_secret();
        if pass.is_empty() || pass.chars().count() > 32 {
            return Err(credential("pass must be 1 to 32 characters"));
        }
        if config.api_secret.expose().is_empty() {
            return Err(credential("the API Signature secret is empty"));
        }
        Ok(D24Client {
            name,
            profile,
            base_url,
            login: config.login,
            pass: config.pass,
            secret: config.api_secret,
            http,
        })
    }

    fn error(&self, kind: ProviderErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError::new(self.name, kind, message)
    }

    /// Sends a signed JSON body. The body holds the pass: it is never logged. A transport
    /// failure means what it means for `call` (a create that may have gone through is ambiguous).
    async fn call(
        &self,
        call: Call,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Reply, ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            self.error(ProviderErrorKind::Protocol, "could not encode the request")
                .with_source(e)
        })?;
        let signature = d24_payload_signature(&self.secret, &bytes);
        let request = HttpRequest::new(method, format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .header("Payload-Signature", signature)
            .body(bytes);
        self.http.send(request).await.map_err(|t| match call {
            Call::Create => t.on_create(self.name),
            Call::Other => t.on_read(self.name),
        })
    }

    /// Classifies an answer that is not the expected success.
    fn failure(&self, call: Call, reply: &Reply) -> ProviderError {
        let body: Option<ErrorBody> = serde_json::from_slice(&reply.body).ok();
        let code = body.as_ref().and_then(ErrorBody::code);
        let text = body
            .as_ref()
            .map(ErrorBody::text)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| crate::http::body_excerpt(&reply.body));
        let message = match code {
            Some(c) => format!("HTTP {} code {c}: {}", reply.status.as_u16(), excerpt(&text)),
            None => format!("HTTP {}: {}", reply.status.as_u16(), excerpt(&text)),
        };
        let kind = if reply.status == StatusCode::TOO_MANY_REQUESTS {
            ProviderErrorKind::Retryable {
                retry_after: reply.retry_after,
            }
        } else if reply.status.is_server_error() {
            // Whatever the body says, a 5xx after a create may hide a created cashout.
            match call {
                Call::Create => ProviderErrorKind::Ambiguous,
                Call::Other => ProviderErrorKind::Retryable {
                    retry_after: reply.retry_after,
                },
            }
        } else if let Some(code) = code {
            match D24ErrorCode::from_code(code).class() {
                D24ErrorClass::DataError => ProviderErrorKind::Declined,
                D24ErrorClass::MerchantConfig => ProviderErrorKind::Configuration,
                D24ErrorClass::Retryable => ProviderErrorKind::Retryable { retry_after: None },
                D24ErrorClass::NotFound => ProviderErrorKind::NotFound,
                D24ErrorClass::InvalidTransition => ProviderErrorKind::InvalidState,
                // Handled by the create itself; anywhere else it is a surprise.
                D24ErrorClass::AlreadyExists => ProviderErrorKind::Protocol,
            }
        } else {
            by_http_status(reply.status)
        };
        let mut e = self.error(kind, message);
        if let Some(c) = code {
            e = e.with_code(c.to_string());
        }
        e
    }

    /// The beneficiary fields the profile needs (D24 has no services: one method).
    pub fn payout_methods(&self, query: &PayoutMethodQuery) -> Vec<PayoutMethod> {
        if !cashout_core::routing::d24_family_covers(self.name, query.country, query.currency) {
            return Vec::new();
        }
        let fields = cashout_core::routing::d24_family_fields(self.name)
            .iter()
            .map(|f| MethodField {
                key: f.key.to_owned(),
                kind: "string".to_owned(),
                regexp: f.regexp.map(str::to_owned),
                required: f.required,
            })
            .collect();
        vec![PayoutMethod {
            provider: self.name,
            method: Some(cashout_core::routing::PayoutMethodKind::BankTransfer),
            service: None,
            amount_min: None,
            amount_max: None,
            fields,
        }]
    }
}

/// Maps an HTTP status without a readable D24 code.
fn by_http_status(status: StatusCode) -> ProviderErrorKind {
    match status.as_u16() {
        400 | 412 | 422 => ProviderErrorKind::Declined,
        401..=405 => ProviderErrorKind::Configuration,
        408 => ProviderErrorKind::Retryable { retry_after: None },
        _ => ProviderErrorKind::Protocol,
    }
}

fn payout_id(text: &str) -> Result<ProviderPayoutId, ProviderError> {
    ProviderPayoutId::new(text).map_err(|e| {
        ProviderError::new(
            ProviderName::D24,
            ProviderErrorKind::Protocol,
            "the provider returned an invalid cashout_id",
        )
        .with_source(e)
    })
}

/// The `cashout_id` inside a payout id, unless it is an `ext:` placeholder.
fn known_cashout_id(id: &ProviderPayoutId) -> Option<&str> {
    (!id.is_by_reference()).then_some(id.as_str())
}

/// D24 documents `cashout_id` as a number in requests; send it as one when it is.
fn wire_id(id: &str) -> CashoutId {
    id.parse::<u64>()
        .map(CashoutId::Number)
        .unwrap_or_else(|_| CashoutId::Text(id.to_owned()))
}

#[cfg(test)]
mod tests;
