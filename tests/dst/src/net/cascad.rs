//! Cascad on the simulated network: JSON:API payout invoices behind Basic auth, create (201,
//! or 409 for a used `reference_id`), process, lookup by id and by reference, and the
//! callback signature.

use base64::Engine as _;
use cashout_core::provider::ProviderName;
use cashout_providers::{HttpRequest, Reply};
use http::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::{CASCAD_SECRETS, ProviderFaults, SimNet, raw_amount, reply, reply_text};
use crate::truth::{Payout, PayoutState};

impl SimNet {
    pub(super) fn cascad(&self, request: &HttpRequest, path: &str, faults: &ProviderFaults) -> Reply {
        let (account, key, ..) = CASCAD_SECRETS;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account}:{key}"))
        );
        let auth = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str());
        if auth != Some(expected.as_str()) {
            return reply(401, json!({"errors": [{"status": "401", "title": "Unauthorized"}]}));
        }
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        match (request.method.clone(), segments.as_slice()) {
            (Method::POST, ["payout-invoices"]) => self.cascad_create(request, faults),
            (Method::POST, ["payout-invoices", id, "process"]) => self.cascad_process(id),
            (Method::GET, ["payout-invoices", id]) => match self.truth.payout(ProviderName::Cascad, id) {
                Some(p) => reply_text(200, invoice_doc(&p)),
                None => reply(404, json!({"errors": [{"status": "404", "title": "Not Found"}]})),
            },
            (Method::GET, ["payout-invoices"]) => {
                let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
                let reference = params
                    .iter()
                    .find(|(k, _)| k == "filter[reference_id]")
                    .map(|(_, v)| v.clone());
                let list: Vec<String> = match reference {
                    Some(r) => self
                        .truth
                        .by_reference(ProviderName::Cascad, &r)
                        .iter()
                        .map(invoice)
                        .collect(),
                    None => Vec::new(),
                };
                reply_text(
                    200,
                    format!(
                        "{{\"data\":[{}],\"meta\":{{\"count\":{}}}}}",
                        list.join(","),
                        list.len()
                    ),
                )
            }
            _ => reply(404, json!({"errors": [{"status": "404", "title": "Not Found"}]})),
        }
    }

    fn cascad_create(&self, request: &HttpRequest, faults: &ProviderFaults) -> Reply {
        let Ok(doc) = serde_json::from_slice::<Value>(&request.body) else {
            return reply(400, json!({"errors": [{"status": "400", "title": "Bad Request"}]}));
        };
        let a = &doc["data"]["attributes"];
        let reference = a["reference_id"].as_str().unwrap_or_default().to_owned();
        if let Some(existing) = self.truth.by_reference(ProviderName::Cascad, &reference).first()
            && faults.unique_references
        {
            return reply(
                409,
                json!({"errors": [{"status": "409", "code": "conflict", "title": "Conflict", "detail": format!("invoice {} already uses this reference_id", existing.id)}]}),
            );
        }
        if self.ctx.fault(faults.declines) {
            return reply(422, json!({"errors": {"fields.account": "is invalid"}}));
        }
        if self.ctx.fault(faults.account_errors) {
            return reply(
                403,
                json!({"errors": [{"status": "403", "title": "Forbidden", "detail": "insufficient balance"}]}),
            );
        }
        let amount = raw_amount(&request.body, &["data", "attributes"]);
        let currency = a["currency"].as_str().unwrap_or_default();
        let notify = a["callback_url"].as_str().map(str::to_owned);
        let auto = a["options"]["auto_process"].as_bool().unwrap_or(false);
        let payout = self.make(
            ProviderName::Cascad,
            &reference,
            &amount,
            currency,
            notify,
            PayoutState::Created,
        );
        if auto {
            return self.cascad_process(&payout.id);
        }
        reply_text(201, invoice_doc(&payout))
    }

    fn cascad_process(&self, id: &str) -> Reply {
        let Some(p) = self.truth.payout(ProviderName::Cascad, id) else {
            return reply(404, json!({"errors": [{"status": "404", "title": "Not Found"}]}));
        };
        if p.state != PayoutState::Created {
            return reply(
                409,
                json!({"errors": [{"status": "409", "title": "Conflict", "detail": "the invoice is already processed"}]}),
            );
        }
        let now = self.ctx.now();
        let Some(after) = self.truth.update(ProviderName::Cascad, id, |p| {
            p.state = PayoutState::Pending;
            p.updated_at = now;
        }) else {
            return reply(404, json!({"errors": [{"status": "404", "title": "Not Found"}]}));
        };
        self.plan(&after);
        reply_text(200, invoice_doc(&after))
    }
}

/// A Cascad payout invoice resource (JSON:API), its amount written exactly as it was sent.
pub fn invoice(p: &Payout) -> String {
    let (status, resolution) = match p.state {
        PayoutState::Created => ("created", Value::Null),
        PayoutState::Pending | PayoutState::Delivered | PayoutState::OnHold => ("processing", Value::Null),
        PayoutState::Paid => ("processed", json!("ok")),
        PayoutState::Rejected(_) | PayoutState::Cancelled => ("process_failed", json!("declined")),
        PayoutState::PartlyPaid => ("partially_processed", json!("ok")),
    };
    let processed = (p.state == PayoutState::Paid).then(|| p.updated_at.unix_timestamp());
    let value = json!({
        "id": p.id,
        "type": "payout-invoice",
        "attributes": {
            "status": status,
            "resolution": resolution,
            "amount": AMOUNT_SLOT,
            "currency": p.currency,
            "reference_id": p.reference,
            "processed": processed,
            "created": p.created_at.unix_timestamp(),
            "updated": p.updated_at.unix_timestamp(),
        }
    });
    value.to_string().replace(&format!("\"{AMOUNT_SLOT}\""), &p.amount)
}

/// `{"data": invoice}`.
pub fn invoice_doc(p: &Payout) -> String {
    format!("{{\"data\":{}}}", invoice(p))
}

const AMOUNT_SLOT: &str = "@amount@";

/// Cascad's callback signature: base64 of SHA-1 over secret ‖ body ‖ secret.
pub fn cascad_signature(secret: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(secret.as_bytes());
    h.update(body);
    h.update(secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}
