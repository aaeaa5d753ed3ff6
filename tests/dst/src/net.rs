//! The providers, on a simulated network: the real adapters of `cashout-providers` send their
//! HTTP requests here ([`HttpTransport`]), so the simulation exercises their own failure
//! classification. Each provider keeps a ledger (the [`Truth`]) and answers as its documents say
//! (D24 cashouts API v3: `Payload-Signature`, codes 509/511/702; Cascad: JSON:API invoices, 201,
//! 404, 409). Written from the providers' documents, not from the adapters.
//!
//! Faults, each seeded: a call never sent; a 503 or a timeout before the provider acted; a 429
//! with any `Retry-After` (hostile values included); a create that was made and whose answer
//! was lost (a 503 or a timeout after it); outages of creates and of lookups lasting hours; a
//! provider that does not enforce unique references (a second create makes a second payout);
//! a provider fully down for a while, or flapping (down, up, down); creates refused for
//! configuration (failover: the request moves to its next route).
//!
//! Each family answers in its own module ([`d24`], [`cascad`]); this one routes a request,
//! rolls the network's faults around it, and keeps the payouts' lives.

mod cascad;
mod d24;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_core::provider::{ProviderFamily, ProviderName};
use cashout_providers::{HttpRequest, HttpTransport, Reply, Transport};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::agenda::{Agenda, Event};
use crate::check;
use crate::ctx::{Ctx, lock};
use crate::exec::{Kind, yield_now};
use crate::truth::{Payout, PayoutState, Truth};

pub use cascad::{cascad_signature, invoice, invoice_doc};
pub use d24::d24_secrets;

/// Where the simulated providers live (`{BASE}/d24`, `/onspot`, `/tupay`, `/cascad`).
pub const BASE: &str = "http://providers.sim";
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
    /// The provider is down during these windows: every call fails (connection refused or
    /// 503) before it acts. Several short ones in a row make it flap, so that its circuit
    /// opens, half-opens and closes.
    pub down: Vec<Window>,
    /// Creates are refused for configuration during these windows (D24 family 401 code 402,
    /// an unregistered IP; Cascad 403), before the provider acts.
    pub config_errors: Vec<Window>,
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
        let is_create = is_create(provider, &request.method, &path);
        let sent_at = self.ctx.now();
        if let Some(failed) = self
            .fails_before_acting(provider, &request, &path, &faults, is_create)
            .await
        {
            return failed;
        }
        if matches!(self.ctx.current_kind(), Some(Kind::HintTask)) {
            self.ctx.trace(|| format!("net {provider} {path}: check from a hint"));
        }
        if is_create {
            self.checker
                .create_reached(provider, &create_reference(&request.body), sent_at);
        }
        // The provider acts, atomically.
        let answer = match provider.family() {
            ProviderFamily::Cascad => self.cascad(&request, &path, &faults),
            ProviderFamily::D24(_) => self.d24(provider, &request, &path, &faults),
        };
        self.ctx
            .trace(|| format!("net {provider} {} {path}: {}", request.method, answer.status.as_u16()));
        if is_create
            && answer.status.is_success()
            && let Some(lost) = self.loses_the_answer(provider, &faults).await
        {
            return lost;
        }
        self.latency().await;
        Ok(answer)
    }

    /// The faults that strike before the provider acts, in this order: the call is never sent;
    /// (after the network's latency) an outage of creates or of lookups, as of when the call
    /// left; a 429 with any `Retry-After`; a 503; a timeout.
    async fn fails_before_acting(
        &self,
        provider: ProviderName,
        request: &HttpRequest,
        path: &str,
        faults: &ProviderFaults,
        is_create: bool,
    ) -> Option<Result<Reply, Transport>> {
        let now = self.ctx.now();
        if self.ctx.fault(faults.not_sent) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: not sent", request.method));
            return Some(Err(Transport::NotSent(Box::new(Simulated("connection refused")))));
        }
        let down = !self.ctx.is_healed() && faults.down.iter().any(|w| w.contains(now));
        if down && self.ctx.rng(|r| r.chance(500)) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: down, not sent", request.method));
            return Some(Err(Transport::NotSent(Box::new(Simulated("connection refused")))));
        }
        self.latency().await;
        if down {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: down 503", request.method));
            return Some(Ok(reply(503, json!({"code": 500, "message": "service unavailable"}))));
        }
        if is_create && !self.ctx.is_healed() && faults.config_errors.iter().any(|w| w.contains(now)) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: configuration refused", request.method));
            return Some(Ok(match provider.family() {
                ProviderFamily::Cascad => reply(
                    403,
                    json!({"errors": [{"status": "403", "code": "forbidden", "title": "Forbidden", "detail": "this API key may not create payout invoices"}]}),
                ),
                ProviderFamily::D24(_) => reply(401, json!({"code": 402, "message": "unregistered IP"})),
            }));
        }
        let outage = if is_create {
            &faults.create_outages
        } else {
            &faults.read_outages
        };
        if !self.ctx.is_healed() && outage.iter().any(|w| w.contains(now)) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: outage 503", request.method));
            return Some(Ok(reply(503, json!({"code": 500, "message": "service unavailable"}))));
        }
        if self.ctx.fault(faults.throttled) {
            let after = self
                .ctx
                .rng(|r| *r.pick(&[1u64, 30, 3_600, 31_536_000, u64::MAX / 2, u64::MAX]));
            self.ctx
                .trace(|| format!("net {provider} {} {path}: 429 Retry-After {after}", request.method));
            let mut r = reply(429, json!({"code": 429, "message": "too many requests"}));
            r.retry_after = Some(Duration::from_secs(after));
            return Some(Ok(r));
        }
        if self.ctx.fault(faults.error_before) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: 503 before acting", request.method));
            return Some(Ok(reply(503, json!({"code": 500, "message": "internal error"}))));
        }
        if self.ctx.fault(faults.timeout_before) {
            self.ctx
                .trace(|| format!("net {provider} {} {path}: timeout before acting", request.method));
            self.ctx.sleep(self.request_timeout).await;
            return Some(Err(Transport::TimedOut(Box::new(Simulated("timed out")))));
        }
        None
    }

    /// A create the provider made whose answer does not arrive: a 503, or nothing until the
    /// caller's timeout.
    async fn loses_the_answer(
        &self,
        provider: ProviderName,
        faults: &ProviderFaults,
    ) -> Option<Result<Reply, Transport>> {
        if self.ctx.fault(faults.error_after_create) {
            self.ctx.trace(|| format!("net {provider}: create made, answered 503"));
            return Some(Ok(reply(503, json!({"code": 500, "message": "internal error"}))));
        }
        if self.ctx.fault(faults.timeout_after_create) {
            self.ctx.trace(|| format!("net {provider}: create made, answer lost"));
            self.ctx.sleep(self.request_timeout).await;
            return Some(Err(Transport::TimedOut(Box::new(Simulated("timed out")))));
        }
        None
    }

    fn new_id(&self, provider: ProviderName) -> String {
        let mut next = lock(&self.next_id);
        *next += 1;
        match provider.family() {
            ProviderFamily::Cascad => {
                let suffix: String = self.ctx.rng(|r| {
                    (0..16)
                        .map(|_| *r.pick(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") as char)
                        .collect()
                });
                format!("cpoi_{suffix}")
            }
            ProviderFamily::D24(_) => next.to_string(),
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
        && match provider.family() {
            ProviderFamily::Cascad => path == "/payout-invoices",
            ProviderFamily::D24(_) => path == "/v3/cashout",
        }
}

/// Our reference in a create's body: D24 `external_id`, Cascad `data.attributes.reference_id`.
fn create_reference(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    v["external_id"]
        .as_str()
        .or_else(|| v["data"]["attributes"]["reference_id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        retry_after: None,
        body: body.to_string().into_bytes(),
    }
}

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
