//! The invariants, written once. Checked as the run goes — at every write of a request and at
//! every change of a provider's ledger — and at the end:
//!
//! 1. at most one payout per request across every provider's ledger, counted by request over
//!    every attempt's reference (`<id>`, `<id>.<n>` after a failover): a payout at D24 and one
//!    at Onspot for one request is a double payout;
//! 2. a request is `CANCELLED`, `REJECTED` or `PAYMENT_PROCESSOR_ERROR` only if no provider
//!    holds a live or paid payout for it, or it is flagged for a person;
//! 3. `PAID` matches a payout of the same amount that was paid, at the provider of the
//!    request's last attempt and under that attempt's reference;
//! 4. a hint about a payout cashout does not know costs no queue message;
//! 5. each request's events have the sequence 1..n without gaps;
//! 6. every event reaches every subscribed, enabled endpoint at least once, with a valid
//!    Standard Webhooks signature (the receivers check it; a bad one is a violation at once);
//! 7. no panic (the executor reports them);
//! 8. at the end every request is final, or waiting with a stated reason: for an operator
//!    (`UNDER_REVIEW`, `PAYMENT_PROCESSOR_ERROR`), for the provider (`PENDING_PAYMENT` with a live
//!    payout there), or flagged for a person.
//! 9. no create reaches a provider for a request after the request failed over away from it,
//!    nor with another reference than its attempt there — but a create sent before the
//!    failover (a late create), whose request must then end flagged for a person;
//!
//! Whether a request is flagged is read from its stored JSON (`attention`), not from an
//! accessor, so that the checks judge any version of the aggregate the same way.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::PayoutReference;
use cashout_core::ports::{ProviderEvent, ProviderNotification, Task, TaskEnvelope};
use cashout_core::provider::ProviderName;
use cashout_core::status::CashoutStatus;
use cashout_store::memory::MemoryStore;
use rust_decimal::Decimal;

use crate::ctx::{Ctx, lock};
use crate::store::short;
use crate::truth::{Payout, PayoutState, Truth, request_of};
use time::OffsetDateTime;

/// Whether a request is flagged for a person by the money-safety paths. A reconciliation's
/// flag does not count: it reports a difference after the fact, and counting it would excuse the
/// very states the invariants forbid.
pub fn flagged(request: &CashoutRequest) -> bool {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| {
            v.get("attention")
                .and_then(|a| a.as_array())
                .map(|notes| notes.iter().any(|n| n["reason"]["kind"] != "reconciliation_difference"))
        })
        .unwrap_or(false)
}

/// Checks what can be checked as the run goes.
#[derive(Clone)]
pub struct Checker {
    ctx: Arc<Ctx>,
    truth: Arc<Truth>,
    store: MemoryStore,
    /// Creates that reached a provider the request had left, sent before it left:
    /// (provider, reference).
    late: Arc<Mutex<BTreeSet<(ProviderName, String)>>>,
}

impl Checker {
    /// The checks of a run.
    pub fn new(ctx: Arc<Ctx>, truth: Arc<Truth>, store: MemoryStore) -> Self {
        Checker {
            ctx,
            truth,
            store,
            late: Arc::default(),
        }
    }

    /// A provider made or changed a payout for `reference` (a `PayoutReference`: the request
    /// id, `.<n>` after a failover). Invariant 1 counts the request's payouts at every provider
    /// and under every attempt's reference, but a documented late create (a create sent before
    /// the request left that provider, [`Checker::create_reached`]): that one must be flagged
    /// for a person by the end.
    pub fn ledger_changed(&self, reference: &str) {
        let Some(id) = request_of(reference) else {
            let payouts = self.truth.all_for(reference);
            if payouts.len() > 1 {
                self.ctx.violation(format!(
                    "invariant 1: {} payouts for reference {reference}, not one of a request",
                    payouts.len()
                ));
            }
            return;
        };
        let late = lock(&self.late).clone();
        let payouts: Vec<_> = self
            .truth
            .for_request(id)
            .into_iter()
            .filter(|p| !late.contains(&(p.provider, p.reference.clone())))
            .collect();
        if payouts.len() > 1 {
            let ids: Vec<String> = payouts
                .iter()
                .map(|p| format!("{} {} ({})", p.provider, p.id, p.reference))
                .collect();
            self.ctx.violation(format!(
                "invariant 1: {} payouts for request {}: {}",
                payouts.len(),
                short(id),
                ids.join(", ")
            ));
        }
        if let Some(request) = self.store.request(id) {
            self.consistent(&request);
        }
    }

    /// Invariant 9: a create reached `provider` (about to act on it) for `reference`, sent at
    /// `sent_at`. A violation when the request had already left that provider (a failover) or
    /// the reference is not the request's attempt there — unless the create left before the
    /// failover (the documented late create, which the request must end flagged for).
    pub fn create_reached(&self, provider: ProviderName, reference: &str, sent_at: OffsetDateTime) {
        let Ok(parsed) = PayoutReference::from_str(reference) else {
            return;
        };
        let Some(request) = self.store.request(parsed.request_id()) else {
            return;
        };
        let attempt = request.provider_attempts().iter().find(|a| a.provider == provider);
        if let Some(a) = attempt
            && a.reference != parsed
        {
            self.ctx.violation(format!(
                "invariant 9: a create reached {provider} for request {} with reference {reference}, but its attempt there is {}",
                short(request.id()),
                a.reference
            ));
            return;
        }
        if attempt.is_none() && request.provider() != provider {
            self.ctx.violation(format!(
                "invariant 9: a create reached {provider} for request {} ({reference}), a provider it never went to (it is at {})",
                short(request.id()),
                request.provider()
            ));
            return;
        }
        if !request.left_provider(provider) {
            return;
        }
        let left_at = attempt.and_then(|a| a.ended_at);
        if left_at.is_some_and(|at| sent_at < at) {
            self.ctx
                .trace(|| format!("check: a late create at {provider} for {reference} (sent before the failover)"));
            lock(&self.late).insert((provider, reference.to_owned()));
        } else {
            self.ctx.violation(format!(
                "invariant 9: a create reached {provider} for request {} ({reference}) after the request failed over away from it (at {:?}, sent {sent_at})",
                short(request.id()),
                left_at
            ));
        }
    }

    /// A request was written.
    pub fn request_written(&self, request: &CashoutRequest) {
        self.consistent(request);
        self.invoices_held_once(request);
    }

    /// Invariant 10: an invoice is held by one request at a time (a request that let it go —
    /// ended CANCELLED or REJECTED, or excluded it — does not hold it; one flagged for a person
    /// is the person's to sort out).
    fn invoices_held_once(&self, r: &CashoutRequest) {
        if flagged(r) {
            return;
        }
        let held: Vec<_> = r.invoice_keys().into_iter().filter(|k| !r.releases(k)).collect();
        if held.is_empty() {
            return;
        }
        for other in self.store.all_requests() {
            if other.id() == r.id() || flagged(&other) {
                continue;
            }
            if let Some(k) = held.iter().find(|k| !other.releases(k)) {
                self.ctx.violation(format!(
                    "invariant 10: invoice {} of payer {} is advanced by requests {} ({}) and {} ({})",
                    k.invoice_id,
                    k.payer_tax_id,
                    short(r.id()),
                    r.status(),
                    short(other.id()),
                    other.status()
                ));
            }
        }
    }

    /// The payouts that pay `r` at the provider of its last attempt, under that attempt's
    /// reference.
    fn at_current(&self, r: &CashoutRequest) -> Vec<Payout> {
        let reference = r.payout_reference().to_string();
        self.truth.by_reference(r.provider(), &reference)
    }

    fn consistent(&self, r: &CashoutRequest) {
        let payouts = self.truth.for_request(r.id());
        let live = payouts.iter().find(|p| p.state.live_or_paid());
        match r.status() {
            CashoutStatus::Cancelled | CashoutStatus::Rejected | CashoutStatus::PaymentProcessorError => {
                if let Some(p) = live
                    && !flagged(r)
                {
                    self.ctx.violation(format!(
                        "invariant 2: request {} is {} while {} holds payout {} ({:?}, {}), and nobody is told",
                        short(r.id()),
                        r.status(),
                        p.provider,
                        p.id,
                        p.state,
                        p.reference
                    ));
                }
            }
            CashoutStatus::Paid => {
                let paid = r.paid_amount().map(|a| a.to_string()).unwrap_or_default();
                let here = self.at_current(r);
                let matches = here.iter().any(|p| p.ever_paid && same_amount(&p.amount, &paid));
                if !matches {
                    let elsewhere = payouts
                        .iter()
                        .filter(|p| p.ever_paid)
                        .map(|p| format!("{} {} ({})", p.provider, p.id, p.reference))
                        .collect::<Vec<_>>();
                    self.ctx.violation(format!(
                        "invariant 3: request {} is PAID {paid} but its last attempt's provider {} ({}) paid no such amount for it (paid elsewhere: {elsewhere:?})",
                        short(r.id()),
                        r.provider(),
                        r.payout_reference()
                    ));
                }
            }
            _ => {}
        }
    }

    /// A task is about to be queued.
    pub fn task_sent(&self, envelope: &TaskEnvelope) {
        if let Task::ProviderEvent(ProviderEvent {
            provider,
            notification: ProviderNotification::Hint { reference, payout_id },
        }) = &envelope.task
        {
            let known = reference.is_some_and(|r| self.store.request(r.request_id()).is_some())
                || payout_id
                    .as_ref()
                    .is_some_and(|p| self.store.indexed(*provider, p).is_some());
            if !known {
                self.ctx.violation(format!(
                    "invariant 4: a {provider} hint about a payout cashout does not know was queued (reference {reference:?}, payout {payout_id:?})"
                ));
            }
        }
    }

    /// The checks at the end of a run.
    pub fn finish(&self) {
        let requests = self.store.all_requests();
        for r in &requests {
            let events = self.store.events_of(r.id());
            for (i, e) in events.iter().enumerate() {
                if e.sequence != i as u64 + 1 {
                    self.ctx.violation(format!(
                        "invariant 5: request {} has event {} at position {}",
                        short(r.id()),
                        e.sequence,
                        i + 1
                    ));
                    break;
                }
            }
            self.consistent(r);
            self.settled(r);
        }
        let delivered = self.truth.deliveries();
        for ep in self.store.all_endpoints().iter().filter(|e| e.disabled.is_none()) {
            for r in requests.iter().filter(|r| r.merchant_id() == &ep.merchant_id) {
                for e in self.store.events_of(r.id()) {
                    if !ep.receives(e.event_type()) {
                        continue;
                    }
                    let id = e.id.to_string();
                    if !delivered.iter().any(|d| d.url == ep.url && d.webhook_id == id) {
                        self.ctx
                            .violation(format!("invariant 6: event {id} never reached {}", ep.url));
                    }
                }
            }
        }
    }

    /// Invariant 8 for one request.
    fn settled(&self, r: &CashoutRequest) {
        let payouts = self.at_current(r);
        let late = lock(&self.late).clone();
        if !flagged(r)
            && let Some((p, reference)) = late.iter().find(|(_, reference)| request_of(reference) == Some(r.id()))
        {
            self.ctx.violation(format!(
                "invariant 9: a late create made a payout at {p} for request {} ({reference}) and nobody is told",
                short(r.id())
            ));
        }
        let stuck = match r.status() {
            CashoutStatus::Requested => Some("never reviewed"),
            CashoutStatus::Approved if !flagged(r) => Some("APPROVED and nobody knows why"),
            CashoutStatus::PendingPayment => match payouts.first() {
                Some(p) if p.state.settled() => Some("PENDING_PAYMENT while the provider settled the payout"),
                None if !flagged(r) => Some("PENDING_PAYMENT with no payout at the provider"),
                _ => None,
            },
            CashoutStatus::Paid if payouts.iter().any(|p| p.state == PayoutState::Rejected(826)) => {
                Some("PAID although the provider reversed the payout")
            }
            _ => None,
        };
        if let Some(why) = stuck {
            self.ctx
                .violation(format!("invariant 8: request {} {why}", short(r.id())));
        }
    }
}

fn same_amount(a: &str, b: &str) -> bool {
    match (Decimal::from_str(a.trim_matches('"')), Decimal::from_str(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
