//! The ground truth (`GET /_sim/ledger`, [`crate::SimHandle::ledger`]): every payout the
//! simulated providers hold, how many create attempts each reference received and how many
//! payouts exist per reference (more than one is a double payout), and every notification or
//! callback with its delivery state. Account numbers are masked.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Provider;

/// The whole ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every payout, in creation order.
    pub payouts: Vec<LedgerPayout>,
    /// Per provider and reference: create attempts and payouts.
    pub references: Vec<LedgerReference>,
    /// Every notification/callback.
    pub deliveries: Vec<LedgerDelivery>,
}

/// One payout at a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPayout {
    pub provider: Provider,
    /// The provider's id (D24 `cashout_id`, Cascad `cpoi_…`).
    pub id: String,
    /// The client's reference (`external_id` / `reference_id`).
    pub reference: String,
    /// Current status (`COMPLETED`, `REJECTED 800`, `processed`).
    pub status: String,
    /// Amount as received.
    pub amount: String,
    /// Currency, when given.
    pub currency: Option<String>,
    /// The beneficiary account, masked.
    pub account: Option<String>,
    /// When it was created (simulator clock).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Status changes after creation, in order.
    #[serde(with = "history")]
    pub history: Vec<(String, OffsetDateTime)>,
}

/// Create attempts and payouts of one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerReference {
    pub provider: Provider,
    pub reference: String,
    /// Create requests received with it (including those answered with an injected fault).
    pub create_attempts: u32,
    /// Payouts that exist with it: more than one is a double payout.
    pub payouts: u32,
}

/// One notification or callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDelivery {
    /// Sequence number.
    pub id: u64,
    pub provider: Provider,
    /// The payout it is about.
    pub payout_id: String,
    pub reference: String,
    /// The payout status it reports (D24 notifications do not carry it; this is for people).
    pub status: String,
    /// Where it goes.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// `pending`, `delivered`, `failed`, `dropped` (fault) or `refused` (not loopback).
    pub state: String,
    /// The last attempt's outcome.
    pub last_result: Option<String>,
    /// When the next attempt is due, while it is pending.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl Ledger {
    /// References with more than one payout.
    pub fn double_payouts(&self) -> Vec<&LedgerReference> {
        self.references.iter().filter(|r| r.payouts > 1).collect()
    }

    /// The payouts of one reference.
    pub fn payouts_for(&self, provider: Provider, reference: &str) -> Vec<&LedgerPayout> {
        self.payouts
            .iter()
            .filter(|p| p.provider == provider && p.reference == reference)
            .collect()
    }

    /// The entry of one reference.
    pub fn reference(&self, provider: Provider, reference: &str) -> Option<&LedgerReference> {
        self.references
            .iter()
            .find(|r| r.provider == provider && r.reference == reference)
    }
}

mod history {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        status: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    }

    pub fn serialize<S: Serializer>(v: &[(String, OffsetDateTime)], s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<Entry> = v
            .iter()
            .map(|(status, at)| Entry {
                status: status.clone(),
                at: *at,
            })
            .collect();
        entries.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, OffsetDateTime)>, D::Error> {
        Ok(Vec::<Entry>::deserialize(d)?
            .into_iter()
            .map(|e| (e.status, e.at))
            .collect())
    }
}
