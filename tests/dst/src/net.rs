//! The providers, on a simulated network: the real adapters of `cashout-providers` send their
//! HTTP requests here ([`HttpTransport`]), so the simulation exercises their own failure
//! classification. Each provider keeps a ledger (the [`Truth`]) and answers as its documents say
//! (D24 cashouts API v3: `Payload-Signature`, codes 509/511/702; Cascad: JSON:API invoices, 201,
//! 404, 409). Written from the providers' documents, not from the adapters.
//!
//! Faults, each seeded: a call never sent; a 503 or a timeout before the provider acted; a 429
//! with any `Retry-After` (hostile values included); a create that was made and whose answer
//! was lost (a 503 or a timeout after it); outages of creates and of lookups lasting hours; a
//! provider that does not enforce unique references (a second create makes a second payout).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use cashout_core::provider::ProviderName;
use cashout_providers::{HttpRequest, HttpTransport, Reply, Transport};
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::agenda::{Agenda, Event};
use crate::check;
use crate::ctx::{Ctx, lock};
use crate::exec::{Kind, yield_now};
use crate::truth::{Payout, PayoutState, Truth};

/// Where the simulated providers live (`{BASE}/d24`, `/onspot`, `/tupay`, `/cascad`).
pub const BASE: &str = "http://providers.sim";
/// The D24-family secrets (login, pass, API signature), as configured in the adapters.
pub const D24_SECRETS: [(ProviderName, &str, &str, &str); 3] = [
    (ProviderName::D24, "d24_login", "d24_pass", "d24_secret"),
    (ProviderName::Onspot, "onspot_login", "onspot_pass", "onspot_secret"),
    (ProviderName::Tupay, "tupay_login", "tupay_pass", "tupay_secret"),
];
/// Cascad: account, API key, callback secret, public key.
pub const CASCAD_SECRETS: (&str, &str, &str, &str) = (
    "coma_sim0000000000001",
    "sk_test_sim_api_key",
    "cascad_callback_secret",
    "pk_test_sim_public_key",
);

/// A window of simulated time.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// From.
    pub from: OffsetDateTime,
    /// Until (excluded).
    pub until: OffsetDateTime,
}

impl Window {
    fn contains(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at < self.until
    }
}

/// How one provider misbehaves in a run.
#[derive(Debug, Clone, Default)]
pub struct ProviderFaults {
    /// Whether a second create with a used reference is refused (D24 511, Cascad 409); when not,
    /// it makes a second payout.
    pub unique_references: bool,
    /// Creates fail (503 or no connection) during these windows.
    pub create_outages: Vec<Window>,
    /// Lookups and status checks fail during these windows.
    pub read_outages: Vec<Window>,
    /// Per mille of calls never sent (connection refused).
    pub not_sent: u32,
    /// Per mille of calls answered 503 before the provider acted.
    pub error_before: u32,
    /// Per mille of calls that time out before the provider acted.
    pub timeout_before: u32,
    /// Per mille of calls answered 429 with a `Retry-After`.
    pub throttled: u32,
    /// Per mille of creates made and then answered 503.
    pub error_after_create: u32,
    /// Per mille of creates made whose answer never comes (timeout).
    pub timeout_after_create: u32,
    /// Per mille of creates declined for their data.
    pub declines: u32,
    /// Per mille of creates refused for the merchant's account (insufficient funds).
    pub account_errors: u32,
}

/// How a payout lives at its provider, decided when it is made.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// Per mille of payouts rejected by the bank.
    pub rejected: u32,
    /// Per mille put on hold (never released: a person at the provider must).
    pub held: u32,
    /// Per mille of paid payouts reversed days later.
    pub reversed: u32,
    /// Per mille of Cascad payouts only partly processed.
    pub partly: u32,
}

/// The simulated providers.
pub struct SimNet {
    ctx: Arc<Ctx>,
    truth: Arc<Truth>,
    agenda: Arc<Agenda>,
    checker: check::Checker,
    faults: BTreeMap<ProviderName, ProviderFaults>,
    lifecycle: Lifecycle,
    next_id: Mutex<u64>,
    request_timeout: Duration,
}

/// A transport failure of the simulation (the source of [`Transport`] errors).
#[derive(Debug)]
pub struct Simulated(pub &'static str);

impl std::fmt::Display for Simulated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Simulated {}

impl SimNet {
    /// The providers of a run.
    pub fn new(
        ctx: Arc<Ctx>,
        truth: Arc<Truth>,
        agenda: Arc<Agenda>,
        checker: check::Checker,
        faults: BTreeMap<ProviderName, ProviderFaults>,
        lifecycle: Lifecycle,
        request_timeout: Duration,
    ) -> Self {
        SimNet {
            ctx,
            truth,
            agenda,
            checker,
            faults,
            lifecycle,
            next_id: Mutex::new(8_400_000),
            request_timeout,
        }
    }

    fn faults(&self, provider: ProviderName) -> ProviderFaults {
        self.faults.get(&provider).cloned().unwrap_or_default()
    }

    async fn latency(&self) {
        let ms = self.ctx.rng(|r| r.between(5, 400));
        self.ctx.sleep(Duration::from_millis(ms)).await;
    }

    /// Handles one request end to end.
    async fn exchange(&self, request: HttpRequest) -> Result<Reply, Transport> {
        yield_now().await;
        let Some((provider, path)) = route(&request.url) else {
            return Ok(reply(
                404,
                json!({"errors": [{"status": "404", "title": "no such host"}]}),
            ));
        };
        let faults = self.faults(provider);
        let now = self.ctx.now();
        let is_create = is_create(provider, &request.method, &path);
        if self.ctx.fault(faults.not_sent) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: not sent", request.method));
            return Err(Transport::NotSent(Box::new(Simulated("connection refused"))));
        }
        self.latency().await;
        let outage = if is_create {
            &faults.create_outages
        } else {
            &faults.read_outages
        };
        if !self.ctx.is_healed() && outage.iter().any(|w| w.contains(now)) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: outage 503", request.method));
            return Ok(reply(503, json!({"code": 500, "message": "service unavailable"})));
        }
        if self.ctx.fault(faults.throttled) {
            let after = self
                .ctx
                .rng(|r| *r.pick(&[1u64, 30, 3_600, 31_536_000, u64::MAX / 2, u64::MAX]));
            self.ctx
                .trace(|| format!("net {provider} {} {path}: 429 Retry-After {after}", request.method));
            let mut r = reply(429, json!({"code": 429, "message": "too many requests"}));
            r.retry_after = Some(Duration::from_secs(after));
            return Ok(r);
        }
        if self.ctx.fault(faults.error_before) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: 503 before acting", request.method));
            return Ok(reply(503, json!({"code": 500, "message": "internal error"})));
        }
        if self.ctx.fault(faults.timeout_before) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: timeout before acting", request.method));
            self.ctx.sleep(self.request_timeout).await;
            return Err(Transport::TimedOut(Box::new(Simulated("timed out"))));
        }
        if matches!(self.ctx.current_kind(), Some(Kind::HintTask)) {
            self.ctx.trace(|| format!("net {provider} {path}: check from a hint"));
        }
        // The provider acts, atomically.
        let answer = match provider {
            ProviderName::Cascad => self.cascad(&request, &path, &faults),
            _ => self.d24(provider, &request, &path, &faults),
        };
        self.ctx
            .trace(|| format!("net {provider} {} {path}: {}", request.method, answer.status.as_u16()));
        if is_create && answer.status.is_success() {
            if self.ctx.fault(faults.error_after_create) {
                self.ctx.trace(|| format!("net {provider}: create made, answered 503"));
                return Ok(reply(503, json!({"code": 500, "message": "internal error"})));
            }
            if self.ctx.fault(faults.timeout_after_create) {
                self.ctx.trace(|| format!("net {provider}: create made, answer lost"));
                self.ctx.sleep(self.request_timeout).await;
                return Err(Transport::TimedOut(Box::new(Simulated("timed out"))));
            }
        }
        self.latency().await;
        Ok(answer)
    }

    fn new_id(&self, provider: ProviderName) -> String {
        let mut next = lock(&self.next_id);
        *next += 1;
        match provider {
            ProviderName::Cascad => {
                let suffix: String = self.ctx.rng(|r| {
                    (0..16)
                        .map(|_| *r.pick(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") as char)
                        .collect()
                });
                format!("cpoi_{suffix}")
            }
            _ => next.to_string(),
        }
    }

    /// Makes a payout and plans its life.
    fn make(
        &self,
        provider: ProviderName,
        reference: &str,
        amount: &str,
        currency: &str,
        notify: Option<String>,
        state: PayoutState,
    ) -> Payout {
        let now = self.ctx.now();
        let payout = Payout {
            provider,
            id: self.new_id(provider),
            reference: reference.to_owned(),
            amount: amount.to_owned(),
            currency: currency.to_owned(),
            state,
            ever_paid: false,
            created_at: now,
            updated_at: now,
            notify_url: notify,
        };
        self.truth.add_payout(payout.clone());
        self.ctx.trace(|| {
            format!(
                "provider {provider} made payout {} for {reference} ({amount} {currency})",
                payout.id
            )
        });
        self.checker.ledger_changed(reference);
        if provider != ProviderName::Cascad {
            self.plan(&payout);
        }
        payout
    }

    /// Schedules the payout's life at its provider.
    fn plan(&self, payout: &Payout) {
        let now = self.ctx.now();
        let l = self.lifecycle;
        let (held, rejected, reversed, partly) = self.ctx.rng(|r| {
            (
                r.chance(l.held),
                r.chance(l.rejected),
                r.chance(l.reversed),
                r.chance(l.partly),
            )
        });
        let minutes =
            |lo: u64, hi: u64| time::Duration::minutes(i64::try_from(self.ctx.rng(|r| r.between(lo, hi))).unwrap_or(1));
        let mut at = now + minutes(1, 20);
        let mut steps = Vec::new();
        let cascad = payout.provider == ProviderName::Cascad;
        if held && !cascad && payout.provider != ProviderName::Tupay {
            steps.push((at, PayoutState::OnHold));
        } else {
            if !cascad {
                steps.push((at, PayoutState::Delivered));
                at += minutes(5, 120);
            } else {
                at += minutes(5, 60);
            }
            if partly && cascad {
                steps.push((at, PayoutState::PartlyPaid));
            } else if rejected {
                steps.push((
                    at,
                    PayoutState::Rejected(if cascad {
                        1
                    } else {
                        800 + u16::try_from(self.ctx.rng(|r| r.below(9))).unwrap_or(0)
                    }),
                ));
            } else {
                steps.push((at, PayoutState::Paid));
                if reversed && !cascad {
                    let later =
                        at + time::Duration::hours(i64::try_from(self.ctx.rng(|r| r.between(24, 140))).unwrap_or(24));
                    steps.push((later, PayoutState::Rejected(826)));
                }
            }
        }
        for (at, to) in steps {
            self.agenda.at(
                at,
                Event::Transition {
                    provider: payout.provider,
                    payout_id: payout.id.clone(),
                    to,
                },
            );
        }
    }

    /// Applies a planned change, if it still applies; returns the payout after it.
    pub fn transition(&self, provider: ProviderName, id: &str, to: PayoutState) -> Option<Payout> {
        let now = self.ctx.now();
        let current = self.truth.payout(provider, id)?;
        let allowed = matches!(
            (current.state, to),
            (PayoutState::Pending, PayoutState::Delivered | PayoutState::OnHold)
                | (
                    PayoutState::Pending | PayoutState::Delivered,
                    PayoutState::Paid | PayoutState::Rejected(_) | PayoutState::PartlyPaid
                )
                | (PayoutState::Paid, PayoutState::Rejected(826))
        );
        if !allowed {
            return None;
        }
        let after = self.truth.update(provider, id, |p| {
            p.state = to;
            p.updated_at = now;
        })?;
        self.ctx
            .trace(|| format!("provider {provider} payout {id} is now {to:?}"));
        self.checker.ledger_changed(&after.reference);
        Some(after)
    }

    // ----- D24 family -----

    fn d24(&self, provider: ProviderName, request: &HttpRequest, path: &str, faults: &ProviderFaults) -> Reply {
        let Some((_, login, pass, secret)) = D24_SECRETS.iter().find(|(p, ..)| *p == provider) else {
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

    // ----- Cascad -----

    fn cascad(&self, request: &HttpRequest, path: &str, faults: &ProviderFaults) -> Reply {
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

    /// Schedules the provider's notifications about a payout's change: after a delay, maybe
    /// more than once, maybe never (polling must cover for a lost one).
    pub fn notify_later(&self, payout: &Payout) {
        if payout.notify_url.is_none() {
            return;
        }
        let (copies, lost) = self
            .ctx
            .rng(|r| (1 + u32::from(r.chance(200)) + u32::from(r.chance(50)), r.chance(100)));
        if lost && !self.ctx.is_healed() {
            self.ctx
                .trace(|| format!("provider {} notification about {} lost", payout.provider, payout.id));
            return;
        }
        for _ in 0..copies {
            let delay = time::Duration::seconds(i64::try_from(self.ctx.rng(|r| r.between(0, 600))).unwrap_or(0));
            self.agenda.at(
                self.ctx.now() + delay,
                Event::Notify {
                    provider: payout.provider,
                    payout_id: payout.id.clone(),
                },
            );
        }
    }
}

impl HttpTransport for SimNet {
    fn send(&self, request: HttpRequest) -> Pin<Box<dyn Future<Output = Result<Reply, Transport>> + Send + '_>> {
        Box::pin(self.exchange(request))
    }

    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.ctx.sleep(wait))
    }
}

/// Which provider a URL is for, and the path within it.
fn route(url: &str) -> Option<(ProviderName, String)> {
    let rest = url.strip_prefix(BASE)?.strip_prefix('/')?;
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    let provider = name.parse().ok()?;
    Some((provider, format!("/{path}")))
}

fn is_create(provider: ProviderName, method: &Method, path: &str) -> bool {
    *method == Method::POST
        && match provider {
            ProviderName::Cascad => path == "/payout-invoices",
            _ => path == "/v3/cashout",
        }
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        retry_after: None,
        body: body.to_string().into_bytes(),
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

/// The `amount` of a JSON body (under `path`), as the exact number text sent.
fn raw_amount(body: &[u8], path: &[&str]) -> String {
    let Ok(mut value) = serde_json::from_slice::<&serde_json::value::RawValue>(body) else {
        return String::new();
    };
    for key in path.iter().chain(std::iter::once(&"amount")) {
        let Ok(map) = serde_json::from_str::<BTreeMap<&str, &serde_json::value::RawValue>>(value.get()) else {
            return String::new();
        };
        let Some(next) = map.get(key) else {
            return String::new();
        };
        value = next;
    }
    value.get().to_owned()
}

fn reply_text(status: u16, body: String) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        retry_after: None,
        body: body.into_bytes(),
    }
}

/// Cascad's callback signature: base64 of SHA-1 over secret ‖ body ‖ secret.
pub fn cascad_signature(secret: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(secret.as_bytes());
    h.update(body);
    h.update(secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}
