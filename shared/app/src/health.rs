//! Provider health as the functions share it: every dispatch asks whether the provider's circuit
//! admits a create, and records what each provider call came to.
//!
//! The state is one [`ProviderHealth`] per provider in the store (DynamoDB on AWS, so every
//! function sees the same circuit), changed by core's pure breaker and written on its version.
//! To keep that off the hot path, a process gathers its successes and writes them at most every
//! [`AppConfig::health_flush`](crate::AppConfig::health_flush), and trusts what it read for
//! [`AppConfig::health_read`](crate::AppConfig::health_read); a failure, or any call while the
//! circuit is not closed, is written at once. Health is advice: a store failure here is logged
//! and never fails a dispatch (the circuit then reads as last known).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cashout_core::health::{Admission, CallOutcome, CircuitState, ProviderHealth};
use cashout_core::ports::{ProviderError, ProviderErrorKind, Store, StoreError};
use cashout_core::provider::ProviderName;
use time::OffsetDateTime;

use crate::App;

/// The most outcomes a process keeps while the store cannot take them (older ones are dropped).
const MAX_PENDING: usize = 10_000;
/// Conditional-write rounds before a flush gives up for now (its outcomes stay pending).
const FLUSH_ROUNDS: usize = 4;

/// What this process knows of each provider's health.
#[derive(Debug, Default)]
pub struct HealthCache {
    providers: Mutex<HashMap<ProviderName, Local>>,
}

#[derive(Debug, Default)]
struct Local {
    /// The last health read or written, and when.
    known: Option<(ProviderHealth, OffsetDateTime)>,
    /// Outcomes not written yet, oldest first.
    pending: Vec<(CallOutcome, Duration, OffsetDateTime)>,
}

impl HealthCache {
    fn with<T>(&self, provider: ProviderName, f: impl FnOnce(&mut Local) -> T) -> T {
        let mut map = self.providers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(provider).or_default())
    }
}

/// How a provider call counts for its health.
pub(crate) fn outcome_of<T>(result: &Result<T, ProviderError>) -> CallOutcome {
    match result {
        Ok(_) => CallOutcome::Success,
        Err(e) => match e.kind {
            ProviderErrorKind::Declined => CallOutcome::Decline,
            // The provider answered, about the payout.
            ProviderErrorKind::NotFound | ProviderErrorKind::InvalidState => CallOutcome::Success,
            ProviderErrorKind::Ambiguous => CallOutcome::Timeout,
            ProviderErrorKind::Retryable { .. } | ProviderErrorKind::Configuration | ProviderErrorKind::Protocol => {
                CallOutcome::Error
            }
        },
    }
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// The provider's health as this process sees it now: the shared state (read again once
    /// older than `health_read`) with this process's unwritten outcomes applied.
    pub(crate) async fn health_of(&self, provider: ProviderName) -> ProviderHealth {
        let now = self.now();
        let fresh = self.health.with(provider, |l| {
            l.known
                .as_ref()
                .filter(|(_, at)| crate::schedule::later(*at, self.config.health_read) > now)
                .map(|(h, _)| h.clone())
        });
        let base = match fresh {
            Some(h) => h,
            None => match self.store.get_provider_health(provider).await {
                Ok(stored) => {
                    let h = stored.unwrap_or_else(|| ProviderHealth::new(provider, now));
                    self.health.with(provider, |l| l.known = Some((h.clone(), now)));
                    h
                }
                Err(e) => {
                    tracing::warn!(%provider, error = %e, "provider health unreadable; using the last known");
                    self.health
                        .with(provider, |l| l.known.as_ref().map(|(h, _)| h.clone()))
                        .unwrap_or_else(|| ProviderHealth::new(provider, now))
                }
            },
        };
        let pending = self.health.with(provider, |l| l.pending.clone());
        pending.iter().fold(base, |h, (o, latency, at)| {
            h.record(*o, *latency, *at, &self.config.breaker).0
        })
    }

    /// Whether a create may be sent to `provider` now. Half-open, the caller that gets
    /// [`Admission::Probe`] took the probe (a conditional write); a caller that lost that race
    /// is refused for a second.
    pub(crate) async fn circuit_admits(&self, provider: ProviderName) -> Admission {
        let now = self.now();
        let health = self.health_of(provider).await;
        let (admission, probe) = health.admit(now, &self.config.breaker);
        let Some(mut probe) = probe else { return admission };
        // Written from what the store holds (the pending outcomes stay pending).
        let stored = self.health.with(provider, |l| l.known.as_ref().map(|(h, _)| h.clone()));
        let expected = stored.as_ref().map_or(0, |h| h.version);
        probe.version = expected.saturating_add(1);
        match self.store.put_provider_health(&probe, expected).await {
            Ok(()) => {
                tracing::info!(%provider, "circuit half-open: this dispatch is the probe");
                self.health.with(provider, |l| l.known = Some((probe, now)));
                Admission::Probe
            }
            Err(e) => {
                if !matches!(e, StoreError::Conflict { .. }) {
                    tracing::warn!(%provider, error = %e, "could not take the probe");
                }
                self.health.with(provider, |l| l.known = None);
                Admission::Refused {
                    until: crate::schedule::later(now, Duration::from_secs(1)),
                }
            }
        }
    }

    /// Records what a call to `provider` came to; writes it (with what this process gathered)
    /// at once when it may move the circuit, else at most every `health_flush`.
    pub(crate) async fn record_call(&self, provider: ProviderName, outcome: CallOutcome, latency: Duration) {
        let now = self.now();
        let flush = self.health.with(provider, |l| {
            if l.pending.len() >= MAX_PENDING {
                l.pending.remove(0);
            }
            l.pending.push((outcome, latency, now));
            let oldest = l.pending.first().map_or(now, |p| p.2);
            let closed = l.known.as_ref().is_none_or(|(h, _)| h.circuit == CircuitState::Closed);
            !matches!(outcome, CallOutcome::Success | CallOutcome::Decline)
                || !closed
                || crate::schedule::later(oldest, self.config.health_flush) <= now
        });
        if flush {
            self.flush_health(provider).await;
        }
    }

    /// Writes this process's pending outcomes into the shared health (reading it fresh, on its
    /// version); the circuit's transitions are logged as they happen.
    async fn flush_health(&self, provider: ProviderName) {
        let pending = self.health.with(provider, |l| std::mem::take(&mut l.pending));
        if pending.is_empty() {
            return;
        }
        for _ in 0..FLUSH_ROUNDS {
            let now = self.now();
            let stored = match self.store.get_provider_health(provider).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(%provider, error = %e, "provider health unreadable; its outcomes wait");
                    break;
                }
            };
            let expected = stored.as_ref().map_or(0, |h| h.version);
            let mut next = stored.unwrap_or_else(|| ProviderHealth::new(provider, now));
            let mut transitions = Vec::new();
            for (o, latency, at) in &pending {
                let (h, t) = next.record(*o, *latency, *at, &self.config.breaker);
                next = h;
                transitions.extend(t);
            }
            next.version = expected.saturating_add(1);
            match self.store.put_provider_health(&next, expected).await {
                Ok(()) => {
                    for t in transitions {
                        tracing::warn!(
                            metric = "cashout.circuit_transition",
                            provider = %t.provider,
                            from = t.from,
                            to = t.to,
                            consecutive_failures = next.consecutive_failures,
                            errors = next.window.errors,
                            timeouts = next.window.timeouts,
                            "provider circuit changed state"
                        );
                    }
                    self.health.with(provider, |l| l.known = Some((next, now)));
                    return;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => {
                    tracing::warn!(%provider, error = %e, "could not write provider health; its outcomes wait");
                    break;
                }
            }
        }
        self.health.with(provider, |l| {
            let mut back = pending;
            back.append(&mut l.pending);
            let excess = back.len().saturating_sub(MAX_PENDING);
            back.drain(..excess);
            l.pending = back;
        });
    }

    /// Every provider's health as the store holds it (never-called providers read closed and
    /// empty), with this process's pending outcomes written first.
    pub(crate) async fn all_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        for p in ProviderName::ALL {
            self.flush_health(p).await;
        }
        let now = self.now();
        let stored = self.store.list_provider_health().await?;
        Ok(ProviderName::ALL
            .into_iter()
            .map(|p| {
                stored
                    .iter()
                    .find(|h| h.provider == p)
                    .cloned()
                    .unwrap_or_else(|| ProviderHealth::new(p, now))
            })
            .collect())
    }
}
