//! The clock lifecycles are measured on: the system clock, a manual one for tests, or any
//! closure (`Arc::new(move || other_clock.now())`), so that a caller can share its own clock
//! without this crate knowing its type.

use std::sync::Mutex;

use time::OffsetDateTime;

/// Tells the time (UTC).
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
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
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += by;
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

/// Any `Fn() -> OffsetDateTime` is a clock: the way to hand the simulator another crate's clock.
impl<F: Fn() -> OffsetDateTime + Send + Sync> Clock for F {
    fn now(&self) -> OffsetDateTime {
        self()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_closures_are_clocks() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_597_835_735).unwrap();
        let manual = Arc::new(ManualClock::new(t0));
        manual.advance(time::Duration::seconds(2));
        assert_eq!(manual.now(), t0 + time::Duration::seconds(2));
        let shared = manual.clone();
        let through: Arc<dyn Clock> = Arc::new(move || shared.now());
        manual.set(t0);
        assert_eq!(through.now(), t0);
    }
}
