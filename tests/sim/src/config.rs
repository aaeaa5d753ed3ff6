//! What a simulator run is configured with: credentials per provider, the seed, the time scale,
//! the faults to inject and where to keep state. Every value has a documented default so that
//! `provider-sim` with no flags and `ProvidersConfig::for_simulator` agree.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Provider;
use crate::clock::{Clock, SystemClock};

/// Default credentials, shared with `cashout_providers::ProvidersConfig::for_simulator`.
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:7070";
    /// `--d24-login`.
    pub const D24_LOGIN: &str = "d24_login";
    /// `--d24-pass`.
    pub const D24_PASS: &str = "d24_pass";
    /// `--d24-secret` (the "API Signature" secret).
    pub const D24_SECRET: &str = "d24_secret";
    /// `--onspot-login`.
    pub const ONSPOT_LOGIN: &str = "onspot_login";
    /// `--onspot-pass`.
    pub const ONSPOT_PASS: &str = "onspot_pass";
    /// `--onspot-secret`.
    pub const ONSPOT_SECRET: &str = "onspot_secret";
    /// `--tupay-login`.
    pub const TUPAY_LOGIN: &str = "tupay_login";
    /// `--tupay-pass`.
    pub const TUPAY_PASS: &str = "tupay_pass";
    /// `--tupay-secret`.
    pub const TUPAY_SECRET: &str = "tupay_secret";
    /// `--cascad-account` (Basic auth user name, a commerce account id).
    pub const CASCAD_ACCOUNT: &str = "coma_sim0000000000001";
    /// `--cascad-api-key` (Basic auth password).
    pub const CASCAD_API_KEY: &str = "sk_test_sim_api_key";
    /// `--cascad-secret` (signs callbacks: `X-Signature`).
    pub const CASCAD_SECRET: &str = "cascad_callback_secret";
    /// `--cascad-public-key` (public API: pre-request).
    pub const CASCAD_PUBLIC_KEY: &str = "pk_test_sim_public_key";
    /// `--seed`.
    pub const SEED: u64 = 7070;
    /// The first D24-family `cashout_id` handed out ([`super::SimConfig::d24_first_cashout_id`]).
    pub const D24_FIRST_CASHOUT_ID: u64 = 8_400_001;
}

/// Credentials of one D24-family profile.
#[derive(Clone, PartialEq, Eq)]
pub struct D24Credentials {
    /// Cashout API login (at most 32 characters).
    pub login: String,
    /// Cashout API pass (at most 32 characters).
    pub pass: String,
    /// The API Signature secret (`Payload-Signature`, notification `control`).
    pub secret: String,
}

impl fmt::Debug for D24Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D24Credentials")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl D24Credentials {
    /// The documented defaults of a profile.
    pub fn default_for(profile: Provider) -> Self {
        let (login, pass, secret) = match profile {
            Provider::Onspot => (defaults::ONSPOT_LOGIN, defaults::ONSPOT_PASS, defaults::ONSPOT_SECRET),
            Provider::Tupay => (defaults::TUPAY_LOGIN, defaults::TUPAY_PASS, defaults::TUPAY_SECRET),
            Provider::D24 | Provider::Cascad => (defaults::D24_LOGIN, defaults::D24_PASS, defaults::D24_SECRET),
        };
        D24Credentials {
            login: login.into(),
            pass: pass.into(),
            secret: secret.into(),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct CascadCredentials {
    /// Commerce account id (`coma_…`): the Basic auth user name.
    pub account: String,
    /// API key (`sk_test_…`): the Basic auth password.
    pub api_key: String,
    /// The secret that signs callbacks.
    pub secret: String,
    /// The public key (`pk_test_…`) of the public API.
    pub public_key: String,
}

impl fmt::Debug for CascadCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CascadCredentials")
            .field("account", &self.account)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Default for CascadCredentials {
    fn default() -> Self {
        CascadCredentials {
            account: defaults::CASCAD_ACCOUNT.into(),
            api_key: defaults::CASCAD_API_KEY.into(),
            secret: defaults::CASCAD_SECRET.into(),
            public_key: defaults::CASCAD_PUBLIC_KEY.into(),
        }
    }
}

/// Faults injected into one provider. Rates are percentages (0–100) of requests; at most one
/// request fault happens per request (rolled once, in the order of the fields below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every response, in milliseconds (real time, not scaled).
    pub latency_ms: u64,
    /// `429 Too Many Requests` with `Retry-After: 1`; nothing is done.
    pub rate_limit: u8,
    /// A 5xx before anything is done.
    pub error_before: u8,
    /// Refused before anything is done, the way the provider refuses a request for an account or
    /// configuration reason: the D24 family answers HTTP 401 with code 402 (unregistered IP,
    /// PROVIDERS.md "caller IP must be whitelisted (error 402 otherwise)"), Cascad a 403 (seed
    /// 003: "the client's identity is known", no access rights). A client must read it as "our
    /// set-up is wrong", alert, and route elsewhere, not as a declined payout nor as a retry.
    pub config_error: u8,
    /// A 5xx after the operation was done: the lost response (a create did create).
    pub error_after: u8,
    /// The request hangs for `hang_ms`, then gets a 504; half of them do the operation first.
    pub timeout: u8,
    /// The operation is done, then the connection drops in the middle of the response.
    pub drop: u8,
    /// How long a `timeout` hangs, in milliseconds (default 30 000 when 0).
    pub hang_ms: u64,
    /// Notifications/callbacks never sent.
    pub notify_drop: u8,
    /// Notifications/callbacks sent twice.
    pub notify_duplicate: u8,
    /// Notifications/callbacks held back (3 s, scaled) so that later ones overtake them.
    pub notify_reorder: u8,
    /// The provider stops enforcing unique references (D24 511 / Cascad 409): every create makes
    /// a new payout. Real providers do enforce it; this knob proves the client's
    /// lookup-before-create alone prevents double payouts.
    pub accept_duplicate_references: bool,
    /// A `400 Bad Request` after the operation was done (a create did create). Seed 003's
    /// directive for a 400 is "Request the transaction status" before treating the request as
    /// unsuccessful: a client that takes a Cascad 400 as final loses track of a real payout. On
    /// the D24 family (whose DECLINED means nothing was created) it is a provider bug.
    pub bad_request_after: u8,
    /// The request faults above (rate limit, errors, configuration refusals, timeouts, drops,
    /// 400) hit creates only; lookups, holds and cancels answer normally. A lost create answer
    /// followed by a working lookup, on demand.
    pub creates_only: bool,
    /// How long these faults last, in milliseconds of the simulator's clock ([`SimConfig::clock`],
    /// not divided by the time scale: an outage is measured against the client's timers, which
    /// are not scaled), from when they were set (at start or by `PUT /_sim/faults`). Then the
    /// provider's faults are cleared as `DELETE /_sim/faults` would clear them, the switches
    /// below excepted. 0: until changed. At most [`MAX_FOR_MS`] (larger values are clamped).
    pub for_ms: u64,
    /// Cascad switch: `GET /payout-invoices?filter[reference_id]=…` with no invoice answers
    /// `404` instead of `200` with an empty `data`. Seed 003 (404: "the transaction does not
    /// exist (if the status request is valid)") allows either; a client must read both as "none".
    pub not_found_on_empty_filter: bool,
    /// Cascad switch: the account also has the production-shaped services seed 003 shows
    /// (`card`, `swift_jpy`, `bank_transfer_zar`) besides the `test_*` ones. On by default (a
    /// card and a bank-transfer payout are what cashout pays through Cascad); off, the account
    /// has the `test_*` services only, as seed 003's pre-request sample shows it (lines 31–114).
    pub production_services: bool,
}

impl Default for FaultConfig {
    /// No fault; the production-shaped Cascad services on.
    fn default() -> Self {
        FaultConfig {
            latency_ms: 0,
            rate_limit: 0,
            error_before: 0,
            config_error: 0,
            error_after: 0,
            timeout: 0,
            drop: 0,
            hang_ms: 0,
            notify_drop: 0,
            notify_duplicate: 0,
            notify_reorder: 0,
            accept_duplicate_references: false,
            bad_request_after: 0,
            creates_only: false,
            for_ms: 0,
            not_found_on_empty_filter: false,
            production_services: true,
        }
    }
}

/// The longest `for_ms` (24 hours): a longer one is clamped to it.
pub const MAX_FOR_MS: u64 = 24 * 60 * 60 * 1000;

impl FaultConfig {
    /// How long a `timeout` fault hangs.
    pub fn hang(&self) -> Duration {
        Duration::from_millis(if self.hang_ms == 0 { 30_000 } else { self.hang_ms })
    }

    /// How long these faults last (`for_ms`, clamped to [`MAX_FOR_MS`]); `None`: until changed.
    pub fn lasts(&self) -> Option<Duration> {
        (self.for_ms > 0).then(|| Duration::from_millis(self.for_ms.min(MAX_FOR_MS)))
    }

    /// What is left once `for_ms` has run out: no fault, the switches as they were.
    pub fn cleared(&self) -> FaultConfig {
        FaultConfig {
            not_found_on_empty_filter: self.not_found_on_empty_filter,
            production_services: self.production_services,
            ..FaultConfig::default()
        }
    }
}

/// A fault spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec `{spec}`: {reason}")]
pub struct FaultSpecError {
    /// The offending part.
    pub spec: String,
    /// Why.
    pub reason: String,
}

/// `key=value,key=value` with the field names of [`FaultConfig`]
/// (`error_after=20,timeout=5,hang_ms=2000,latency_ms=50,accept_duplicate_references=true`,
/// `config_error=100,for_ms=60000`).
impl FromStr for FaultConfig {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = FaultConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = |reason: &str| FaultSpecError {
                spec: part.to_owned(),
                reason: reason.to_owned(),
            };
            let (key, value) = part.split_once('=').ok_or_else(|| err("expected key=value"))?;
            let pct = || -> Result<u8, FaultSpecError> {
                value
                    .parse::<u8>()
                    .ok()
                    .filter(|v| *v <= 100)
                    .ok_or_else(|| err("a rate is a percentage from 0 to 100"))
            };
            let ms = || value.parse::<u64>().map_err(|_| err("expected milliseconds"));
            let flag = || value.parse::<bool>().map_err(|_| err("expected true or false"));
            match key.trim() {
                "latency_ms" => f.latency_ms = ms()?,
                "hang_ms" => f.hang_ms = ms()?,
                "for_ms" => f.for_ms = ms()?.min(MAX_FOR_MS),
                "rate_limit" => f.rate_limit = pct()?,
                "error_before" => f.error_before = pct()?,
                "config_error" => f.config_error = pct()?,
                "error_after" => f.error_after = pct()?,
                "timeout" => f.timeout = pct()?,
                "drop" => f.drop = pct()?,
                "notify_drop" => f.notify_drop = pct()?,
                "notify_duplicate" => f.notify_duplicate = pct()?,
                "notify_reorder" => f.notify_reorder = pct()?,
                "bad_request_after" => f.bad_request_after = pct()?,
                "accept_duplicate_references" => f.accept_duplicate_references = flag()?,
                "creates_only" => f.creates_only = flag()?,
                "not_found_on_empty_filter" => f.not_found_on_empty_filter = flag()?,
                "production_services" => f.production_services = flag()?,
                _ => return Err(err("unknown fault (see provider-sim --help)")),
            }
        }
        Ok(f)
    }
}

/// Faults for every provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub d24: FaultConfig,
    pub onspot: FaultConfig,
    pub tupay: FaultConfig,
    pub cascad: FaultConfig,
}

impl Faults {
    /// The same faults everywhere.
    pub fn all(f: FaultConfig) -> Self {
        Faults {
            d24: f.clone(),
            onspot: f.clone(),
            tupay: f.clone(),
            cascad: f,
        }
    }

    /// One provider's faults.
    pub fn get(&self, p: Provider) -> &FaultConfig {
        match p {
            Provider::D24 => &self.d24,
            Provider::Onspot => &self.onspot,
            Provider::Tupay => &self.tupay,
            Provider::Cascad => &self.cascad,
        }
    }

    /// One provider's faults, to change.
    pub fn get_mut(&mut self, p: Provider) -> &mut FaultConfig {
        match p {
            Provider::D24 => &mut self.d24,
            Provider::Onspot => &mut self.onspot,
            Provider::Tupay => &mut self.tupay,
            Provider::Cascad => &mut self.cascad,
        }
    }
}

/// Everything a simulator run needs. `SimConfig::default()` is the documented defaults.
#[derive(Clone)]
pub struct SimConfig {
    /// D24 credentials.
    pub d24: D24Credentials,
    /// Onspot credentials.
    pub onspot: D24Credentials,
    /// Tupay credentials.
    pub tupay: D24Credentials,
    /// Cascad credentials.
    pub cascad: CascadCredentials,
    /// Seed of the random generator behind faults, ids and success rates.
    pub seed: u64,
    /// Integer speed-up of every lifecycle delay, retry gap and expiry (1 = real time; 100 makes
    /// the 2 s D24 lifecycle take 20 ms). Injected latency and hangs are not scaled.
    pub time_scale: u32,
    /// Faults per provider.
    pub faults: Faults,
    /// Where the ledger is kept durably (`state.json`); `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    /// The clock lifecycles are measured on: [`crate::ManualClock`] in tests, or any
    /// `Fn() -> OffsetDateTime` to share another crate's clock.
    pub clock: Arc<dyn Clock>,
    /// The first D24-family `cashout_id` (then one more per cashout, across the three
    /// profiles). Seed 001's example asks for `"cashout_id": 11954`: set it to replay it.
    pub d24_first_cashout_id: u64,
    /// How often the background worker applies due transitions and sends due notifications.
    pub tick: Duration,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("d24", &self.d24)
            .field("onspot", &self.onspot)
            .field("tupay", &self.tupay)
            .field("cascad", &self.cascad)
            .field("seed", &self.seed)
            .field("time_scale", &self.time_scale)
            .field("faults", &self.faults)
            .field("state_dir", &self.state_dir)
            .field("tick", &self.tick)
            .field("d24_first_cashout_id", &self.d24_first_cashout_id)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            d24: D24Credentials::default_for(Provider::D24),
            onspot: D24Credentials::default_for(Provider::Onspot),
            tupay: D24Credentials::default_for(Provider::Tupay),
            cascad: CascadCredentials::default(),
            seed: defaults::SEED,
            time_scale: 1,
            faults: Faults::default(),
            state_dir: None,
            clock: Arc::new(SystemClock),
            tick: Duration::from_millis(20),
            d24_first_cashout_id: defaults::D24_FIRST_CASHOUT_ID,
        }
    }
}

impl SimConfig {
    /// A profile's credentials.
    pub fn d24_credentials(&self, p: Provider) -> &D24Credentials {
        match p {
            Provider::Onspot => &self.onspot,
            Provider::Tupay => &self.tupay,
            Provider::D24 | Provider::Cascad => &self.d24,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_refuse_nonsense() {
        let f: FaultConfig = "error_after=20, timeout=5,hang_ms=200,accept_duplicate_references=true,\
                              bad_request_after=7,not_found_on_empty_filter=true,production_services=true"
            .parse()
            .unwrap();
        assert_eq!(f.bad_request_after, 7);
        assert!(f.not_found_on_empty_filter && f.production_services);
        assert!("production_services=yes".parse::<FaultConfig>().is_err());
        assert_eq!(f.error_after, 20);
        assert_eq!(f.timeout, 5);
        assert_eq!(f.hang(), Duration::from_millis(200));
        assert!(f.accept_duplicate_references);
        assert!("error_after=101".parse::<FaultConfig>().is_err());
        assert!("explode=1".parse::<FaultConfig>().is_err());
        assert!("timeout".parse::<FaultConfig>().is_err());
        assert_eq!("".parse::<FaultConfig>().unwrap(), FaultConfig::default());
        assert!(FaultConfig::default().production_services, "on unless switched off");
        assert!(
            !"production_services=false"
                .parse::<FaultConfig>()
                .unwrap()
                .production_services
        );
    }

    #[test]
    fn outage_specs_parse_and_for_ms_is_clamped_to_a_day() {
        let f: FaultConfig = "config_error=100,creates_only=true,for_ms=60000".parse().unwrap();
        assert_eq!((f.config_error, f.for_ms), (100, 60_000));
        assert_eq!(f.lasts(), Some(Duration::from_millis(60_000)));
        assert!("config_error=101".parse::<FaultConfig>().is_err());
        assert!("for_ms=-1".parse::<FaultConfig>().is_err());
        let long: FaultConfig = "for_ms=99999999999".parse().unwrap();
        assert_eq!(long.for_ms, MAX_FOR_MS);
        let literal = FaultConfig {
            for_ms: u64::MAX,
            ..FaultConfig::default()
        };
        assert_eq!(literal.lasts(), Some(Duration::from_millis(MAX_FOR_MS)));
        assert_eq!(FaultConfig::default().lasts(), None, "0 lasts until changed");
    }

    #[test]
    fn clearing_keeps_the_switches_only() {
        let f: FaultConfig = "error_before=100,config_error=5,notify_drop=10,accept_duplicate_references=true,\
                              for_ms=10,not_found_on_empty_filter=true,production_services=false"
            .parse()
            .unwrap();
        let cleared = f.cleared();
        assert_eq!(
            cleared,
            FaultConfig {
                not_found_on_empty_filter: true,
                production_services: false,
                ..FaultConfig::default()
            }
        );
    }

    #[test]
    fn credentials_never_print_secrets() {
        let c = SimConfig::default();
        let text = format!("{c:?}");
        assert!(!text.contains(defaults::D24_SECRET));
        assert!(!text.contains(defaults::CASCAD_API_KEY));
        assert!(!text.contains(defaults::D24_PASS));
    }
}
