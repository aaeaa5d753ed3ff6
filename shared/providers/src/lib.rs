//! # cashout-providers: the payout provider adapters
//!
//! [`Providers`] implements [`PayoutProvider`] for all four providers, routing by name:
//!
//! | provider | module | API |
//! |---|---|---|
//! | `d24`, `onspot`, `tupay` | [`d24`] | D24 cashouts API v3: signed JSON (`Payload-Signature`), form notifications without a status |
//! | `cascad` | [`cascad`] | Cascad payout invoices (JSON:API, Basic auth), callbacks signed with `X-Signature` |
//!
//! Each family is a module: the client (URLs, auth, headers, error bodies and their
//! classification) in `<family>.rs`, and beside it the calls (`d24/cashouts.rs`,
//! `cascad/invoices.rs`), the mapping between core values and wire types (`mapping.rs`),
//! notification parsing, and `transformers` (wire types only, never leaving the module).
//!
//! The exactly-once rules of the port hold in every adapter: our request id is the provider's
//! `external_id`/`reference_id`; a create whose outcome is unknown (5xx, timeout, dropped
//! connection) is `Ambiguous`; "already exists" (D24 511, Cascad 409) returns the existing
//! payout; creates are never retried here.
//!
//! Reconciliation reads ([`PayoutProvider::payout_record`], [`PayoutProvider::list_payouts`])
//! change nothing at the provider: Cascad's record comes from the reference filter with the
//! invoice's `amount`, `currency`, `reference_id` and `created`, and its list is the private
//! cursor list (`page[after]`, newest first); the D24 family's record is the status by
//! `external_id` (its answer carries no amount or currency) and it has no list (`Ok(None)`).
//!
//! Errors: 400/422 and D24 data codes are `Declined`; 401/402/403/405 and D24 merchant codes
//! are `Configuration` (alert someone; not a rejected payout); 429 and 5xx on reads are
//! `Retryable` (reads are retried here, see [`HttpConfig`]).

pub mod cascad;
mod config;
pub mod d24;
mod http;
mod settings;

use std::sync::Arc;

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{
    InboundNotification, PayoutMethod, PayoutMethodQuery, PayoutOrder, PayoutProvider, ProviderError,
    ProviderErrorKind, ProviderNotification, ProviderRecordPage,
};
use cashout_core::provider::{ProviderFamily, ProviderName, ProviderPayout};
use cashout_core::reconcile::ProviderRecord;

pub use cascad::{CascadClient, InvoicePage, PayoutService};
pub use cashout_core::ports::HoldAction;
pub use config::{CascadConfig, CascadOptions, ConfigError, D24Config, HttpConfig, ProvidersConfig, simulator};
pub use d24::D24Client;
pub use http::{HttpRequest, HttpTransport, Reply, ReqwestTransport, Transport};
pub use settings::SettingsError;

/// Every provider adapter behind one value.
#[derive(Debug)]
pub struct Providers {
    d24: Option<D24Client>,
    onspot: Option<D24Client>,
    tupay: Option<D24Client>,
    cascad: Option<CascadClient>,
}

/// Checks a base URL and drops its trailing slash.
pub(crate) fn checked_base_url(provider: ProviderName, url: &str) -> Result<String, ConfigError> {
    let ok = url::Url::parse(url)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::BaseUrl {
            provider,
            url: url.chars().take(200).collect(),
        })
    }
}

fn not_configured(provider: ProviderName) -> ProviderError {
    ProviderError::new(
        provider,
        ProviderErrorKind::Configuration,
        format!("{provider} is not configured"),
    )
}

impl Providers {
    /// Builds every configured adapter over one pooled HTTP client.
    pub fn new(config: ProvidersConfig) -> Result<Providers, ConfigError> {
        let transport = Arc::new(ReqwestTransport::new(&config.http)?);
        Self::with_transport(config, transport)
    }

    /// Builds every configured adapter over `transport` (the deterministic simulation passes a
    /// simulated network).
    pub fn with_transport(
        config: ProvidersConfig,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Providers, ConfigError> {
        let http = Arc::new(http::Http::new(&config.http, transport));
        let d24 = |name, c: Option<D24Config>| c.map(|c| D24Client::new(name, c, http.clone())).transpose();
        Ok(Providers {
            d24: d24(ProviderName::D24, config.d24)?,
            onspot: d24(ProviderName::Onspot, config.onspot)?,
            tupay: d24(ProviderName::Tupay, config.tupay)?,
            cascad: config.cascad.map(|c| CascadClient::new(c, http.clone())).transpose()?,
        })
    }

    /// Whether `provider` is configured.
    pub fn is_configured(&self, provider: ProviderName) -> bool {
        self.client(provider).is_ok()
    }

    /// The D24-family client of a profile.
    pub fn d24_family(&self, provider: ProviderName) -> Result<&D24Client, ProviderError> {
        match provider {
            ProviderName::D24 => self.d24.as_ref(),
            ProviderName::Onspot => self.onspot.as_ref(),
            ProviderName::Tupay => self.tupay.as_ref(),
            ProviderName::Cascad => None,
        }
        .ok_or_else(|| not_configured(provider))
    }

    /// The Cascad client.
    pub fn cascad(&self) -> Result<&CascadClient, ProviderError> {
        self.cascad.as_ref().ok_or_else(|| not_configured(ProviderName::Cascad))
    }

    /// The client that speaks `provider`'s API. Every operation matches on it, without a
    /// wildcard: a new provider joins a family in [`ProviderName::family`], and a new family
    /// does not compile until each operation says what it does there.
    fn client(&self, provider: ProviderName) -> Result<Client<'_>, ProviderError> {
        match provider.family() {
            ProviderFamily::D24(_) => self.d24_family(provider).map(Client::D24),
            ProviderFamily::Cascad => self.cascad().map(Client::Cascad),
        }
    }
}

/// A configured provider's client, by API family.
enum Client<'a> {
    D24(&'a D24Client),
    Cascad(&'a CascadClient),
}

impl PayoutProvider for Providers {
    async fn create_payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        match self.client(order.provider)? {
            Client::Cascad(c) => c.create(order).await,
            Client::D24(c) => c.create(order).await,
        }
    }

    async fn find_payout(
        &self,
        provider: ProviderName,
        reference: PayoutReference,
    ) -> Result<Option<ProviderPayout>, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(c) => c.find(reference).await,
            Client::D24(c) => c.find(reference).await,
        }
    }

    async fn payout_status(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(c) => c.status(payout_id).await,
            Client::D24(c) => c.status(payout_id, reference).await,
        }
    }

    async fn cancel_payout(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(_) => Err(ProviderError::new(
                provider,
                ProviderErrorKind::InvalidState,
                "Cascad documents no cancel operation for payout invoices",
            )),
            Client::D24(c) => c.cancel(payout_id, reference).await,
        }
    }

    async fn set_hold(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
        action: HoldAction,
    ) -> Result<ProviderPayout, ProviderError> {
        match self.client(provider)? {
            // D24 and Onspot; Tupay refuses (InvalidState).
            Client::D24(c) => c.set_hold(payout_id, reference, action).await,
            Client::Cascad(_) => Err(ProviderError::new(
                provider,
                ProviderErrorKind::InvalidState,
                "Cascad documents no hold for payout invoices",
            )),
        }
    }

    fn parse_notification(
        &self,
        provider: ProviderName,
        notification: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(c) => c.parse_callback(notification),
            Client::D24(c) => c.parse_notification(notification),
        }
    }

    async fn payout_methods(
        &self,
        provider: ProviderName,
        query: &PayoutMethodQuery,
    ) -> Result<Vec<PayoutMethod>, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(c) => c.payout_methods(query).await,
            Client::D24(c) => Ok(c.payout_methods(query)),
        }
    }

    async fn payout_record(
        &self,
        provider: ProviderName,
        reference: PayoutReference,
    ) -> Result<Option<ProviderRecord>, ProviderError> {
        match self.client(provider)? {
            // The reference filter, read only (an invoice left `created` is not processed).
            Client::Cascad(c) => c.record(reference).await,
            // The status by external_id: no amount, currency or creation time in the answer.
            Client::D24(c) => c.record(reference).await,
        }
    }

    async fn list_payouts(
        &self,
        provider: ProviderName,
        cursor: Option<&str>,
        size: u32,
    ) -> Result<Option<ProviderRecordPage>, ProviderError> {
        match self.client(provider)? {
            Client::Cascad(c) => c.list_records(cursor, size).await.map(Some),
            // The D24 family documents no list of cashouts.
            Client::D24(_) => Ok(None),
        }
    }
}
