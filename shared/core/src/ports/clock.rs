//! Time and identity, injected so that tests are deterministic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use uuid::Uuid;

/// The current time, always UTC.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The longest delay ever added to a time: anything beyond is treated as this. Delays that come
/// from outside (a `Retry-After`, a provider's answer) are bounded far below it where they are
/// read; this bound only keeps the arithmetic from overflowing whatever reaches it.
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// `now + delay`, with `delay` capped at [`MAX_DELAY`]: never panics, whatever the delay.
pub fn after(now: OffsetDateTime, delay: std::time::Duration) -> OffsetDateTime {
    let delay = time::Duration::try_from(delay.min(MAX_DELAY)).unwrap_or(time::Duration::ZERO);
    now.checked_add(delay).unwrap_or(now)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// New identifiers and secret material.
pub trait IdGenerator: Send + Sync {
    /// A new UUID v7 for time `at` (ids sort by creation time).
    fn uuid_v7(&self, at: OffsetDateTime) -> Uuid;
    /// 32 bytes for a new secret (webhook signing keys, API keys).
    fn secret_bytes(&self) -> [u8; 32];
}

/// Random ids and secrets from the operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemIds;

impl IdGenerator for SystemIds {
    fn uuid_v7(&self, at: OffsetDateTime) -> Uuid {
        let secs = u64::try_from(at.unix_timestamp()).unwrap_or_default();
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, at.nanosecond());
        Uuid::new_v7(ts)
    }

    fn secret_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        // Without an OS random source nothing secret can be made: fail loudly at once.
        getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        bytes
    }
}

/// Deterministic ids and secrets (tests): a counter in the random bits.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn uuid_v7(&self, at: OffsetDateTime) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid()
    }

    fn secret_bytes(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0x5au8; 32];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes
    }
}

impl<G: IdGenerator + ?Sized> IdGenerator for std::sync::Arc<G> {
    fn uuid_v7(&self, at: OffsetDateTime) -> Uuid {
        (**self).uuid_v7(at)
    }
    fn secret_bytes(&self) -> [u8; 32] {
        (**self).secret_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_any_delay_to_a_time_never_panics() {
        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        assert_eq!(
            after(now, std::time::Duration::from_secs(5)),
            now + time::Duration::seconds(5)
        );
        let far = after(now, std::time::Duration::from_secs(u64::MAX));
        assert_eq!(far, after(now, MAX_DELAY), "a huge delay is capped");
        assert_eq!(
            after(
                OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
                MAX_DELAY
            )
            .year(),
            9999
        );
    }
}
