//! The D24 family (D24, Onspot, Tupay) on the simulated network: cashouts API v3, every call
//! signed (`Payload-Signature`), create (511 for a used `external_id`), status and cancel.

use cashout_core::provider::ProviderName;
use cashout_providers::{HttpRequest, Reply};
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{ProviderFaults, SimNet, raw_amount, reply};
use crate::truth::{Payout, PayoutState};

/// A D24-family provider's secrets (login, pass, API signature), as configured in the adapters;
/// `None` for a provider of another family.
pub const fn d24_secrets(provider: ProviderName) -> Option<(&'static str, &'static str, &'static str)> {
    match provider {
        ProviderName::D24 => Some(("d24_login", "d24_pass", "d24_secret")),
        ProviderName::Onspot => Some(("onspot_login", "onspot_pass", "onspot_secret")),
        ProviderName::Tupay => Some(("tupay_login", "tupay_pass", "tupay_secret")),
        ProviderName::Cascad => None,
    }
}

impl SimNet {
    pub(super) fn d24(
        &self,
        provider: ProviderName,
        request: &HttpRequest,
        path: &str,
        faults: &ProviderFaults,
    ) -> Reply {
        let Some((login, pass, secret)) = d24_secrets(provider) else {
            return reply(404, json!({"code": 404, "message": "unknown"}));
        };
        // Every call is signed: lowercase hex HMAC-SHA256 of the exact body.
        let signature = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("payload-signature"))
            .map(|(_, v)| v.as_str());
        if signature != Some(hmac_hex(secret.as_bytes(), &request.body).as_str()) {
            self.ctx
                .violation(format!("{provider}: a request with a wrong Payload-Signature"));
            return reply(400, json!({"code": 302, "message": "invalid signature"}));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return reply(400, json!({"code": 502, "message": "malformed JSON"}));
        };
        if body["login"] != *login || body["pass"] != *pass {
            return reply(401, json!({"code": 401, "message": "invalid credentials"}));
        }
        match (request.method.clone(), path) {
            (Method::POST, "/v3/cashout") => self.d24_create(provider, request, &body, faults),
            (Method::POST, "/v3/cashout/status") => self.d24_status(provider, &body),
            (Method::DELETE, "/v3/cashout/cancel") => self.d24_cancel(provider, &body),
            _ => reply(404, json!({"code": 404, "message": "no such operation"})),
        }
    }

    fn d24_create(
        &self,
        provider: ProviderName,
        request: &HttpRequest,
        body: &Value,
        faults: &ProviderFaults,
    ) -> Reply {
        let reference = body["external_id"].as_str().unwrap_or_default().to_owned();
        if faults.unique_references && !self.truth.by_reference(provider, &reference).is_empty() {
            return reply(400, json!({"code": 511, "message": "external_id already used"}));
        }
        if self.ctx.fault(faults.declines) {
            return reply(400, json!({"code": 300, "message": "invalid bank account"}));
        }
        if self.ctx.fault(faults.account_errors) {
            return reply(400, json!({"code": 514, "message": "insufficient funds"}));
        }
        let amount = raw_amount(&request.body, &[]);
        let currency = body["currency"].as_str().unwrap_or_default();
        let notify = body["notification_url"].as_str().map(str::to_owned);
        let payout = self.make(provider, &reference, &amount, currency, notify, PayoutState::Pending);
        reply(200, json!({"cashout_id": payout.id}))
    }

    fn d24_find(&self, provider: ProviderName, body: &Value) -> Option<Payout> {
        match (&body["cashout_id"], &body["external_id"]) {
            (Value::Number(n), _) => self.truth.payout(provider, &n.to_string()),
            (Value::String(s), _) => self.truth.payout(provider, s),
            (_, Value::String(reference)) => self.truth.by_reference(provider, reference).into_iter().next(),
            _ => None,
        }
    }

    fn d24_status(&self, provider: ProviderName, body: &Value) -> Reply {
        match self.d24_find(provider, body) {
            None => reply(400, json!({"code": 509, "message": "cashout not found"})),
            Some(p) => reply(200, d24_status_body(p.state)),
        }
    }

    fn d24_cancel(&self, provider: ProviderName, body: &Value) -> Reply {
        let Some(p) = self.d24_find(provider, body) else {
            return reply(400, json!({"code": 509, "message": "cashout not found"}));
        };
        if p.reference != body["external_id"].as_str().unwrap_or_default() {
            return reply(400, json!({"code": 300, "message": "external_id does not match"}));
        }
        match p.state {
            PayoutState::Pending | PayoutState::OnHold => {
                let now = self.ctx.now();
                let after = self.truth.update(provider, &p.id, |p| {
                    p.state = PayoutState::Cancelled;
                    p.updated_at = now;
                });
                self.ctx
                    .trace(|| format!("provider {provider} cancelled payout {}", p.id));
                self.checker.ledger_changed(&p.reference);
                if let Some(after) = after {
                    self.notify_later(&after);
                }
                reply(200, d24_status_body(PayoutState::Cancelled))
            }
            PayoutState::Cancelled => reply(200, d24_status_body(PayoutState::Cancelled)),
            _ => reply(400, json!({"code": 702, "message": "could not cancel the cashout"})),
        }
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The status answer of D24 (seed 001): 0 PENDING, 1 COMPLETED, 2 CANCELLED, 3 REJECTED,
/// 4 DELIVERED, 5 ON_HOLD.
fn d24_status_body(state: PayoutState) -> Value {
    match state {
        PayoutState::Created | PayoutState::Pending => {
            json!({"cashout_status": 0, "cashout_status_description": "Pending"})
        }
        PayoutState::Paid | PayoutState::PartlyPaid => {
            json!({"cashout_status": 1, "cashout_status_description": "Completed"})
        }
        PayoutState::Cancelled => json!({"cashout_status": 2, "cashout_status_description": "Cancelled"}),
        PayoutState::Rejected(code) => {
            json!({"cashout_status": 3, "cashout_status_description": "Rejected", "rejection_code": code, "rejection_reason": rejection_reason(code)})
        }
        PayoutState::Delivered => json!({"cashout_status": 4, "cashout_status_description": "Delivered"}),
        PayoutState::OnHold => json!({"cashout_status": 5, "cashout_status_description": "On hold"}),
    }
}

fn rejection_reason(code: u16) -> &'static str {
    match code {
        800 => "ERROR_ACCOUNT_INCORRECT",
        801 => "ERROR_ACCOUNT_CLOSED",
        802 => "ERROR_AMOUNT_INCORRECT",
        803 => "ERROR_BANK_INVALID",
        804 => "ERROR_BANK_BRANCH_INCORRECT",
        805 => "ERROR_BENEFICIARY_DOCUMENT_ID_INVALID",
        806 => "ERROR_BENEFICIARY_NAME_INCORRECT",
        807 => "ERROR_REJECTED_BY_BANK",
        826 => "WITHDRAWAL_REVERSED",
        _ => "ERROR_OTHER",
    }
}
