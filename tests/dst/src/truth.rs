//! What really happened outside cashout, as the invariants judge it: every payout every
//! provider made (the providers' ledgers, money that moved), and every delivery a merchant's
//! receiver verified.

use std::collections::BTreeMap;
use std::sync::Mutex;

use std::str::FromStr;

use cashout_core::ids::{CashoutRequestId, PayoutReference};
use cashout_core::provider::ProviderName;
use time::OffsetDateTime;

use crate::ctx::lock;

/// A payout's state at its provider, common to both families (rendered per family on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutState {
    /// Cascad: the invoice exists, not processed yet.
    Created,
    /// D24 PENDING / Cascad processing.
    Pending,
    /// D24 DELIVERED (sent to the bank; no longer cancellable).
    Delivered,
    /// D24 ON_HOLD.
    OnHold,
    /// D24 COMPLETED / Cascad processed (resolution ok).
    Paid,
    /// D24 REJECTED with a rejection code (826 after payment: a reversal) / Cascad process_failed.
    Rejected(u16),
    /// D24 CANCELLED.
    Cancelled,
    /// Cascad partially_processed: part of the money moved, a person must reconcile.
    PartlyPaid,
}

impl PayoutState {
    /// Whether money may still move, or has moved and stayed: the payout is live or paid.
    pub fn live_or_paid(self) -> bool {
        !matches!(self, PayoutState::Rejected(_) | PayoutState::Cancelled)
    }

    /// Whether the provider will not change it any more (but a reversal of a paid one).
    pub fn settled(self) -> bool {
        matches!(
            self,
            PayoutState::Paid | PayoutState::Rejected(_) | PayoutState::Cancelled | PayoutState::PartlyPaid
        )
    }
}

/// One payout at one provider.
#[derive(Debug, Clone)]
pub struct Payout {
    pub provider: ProviderName,
    /// Its id there (D24 `cashout_id`, Cascad `cpoi_…`).
    pub id: String,
    /// Our reference (`external_id` / `reference_id`).
    pub reference: String,
    /// The amount, as sent.
    pub amount: String,
    pub currency: String,
    /// Now.
    pub state: PayoutState,
    /// Whether it was ever paid (a reversal keeps this).
    pub ever_paid: bool,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Where the provider notifies.
    pub notify_url: Option<String>,
}

/// A delivery a receiver accepted after checking its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The endpoint URL.
    pub url: String,
    /// `webhook-id` (the event id).
    pub webhook_id: String,
}

/// The truth of a run.
#[derive(Default)]
pub struct Truth {
    payouts: Mutex<Vec<Payout>>,
    deliveries: Mutex<Vec<Delivery>>,
    hint_checks: Mutex<BTreeMap<String, Vec<OffsetDateTime>>>,
}

impl Truth {
    /// Records a new payout.
    pub fn add_payout(&self, payout: Payout) {
        lock(&self.payouts).push(payout);
    }

    /// Changes a payout (by provider and id); returns it after the change.
    pub fn update(&self, provider: ProviderName, id: &str, f: impl FnOnce(&mut Payout)) -> Option<Payout> {
        let mut payouts = lock(&self.payouts);
        let p = payouts.iter_mut().find(|p| p.provider == provider && p.id == id)?;
        f(p);
        if p.state == PayoutState::Paid {
            p.ever_paid = true;
        }
        Some(p.clone())
    }

    /// A payout by provider and id.
    pub fn payout(&self, provider: ProviderName, id: &str) -> Option<Payout> {
        lock(&self.payouts)
            .iter()
            .find(|p| p.provider == provider && p.id == id)
            .cloned()
    }

    /// Every payout of a provider for a reference, oldest first.
    pub fn by_reference(&self, provider: ProviderName, reference: &str) -> Vec<Payout> {
        lock(&self.payouts)
            .iter()
            .filter(|p| p.provider == provider && p.reference == reference)
            .cloned()
            .collect()
    }

    /// Every payout of every provider for a reference.
    pub fn all_for(&self, reference: &str) -> Vec<Payout> {
        lock(&self.payouts)
            .iter()
            .filter(|p| p.reference == reference)
            .cloned()
            .collect()
    }

    /// Every payout of every provider for any attempt of a request (each payout's reference
    /// read as a `PayoutReference`: `<id>` or `<id>.<n>`), oldest first.
    pub fn for_request(&self, request: CashoutRequestId) -> Vec<Payout> {
        lock(&self.payouts)
            .iter()
            .filter(|p| request_of(&p.reference) == Some(request))
            .cloned()
            .collect()
    }

    /// Every payout.
    pub fn payouts(&self) -> Vec<Payout> {
        lock(&self.payouts).clone()
    }

    /// Records a verified delivery.
    pub fn delivered(&self, delivery: Delivery) {
        lock(&self.deliveries).push(delivery);
    }

    /// Every verified delivery.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.deliveries).clone()
    }

    /// Records a provider status check made because of a hint; returns the previous one's time.
    pub fn hint_check(&self, reference: &str, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut checks = lock(&self.hint_checks);
        let list = checks.entry(reference.to_owned()).or_default();
        let previous = list.last().copied();
        list.push(at);
        previous
    }
}

/// The request a provider reference pays, if it is one of ours.
pub fn request_of(reference: &str) -> Option<CashoutRequestId> {
    PayoutReference::from_str(reference).ok().map(|r| r.request_id())
}
