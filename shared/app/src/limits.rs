//! Per-caller API rate limits: a token bucket ([`cashout_core::limit`]) per merchant and per
//! operator, charged by every authenticated `/v1` call, and one per client address charged by
//! every failed authentication, so that a flood of bad keys stops before it reaches the store.
//!
//! The buckets of authenticated callers live in the store ([`cashout_core::ports::RateLimitStore`]): in the process on
//! the embedded stores, in the table on DynamoDB, where every Lambda instance sees the same one.
//! Before asking the store, a call is checked against this process's own bucket of the same
//! caller at the same limit, which only ever holds calls the shared one also counted (a call is
//! added to it once the store allowed it, and a refusal copies the store's state into it): when
//! it refuses, the store would too, so a flood from one caller on one instance costs no write once
//! it is clearly over. Failed authentications are counted in the process only (API Gateway's
//! stage throttling bounds them across instances on AWS).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::ids::MerchantId;
use cashout_core::limit::{Buckets, Decision, KEPT_BUCKETS, LimitKey, RateLimit};
use cashout_core::ports::Store;

use crate::App;
use crate::config::EnvError;
use crate::error::AppError;

/// The most per-merchant limits a deployment configures.
pub const MAX_MERCHANT_LIMITS: usize = 1000;
/// The longest `Retry-After` answered, in seconds (a limit's interval is at most a second, so
/// only a bucket held by a much faster clock elsewhere could ask for more).
pub const MAX_RETRY_AFTER_S: u64 = 60;
/// Client addresses whose failed authentications are counted at once.
const KEPT_ADDRESSES: usize = 50_000;

/// The limits of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Each merchant's and each operator's limit, unless named in `merchants`
    /// (`CASHOUT_RATE_LIMIT`, default 50 calls a second, 100 at once).
    pub default: RateLimit,
    /// Merchants with a limit of their own (`CASHOUT_RATE_LIMITS=merchant_a=200/400,…`).
    pub merchants: HashMap<MerchantId, RateLimit>,
    /// Failed authentications a client address may make (`CASHOUT_UNAUTHENTICATED_RATE_LIMIT`,
    /// default 5 a second, 20 at once): beyond, its calls are refused before any key is looked up.
    pub unauthenticated: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            default: RateLimit::clamped(50, 100),
            merchants: HashMap::new(),
            unauthenticated: RateLimit::clamped(5, 20),
        }
    }
}

impl RateLimits {
    /// The limit of an authenticated caller.
    pub fn of(&self, principal: &Principal) -> RateLimit {
        match principal {
            Principal::Merchant { merchant_id } => self.merchants.get(merchant_id).copied().unwrap_or(self.default),
            Principal::Operator { .. } => self.default,
        }
    }

    /// Parses `merchant_a=200/400,merchant_b=10/20` (at most [`MAX_MERCHANT_LIMITS`], each
    /// merchant once) into `merchants`.
    pub fn with_merchants(mut self, text: &str) -> Result<Self, String> {
        let mut merchants = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if merchants.len() == MAX_MERCHANT_LIMITS {
                return Err(format!("more than {MAX_MERCHANT_LIMITS} merchants"));
            }
            let (merchant, rate) = entry
                .split_once('=')
                .ok_or_else(|| "each entry is MERCHANT=RATE/BURST".to_owned())?;
            let merchant = MerchantId::new(merchant.trim()).map_err(|e| e.to_string())?;
            let rate: RateLimit = rate
                .parse()
                .map_err(|e: cashout_core::limit::InvalidRateLimit| e.to_string())?;
            if merchants.insert(merchant.clone(), rate).is_some() {
                return Err(format!("merchant {merchant} is named twice"));
            }
        }
        self.merchants = merchants;
        Ok(self)
    }
}

/// The limits from `CASHOUT_RATE_LIMIT` and `CASHOUT_UNAUTHENTICATED_RATE_LIMIT` (each
/// `RATE/BURST`, 1 to 100000) and `CASHOUT_RATE_LIMITS` (`MERCHANT=RATE/BURST,…`); each absent
/// one keeps `base`'s.
pub fn rate_limits_from(get: &impl Fn(&str) -> Option<String>, base: RateLimits) -> Result<RateLimits, EnvError> {
    let one = |name: &'static str| -> Result<Option<RateLimit>, EnvError> {
        get(name)
            .map(|v| {
                v.parse().map_err(|e: cashout_core::limit::InvalidRateLimit| EnvError {
                    name,
                    problem: e.to_string(),
                })
            })
            .transpose()
    };
    let mut limits = base;
    if let Some(l) = one("CASHOUT_RATE_LIMIT")? {
        limits.default = l;
    }
    if let Some(l) = one("CASHOUT_UNAUTHENTICATED_RATE_LIMIT")? {
        limits.unauthenticated = l;
    }
    if let Some(v) = get("CASHOUT_RATE_LIMITS") {
        limits = limits.with_merchants(&v).map_err(|problem| EnvError {
            name: "CASHOUT_RATE_LIMITS",
            problem,
        })?;
    }
    Ok(limits)
}

/// This process's buckets: the pre-check of authenticated callers, and failed authentications
/// per client address.
#[derive(Debug)]
pub(crate) struct LocalLimits {
    callers: Buckets<LimitKey>,
    addresses: Buckets<IpAddr>,
}

impl Default for LocalLimits {
    fn default() -> Self {
        LocalLimits {
            callers: Buckets::new(KEPT_BUCKETS),
            addresses: Buckets::new(KEPT_ADDRESSES),
        }
    }
}

/// A refusal as the error answered: whole seconds, at least 1, at most [`MAX_RETRY_AFTER_S`].
fn limited(retry_after: Duration) -> AppError {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    AppError::RateLimited {
        retry_after_s: seconds.clamp(1, MAX_RETRY_AFTER_S),
    }
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Charges one call of an authenticated caller to its bucket, or refuses it with
    /// [`AppError::RateLimited`]. If the store cannot answer, this process's bucket decides
    /// alone (a limit per instance rather than none, and no call refused for it).
    #[tracing::instrument(skip_all)]
    pub async fn admit_caller(&self, principal: &Principal) -> Result<(), AppError> {
        let key = LimitKey::of(principal);
        let limit = self.config.rate_limits.of(principal);
        let now = self.now();
        if let Decision::Limited { retry_after } = self.limits.callers.check(&key, now, limit) {
            return Err(limited(retry_after));
        }
        match self.store.take_token(&key, now, limit).await {
            Ok(Decision::Allowed) => {
                let _counted = self.limits.callers.take(&key, now, limit);
                Ok(())
            }
            Ok(Decision::Limited { retry_after }) => {
                tracing::debug!(bucket = %key.storage_key(), %limit, "over the rate limit");
                self.limits.callers.hold(&key, now, limit, retry_after);
                Err(limited(retry_after))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the shared rate limit is unavailable: this instance's applies");
                match self.limits.callers.take(&key, now, limit) {
                    Decision::Allowed => Ok(()),
                    Decision::Limited { retry_after } => Err(limited(retry_after)),
                }
            }
        }
    }

    /// Refuses, before any key is looked up, a call from an address that failed to
    /// authenticate more often than allowed. An unknown address is not screened.
    pub fn screen_address(&self, address: Option<IpAddr>) -> Result<(), AppError> {
        let limit = self.config.rate_limits.unauthenticated;
        match address.map(|a| self.limits.addresses.check(&a, self.now(), limit)) {
            Some(Decision::Limited { retry_after }) => Err(limited(retry_after)),
            Some(Decision::Allowed) | None => Ok(()),
        }
    }

    /// Counts a failed authentication against its address.
    pub fn failed_authentication(&self, address: Option<IpAddr>) {
        if let Some(a) = address {
            let limit = self.config.rate_limits.unauthenticated;
            if let Decision::Limited { .. } = self.limits.addresses.take(&a, self.now(), limit) {
                tracing::debug!(address = %a, "failed authentications over the limit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn limits_come_from_the_environment_with_per_merchant_overrides() {
        let l = rate_limits_from(
            &env(&[
                ("CASHOUT_RATE_LIMIT", "20/40"),
                ("CASHOUT_UNAUTHENTICATED_RATE_LIMIT", "1/3"),
                ("CASHOUT_RATE_LIMITS", "merchant_a=200/400, merchant_b=10/20"),
            ]),
            RateLimits::default(),
        )
        .unwrap();
        let merchant = |id: &str| Principal::Merchant {
            merchant_id: MerchantId::new(id).unwrap(),
        };
        assert_eq!(l.of(&merchant("merchant_a")), RateLimit::new(200, 400).unwrap());
        assert_eq!(l.of(&merchant("merchant_b")), RateLimit::new(10, 20).unwrap());
        assert_eq!(l.of(&merchant("merchant_c")), RateLimit::new(20, 40).unwrap());
        assert_eq!(l.unauthenticated, RateLimit::new(1, 3).unwrap());
        assert_eq!(
            rate_limits_from(&env(&[]), RateLimits::default()).unwrap(),
            RateLimits::default()
        );
    }

    #[test]
    fn a_bad_limit_names_its_variable() {
        for (name, value) in [
            ("CASHOUT_RATE_LIMIT", "50"),
            ("CASHOUT_RATE_LIMIT", "0/10"),
            ("CASHOUT_UNAUTHENTICATED_RATE_LIMIT", "5/1000000"),
            ("CASHOUT_RATE_LIMITS", "merchant_a"),
            ("CASHOUT_RATE_LIMITS", "merchant a=1/1"),
            ("CASHOUT_RATE_LIMITS", "m=1/1,m=2/2"),
            ("CASHOUT_RATE_LIMITS", "m=fast"),
        ] {
            let pairs = [(name, value)];
            let e = rate_limits_from(&env(&pairs), RateLimits::default()).unwrap_err();
            assert_eq!(e.name, name, "{value}");
        }
        let many = (0..=MAX_MERCHANT_LIMITS)
            .map(|i| format!("m{i}=1/1"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(RateLimits::default().with_merchants(&many).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_from_one_to_sixty() {
        let s = |d: Duration| match limited(d) {
            AppError::RateLimited { retry_after_s } => retry_after_s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s(Duration::from_millis(1)), 1);
        assert_eq!(s(Duration::from_millis(1001)), 2);
        assert_eq!(s(Duration::ZERO), 1);
        assert_eq!(s(Duration::from_secs(3600)), 60);
    }
}
