//! Policies and schedules of a deployment.

use std::collections::HashMap;
use std::time::Duration;

use cashout_core::health::BreakerConfig;
use cashout_core::ids::MerchantId;
use cashout_core::review::{ApprovalPolicy, PolicyScope};
use cashout_core::routing::Coverage;
use cashout_core::webhook::RetrySchedule;

/// How often a request at the provider is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSchedule {
    /// The first check after the provider took the payout (or after any status change).
    pub first: Duration,
    /// Then this interval…
    pub then: Duration,
    /// …this many times…
    pub then_times: u32,
    /// …then this interval for as long as it takes.
    pub steady: Duration,
    /// A paid payout is checked for reversals at this interval…
    pub paid_watch_interval: Duration,
    /// …for this long after payment.
    pub paid_watch_window: Duration,
}

impl Default for PollSchedule {
    /// 60 s, then 5 min ×5, then every 30 min; paid payouts once a day for 7 days. The
    /// provider's own notification of a reversal triggers an immediate check; the daily one is
    /// the backstop for a lost notification, kept rare because each check is a write (3 WCU).
    fn default() -> Self {
        PollSchedule {
            first: Duration::from_secs(60),
            then: Duration::from_secs(5 * 60),
            then_times: 5,
            steady: Duration::from_secs(30 * 60),
            paid_watch_interval: Duration::from_secs(24 * 3600),
            paid_watch_window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl PollSchedule {
    /// The delay before the next check, after `checks` checks without a status change.
    pub fn next_delay(&self, checks: u32) -> Duration {
        match checks {
            0 => self.first,
            n if n <= self.then_times => self.then,
            _ => self.steady,
        }
    }

    /// A schedule for local runs and tests: everything in seconds.
    pub fn compressed() -> Self {
        PollSchedule {
            first: Duration::from_secs(1),
            then: Duration::from_secs(2),
            then_times: 5,
            steady: Duration::from_secs(5),
            paid_watch_interval: Duration::from_secs(10),
            paid_watch_window: Duration::from_secs(60),
        }
    }
}

/// A deployment's configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The approval policy of merchants without their own, when no default is stored.
    pub review: ApprovalPolicy,
    /// Per-merchant approval policies, below the stored ones.
    pub merchant_review: HashMap<MerchantId, ApprovalPolicy>,
    /// Provider checks.
    pub poll: PollSchedule,
    /// How long a new request may stay `REQUESTED` before the sweep finishes its review (the
    /// API crashed between writing it and reviewing it).
    pub review_grace: Duration,
    /// How long an `APPROVED` request may wait for its dispatcher before the sweep sends
    /// another dispatch task.
    pub dispatch_grace: Duration,
    /// How overdue a check must be before the sweep re-sends it (the queue probably lost it).
    pub sweep_lag: Duration,
    /// How old an unpublished event must be before the sweep publishes it again.
    pub outbox_lag: Duration,
    /// How long a dispatcher owns a request it claimed: no other dispatcher, cancel or reject
    /// acts on it meanwhile. Longer than any dispatch can run (the functions' timeout, the
    /// provider calls' timeouts), so that a dispatcher never outlives its lease.
    pub dispatch_lease: Duration,
    /// A create is sent only while at least this much of the lease is left (longer than the
    /// create's own timeout): the fence that keeps a slow dispatcher from creating after its
    /// lease lapsed.
    pub dispatch_fence: Duration,
    /// Dispatch claims before a request that keeps failing gives up: into
    /// `PAYMENT_PROCESSOR_ERROR` when the provider provably holds no payout, otherwise it keeps
    /// asking, flagged for a person (a create may have reached the provider).
    pub dispatch_max_attempts: u32,
    /// However many provider hints (D24 notifications, which anyone can send) arrive for one
    /// request, the provider is asked at most once per window, at its end.
    pub hint_window: Duration,
    /// Webhook retry schedule.
    pub webhook_retries: RetrySchedule,
    /// An endpoint whose deliveries fail without a single success for this long is disabled
    /// (reason `failing`) and the merchant's other endpoints are told (5 days).
    pub endpoint_failure_window: Duration,
    /// Whether webhook endpoints may be private, loopback or link-local (local development).
    pub allow_private_webhooks: bool,
    /// Public base URL of the provider-webhooks function; providers are told to notify
    /// `{base}/webhooks/{provider}`. `None`: no notifications, polling only.
    pub notification_base_url: Option<String>,
    /// How many due requests or events one sweep handles (`CASHOUT_SWEEP_BATCH`, 1 to 1000). Checks
    /// due more than 900 s ahead wait for the sweep, so this bounds them: 100 a minute is 144,000
    /// a day.
    pub sweep_batch: usize,
    /// What the configured providers can pay (Cascad's services): routing and the checks at
    /// creation. Built from the provider settings (`ProvidersConfig::coverage`); the default
    /// covers no Cascad service, so that a deployment that forgets it refuses Cascad requests
    /// at creation rather than paying them blind.
    pub coverage: Coverage,
    /// Backpressure: creates are answered `429 overloaded` while more tasks than this wait in
    /// the queues (as the runner's monitor last measured them). `None`: never (on AWS, where SQS
    /// absorbs bursts and Lambda scales out, and the gauge is not measured).
    pub max_backlog: Option<u64>,
    /// The providers' circuit breaker (`CASHOUT_BREAKER_*`).
    pub breaker: BreakerConfig,
    /// How long a process gathers successful provider calls before it writes them into the
    /// shared provider health (failures are written at once: they may open the circuit).
    pub health_flush: Duration,
    /// How long a process trusts the provider health it read (its own calls apply at once).
    pub health_read: Duration,
    /// How long a process keeps the routing rules it read; a change through this process's API
    /// applies at once, one made through another function within this time.
    pub routing_rules_ttl: Duration,
    /// How long after a create whose outcome was unknown a request may leave that provider:
    /// a provider can still process such a create after a lookup answered "none".
    pub failover_settle: Duration,
    /// The reconciler's lag threshold, pace, step budget and daily start.
    pub reconcile: crate::reconcile::ReconcileConfig,
    /// API rate limits per merchant, per operator and per client address (`CASHOUT_RATE_LIMIT*`).
    pub rate_limits: crate::limits::RateLimits,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            review: ApprovalPolicy::default(),
            merchant_review: HashMap::new(),
            poll: PollSchedule::default(),
            review_grace: Duration::from_secs(30),
            dispatch_grace: Duration::from_secs(60),
            sweep_lag: Duration::from_secs(120),
            outbox_lag: Duration::from_secs(60),
            dispatch_lease: Duration::from_secs(300),
            dispatch_fence: Duration::from_secs(45),
            dispatch_max_attempts: 20,
            hint_window: Duration::from_secs(5),
            webhook_retries: RetrySchedule::default(),
            endpoint_failure_window: Duration::from_secs(5 * 24 * 3600),
            allow_private_webhooks: false,
            notification_base_url: None,
            sweep_batch: 100,
            coverage: Coverage::default(),
            max_backlog: None,
            breaker: BreakerConfig::default(),
            health_flush: Duration::from_secs(1),
            health_read: Duration::from_secs(1),
            routing_rules_ttl: Duration::from_secs(5),
            failover_settle: Duration::from_secs(120),
            reconcile: crate::reconcile::ReconcileConfig::default(),
            rate_limits: crate::limits::RateLimits::default(),
        }
    }
}

impl AppConfig {
    /// This configuration with the providers' coverage.
    pub fn with_coverage(self, coverage: Coverage) -> Self {
        AppConfig { coverage, ..self }
    }

    /// Sets the configured default policy to "up to `limit` in any currency at once, one
    /// approver above" (`CASHOUT_AUTO_APPROVE_LIMIT`, `cashout-local --auto-approve-limit`).
    pub fn with_auto_approve_limit(mut self, limit: rust_decimal::Decimal) -> Self {
        self.review = ApprovalPolicy::limit_only(PolicyScope::Default, limit);
        self
    }

    /// A configuration for one machine: compressed schedules, private webhooks allowed.
    pub fn local() -> Self {
        AppConfig {
            poll: PollSchedule::compressed(),
            review_grace: Duration::from_secs(5),
            dispatch_grace: Duration::from_secs(5),
            sweep_lag: Duration::from_secs(5),
            outbox_lag: Duration::from_secs(5),
            hint_window: Duration::from_secs(1),
            // A crashed local runner waits out its dispatch leases before it dispatches the
            // requests it had claimed again: a minute, still longer than the fence plus a create.
            dispatch_lease: Duration::from_secs(60),
            dispatch_fence: Duration::from_secs(45),
            webhook_retries: RetrySchedule::new(
                [0, 1, 2, 5, 10, 30, 60, 120]
                    .into_iter()
                    .map(Duration::from_secs)
                    .collect(),
            ),
            allow_private_webhooks: true,
            failover_settle: Duration::from_secs(30),
            reconcile: crate::reconcile::ReconcileConfig {
                // Local schedules are compressed: a provider a minute ahead of us is late.
                lag: Duration::from_secs(60),
                calls_per_second: 50,
                ..crate::reconcile::ReconcileConfig::default()
            },
            ..AppConfig::default()
        }
    }
}

/// A setting read from the environment that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl AppConfig {
    /// The production configuration with the deployment's settings from the environment:
    /// `CASHOUT_NOTIFICATION_BASE_URL` (public base URL of `/webhooks/{provider}`),
    /// `CASHOUT_AUTO_APPROVE_LIMIT` (default 10000), `CASHOUT_SWEEP_BATCH` (requests per sweep
    /// query, 1 to 1000, default 100), `CASHOUT_ALLOW_PRIVATE_WEBHOOKS` (`true`/`false`, default
    /// false), the rate limits ([`crate::limits::rate_limits_from`]).
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut config = AppConfig {
            notification_base_url: get("CASHOUT_NOTIFICATION_BASE_URL").filter(|u| !u.is_empty()),
            ..AppConfig::default()
        };
        if let Some(limit) = get("CASHOUT_AUTO_APPROVE_LIMIT") {
            let limit = cashout_core::money::parse_decimal(&limit).map_err(|e| EnvError {
                name: "CASHOUT_AUTO_APPROVE_LIMIT",
                problem: e.to_string(),
            })?;
            config = config.with_auto_approve_limit(limit);
        }
        if let Some(batch) = get("CASHOUT_SWEEP_BATCH") {
            config.sweep_batch = batch
                .parse()
                .ok()
                .filter(|b| (1..=1000).contains(b))
                .ok_or_else(|| EnvError {
                    name: "CASHOUT_SWEEP_BATCH",
                    problem: format!("`{batch}` is not a whole number from 1 to 1000"),
                })?;
        }
        config.breaker = breaker_from(&get, config.breaker)?;
        config.reconcile = reconcile_from(&get, config.reconcile)?;
        config.rate_limits = crate::limits::rate_limits_from(&get, config.rate_limits)?;
        if let Some(flag) = get("CASHOUT_ALLOW_PRIVATE_WEBHOOKS") {
            config.allow_private_webhooks = match flag.as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                other => {
                    return Err(EnvError {
                        name: "CASHOUT_ALLOW_PRIVATE_WEBHOOKS",
                        problem: format!("`{other}` is not true or false"),
                    });
                }
            };
        }
        Ok(config)
    }
}

/// The breaker's thresholds from `CASHOUT_BREAKER_CONSECUTIVE_FAILURES` (1–1000),
/// `CASHOUT_BREAKER_FAILURE_RATE` (percent, 1–100), `CASHOUT_BREAKER_MIN_CALLS` (1–100000),
/// `CASHOUT_BREAKER_WINDOW_SECONDS` and `CASHOUT_BREAKER_OPEN_SECONDS` (1–86400) and
/// `CASHOUT_BREAKER_HALF_OPEN_SUCCESSES` (1–100); each absent one keeps `base`'s.
pub fn breaker_from(get: &impl Fn(&str) -> Option<String>, base: BreakerConfig) -> Result<BreakerConfig, EnvError> {
    let number = |name: &'static str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, EnvError> {
        get(name)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| EnvError {
                        name,
                        problem: format!("`{v}` is not a whole number from {} to {}", range.start(), range.end()),
                    })
            })
            .transpose()
    };
    let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let mut b = base;
    if let Some(n) = number("CASHOUT_BREAKER_CONSECUTIVE_FAILURES", 1..=1000)? {
        b.consecutive_failures = small(n);
    }
    if let Some(n) = number("CASHOUT_BREAKER_FAILURE_RATE", 1..=100)? {
        b.failure_rate_percent = u8::try_from(n).unwrap_or(100);
    }
    if let Some(n) = number("CASHOUT_BREAKER_MIN_CALLS", 1..=100_000)? {
        b.min_calls = small(n);
    }
    if let Some(n) = number("CASHOUT_BREAKER_WINDOW_SECONDS", 1..=86_400)? {
        b.window = Duration::from_secs(n);
    }
    if let Some(n) = number("CASHOUT_BREAKER_OPEN_SECONDS", 1..=86_400)? {
        b.open_for = Duration::from_secs(n);
    }
    if let Some(n) = number("CASHOUT_BREAKER_HALF_OPEN_SUCCESSES", 1..=100)? {
        b.half_open_successes = small(n);
    }
    Ok(b)
}

/// The reconciler's settings: `CASHOUT_RECONCILE_LAG_SECS` (1 to 604800),
/// `CASHOUT_RECONCILE_CALLS_PER_SECOND` (0 to 1000; 0: no pacing), `CASHOUT_RECONCILE_DAILY_AT`
/// (`HH:MM` UTC, or `off`).
pub fn reconcile_from(
    get: &impl Fn(&str) -> Option<String>,
    mut config: crate::reconcile::ReconcileConfig,
) -> Result<crate::reconcile::ReconcileConfig, EnvError> {
    if let Some(v) = get("CASHOUT_RECONCILE_LAG_SECS") {
        let secs: u64 = v
            .parse()
            .ok()
            .filter(|s| (1..=604_800).contains(s))
            .ok_or_else(|| EnvError {
                name: "CASHOUT_RECONCILE_LAG_SECS",
                problem: format!("`{v}` is not a whole number of seconds from 1 to 604800"),
            })?;
        config.lag = Duration::from_secs(secs);
    }
    if let Some(v) = get("CASHOUT_RECONCILE_CALLS_PER_SECOND") {
        config.calls_per_second = v.parse().ok().filter(|n| *n <= 1000).ok_or_else(|| EnvError {
            name: "CASHOUT_RECONCILE_CALLS_PER_SECOND",
            problem: format!("`{v}` is not a whole number from 0 to 1000"),
        })?;
    }
    if let Some(v) = get("CASHOUT_RECONCILE_DAILY_AT") {
        config.daily_at = if v == "off" {
            None
        } else {
            let format = time::macros::format_description!("[hour]:[minute]");
            Some(time::Time::parse(&v, &format).map_err(|e| EnvError {
                name: "CASHOUT_RECONCILE_DAILY_AT",
                problem: format!("`{v}` is not HH:MM or off: {e}"),
            })?)
        };
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let c = AppConfig::from_lookup(env(&[
            ("CASHOUT_NOTIFICATION_BASE_URL", "https://api.example.com"),
            ("CASHOUT_AUTO_APPROVE_LIMIT", "2500.50"),
            ("CASHOUT_ALLOW_PRIVATE_WEBHOOKS", "true"),
            ("CASHOUT_SWEEP_BATCH", "400"),
        ]))
        .unwrap();
        assert_eq!(c.sweep_batch, 400);
        assert!(AppConfig::from_lookup(env(&[("CASHOUT_SWEEP_BATCH", "0")])).is_err());
        assert!(AppConfig::from_lookup(env(&[("CASHOUT_SWEEP_BATCH", "many")])).is_err());
        assert_eq!(c.notification_base_url.as_deref(), Some("https://api.example.com"));
        assert_eq!(
            c.review,
            ApprovalPolicy::limit_only(PolicyScope::Default, "2500.50".parse().unwrap())
        );
        assert!(c.allow_private_webhooks);
        assert!(!AppConfig::from_lookup(env(&[])).unwrap().allow_private_webhooks);
        assert!(AppConfig::from_lookup(env(&[("CASHOUT_AUTO_APPROVE_LIMIT", "lots")])).is_err());
        assert!(AppConfig::from_lookup(env(&[("CASHOUT_ALLOW_PRIVATE_WEBHOOKS", "yes")])).is_err());
    }

    #[test]
    fn the_poll_schedule_backs_off() {
        let p = PollSchedule::default();
        assert_eq!(p.next_delay(0), Duration::from_secs(60));
        assert_eq!(p.next_delay(1), Duration::from_secs(300));
        assert_eq!(p.next_delay(5), Duration::from_secs(300));
        assert_eq!(p.next_delay(6), Duration::from_secs(1800));
    }

    #[test]
    fn the_reconciler_reads_its_settings_and_refuses_bad_ones() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        }
        let base = crate::reconcile::ReconcileConfig::default();
        let c = super::reconcile_from(
            &env(&[
                ("CASHOUT_RECONCILE_LAG_SECS", "90"),
                ("CASHOUT_RECONCILE_CALLS_PER_SECOND", "0"),
                ("CASHOUT_RECONCILE_DAILY_AT", "03:30"),
            ]),
            base.clone(),
        )
        .unwrap();
        assert_eq!(c.lag, Duration::from_secs(90));
        assert_eq!(c.calls_per_second, 0);
        assert_eq!(c.daily_at, time::Time::from_hms(3, 30, 0).ok());
        let off = super::reconcile_from(&env(&[("CASHOUT_RECONCILE_DAILY_AT", "off")]), base.clone()).unwrap();
        assert_eq!(off.daily_at, None);
        for bad in [
            ("CASHOUT_RECONCILE_LAG_SECS", "0"),
            ("CASHOUT_RECONCILE_LAG_SECS", "99999999"),
            ("CASHOUT_RECONCILE_CALLS_PER_SECOND", "-1"),
            ("CASHOUT_RECONCILE_CALLS_PER_SECOND", "1001"),
            ("CASHOUT_RECONCILE_DAILY_AT", "25:00"),
        ] {
            let pairs = [bad];
            let err = super::reconcile_from(&env(&pairs), base.clone()).unwrap_err();
            assert_eq!(err.name, bad.0);
        }
    }
}
