//! API rate limits: a token bucket per caller, computed as GCRA (the generic cell rate
//! algorithm), so that a bucket's whole state is one number, its theoretical arrival time (TAT).
//!
//! A limit of `per_second` calls with a `burst` lets a caller that was idle make `burst` calls at
//! once, then one every `1 / per_second` seconds. A call at `now` is allowed when
//! `max(tat, now) + interval - now <= burst * interval`, and then moves the TAT to
//! `max(tat, now) + interval`; a refused call changes nothing and may retry after the excess. A
//! TAT at or before `now` is a full bucket, the same as no state at all: stores may forget it.
//!
//! [`Buckets`] keeps TATs in this process (the embedded stores, where one process is the whole
//! system, and the API's pre-check); the DynamoDB store keeps them in the table, shared by every
//! Lambda instance.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::auth::{OperatorName, Principal};
use crate::ids::MerchantId;

/// The largest rate and burst a limit may have (calls per second, calls).
pub const MAX_RATE: u32 = 100_000;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// How many buckets an in-process table keeps by default: every merchant and operator of a
/// deployment, with room to spare (a bucket is a key and 8 bytes).
pub const KEPT_BUCKETS: usize = 100_000;

/// A rate limit: `per_second` calls a second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
}

/// A text or numbers refused as a rate limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a rate limit RATE/BURST (calls per second and calls at once, each a whole number from 1 to 100000)"
)]
pub struct InvalidRateLimit(pub String);

impl RateLimit {
    /// A limit of `per_second` calls a second, `burst` at once; each from 1 to [`MAX_RATE`].
    pub fn new(per_second: u32, burst: u32) -> Result<Self, InvalidRateLimit> {
        let valid = |n: u32| (1..=MAX_RATE).contains(&n);
        if valid(per_second) && valid(burst) {
            Ok(RateLimit { per_second, burst })
        } else {
            Err(InvalidRateLimit(format!("{per_second}/{burst}")))
        }
    }

    /// A limit of `per_second` and `burst`, each brought within 1 to [`MAX_RATE`] (for constants).
    pub const fn clamped(per_second: u32, burst: u32) -> Self {
        const fn within(n: u32) -> u32 {
            if n < 1 {
                1
            } else if n > MAX_RATE {
                MAX_RATE
            } else {
                n
            }
        }
        RateLimit {
            per_second: within(per_second),
            burst: within(burst),
        }
    }

    /// Calls a second on average.
    pub fn per_second(self) -> u32 {
        self.per_second
    }

    /// Calls at once after an idle time.
    pub fn burst(self) -> u32 {
        self.burst
    }

    /// Nanoseconds between two calls at the steady rate.
    pub fn interval_ns(self) -> i64 {
        NANOS_PER_SECOND / i64::from(self.per_second)
    }

    /// How far ahead of `now` the TAT may be after an allowed call.
    pub fn tolerance_ns(self) -> i64 {
        self.interval_ns() * i64::from(self.burst)
    }

    /// One GCRA step: a call at `now_ns` against the stored `tat_ns` (`None`: no state, a full
    /// bucket).
    pub fn step(self, tat_ns: Option<i64>, now_ns: i64) -> Step {
        let from = tat_ns.map_or(now_ns, |tat| tat.max(now_ns));
        let next = from.saturating_add(self.interval_ns());
        let excess = next.saturating_sub(now_ns).saturating_sub(self.tolerance_ns());
        if excess > 0 {
            Step::Limited {
                retry_after: Duration::from_nanos(excess.unsigned_abs()),
            }
        } else {
            Step::Allowed { tat_ns: next }
        }
    }

    /// The TAT a store held when it refused a call at `now_ns` with `retry_after` (the inverse
    /// of [`Self::step`]'s excess): what a pre-check adopts so that it refuses, without asking
    /// the store, until the store would allow again.
    pub fn tat_of_refusal(self, now_ns: i64, retry_after: Duration) -> i64 {
        let retry = i64::try_from(retry_after.as_nanos()).unwrap_or(i64::MAX);
        now_ns
            .saturating_add(retry)
            .saturating_add(self.tolerance_ns())
            .saturating_sub(self.interval_ns())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.per_second, self.burst)
    }
}

impl FromStr for RateLimit {
    type Err = InvalidRateLimit;

    /// `RATE/BURST`, as in `50/100`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidRateLimit(text.chars().take(40).collect());
        let (rate, burst) = text.trim().split_once('/').ok_or_else(invalid)?;
        let number = |n: &str| n.trim().parse::<u32>().map_err(|_| invalid());
        RateLimit::new(number(rate)?, number(burst)?).map_err(|_| invalid())
    }
}

/// What one GCRA step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Allowed; the bucket's TAT is now `tat_ns`.
    Allowed {
        /// The new TAT (Unix nanoseconds).
        tat_ns: i64,
    },
    /// Refused; nothing changed.
    Limited {
        /// How long until the same call would be allowed.
        retry_after: Duration,
    },
}

/// Whether a call may go ahead.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead: a token was taken.
    Allowed,
    /// Over the limit: nothing was taken; try again after `retry_after`.
    Limited {
        /// How long until a call would be allowed.
        retry_after: Duration,
    },
}

impl From<Step> for Decision {
    fn from(step: Step) -> Self {
        match step {
            Step::Allowed { .. } => Decision::Allowed,
            Step::Limited { retry_after } => Decision::Limited { retry_after },
        }
    }
}

/// Whose bucket a call takes from: each merchant has one, each operator one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitKey {
    /// A merchant's calls, with every key of the merchant.
    Merchant(MerchantId),
    /// An operator's calls, with every key of the operator.
    Operator(OperatorName),
}

impl LimitKey {
    /// The bucket of an authenticated caller.
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Merchant { merchant_id } => LimitKey::Merchant(merchant_id.clone()),
            Principal::Operator { name, .. } => LimitKey::Operator(name.clone()),
        }
    }

    /// The key as stored: `m#{merchant}` or `o#{operator}` (neither id contains `#`).
    pub fn storage_key(&self) -> String {
        match self {
            LimitKey::Merchant(id) => format!("m#{id}"),
            LimitKey::Operator(name) => format!("o#{}", name.as_str()),
        }
    }
}

/// A time as Unix nanoseconds, saturating outside 1677–2262.
pub fn unix_ns(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 { i64::MIN } else { i64::MAX })
}

/// Token buckets in this process, at most `capacity` of them: a full table first forgets the
/// buckets that are full again (the same as forgetting nothing), then the one closest to full.
#[derive(Debug)]
pub struct Buckets<K> {
    tats: Mutex<BTreeMap<K, i64>>,
    capacity: usize,
}

impl<K: Ord + Clone> Buckets<K> {
    /// An empty table of at most `capacity` buckets (at least one).
    pub fn new(capacity: usize) -> Self {
        Buckets {
            tats: Mutex::new(BTreeMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn tats(&self) -> std::sync::MutexGuard<'_, BTreeMap<K, i64>> {
        // Every operation writes one whole value: a panic elsewhere leaves the map consistent.
        self.tats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a token from `key`'s bucket if one is there.
    pub fn take(&self, key: &K, now: OffsetDateTime, limit: RateLimit) -> Decision {
        let now_ns = unix_ns(now);
        let mut tats = self.tats();
        let step = limit.step(tats.get(key).copied(), now_ns);
        if let Step::Allowed { tat_ns } = step {
            Self::set(&mut tats, self.capacity, key, tat_ns, now_ns);
        }
        step.into()
    }

    /// What [`Self::take`] would decide, without taking.
    pub fn check(&self, key: &K, now: OffsetDateTime, limit: RateLimit) -> Decision {
        limit.step(self.tats().get(key).copied(), unix_ns(now)).into()
    }

    /// Empties `key`'s bucket until `now + retry_after`, as another holder of the same bucket
    /// (the shared store) said it is: later calls here are refused without asking it.
    pub fn hold(&self, key: &K, now: OffsetDateTime, limit: RateLimit, retry_after: Duration) {
        let now_ns = unix_ns(now);
        let held = limit.tat_of_refusal(now_ns, retry_after);
        let mut tats = self.tats();
        let tat = tats.get(key).copied().unwrap_or(held).max(held);
        Self::set(&mut tats, self.capacity, key, tat, now_ns);
    }

    /// How many buckets are kept.
    pub fn len(&self) -> usize {
        self.tats().len()
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set(tats: &mut BTreeMap<K, i64>, capacity: usize, key: &K, tat_ns: i64, now_ns: i64) {
        if !tats.contains_key(key) && tats.len() >= capacity {
            tats.retain(|_, tat| *tat > now_ns);
            if tats.len() >= capacity
                && let Some(fullest) = tats.iter().min_by_key(|(_, tat)| **tat).map(|(k, _)| k.clone())
            {
                tats.remove(&fullest);
            }
        }
        tats.insert(key.clone(), tat_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::milliseconds(ms)
    }

    fn limited(d: Decision) -> Duration {
        match d {
            Decision::Limited { retry_after } => retry_after,
            Decision::Allowed => panic!("allowed"),
        }
    }

    #[test]
    fn a_full_bucket_allows_its_burst_at_once_then_one_call_per_interval() {
        let limit = RateLimit::new(10, 3).unwrap();
        let b = Buckets::new(10);
        for _ in 0..3 {
            assert_eq!(b.take(&"a", at(0), limit), Decision::Allowed);
        }
        assert_eq!(limited(b.take(&"a", at(0), limit)), Duration::from_millis(100));
        assert_eq!(limited(b.take(&"a", at(99), limit)), Duration::from_millis(1));
        assert_eq!(b.take(&"a", at(100), limit), Decision::Allowed);
        assert!(matches!(b.take(&"a", at(100), limit), Decision::Limited { .. }));
        // After an idle second the whole burst is back, and never more than it.
        for _ in 0..3 {
            assert_eq!(b.take(&"a", at(5_000), limit), Decision::Allowed);
        }
        assert!(matches!(b.take(&"a", at(5_000), limit), Decision::Limited { .. }));
    }

    #[test]
    fn a_check_takes_nothing_and_a_hold_refuses_until_the_store_would_allow() {
        let limit = RateLimit::new(10, 2).unwrap();
        let b = Buckets::new(10);
        for _ in 0..5 {
            assert_eq!(b.check(&"a", at(0), limit), Decision::Allowed);
        }
        b.hold(&"a", at(0), limit, Duration::from_millis(250));
        assert_eq!(limited(b.check(&"a", at(0), limit)), Duration::from_millis(250));
        assert!(matches!(b.take(&"a", at(249), limit), Decision::Limited { .. }));
        assert_eq!(b.take(&"a", at(250), limit), Decision::Allowed);
        assert_eq!(
            b.check(&"b", at(0), limit),
            Decision::Allowed,
            "other keys are untouched"
        );
    }

    #[test]
    fn a_full_table_forgets_full_buckets_first_then_the_closest_to_full() {
        let limit = RateLimit::new(1, 1).unwrap();
        let b = Buckets::new(2);
        assert_eq!(b.take(&1, at(0), limit), Decision::Allowed);
        assert_eq!(b.take(&2, at(500), limit), Decision::Allowed);
        assert_eq!(b.take(&3, at(600), limit), Decision::Allowed);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b.check(&1, at(600), limit),
            Decision::Allowed,
            "the oldest was forgotten"
        );
        assert!(matches!(b.check(&2, at(600), limit), Decision::Limited { .. }));
        assert!(matches!(b.check(&3, at(600), limit), Decision::Limited { .. }));
    }

    #[test]
    fn limits_parse_as_rate_slash_burst_within_bounds() {
        assert_eq!("50/100".parse::<RateLimit>().unwrap(), RateLimit::new(50, 100).unwrap());
        assert_eq!(RateLimit::new(50, 100).unwrap().to_string(), "50/100");
        assert_eq!(RateLimit::clamped(0, 200_000), RateLimit::new(1, MAX_RATE).unwrap());
        for bad in ["50", "0/10", "10/0", "100001/1", "a/b", "-1/5", "5/5/5", ""] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_refusal_tat_round_trips_through_a_step() {
        let limit = RateLimit::new(7, 5).unwrap();
        let now = unix_ns(at(0));
        let mut tat = None;
        let retry = loop {
            match limit.step(tat, now) {
                Step::Allowed { tat_ns } => tat = Some(tat_ns),
                Step::Limited { retry_after } => break retry_after,
            }
        };
        assert_eq!(limit.tat_of_refusal(now, retry), tat.unwrap());
    }
}
