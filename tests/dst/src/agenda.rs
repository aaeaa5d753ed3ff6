//! Timed events outside any process: a provider changing a payout, a provider's notification,
//! a merchant's or an operator's next action, the sweep's tick, a crash. Ordered by time, then
//! by the order they were planned in, so that a seed replays them identically.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cashout_core::ids::CashoutRequestId;
use cashout_core::provider::ProviderName;
use time::OffsetDateTime;

use crate::ctx::lock;
use crate::truth::PayoutState;

/// Something that happens at a time.
#[derive(Debug, Clone)]
pub enum Event {
    /// A provider moves a payout on.
    Transition {
        provider: ProviderName,
        /// The payout.
        payout_id: String,
        /// To what.
        to: PayoutState,
    },
    /// A provider posts a notification about a payout (as it is when the post is made).
    Notify {
        provider: ProviderName,
        /// The payout.
        payout_id: String,
    },
    /// Someone who is not the provider posts a notification: a forged or garbled one.
    Forged {
        /// The provider it pretends to be.
        provider: ProviderName,
        /// A request it names, if it names a real one.
        about: Option<CashoutRequestId>,
    },
    /// A merchant creates request number `n` of the plan.
    Create(usize),
    /// A merchant sends create `n` again (same key and body).
    Replay(usize),
    /// A merchant cancels request `n`.
    Cancel(usize),
    /// An operator looks at the requests waiting for a person and acts on one.
    Operator,
    /// The poller's scheduled sweep.
    Sweep,
    /// An operator starts a reconciliation of every day so far.
    Reconcile,
    /// The whole system crashes (every process dies; the store survives).
    Crash,
    /// Faults stop, so that everything can settle.
    Heal,
}

/// The timed events of a run.
#[derive(Default)]
pub struct Agenda {
    events: Mutex<BTreeMap<(OffsetDateTime, u64), Event>>,
    next: Mutex<u64>,
}

impl Agenda {
    /// Plans `event` at `at`.
    pub fn at(&self, at: OffsetDateTime, event: Event) {
        let mut next = lock(&self.next);
        *next += 1;
        lock(&self.events).insert((at, *next), event);
    }

    /// When the next event is due.
    pub fn next_at(&self) -> Option<OffsetDateTime> {
        lock(&self.events).keys().next().map(|(at, _)| *at)
    }

    /// Takes the next event due at or before `now`.
    pub fn pop_due(&self, now: OffsetDateTime) -> Option<Event> {
        let mut events = lock(&self.events);
        let key = *events.keys().next().filter(|(at, _)| *at <= now)?;
        events.remove(&key)
    }
}
