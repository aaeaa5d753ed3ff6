//! Provider health: recent outcomes of the calls dispatch makes to each provider, and a circuit
//! breaker that stops new dispatches to a provider that keeps failing.
//!
//! - **Closed**: every dispatch goes through. It opens when `consecutive_failures` calls in a
//!   row failed, or when the window holds at least `min_calls` calls of which
//!   `failure_rate_percent` or more failed.
//! - **Open** until `open_for` has passed: no create is sent to the provider (a request whose
//!   create may have reached it still looks its payout up: that is not a new dispatch).
//! - **Half-open** after that: one probe at a time (a lease of `probe_lease`) goes through;
//!   `half_open_successes` successes close the circuit, one failure opens it again.
//!
//! Failures are errors (5xx, refused connections, unreadable answers, configuration refusals)
//! and timeouts (a call whose outcome is unknown); a decline of the beneficiary's data is the
//! provider working, and counts apart. Every state lives in one [`ProviderHealth`] value per
//! provider, changed by these pure functions and written conditionally on its version.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::provider::ProviderName;

/// The breaker's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Length of the window the counts cover (a new window starts empty).
    pub window: Duration,
    /// Calls in the window before the failure rate can open the circuit.
    pub min_calls: u32,
    /// Failure rate (percent) that opens the circuit.
    pub failure_rate_percent: u8,
    /// Failures in a row that open the circuit.
    pub consecutive_failures: u32,
    /// How long the circuit stays open before a probe is let through.
    pub open_for: Duration,
    /// Successful probes that close a half-open circuit.
    pub half_open_successes: u32,
    /// How long one probe holds the half-open circuit before another may go.
    pub probe_lease: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(60),
            min_calls: 20,
            failure_rate_percent: 50,
            consecutive_failures: 8,
            open_for: Duration::from_secs(30),
            half_open_successes: 1,
            probe_lease: Duration::from_secs(30),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// No new dispatch until `until`.
    Open {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    /// Probes go through one at a time; `successes` so far.
    HalfOpen {
        successes: u32,
        /// Until when the probe in flight holds it (none: the next call is the probe).
        #[serde(default, with = "time::serde::rfc3339::option")]
        probe_until: Option<OffsetDateTime>,
    },
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn name(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open { .. } => "open",
            CircuitState::HalfOpen { .. } => "half_open",
        }
    }
}

/// What one provider call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It answered (a payout, "none", an acceptance).
    Success,
    /// It declined the payout's data: the provider works.
    Decline,
    /// It failed and nothing happened (5xx, refused, unreadable, configuration).
    Error,
    /// Its outcome is unknown (timeout, dropped connection).
    Timeout,
}

impl CallOutcome {
    fn is_failure(self) -> bool {
        matches!(self, CallOutcome::Error | CallOutcome::Timeout)
    }
}

/// Counts over the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts {
    pub successes: u64,
    pub declines: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Σ latency of the calls counted, in milliseconds.
    pub latency_ms_total: u64,
    /// The slowest call counted, in milliseconds.
    pub latency_ms_max: u64,
}

impl WindowCounts {
    /// Calls counted.
    pub fn calls(&self) -> u64 {
        self.successes
            .saturating_add(self.declines)
            .saturating_add(self.errors)
            .saturating_add(self.timeouts)
    }

    /// Errors and timeouts.
    pub fn failures(&self) -> u64 {
        self.errors.saturating_add(self.timeouts)
    }

    /// Mean latency in milliseconds (`None` without calls).
    pub fn latency_ms_mean(&self) -> Option<u64> {
        self.latency_ms_total.checked_div(self.calls())
    }

    fn add(&mut self, outcome: CallOutcome, latency: Duration) {
        let slot = match outcome {
            CallOutcome::Success => &mut self.successes,
            CallOutcome::Decline => &mut self.declines,
            CallOutcome::Error => &mut self.errors,
            CallOutcome::Timeout => &mut self.timeouts,
        };
        *slot = slot.saturating_add(1);
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms_total = self.latency_ms_total.saturating_add(ms);
        self.latency_ms_max = self.latency_ms_max.max(ms);
    }
}

/// A state change of a circuit, to log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitTransition {
    pub provider: ProviderName,
    pub from: &'static str,
    pub to: &'static str,
}

/// Whether a dispatch may send a create to the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go.
    Allowed,
    /// Half-open and this call is the probe: write the returned health (it holds the probe),
    /// then go.
    Probe,
    /// Open (or a probe is in flight): not before `until`.
    Refused { until: OffsetDateTime },
}

/// One provider's health: its circuit and the counts of the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub provider: ProviderName,
    pub circuit: CircuitState,
    /// When the circuit last changed state.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    /// When the current window started.
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    /// The current window's counts.
    pub window: WindowCounts,
    /// Failures in a row (any window).
    pub consecutive_failures: u32,
    /// The last call's outcome time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_call_at: Option<OffsetDateTime>,
    /// How many times the circuit opened, ever.
    #[serde(default)]
    pub times_opened: u64,
    /// Optimistic-lock version (0: never stored).
    pub version: u64,
}

impl ProviderHealth {
    /// A provider nobody has called yet: closed, empty.
    pub fn new(provider: ProviderName, now: OffsetDateTime) -> ProviderHealth {
        ProviderHealth {
            provider,
            circuit: CircuitState::Closed,
            changed_at: now,
            window_start: now,
            window: WindowCounts::default(),
            consecutive_failures: 0,
            last_call_at: None,
            times_opened: 0,
            version: 0,
        }
    }

    /// The circuit as it stands at `now`: an open circuit whose time is up reads half-open.
    pub fn circuit_at(&self, now: OffsetDateTime) -> CircuitState {
        match self.circuit {
            CircuitState::Open { until } if until <= now => CircuitState::HalfOpen {
                successes: 0,
                probe_until: None,
            },
            c => c,
        }
    }

    /// Whether a dispatch may send a create now; with [`Admission::Probe`], the health to write
    /// first (it takes the probe lease, so that one probe goes at a time).
    pub fn admit(&self, now: OffsetDateTime, config: &BreakerConfig) -> (Admission, Option<ProviderHealth>) {
        match self.circuit_at(now) {
            CircuitState::Closed => (Admission::Allowed, None),
            CircuitState::Open { until } => (Admission::Refused { until }, None),
            CircuitState::HalfOpen {
                probe_until: Some(until),
                ..
            } if until > now => (Admission::Refused { until }, None),
            CircuitState::HalfOpen { successes, .. } => {
                let mut next = self.clone();
                if !matches!(self.circuit, CircuitState::HalfOpen { .. }) {
                    next.changed_at = now;
                }
                next.circuit = CircuitState::HalfOpen {
                    successes,
                    probe_until: Some(later(now, config.probe_lease)),
                };
                (Admission::Probe, Some(next))
            }
        }
    }

    /// Counts one call's outcome and moves the circuit; the transition, if any, to log.
    pub fn record(
        &self,
        outcome: CallOutcome,
        latency: Duration,
        now: OffsetDateTime,
        config: &BreakerConfig,
    ) -> (ProviderHealth, Option<CircuitTransition>) {
        let mut next = self.clone();
        if later(next.window_start, config.window) <= now {
            next.window_start = now;
            next.window = WindowCounts::default();
        }
        next.window.add(outcome, latency);
        next.last_call_at = Some(now);
        next.consecutive_failures = if outcome.is_failure() {
            next.consecutive_failures.saturating_add(1)
        } else {
            0
        };
        let before = self.circuit_at(now);
        let after = match before {
            CircuitState::Closed if next.trips(config) => CircuitState::Open {
                until: later(now, config.open_for),
            },
            CircuitState::Closed => CircuitState::Closed,
            CircuitState::Open { until } => CircuitState::Open { until },
            CircuitState::HalfOpen { .. } if outcome.is_failure() => CircuitState::Open {
                until: later(now, config.open_for),
            },
            CircuitState::HalfOpen { successes, .. } if outcome == CallOutcome::Success => {
                let successes = successes.saturating_add(1);
                if successes >= config.half_open_successes {
                    CircuitState::Closed
                } else {
                    CircuitState::HalfOpen {
                        successes,
                        probe_until: None,
                    }
                }
            }
            // A decline while half-open: the provider answers; the next probe may go.
            CircuitState::HalfOpen { successes, .. } => CircuitState::HalfOpen {
                successes,
                probe_until: None,
            },
        };
        next.circuit = after;
        let transition = (self.circuit.name() != after.name()).then(|| {
            next.changed_at = now;
            if after == CircuitState::Closed {
                next.consecutive_failures = 0;
            }
            if after.name() == "open" {
                next.times_opened = next.times_opened.saturating_add(1);
            }
            CircuitTransition {
                provider: self.provider,
                from: self.circuit.name(),
                to: after.name(),
            }
        });
        (next, transition)
    }

    fn trips(&self, config: &BreakerConfig) -> bool {
        if self.consecutive_failures >= config.consecutive_failures.max(1) {
            return true;
        }
        let calls = self.window.calls();
        calls >= u64::from(config.min_calls.max(1))
            && self.window.failures().saturating_mul(100)
                >= calls.saturating_mul(u64::from(config.failure_rate_percent))
    }
}

fn later(now: OffsetDateTime, by: Duration) -> OffsetDateTime {
    time::Duration::try_from(by)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
