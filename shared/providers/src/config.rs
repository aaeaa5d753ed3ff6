//! Adapter configuration: where each provider is, its credentials (secret types whose `Debug`
//! redacts them), and the HTTP behaviour (timeouts, pooling, retries of reads) made explicit.

use std::time::Duration;

use cashout_core::provider::ProviderName;
use cashout_core::routing::{CascadServices, Coverage};
use cashout_core::signing::ProviderSecret;
use secrecy::SecretString;

/// Every provider's configuration; a provider left `None` answers every call with a
/// `Configuration` error.
#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    pub d24: Option<D24Config>,
    /// Onspot (D24 white label).
    pub onspot: Option<D24Config>,
    /// Tupay (D24 family, Peru).
    pub tupay: Option<D24Config>,
    pub cascad: Option<CascadConfig>,
    /// HTTP behaviour shared by all of them.
    pub http: HttpConfig,
}

/// A D24-family profile (D24, Onspot or Tupay).
#[derive(Debug, Clone)]
pub struct D24Config {
    /// API base URL without the `/v3/…` path (`https://api-stg.directa24.com`).
    pub base_url: String,
    /// Cashout API login (at most 32 characters).
    pub login: String,
    /// Cashout API pass (at most 32 characters).
    pub pass: SecretString,
    /// The "API Signature" secret: keys `Payload-Signature`.
    pub api_secret: ProviderSecret,
}

/// Cascad.
#[derive(Debug, Clone)]
pub struct CascadConfig {
    /// API base URL (`https://…/api`), without a trailing slash.
    pub base_url: String,
    /// Commerce account id (`coma_…`): Basic auth user name.
    pub account_id: String,
    /// API key (`sk_live_…`/`sk_test_…`): Basic auth password.
    pub api_key: SecretString,
    /// The secret callbacks are signed with (`X-Signature`), of the mode payouts are made in.
    pub callback_secret: ProviderSecret,
    /// Public key (`pk_…`) for the public API (pre-request).
    pub public_key: String,
    /// The account's payout services: the currency and method each pays, and the fields it
    /// needs (compiled once, here). Coverage and the checks at creation come from them.
    pub services: CascadServices,
    /// `options` of every create. Seed 003 line 323: "before using, you should clarify
    /// available account options with your Cascad support manager": sent only when configured,
    /// and only the ones configured.
    pub options: CascadOptions,
    /// `test_mode` of every create, sent only when configured (seed 003's example sends
    /// `true`; the mode follows the API key otherwise).
    pub test_mode: Option<bool>,
}

/// The processing options a Cascad account agreed to (seed 003 lines 341–346).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CascadOptions {
    /// `split_mode`.
    pub split_mode: Option<bool>,
    /// `parallel_mode`.
    pub parallel_mode: Option<bool>,
    /// `allow_partially`.
    pub allow_partially: Option<bool>,
    /// `auto_process`: Cascad processes the invoice itself, and cashout does not call
    /// `POST /payout-invoices/{id}/process` after the create.
    pub auto_process: Option<bool>,
}

impl CascadOptions {
    /// Whether Cascad processes invoices by itself.
    pub fn auto_process(&self) -> bool {
        self.auto_process.unwrap_or(false)
    }

    /// Whether any option is configured (otherwise no `options` object is sent).
    pub fn any(&self) -> bool {
        self.split_mode.is_some()
            || self.parallel_mode.is_some()
            || self.allow_partially.is_some()
            || self.auto_process.is_some()
    }
}

impl CascadConfig {
    /// The test services, one per currency they pay: `test_usd`, `test_eur`, `test_gbp`.
    pub fn test_services() -> CascadServices {
        crate::cascad::services::test_services()
    }

    /// Every service the simulator offers: the test services, `card` (USD), `bank_transfer_zar`
    /// (ZAR in South Africa) and `swift_jpy` (JPY).
    pub fn simulator_services() -> CascadServices {
        crate::cascad::services::simulator_services()
    }
}

/// HTTP behaviour. Creates are never retried here: an unknown outcome is reported as
/// `Ambiguous` and the caller looks the payout up first. Reads (status, lookups, lists) and
/// `process` are retried on retryable failures, up to `read_retries` more times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP + TLS connection set-up limit. A request that fails here was never sent.
    pub connect_timeout: Duration,
    /// Whole-request limit (send, wait, read the body).
    pub request_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Extra attempts for reads after a retryable failure.
    pub read_retries: u32,
    /// First back-off between read attempts; doubles each time.
    pub retry_backoff: Duration,
    /// Longest back-off (also caps a provider's `Retry-After`).
    pub max_retry_backoff: Duration,
    /// `User-Agent` sent.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: 8,
            read_retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_retry_backoff: Duration::from_secs(5),
            user_agent: concat!("cashout/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The simulator's documented default credentials (`provider-sim --help`); kept equal to
/// `cashout_provider_sim::defaults` by a contract test.
pub mod simulator {
    /// D24 login, pass, secret.
    pub const D24: (&str, &str, &str) = ("d24_login", "d24_pass", "d24_secret");
    /// Onspot login, pass, secret.
    pub const ONSPOT: (&str, &str, &str) = ("onspot_login", "onspot_pass", "onspot_secret");
    /// Tupay login, pass, secret.
    pub const TUPAY: (&str, &str, &str) = ("tupay_login", "tupay_pass", "tupay_secret");
    /// Cascad account, API key, callback secret, public key.
    pub const CASCAD: (&str, &str, &str, &str) = (
        "coma_sim0000000000001",
        "sk_test_sim_api_key",
        "cascad_callback_secret",
        "pk_test_sim_public_key",
    );
}

impl ProvidersConfig {
    /// Every provider pointed at a `provider-sim` running with its default credentials at
    /// `base` (`http://127.0.0.1:7070`).
    pub fn for_simulator(base: &str) -> ProvidersConfig {
        let base = base.trim_end_matches('/');
        let d24 = |name: ProviderName, (login, pass, secret): (&str, &str, &str)| D24Config {
            base_url: format!("{base}/{name}"),
            login: login.to_owned(),
            pass: SecretString::from(pass.to_owned()),
            api_secret: ProviderSecret::new(secret),
        };
        let (account, key, secret, public_key) = simulator::CASCAD;
        ProvidersConfig {
            d24: Some(d24(ProviderName::D24, simulator::D24)),
            onspot: Some(d24(ProviderName::Onspot, simulator::ONSPOT)),
            tupay: Some(d24(ProviderName::Tupay, simulator::TUPAY)),
            cascad: Some(CascadConfig {
                base_url: format!("{base}/cascad"),
                account_id: account.to_owned(),
                api_key: SecretString::from(key.to_owned()),
                callback_secret: ProviderSecret::new(secret),
                public_key: public_key.to_owned(),
                services: CascadConfig::simulator_services(),
                options: CascadOptions::default(),
                test_mode: None,
            }),
            http: HttpConfig::default(),
        }
    }
}

impl ProvidersConfig {
    /// What the configured providers can pay, for routing and the checks at creation: Cascad's
    /// configured services (none when Cascad is not configured).
    pub fn coverage(&self) -> Coverage {
        Coverage::new(self.cascad.as_ref().map(|c| c.services.clone()).unwrap_or_default())
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A base URL is not an absolute http(s) URL.
    #[error("{provider}: base URL `{url}` is not an absolute http(s) URL")]
    BaseUrl {
        /// Which provider.
        provider: ProviderName,
        /// The URL given.
        url: String,
    },
    /// A credential breaks the provider's rules (D24 login/pass at most 32 characters, none
    /// empty).
    #[error("{provider}: {what}")]
    Credential {
        /// Which provider.
        provider: ProviderName,
        /// What is wrong (never the value).
        what: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}
