//! The simulator's books: every payout with its planned lifecycle, create attempts per
//! reference, and the outbox of notifications/callbacks. Progress is derived from stored
//! timestamps and the clock ([`Book::advance`]), so a simulator restarted on the same
//! `state_dir` resumes where it was and re-sends what it had not delivered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Provider;
use crate::config::{FaultConfig, SimConfig};
use crate::d24::table::D24State;
use crate::ledger::{Ledger, LedgerDelivery, LedgerPayout, LedgerReference};
use crate::triggers::delays;
use crate::{cascad, d24};

/// One planned status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub(crate) enum Change {
    D24 {
        status: D24State,
        rejection_code: Option<u16>,
    },
    Cascad {
        status: String,
        resolution: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub change: Change,
}

/// What the family keeps about a payout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub(crate) enum Detail {
    D24 {
        status: D24State,
        rejection_code: Option<u16>,
        notification_url: String,
    },
    Cascad(Box<cascad::Invoice>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HistoryEntry {
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Payout {
    pub provider: Provider,
    pub id: String,
    pub reference: String,
    /// Decimal text, exactly as received.
    pub amount: String,
    pub currency: Option<String>,
    pub account_masked: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub detail: Detail,
    pub plan: Vec<Step>,
    pub history: Vec<HistoryEntry>,
    /// The provider lost it (`DELETE /_sim/payouts/...`): no lookup, list or ledger shows it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

impl Payout {
    /// The payout as the ledger shows it.
    pub(crate) fn ledger(&self) -> LedgerPayout {
        LedgerPayout {
            provider: self.provider,
            id: self.id.clone(),
            reference: self.reference.clone(),
            status: self.status_word(),
            amount: self.amount.clone(),
            currency: self.currency.clone(),
            account: self.account_masked.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            history: self.history.iter().map(|h| (h.status.clone(), h.at)).collect(),
        }
    }

    pub(crate) fn status_word(&self) -> String {
        match &self.detail {
            Detail::D24 {
                status, rejection_code, ..
            } => match rejection_code {
                Some(c) => format!("{} {c}", status.name()),
                None => status.name().to_owned(),
            },
            Detail::Cascad(inv) => inv.status.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryState {
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Dropped on purpose (`notify_drop`).
    Dropped,
    /// Not sent: the URL is not on loopback.
    Refused,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub id: u64,
    pub provider: Provider,
    pub payout_id: String,
    pub reference: String,
    pub status: String,
    pub url: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_at: OffsetDateTime,
    pub state: DeliveryState,
    pub last_result: Option<String>,
    #[serde(skip)]
    pub in_flight: bool,
}

/// Everything the simulator must not forget. Payouts and deliveries are only ever appended,
/// through [`Book::push_payout`] and [`Book::push_delivery`], and plans are set through
/// [`Book::set_plan`], so that the lookups every request makes stay indexed (a load test
/// creates hundreds of thousands of payouts; a scan per request would make the simulator, not
/// the system under test, the bottleneck).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Book {
    pub next_d24_id: u64,
    pub next_delivery_id: u64,
    pub payouts: Vec<Payout>,
    /// Create requests received, by `provider|reference`.
    pub attempts: BTreeMap<String, u32>,
    pub deliveries: Vec<Delivery>,
    #[serde(skip)]
    index: Index,
}

/// Derived from the book (rebuilt on load).
#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<(Provider, String), usize>,
    by_reference: HashMap<(Provider, String), Vec<usize>>,
    /// Each payout's next planned step.
    due: BTreeSet<(OffsetDateTime, usize)>,
    delivery_at: HashMap<u64, usize>,
    /// Deliveries still pending.
    pending: BTreeSet<usize>,
}

pub(crate) fn attempt_key(provider: Provider, reference: &str) -> String {
    format!("{provider}|{reference}")
}

/// What [`Book::advance`] and the handlers need besides the book.
pub(crate) struct Ctx<'a> {
    pub now: OffsetDateTime,
    pub scale: u32,
    pub config: &'a SimConfig,
    pub faults: &'a crate::config::Faults,
    pub rng: &'a mut StdRng,
}

impl Ctx<'_> {
    /// A documented delay, sped up by the time scale.
    pub(crate) fn scaled(&self, d: std::time::Duration) -> time::Duration {
        let d = d / self.scale.max(1);
        time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
    }

    pub(crate) fn roll(&mut self, percent: u8) -> bool {
        percent > 0 && self.rng.random_range(0u8..100) < percent
    }
}

impl Book {
    pub(crate) fn load(path: &Path) -> std::io::Result<Book> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut book: Book = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                book.reindex();
                Ok(book)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Book::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the book atomically (temporary file, then rename).
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    /// The next D24 `cashout_id`: `first`, then one more for every cashout created.
    pub(crate) fn next_d24_id(&mut self, first: u64) -> String {
        let id = first + self.next_d24_id;
        self.next_d24_id += 1;
        id.to_string()
    }

    pub(crate) fn count_attempt(&mut self, provider: Provider, reference: &str) {
        *self.attempts.entry(attempt_key(provider, reference)).or_default() += 1;
    }

    fn reindex(&mut self) {
        self.index = Index::default();
        for i in 0..self.payouts.len() {
            self.index_payout(i);
        }
        for i in 0..self.deliveries.len() {
            self.index_delivery(i);
        }
    }

    fn index_payout(&mut self, i: usize) {
        let p = &self.payouts[i];
        if p.lost {
            return;
        }
        self.index.by_id.insert((p.provider, p.id.clone()), i);
        self.index
            .by_reference
            .entry((p.provider, p.reference.clone()))
            .or_default()
            .push(i);
        if let Some(step) = p.plan.first() {
            self.index.due.insert((step.at, i));
        }
    }

    fn index_delivery(&mut self, i: usize) {
        let d = &self.deliveries[i];
        self.index.delivery_at.insert(d.id, i);
        if d.state == DeliveryState::Pending {
            self.index.pending.insert(i);
        }
    }

    /// Adds a payout; returns its index.
    pub(crate) fn push_payout(&mut self, payout: Payout) -> usize {
        self.payouts.push(payout);
        let i = self.payouts.len() - 1;
        self.index_payout(i);
        i
    }

    /// The provider loses payout `i`: it leaves every index and listing, its plan stops.
    pub(crate) fn lose_at(&mut self, i: usize) {
        self.set_plan(i, Vec::new());
        let p = &mut self.payouts[i];
        p.lost = true;
        let (provider, id, reference) = (p.provider, p.id.clone(), p.reference.clone());
        self.index.by_id.remove(&(provider, id));
        if let Some(list) = self.index.by_reference.get_mut(&(provider, reference)) {
            list.retain(|&j| j != i);
        }
    }

    /// Replaces payout `i`'s plan.
    pub(crate) fn set_plan(&mut self, i: usize, plan: Vec<Step>) {
        if let Some(step) = self.payouts[i].plan.first() {
            self.index.due.remove(&(step.at, i));
        }
        if let Some(step) = plan.first() {
            self.index.due.insert((step.at, i));
        }
        self.payouts[i].plan = plan;
    }

    fn push_delivery(&mut self, delivery: Delivery) {
        self.deliveries.push(delivery);
        self.index_delivery(self.deliveries.len() - 1);
    }

    /// The pending deliveries due at `now` and not being sent, marked as being sent.
    pub(crate) fn take_due_deliveries(&mut self, now: OffsetDateTime) -> Vec<Delivery> {
        let mut due = Vec::new();
        for &i in &self.index.pending {
            let d = &mut self.deliveries[i];
            if !d.in_flight && d.next_at <= now {
                d.in_flight = true;
                due.push(d.clone());
            }
        }
        due
    }

    /// A delivery that may not be sent (its URL is not on loopback).
    pub(crate) fn refuse_delivery(&mut self, id: u64) {
        if let Some(&i) = self.index.delivery_at.get(&id) {
            self.deliveries[i].state = DeliveryState::Refused;
            self.deliveries[i].in_flight = false;
            self.index.pending.remove(&i);
        }
    }

    pub(crate) fn find(&self, provider: Provider, id: &str) -> Option<usize> {
        self.index.by_id.get(&(provider, id.to_owned())).copied()
    }

    /// Payouts for a reference, oldest first.
    pub(crate) fn by_reference(&self, provider: Provider, reference: &str) -> Vec<usize> {
        self.index
            .by_reference
            .get(&(provider, reference.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Applies every planned change that is due at `ctx.now`, in time order, and queues the
    /// notification each one causes.
    /// Returns whether anything changed.
    pub(crate) fn advance(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let mut changed = false;
        while let Some(&(at, i)) = self.index.due.first()
            && at <= ctx.now
        {
            self.index.due.remove(&(at, i));
            loop {
                let due = match self.payouts[i].plan.first() {
                    Some(step) if step.at <= ctx.now => self.payouts[i].plan.remove(0),
                    _ => break,
                };
                self.apply(i, due.change, due.at, ctx);
                changed = true;
            }
            if let Some(next) = self.payouts[i].plan.first() {
                self.index.due.insert((next.at, i));
            }
        }
        changed
    }

    /// Applies one change (planned or asked for through the API) and queues its notification.
    pub(crate) fn apply(&mut self, i: usize, change: Change, at: OffsetDateTime, ctx: &mut Ctx<'_>) {
        let payout = &mut self.payouts[i];
        match (&mut payout.detail, change) {
            (
                Detail::D24 {
                    status, rejection_code, ..
                },
                Change::D24 {
                    status: next,
                    rejection_code: code,
                },
            ) => {
                if !status.may_become(next) {
                    tracing::debug!(payout = %payout.id, from = status.name(), to = next.name(), "planned change no longer allowed");
                    return;
                }
                *status = next;
                *rejection_code = code;
            }
            (Detail::Cascad(inv), Change::Cascad { status, resolution }) => {
                if status == "processed" {
                    inv.processed = Some(at.unix_timestamp());
                }
                inv.status = status;
                inv.resolution = resolution;
                inv.updated = at.unix_timestamp();
            }
            _ => return,
        }
        payout.updated_at = at;
        let word = payout.status_word();
        payout.history.push(HistoryEntry { status: word, at });
        self.notify(i, at, ctx);
    }

    /// Queues the notification (D24) or callback (Cascad) of payout `i`'s current state.
    fn notify(&mut self, i: usize, at: OffsetDateTime, ctx: &mut Ctx<'_>) {
        let payout = &self.payouts[i];
        let rendered = match &payout.detail {
            Detail::D24 { notification_url, .. } => d24::notification(payout, at, ctx.config).map(|(body, h)| {
                (
                    notification_url.clone(),
                    "application/x-www-form-urlencoded",
                    body,
                    h,
                    5 + 1,
                )
            }),
            Detail::Cascad(inv) => inv.callback_url.clone().and_then(|url| {
                cascad::callback(payout, ctx.config).map(|(body, h)| (url, "application/json", body, h, 100 + 1))
            }),
        };
        let Some((url, content_type, body, headers, max_attempts)) = rendered else {
            return;
        };
        let faults: FaultConfig = ctx.faults.get(payout.provider).clone();
        let mut delivery = Delivery {
            id: 0,
            provider: payout.provider,
            payout_id: payout.id.clone(),
            reference: payout.reference.clone(),
            status: payout.status_word(),
            url,
            content_type: content_type.to_owned(),
            headers,
            body,
            attempts: 0,
            max_attempts,
            next_at: at,
            state: DeliveryState::Pending,
            last_result: None,
            in_flight: false,
        };
        if ctx.roll(faults.notify_drop) {
            delivery.state = DeliveryState::Dropped;
        } else if ctx.roll(faults.notify_reorder) {
            delivery.next_at = at + ctx.scaled(delays::REORDER_HOLD);
        }
        let duplicate = delivery.state == DeliveryState::Pending && ctx.roll(faults.notify_duplicate);
        if duplicate {
            let mut copy = delivery.clone();
            copy.id = self.take_delivery_id();
            self.push_delivery(copy);
        }
        delivery.id = self.take_delivery_id();
        self.push_delivery(delivery);
    }

    fn take_delivery_id(&mut self) -> u64 {
        self.next_delivery_id += 1;
        self.next_delivery_id
    }

    /// Records one delivery attempt and plans the next if it failed.
    pub(crate) fn record_attempt(&mut self, id: u64, ok: bool, result: String, ctx: &Ctx<'_>) {
        let Some(&i) = self.index.delivery_at.get(&id) else {
            return;
        };
        let d = &mut self.deliveries[i];
        d.in_flight = false;
        d.attempts += 1;
        d.last_result = Some(result);
        if ok {
            d.state = DeliveryState::Delivered;
        } else if d.attempts >= d.max_attempts {
            d.state = DeliveryState::Failed;
        } else {
            let gap = match d.provider {
                Provider::Cascad => delays::CASCAD_RETRY_UNIT * d.attempts,
                Provider::D24 | Provider::Onspot | Provider::Tupay => delays::D24_RETRY_GAP,
            };
            d.next_at = ctx.now + ctx.scaled(gap);
        }
        if d.state != DeliveryState::Pending {
            self.index.pending.remove(&i);
        }
    }

    /// The ground truth, for `GET /_sim/ledger`.
    pub(crate) fn ledger(&self) -> Ledger {
        let payouts = self.payouts.iter().filter(|p| !p.lost).map(Payout::ledger).collect();
        let mut refs: BTreeMap<String, LedgerReference> = BTreeMap::new();
        for (key, attempts) in &self.attempts {
            let (provider, reference) = key.split_once('|').unwrap_or((key, ""));
            let Ok(provider) = provider.parse() else {
                continue;
            };
            refs.insert(
                key.clone(),
                LedgerReference {
                    provider,
                    reference: reference.to_owned(),
                    create_attempts: *attempts,
                    payouts: 0,
                },
            );
        }
        for p in self.payouts.iter().filter(|p| !p.lost) {
            refs.entry(attempt_key(p.provider, &p.reference))
                .or_insert_with(|| LedgerReference {
                    provider: p.provider,
                    reference: p.reference.clone(),
                    create_attempts: 0,
                    payouts: 0,
                })
                .payouts += 1;
        }
        let deliveries = self
            .deliveries
            .iter()
            .map(|d| LedgerDelivery {
                id: d.id,
                provider: d.provider,
                payout_id: d.payout_id.clone(),
                reference: d.reference.clone(),
                status: d.status.clone(),
                url: d.url.clone(),
                attempts: d.attempts,
                state: format!("{:?}", d.state).to_lowercase(),
                last_result: d.last_result.clone(),
                next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_at),
            })
            .collect();
        Ledger {
            payouts,
            references: refs.into_values().collect(),
            deliveries,
        }
    }
}

/// Masks an account for responses and the ledger: a long number keeps its first six and last
/// four characters (`512381******0000`, as Cascad shows cards), a short one its last four.
pub(crate) fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n > 10 {
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(n - 10))
    } else if n > 4 {
        let tail: String = chars[n - 4..].iter().collect();
        format!("{}{tail}", "*".repeat(n - 4))
    } else {
        "*".repeat(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_the_docs() {
        assert_eq!(mask("5123817234060000"), "512381******0000");
        assert_eq!(mask("123456789"), "*****6789");
        assert_eq!(mask("123"), "***");
    }
}
