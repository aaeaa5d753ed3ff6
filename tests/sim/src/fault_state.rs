//! The faults in force while the simulator runs: what was set per provider and, for faults set
//! with `for_ms`, the instant of the simulator's clock at which they run out. Expiry is lazy:
//! every read at `now` first clears what has run out, so a test that moves a
//! [`crate::ManualClock`] sees the provider answer normally on its next request, with no timer.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::Provider;
use crate::config::{FaultConfig, Faults, MAX_FOR_MS};

#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    /// When the faults of each provider set with a `for_ms` are cleared.
    until: BTreeMap<Provider, OffsetDateTime>,
}

impl FaultState {
    /// `faults`, their `for_ms` counted from `now`.
    pub(crate) fn new(faults: Faults, now: OffsetDateTime) -> FaultState {
        let mut state = FaultState {
            faults: Faults::default(),
            until: BTreeMap::new(),
        };
        state.set_all(&faults, now);
        state
    }

    /// Replaces one provider's faults; their `for_ms` (clamped to [`MAX_FOR_MS`]) runs from
    /// `now`, and replaces any earlier deadline of that provider.
    pub(crate) fn set(&mut self, provider: Provider, mut config: FaultConfig, now: OffsetDateTime) {
        config.for_ms = config.for_ms.min(MAX_FOR_MS);
        let until = config
            .lasts()
            .and_then(|d| time::Duration::try_from(d).ok())
            .and_then(|d| now.checked_add(d));
        match until {
            Some(at) => self.until.insert(provider, at),
            None => self.until.remove(&provider),
        };
        *self.faults.get_mut(provider) = config;
    }

    /// Replaces every provider's faults, as [`Self::set`] does for one.
    pub(crate) fn set_all(&mut self, faults: &Faults, now: OffsetDateTime) {
        for p in Provider::ALL {
            self.set(p, faults.get(p).clone(), now);
        }
    }

    /// The faults in force at `now`: a provider whose `for_ms` has run out has its faults
    /// cleared first ([`FaultConfig::cleared`]), for good, so `GET /_sim/faults` shows them so.
    pub(crate) fn at(&mut self, now: OffsetDateTime) -> &Faults {
        let due: Vec<Provider> = self
            .until
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.until.remove(&p);
            let f = self.faults.get_mut(p);
            *f = f.cleared();
            tracing::info!(provider = %p, "the faults set with for_ms ran out: cleared");
        }
        &self.faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
    }

    fn ms(n: i64) -> time::Duration {
        time::Duration::milliseconds(n)
    }

    fn outage(for_ms: u64) -> FaultConfig {
        FaultConfig {
            error_before: 100,
            for_ms,
            production_services: false,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn faults_with_for_ms_apply_until_it_runs_out_then_are_cleared_keeping_the_switches() {
        let mut state = FaultState::new(Faults::default(), t0());
        state.set(Provider::D24, outage(5_000), t0());
        assert_eq!(state.at(t0() + ms(4_999)).d24.error_before, 100);
        let after = state.at(t0() + ms(5_000)).d24.clone();
        assert_eq!(after, outage(0).cleared());
        assert!(!after.production_services, "a switch is not a fault: it stays");
        assert_eq!(
            state.at(t0() - ms(1)).d24,
            after,
            "cleared for good, even if the clock goes back"
        );
    }

    #[test]
    fn faults_set_at_start_count_from_start_and_other_providers_are_untouched() {
        let faults = Faults {
            cascad: outage(1_000),
            onspot: outage(0),
            ..Faults::default()
        };
        let mut state = FaultState::new(faults, t0());
        let later = state.at(t0() + ms(1_000)).clone();
        assert_eq!(later.cascad.error_before, 0);
        assert_eq!(later.onspot.error_before, 100, "no for_ms: until changed");
        assert_eq!(state.at(t0() + ms(1_000_000_000)).onspot.error_before, 100);
    }

    #[test]
    fn setting_again_restarts_or_removes_the_deadline_and_for_ms_is_clamped() {
        let mut state = FaultState::new(Faults::default(), t0());
        state.set(Provider::Tupay, outage(1_000), t0());
        state.set(Provider::Tupay, outage(1_000), t0() + ms(900));
        assert_eq!(state.at(t0() + ms(1_899)).tupay.error_before, 100);
        assert_eq!(state.at(t0() + ms(1_900)).tupay.error_before, 0);
        state.set(Provider::Tupay, outage(1_000), t0());
        state.set(Provider::Tupay, outage(0), t0());
        assert_eq!(
            state.at(t0() + ms(2_000)).tupay.error_before,
            100,
            "set again without for_ms"
        );
        state.set(Provider::Tupay, outage(u64::MAX), t0());
        assert_eq!(state.at(t0()).tupay.for_ms, MAX_FOR_MS);
        let day = ms(i64::try_from(MAX_FOR_MS).unwrap());
        assert_eq!(state.at(t0() + day - ms(1)).tupay.error_before, 100);
        assert_eq!(state.at(t0() + day).tupay.error_before, 0);
    }
}
