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

mod transformers;

use std::sync::Arc;

use cashout_core::ids::{CashoutRequestId, ProviderPayoutId};
use cashout_core::ports::{
    HoldAction, InboundNotification, MethodField, PayoutMethod, PayoutMethodQuery, PayoutOrder, ProviderError,
    ProviderErrorKind, ProviderNotification,
};
use cashout_core::provider::d24::{D24ErrorClass, D24ErrorCode, D24Profile, D24Status, payout_state};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::signing::{ProviderSecret, d24_payload_signature};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::{ConfigError, D24Config};
use crate::http::{Http, HttpRequest, Reply, excerpt};
use transformers::{
    CancelRequest, CashoutId, CreateCashout, CreateCashoutResponse, ErrorBody, Notification, SetStatusRequest,
    StatusRequest, StatusResponse,
};

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

    /// Creates the cashout for `order`; 511 (external_id already used) adopts the existing one.
    #[tracing::instrument(name = "d24.create", skip_all, fields(provider = %self.name, reference = %order.reference))]
    pub async fn create(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        let pass = self.pass.expose_secret();
        let amount = RawValue::from_string(order.amount.to_decimal_string()).map_err(|e| {
            self.error(ProviderErrorKind::Protocol, "the amount is not a JSON number")
                .with_source(e)
        })?;
        let b = &order.beneficiary;
        let declined = |what: &str| self.error(ProviderErrorKind::Declined, what.to_owned());
        let document_id = b
            .document_id
            .as_deref()
            .ok_or_else(|| declined("the beneficiary has no document_id"))?;
        if self.profile == D24Profile::Tupay {
            if b.document_type.is_none() {
                return Err(declined("tupay requires the beneficiary document_type"));
            }
            if b.bank_account.is_none() {
                return Err(declined("tupay requires the beneficiary CCI (bank_account)"));
            }
            if b.account_type.is_none() {
                return Err(declined("tupay requires the account_type (C or S)"));
            }
        }
        if order.hold && !self.profile.supports_on_hold() {
            return Err(declined(
                "the payout cannot be created on hold: this provider has no ON_HOLD",
            ));
        }
        let notification_url = order.notification_url.as_deref().ok_or_else(|| {
            self.error(
                ProviderErrorKind::Configuration,
                "D24 requires a notification_url and none is configured",
            )
        })?;
        let request = CreateCashout {
            login: &self.login,
            pass,
            external_id: order.reference.to_string(),
            country: order.country.code(),
            currency: order.currency.code(),
            amount,
            document_id,
            document_type: b.document_type.as_deref(),
            beneficiary_name: &b.name,
            beneficiary_lastname: b.last_name.as_deref(),
            email: b.email.as_deref(),
            phone: b.phone.as_deref(),
            bank_code: b.bank_code.as_deref(),
            bank_account: b.bank_account.as_ref().map(|a| a.expose()),
            bank_branch: b.bank_branch.as_deref(),
            account_type: b.account_type.as_deref(),
            address: b.address.as_deref(),
            city: b.city.as_deref(),
            postal_code: b.postal_code.as_deref(),
            beneficiary_birthdate: b.birthdate.map(|d| d.to_string()),
            comments: Some(order.description.as_str()).filter(|d| !d.is_empty()),
            notification_url,
            on_hold: order.hold,
        };
        let reply = self.call(Call::Create, Method::POST, "/v3/cashout", &request).await?;
        if reply.status.is_success()
            && let Ok(created) = serde_json::from_slice::<CreateCashoutResponse>(&reply.body)
        {
            tracing::info!(provider = %self.name, reference = %order.reference, cashout_id = %created.cashout_id.text(), "cashout created");
            return Ok(self.payout(
                payout_id(&created.cashout_id.text())?,
                order.reference,
                PayoutState::Pending,
                // Seed 001: created ON_HOLD "only if specified [...] with on_hold: true".
                if order.hold {
                    D24Status::OnHold
                } else {
                    D24Status::Pending
                }
                .name()
                .to_owned(),
            ));
        }
        if reply.status.is_success() {
            let is_error = serde_json::from_slice::<ErrorBody>(&reply.body)
                .ok()
                .and_then(|b| b.code())
                .is_some();
            if !is_error {
                // 200 without a readable id: it was probably created. Look it up.
                return Err(self.error(
                    ProviderErrorKind::Ambiguous,
                    "the create answered 200 without a readable cashout_id",
                ));
            }
        }
        let error = self.failure(Call::Create, &reply);
        if error.code.as_deref() == Some("511") && !reply.status.is_server_error() {
            tracing::info!(provider = %self.name, reference = %order.reference, "external_id already used: adopting the existing cashout");
            // It exists: whatever goes wrong from here, the caller must look it up, not create.
            return match self.find(order.reference).await {
                Ok(Some(existing)) => Ok(existing),
                Ok(None) => Err(self.error(
                    ProviderErrorKind::Ambiguous,
                    "511 external_id already used, but no cashout is found for it yet",
                )),
                Err(e) => Err(self
                    .error(
                        ProviderErrorKind::Ambiguous,
                        "511 external_id already used; the lookup failed",
                    )
                    .with_code("511")
                    .with_source(e)),
            };
        }
        tracing::warn!(provider = %self.name, reference = %order.reference, kind = ?error.kind, code = ?error.code, "create failed");
        Err(error)
    }

    fn payout(
        &self,
        payout_id: ProviderPayoutId,
        reference: CashoutRequestId,
        state: PayoutState,
        provider_status: String,
    ) -> ProviderPayout {
        ProviderPayout {
            provider: self.name,
            payout_id,
            reference: Some(reference),
            state,
            provider_status,
            updated_at: None,
        }
    }

    /// Reads a status answer.
    fn read_status(
        &self,
        reply: &Reply,
        known_id: Option<&str>,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let status: StatusResponse = serde_json::from_slice(&reply.body).map_err(|e| {
            self.error(
                ProviderErrorKind::Protocol,
                format!("unreadable status answer: {}", crate::http::body_excerpt(&reply.body)),
            )
            .with_source(e)
        })?;
        let id = match (status.cashout_id.as_ref(), known_id) {
            (Some(id), _) => id.text(),
            (None, Some(id)) => id.to_owned(),
            (None, None) => ProviderPayoutId::by_reference(reference).to_string(),
        };
        let (state, words) = match D24Status::from_code(status.cashout_status, self.profile) {
            Ok(s) => {
                let state = payout_state(s, status.rejection_code, status.rejection_reason.as_deref());
                let words = match (&state, s) {
                    (PayoutState::Rejected { code, reason }, _) => format!(
                        "{} {} {}",
                        s.name(),
                        code.as_deref().unwrap_or("-"),
                        reason.as_deref().unwrap_or("-")
                    ),
                    _ => s.name().to_owned(),
                };
                (state, words)
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, %reference, code = e.code, "unknown cashout_status: nothing changes");
                (
                    PayoutState::Unknown,
                    format!(
                        "cashout_status {} {}",
                        e.code,
                        status.cashout_status_description.unwrap_or_default()
                    ),
                )
            }
        };
        Ok(self.payout(payout_id(&id)?, reference, state, words))
    }

    async fn status_once(
        &self,
        cashout_id: Option<&str>,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let request = StatusRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: cashout_id.map(wire_id),
            // Seed 001's parameters mark both `cashout_id` and `external_id` required: sent
            // together, an answer also confirms that the id belongs to our reference.
            external_id: Some(reference.to_string()),
        };
        let reply = self
            .call(Call::Other, Method::POST, "/v3/cashout/status", &request)
            .await?;
        if reply.status.is_success() {
            self.read_status(&reply, cashout_id, reference)
        } else {
            Err(self.failure(Call::Other, &reply))
        }
    }

    /// The status by `cashout_id` (or by `external_id` for an `ext:` id).
    #[tracing::instrument(name = "d24.status", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference))]
    pub async fn status(
        &self,
        payout_id: &ProviderPayoutId,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let cashout_id = known_cashout_id(payout_id);
        self.http.retrying(|| self.status_once(cashout_id, reference)).await
    }

    /// The cashout made for `reference` (our `external_id`), if any.
    #[tracing::instrument(name = "d24.find", skip_all, fields(provider = %self.name, %reference))]
    pub async fn find(&self, reference: CashoutRequestId) -> Result<Option<ProviderPayout>, ProviderError> {
        let found = self.http.retrying(|| self.status_once(None, reference)).await;
        match found {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.kind == ProviderErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Cancels while D24 allows it (PENDING). Cancelling a cancelled cashout succeeds.
    #[tracing::instrument(name = "d24.cancel", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference))]
    pub async fn cancel(
        &self,
        payout_id: &ProviderPayoutId,
        reference: CashoutRequestId,
    ) -> Result<ProviderPayout, ProviderError> {
        let Some(cashout_id) = known_cashout_id(payout_id) else {
            return Err(self.error(
                ProviderErrorKind::InvalidState,
                "the D24 cashout_id is unknown (adopted by external_id); cancel needs it",
            ));
        };
        let request = CancelRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: wire_id(cashout_id),
            external_id: reference.to_string(),
        };
        let result = self
            .http
            .retrying(|| async {
                let reply = self
                    .call(Call::Other, Method::DELETE, "/v3/cashout/cancel", &request)
                    .await?;
                if reply.status.is_success() {
                    self.read_status(&reply, Some(cashout_id), reference)
                } else {
                    Err(self.failure(Call::Other, &reply))
                }
            })
            .await;
        match result {
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                // Refused: maybe because an earlier attempt (whose answer was lost) cancelled it.
                let now = self.status(payout_id, reference).await?;
                if now.state == PayoutState::Cancelled {
                    Ok(now)
                } else {
                    Err(self
                        .error(
                            ProviderErrorKind::InvalidState,
                            format!("cannot cancel: the cashout is {}", now.provider_status),
                        )
                        .with_code(e.code.unwrap_or_default()))
                }
            }
            other => other,
        }
    }

    /// Puts a PENDING cashout on hold or releases a held one (not on Tupay).
    #[tracing::instrument(name = "d24.set_hold", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference, ?action))]
    pub async fn set_hold(
        &self,
        payout_id: &ProviderPayoutId,
        reference: CashoutRequestId,
        action: HoldAction,
    ) -> Result<ProviderPayout, ProviderError> {
        if !self.profile.supports_on_hold() {
            return Err(self.error(ProviderErrorKind::InvalidState, format!("{} has no ON_HOLD", self.name)));
        }
        let Some(cashout_id) = known_cashout_id(payout_id) else {
            return Err(self.error(
                ProviderErrorKind::InvalidState,
                "the D24 cashout_id is unknown (adopted by external_id)",
            ));
        };
        let request = SetStatusRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: wire_id(cashout_id),
            status: match action {
                HoldAction::Hold => "ON_HOLD",
                HoldAction::Release => "PENDING",
            },
        };
        let result = self
            .http
            .retrying(|| async {
                let reply = self
                    .call(Call::Other, Method::PUT, "/v3/cashout/status", &request)
                    .await?;
                if reply.status.is_success() {
                    self.read_status(&reply, Some(cashout_id), reference)
                } else {
                    Err(self.failure(Call::Other, &reply))
                }
            })
            .await;
        match result {
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                // Refused: maybe because an earlier attempt (whose answer was lost) did it.
                let now = self.status(payout_id, reference).await?;
                if now.provider_status == request.status {
                    Ok(now)
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// A notification is a hint to poll: it carries no status, and its `control` signature's
    /// message is undocumented, so nothing in it is trusted beyond the ids.
    pub fn parse_notification(
        &self,
        notification: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        let form: Notification = serde_urlencoded::from_bytes(&notification.body).map_err(|e| {
            self.error(
                ProviderErrorKind::Protocol,
                "the notification is not a form-urlencoded body",
            )
            .with_source(e)
        })?;
        let reference = form
            .external_id
            .as_deref()
            .and_then(|e| e.parse::<CashoutRequestId>().ok());
        let payout_id = form
            .cashout_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .and_then(|id| ProviderPayoutId::new(id).ok());
        if reference.is_none() && payout_id.is_none() {
            return Err(self.error(
                ProviderErrorKind::Protocol,
                "the notification names no cashout (no external_id or cashout_id)",
            ));
        }
        tracing::debug!(provider = %self.name, ?reference, payout_id = ?payout_id, date = ?form.date, has_control = form.control.is_some(), "notification: a hint to poll");
        Ok(ProviderNotification::Hint { reference, payout_id })
    }

    /// The beneficiary fields the profile needs (D24 has no services: one method).
    pub fn payout_methods(&self, query: &PayoutMethodQuery) -> Vec<PayoutMethod> {
        if !cashout_core::routing::d24_family_covers(self.name, query.country, query.currency) {
            return Vec::new();
        }
        let field = |key: &str, regexp: Option<&str>, required: bool| MethodField {
            key: key.to_owned(),
            kind: "string".to_owned(),
            regexp: regexp.map(str::to_owned),
            required,
        };
        let mut fields = vec![
            field("beneficiary.name", None, true),
            field("beneficiary.document_id", None, true),
        ];
        if self.profile == D24Profile::Tupay {
            fields.extend([
                field("beneficiary.document_type", Some("^(DNI|CE|RUC|PASS)$"), true),
                field("beneficiary.bank_account", Some(r"^\d{1,20}$"), true),
                field("beneficiary.account_type", Some("^[CS]$"), true),
            ]);
        } else {
            fields.extend([
                field("beneficiary.bank_account", None, false),
                field("beneficiary.bank_code", None, false),
            ]);
        }
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
