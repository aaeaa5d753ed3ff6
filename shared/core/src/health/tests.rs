use proptest::prelude::*;

use super::*;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(secs)
}

fn config() -> BreakerConfig {
    BreakerConfig {
        window: Duration::from_secs(60),
        min_calls: 10,
        failure_rate_percent: 50,
        consecutive_failures: 3,
        open_for: Duration::from_secs(30),
        half_open_successes: 2,
        probe_lease: Duration::from_secs(10),
    }
}

const MS: Duration = Duration::from_millis(20);

fn record_all(mut h: ProviderHealth, outcomes: &[CallOutcome], now: OffsetDateTime) -> ProviderHealth {
    for o in outcomes {
        h = h.record(*o, MS, now, &config()).0;
    }
    h
}

use CallOutcome::{Decline, Error, Success, Timeout};

#[test]
fn consecutive_failures_open_the_circuit_and_nothing_is_admitted_until_it_lapses() {
    let h = ProviderHealth::new(ProviderName::D24, t0());
    let h = record_all(h, &[Error, Timeout], t0());
    assert_eq!(h.circuit, CircuitState::Closed);
    assert_eq!(h.admit(t0(), &config()).0, Admission::Allowed);
    let (h, transition) = h.record(Error, MS, at(1), &config());
    assert_eq!(
        transition,
        Some(CircuitTransition {
            provider: ProviderName::D24,
            from: "closed",
            to: "open"
        })
    );
    assert_eq!(h.circuit, CircuitState::Open { until: at(31) });
    assert_eq!(h.admit(at(30), &config()).0, Admission::Refused { until: at(31) });
    assert_eq!(h.window.errors, 2);
    assert_eq!(h.window.timeouts, 1);
}

#[test]
fn the_failure_rate_opens_it_only_past_the_minimum_of_calls() {
    let h = ProviderHealth::new(ProviderName::Onspot, t0());
    // Alternating: never 3 in a row, 50 % failures.
    let mut h2 = h.clone();
    for i in 0..9 {
        h2 = h2
            .record(if i % 2 == 0 { Error } else { Success }, MS, t0(), &config())
            .0;
    }
    assert_eq!(h2.circuit, CircuitState::Closed, "9 calls: under the minimum");
    let (h2, t) = h2.record(Success, MS, t0(), &config());
    assert_eq!(h2.window.calls(), 10);
    assert_eq!(h2.window.failures(), 5);
    assert!(t.is_some(), "10 calls, 50 %: open");
    assert!(matches!(h2.circuit, CircuitState::Open { .. }));
}

#[test]
fn declines_are_the_provider_working() {
    let h = ProviderHealth::new(ProviderName::D24, t0());
    let h = record_all(h, &[Decline; 20], t0());
    assert_eq!(h.circuit, CircuitState::Closed);
    assert_eq!(h.window.declines, 20);
    assert_eq!(h.consecutive_failures, 0);
}

#[test]
fn a_new_window_starts_empty() {
    let h = ProviderHealth::new(ProviderName::D24, t0());
    let h = record_all(h, &[Success, Error], t0());
    let (h, _) = h.record(Success, MS, at(61), &config());
    assert_eq!(h.window_start, at(61));
    assert_eq!(h.window.calls(), 1);
    assert_eq!(h.consecutive_failures, 0);
}

#[test]
fn half_open_lets_one_probe_at_a_time_and_closes_after_enough_successes() {
    let h = record_all(ProviderHealth::new(ProviderName::D24, t0()), &[Error; 3], t0());
    let open_until = at(30);
    assert_eq!(h.circuit, CircuitState::Open { until: open_until });
    // Time is up: the first caller is the probe and holds it.
    let (admission, probe) = h.admit(open_until, &config());
    assert_eq!(admission, Admission::Probe);
    let h = probe.unwrap();
    assert_eq!(
        h.circuit,
        CircuitState::HalfOpen {
            successes: 0,
            probe_until: Some(at(40))
        }
    );
    assert_eq!(
        h.admit(at(35), &config()).0,
        Admission::Refused { until: at(40) },
        "one probe at a time"
    );
    let (h, t) = h.record(Success, MS, at(36), &config());
    assert_eq!(t, None, "one success of two");
    assert_eq!(h.admit(at(36), &config()).0, Admission::Probe, "the next probe may go");
    let (h, t) = h.record(Success, MS, at(37), &config());
    assert_eq!(t.map(|t| (t.from, t.to)), Some(("half_open", "closed")));
    assert_eq!(h.circuit, CircuitState::Closed);
    assert_eq!(h.admit(at(37), &config()).0, Admission::Allowed);
}

#[test]
fn a_failed_probe_opens_the_circuit_again() {
    let h = record_all(ProviderHealth::new(ProviderName::D24, t0()), &[Error; 3], t0());
    let (_, probe) = h.admit(at(30), &config());
    let (h, t) = probe.unwrap().record(Timeout, MS, at(31), &config());
    assert_eq!(t.map(|t| (t.from, t.to)), Some(("half_open", "open")));
    assert_eq!(h.circuit, CircuitState::Open { until: at(61) });
}

#[test]
fn a_lapsed_probe_lease_lets_another_probe_go() {
    let h = record_all(ProviderHealth::new(ProviderName::D24, t0()), &[Error; 3], t0());
    let probe = h.admit(at(30), &config()).1.unwrap();
    // The probe's dispatcher died: after its lease another caller probes.
    assert_eq!(probe.admit(at(40), &config()).0, Admission::Probe);
}

#[test]
fn health_round_trips_through_json() {
    let h = record_all(ProviderHealth::new(ProviderName::Cascad, t0()), &[Error; 3], t0());
    let text = serde_json::to_string(&h).unwrap();
    assert!(text.contains(r#""state":"open""#), "{text}");
    assert_eq!(serde_json::from_str::<ProviderHealth>(&text).unwrap(), h);
}

fn outcome() -> impl Strategy<Value = CallOutcome> {
    prop_oneof![Just(Success), Just(Decline), Just(Error), Just(Timeout)]
}

proptest! {
    /// Whatever the outcomes and their timing: the counts add up to the calls of the window, a
    /// closed circuit opens exactly when a threshold is crossed, an open circuit admits nothing
    /// before its time, and a transition is reported exactly when the state's name changes.
    #[test]
    fn the_breaker_keeps_its_rules_under_any_sequence(
        steps in proptest::collection::vec((outcome(), 0i64..20, any::<bool>()), 1..200)
    ) {
        let cfg = config();
        let mut h = ProviderHealth::new(ProviderName::D24, t0());
        let mut now = t0();
        for (o, advance, ask_first) in steps {
            now += time::Duration::seconds(advance);
            if ask_first {
                let (admission, probe) = h.admit(now, &cfg);
                if let CircuitState::Open { until } = h.circuit
                    && until > now
                {
                    prop_assert_eq!(admission, Admission::Refused { until });
                }
                if let Some(p) = probe {
                    prop_assert_eq!(admission, Admission::Probe);
                    h = p;
                }
            }
            let was_closed = h.circuit_at(now) == CircuitState::Closed;
            let (next, transition) = h.record(o, MS, now, &cfg);
            prop_assert_eq!(transition.is_some(), h.circuit.name() != next.circuit.name());
            if was_closed {
                let w = next.window;
                let trips = next.consecutive_failures >= cfg.consecutive_failures
                    || (w.calls() >= u64::from(cfg.min_calls)
                        && w.failures() * 100 >= w.calls() * u64::from(cfg.failure_rate_percent));
                prop_assert_eq!(matches!(next.circuit, CircuitState::Open { .. }), trips);
            }
            prop_assert_eq!(
                next.window.calls(),
                next.window.successes + next.window.declines + next.window.errors + next.window.timeouts
            );
            h = next;
        }
    }
}
