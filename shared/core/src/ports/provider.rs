//! The payout provider port.
//!
//! Exactly-once creation rests on three rules every adapter keeps:
//! - our [`PayoutReference`] (the request id, `.<n>` after a failover) is the provider's
//!   `external_id` / `reference_id`;
//! - a create whose outcome is unknown (timeout, dropped connection, 5xx) is
//!   [`ProviderErrorKind::Ambiguous`], and the caller looks the payout up by reference before
//!   any new create;
//! - "already exists" answers (D24 511, Cascad 409) are not errors: the adapter returns the
//!   existing payout.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cashout::CashoutRequest;
use crate::ids::{PayoutReference, ProviderPayoutId};
use crate::money::{Amount, Currency};
use crate::party::{Beneficiary, Country};
use crate::ports::{BoxError, Classify, ErrorClass};
use crate::provider::{ProviderName, ProviderPayout};
use crate::reconcile::ProviderRecord;
use crate::routing::PayoutMethodKind;

/// What to pay, to whom, through which provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutOrder {
    pub provider: ProviderName,
    /// Our reference: the request's current provider attempt's ([`CashoutRequest::payout_reference`]).
    pub reference: PayoutReference,
    /// The beneficiary's country.
    pub country: Country,
    pub currency: Currency,
    /// The payable amount (included invoices only).
    pub amount: Amount,
    /// Who receives it.
    pub beneficiary: Beneficiary,
    /// A description for the provider's records.
    pub description: String,
    /// Where the provider posts notifications about it, if configured.
    pub notification_url: Option<String>,
    /// Create it on hold (D24 and Onspot `on_hold`): paid only once released.
    pub hold: bool,
    /// The provider's service chosen at creation (Cascad's `card`), if any: the beneficiary
    /// was checked against its fields then.
    pub service: Option<String>,
    /// The merchant's metadata (sent to Cascad as the invoice's `metadata` when not empty).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl PayoutOrder {
    /// The order for an approved request.
    pub fn for_request(request: &CashoutRequest, notification_url: Option<String>) -> Self {
        PayoutOrder {
            provider: request.provider(),
            reference: request.payout_reference(),
            country: request.country(),
            currency: request.currency(),
            amount: request.payable_amount(),
            beneficiary: request.beneficiary().clone(),
            description: format!(
                "cashout {} ({} invoices)",
                request.id(),
                request.included_invoice_count()
            ),
            notification_url,
            hold: request.hold(),
            service: request.payout_service().map(str::to_owned),
            metadata: request.metadata().clone(),
        }
    }
}

/// Holding a payout at the provider, or letting a held one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    /// `PENDING → ON_HOLD`: the provider keeps it until released.
    Hold,
    /// `ON_HOLD → PENDING`: the provider goes on and pays it.
    Release,
}

/// A notification as it arrived at `/webhooks/{provider}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundNotification {
    /// Request headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as received (signatures cover these bytes).
    pub body: Vec<u8>,
}

impl InboundNotification {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a notification tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderNotification {
    /// Something changed; ask the provider (D24 notifications carry no status on purpose).
    Hint {
        /// Our reference, if given.
        reference: Option<PayoutReference>,
        /// The provider's payout id, if given.
        payout_id: Option<ProviderPayoutId>,
    },
    /// A verified status (Cascad callbacks with a valid `X-Signature`).
    Status(ProviderPayout),
}

/// Which providers can pay an amount, and what they need from the beneficiary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutMethodQuery {
    /// Beneficiary country.
    pub country: Country,
    pub currency: Currency,
    /// Amount, when known.
    pub amount: Option<Amount>,
}

/// One way to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutMethod {
    pub provider: ProviderName,
    /// How it pays (the `payout_method` a create request names).
    pub method: Option<PayoutMethodKind>,
    /// The provider's service code (Cascad `test_usd`), when it has services.
    pub service: Option<String>,
    /// Smallest amount, if limited.
    pub amount_min: Option<String>,
    /// Largest amount, if limited.
    pub amount_max: Option<String>,
    /// Beneficiary fields (Cascad's pre-request shape).
    pub fields: Vec<MethodField>,
}

/// A field a payout method needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodField {
    /// Our beneficiary field (`beneficiary.document_id`) or a provider field key.
    pub key: String,
    /// `string`, `date`…
    #[serde(rename = "type")]
    pub kind: String,
    /// A regular expression the value must match, if any.
    pub regexp: Option<String>,
    /// Whether it is required.
    pub required: bool,
}

/// How a provider call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// Nothing happened and it may work later (429, a 5xx on a read, a connection refused
    /// before anything was sent, D24 537/539/703).
    Retryable {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// A create may have happened (timeout, dropped connection or 5xx after sending): look the
    /// payout up by reference before anything else.
    Ambiguous,
    /// The provider refused the data; nothing was created (D24 3xx/4xx codes, Cascad 400/422).
    Declined,
    /// Our account or configuration is wrong (credentials, IP allow-list, signature, funds,
    /// merchant not enabled); nothing was created. Alert someone.
    Configuration,
    /// No such payout.
    NotFound,
    /// The operation is not allowed in the payout's state (cancel after delivery).
    InvalidState,
    /// The provider answered something we cannot read, on a call that changes nothing.
    Protocol,
}

/// A failed provider call.
#[derive(Debug, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    /// Which provider.
    pub provider: ProviderName,
    /// How it failed.
    pub kind: ProviderErrorKind,
    /// The provider's error code, if any (`511`, `409`).
    pub code: Option<String>,
    /// What happened (never a secret or a full account number).
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<BoxError>,
}

impl ProviderError {
    /// An error without a source.
    pub fn new(provider: ProviderName, kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            provider,
            kind,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// Adds the provider's code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl Classify for ProviderError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            ProviderErrorKind::Retryable { .. } => ErrorClass::Retryable,
            ProviderErrorKind::Ambiguous => ErrorClass::Ambiguous,
            ProviderErrorKind::Declined
            | ProviderErrorKind::Configuration
            | ProviderErrorKind::NotFound
            | ProviderErrorKind::InvalidState
            | ProviderErrorKind::Protocol => ErrorClass::Permanent,
        }
    }
}

/// One page of a provider's own list of payouts, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecordPage {
    /// The payouts on this page.
    pub records: Vec<ProviderRecord>,
    /// The provider's cursor of the next page, if any.
    pub next: Option<String>,
}

/// Pays out through the providers. One value routes every provider (`order.provider`,
/// `provider` arguments); adapters for a single family refuse the others.
pub trait PayoutProvider: Send + Sync {
    /// Creates the payout, idempotent by `order.reference`: an "already exists" answer returns
    /// the existing payout.
    fn create_payout(&self, order: &PayoutOrder) -> impl Future<Output = Result<ProviderPayout, ProviderError>> + Send;

    /// The payout made for our reference, if any.
    fn find_payout(
        &self,
        provider: ProviderName,
        reference: PayoutReference,
    ) -> impl Future<Output = Result<Option<ProviderPayout>, ProviderError>> + Send;

    /// The payout's status by the provider's id.
    fn payout_status(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> impl Future<Output = Result<ProviderPayout, ProviderError>> + Send;

    /// Cancels the payout (only while the provider allows it).
    fn cancel_payout(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> impl Future<Output = Result<ProviderPayout, ProviderError>> + Send;

    /// Holds a payout the provider has not sent yet, or releases a held one. A provider that
    /// cannot hold refuses with [`ProviderErrorKind::InvalidState`] (the default).
    fn set_hold(
        &self,
        provider: ProviderName,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
        action: HoldAction,
    ) -> impl Future<Output = Result<ProviderPayout, ProviderError>> + Send {
        let _ = (payout_id, reference, action);
        std::future::ready(Err(ProviderError::new(
            provider,
            ProviderErrorKind::InvalidState,
            format!("{provider} cannot hold a payout"),
        )))
    }

    /// Parses and verifies what the provider posted to us. A notification that fails
    /// verification is an error and changes nothing.
    fn parse_notification(
        &self,
        provider: ProviderName,
        notification: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError>;

    /// The ways `provider` can pay `query`, with the fields each needs.
    fn payout_methods(
        &self,
        provider: ProviderName,
        query: &PayoutMethodQuery,
    ) -> impl Future<Output = Result<Vec<PayoutMethod>, ProviderError>> + Send;

    /// The provider's own record of the payout made for our reference (for reconciliation):
    /// the payout with, where the provider's API gives them, its amount and currency. By
    /// default [`PayoutProvider::find_payout`] without amount or currency.
    fn payout_record(
        &self,
        provider: ProviderName,
        reference: PayoutReference,
    ) -> impl Future<Output = Result<Option<ProviderRecord>, ProviderError>> + Send {
        async move {
            Ok(self
                .find_payout(provider, reference)
                .await?
                .map(|payout| ProviderRecord {
                    reference: payout.reference.map(|r| r.to_string()),
                    payout,
                    amount: None,
                    currency: None,
                    created_at: None,
                }))
        }
    }

    /// One page of every payout the provider holds on our account, newest first, from
    /// `cursor` (`None`: the first page); `Ok(None)` if the provider has no list API (the D24
    /// family).
    fn list_payouts(
        &self,
        provider: ProviderName,
        cursor: Option<&str>,
        size: u32,
    ) -> impl Future<Output = Result<Option<ProviderRecordPage>, ProviderError>> + Send {
        let _ = (provider, cursor, size);
        std::future::ready(Ok(None))
    }
}
