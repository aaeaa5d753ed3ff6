//! The invariants, written once. Checked as the run goes — at every write of a request and at
//! every change of a provider's ledger — and at the end:
//!
//! 1. at most one payout per request across every provider's ledger;
//! 2. a request is `CANCELLED`, `REJECTED` or `PAYMENT_PROCESSOR_ERROR` only if no provider
//!    holds a live or paid payout for it, or it is flagged for a person;
//! 3. `PAID` matches a provider payout of the same amount that was paid;
//! 4. a hint about a payout cashout does not know costs no queue message;
//! 5. each request's events have the sequence 1..n without gaps;
//! 6. every event reaches every subscribed, enabled endpoint at least once, with a valid
//!    Standard Webhooks signature (the receivers check it; a bad one is a violation at once);
//! 7. no panic (the executor reports them);
//! 8. at the end every request is final, or waiting with a stated reason: for an operator
//!    (`UNDER_REVIEW`, `PAYMENT_PROCESSOR_ERROR`), for the provider (`PENDING_PAYMENT` with a live
//!    payout there), or flagged for a person.
//!
//! Whether a request is flagged is read from its stored JSON (`attention`), not from an
//! accessor, so that the checks judge any version of the aggregate the same way.

use std::str::FromStr;
use std::sync::Arc;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{ProviderEvent, ProviderNotification, Task, TaskEnvelope};
use cashout_core::status::CashoutStatus;
use cashout_store::memory::MemoryStore;
use rust_decimal::Decimal;

use crate::ctx::Ctx;
use crate::store::short;
use crate::truth::{PayoutState, Truth};

/// Whether a request is flagged for a person.
pub fn flagged(request: &CashoutRequest) -> bool {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v.get("attention").and_then(|a| a.as_array()).map(|a| !a.is_empty()))
        .unwrap_or(false)
}

/// Checks what can be checked as the run goes.
#[derive(Clone)]
pub struct Checker {
    ctx: Arc<Ctx>,
    truth: Arc<Truth>,
    store: MemoryStore,
}

impl Checker {
    /// The checks of a run.
    pub fn new(ctx: Arc<Ctx>, truth: Arc<Truth>, store: MemoryStore) -> Self {
        Checker { ctx, truth, store }
    }

    /// A provider made or changed a payout for `reference`.
    pub fn ledger_changed(&self, reference: &str) {
        let payouts = self.truth.all_for(reference);
        if payouts.len() > 1 {
            let ids: Vec<String> = payouts.iter().map(|p| format!("{} {}", p.provider, p.id)).collect();
            self.ctx.violation(format!(
                "invariant 1: {} payouts for request {reference}: {}",
                payouts.len(),
                ids.join(", ")
            ));
        }
        if let Ok(id) = CashoutRequestId::from_str(reference)
            && let Some(request) = self.store.request(id)
        {
            self.consistent(&request);
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

    fn consistent(&self, r: &CashoutRequest) {
        let reference = r.id().to_string();
        let payouts = self.truth.all_for(&reference);
        let live = payouts.iter().find(|p| p.state.live_or_paid());
        match r.status() {
            CashoutStatus::Cancelled | CashoutStatus::Rejected | CashoutStatus::PaymentProcessorError => {
                if let Some(p) = live
                    && !flagged(r)
                {
                    self.ctx.violation(format!(
                        "invariant 2: request {} is {} while {} holds payout {} ({:?}), and nobody is told",
                        short(r.id()),
                        r.status(),
                        p.provider,
                        p.id,
                        p.state
                    ));
                }
            }
            CashoutStatus::Paid => {
                let paid = r.paid_amount().map(|a| a.to_string()).unwrap_or_default();
                let matches = payouts.iter().any(|p| p.ever_paid && same_amount(&p.amount, &paid));
                if !matches {
                    self.ctx.violation(format!(
                        "invariant 3: request {} is PAID {paid} but no provider paid that amount for it",
                        short(r.id())
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
        let payouts = self.truth.all_for(&r.id().to_string());
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
