//! Cascad (Corefy/PayCore): payouts by reference. Basic auth (commerce account id + API key),
//! payout invoices created (JSON:API) then processed (or `auto_process`), lookups by id and by
//! `filter[reference_id]`, the cursor list, services and the pre-request, and callbacks checked
//! with `X-Signature`.
//!
//! Every HTTP status follows seed 003's directives table. Creation is done only on HTTP 201; 409
//! means the invoice exists: the one the body carries (or, failing that, the reference's) is
//! adopted. A 400 is not final: the reference is looked up first, and only when Cascad holds
//! nothing for it is the create refused. 5xx, a timeout or a dropped connection after a create is
//! ambiguous (the caller looks the reference up before any new create). A 404 on the reference
//! lookup means no invoice. The process call is never retried blind: after a failure the
//! invoice is read again, and one left `created` is processed when it is next looked at, so a
//! payout never stalls.
//! Cascad documents no cancel operation: cancelling is refused with `InvalidState`.
//!
//! The payout service of a create is the one chosen at creation (`PayoutOrder::service`) from
//! the configured services ([`services`], the deployment's settings); its `fields` are read from
//! the beneficiary as the service says, and the beneficiary is checked against the service's
//! `required` and `regexp` once more before anything is sent. `options` and `test_mode` are sent
//! only when configured, `customer` only when the beneficiary has a `reference_id`, `metadata`
//! only when the request has some.

pub mod services;
mod transformers;

use std::sync::Arc;

use std::borrow::Cow;

use cashout_core::ids::{CashoutRequestId, ProviderPayoutId};
use cashout_core::ports::{
    InboundNotification, MethodField, PayoutMethod, PayoutMethodQuery, PayoutOrder, ProviderError, ProviderErrorKind,
    ProviderNotification,
};
use cashout_core::provider::cascad::{CascadStatus, payout_state};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_core::routing::{CascadService, CascadServices, PayoutMethodKind, ServiceChoiceError};
use cashout_core::signing::{ProviderSecret, verify_cascad_signature};
use cashout_core::validation::ValidationErrors;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::config::{CascadConfig, CascadOptions, ConfigError};
use crate::http::{Http, HttpRequest, Reply, body_excerpt, excerpt};
use transformers::{
    ConflictDoc, CreateInvoiceAttributes, CreateInvoiceData, CreateInvoiceDoc, CustomerAddress, ErrorDoc,
    InvoiceCustomer, InvoiceDoc, InvoiceListDoc, InvoiceOptions, InvoiceResource, PrerequestBody, PrerequestDoc,
    PrerequestService, ServiceDoc, ServiceListDoc,
};

const CASCAD: ProviderName = ProviderName::Cascad;

/// A page of the payout invoice list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    /// The invoices, newest first.
    pub payouts: Vec<ProviderPayout>,
    /// The cursor of the next (older) page, if any.
    pub next: Option<String>,
}

/// A payout service of the account (`GET /payout-services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutService {
    /// Account service id (`comcpos_…`).
    pub id: String,
    /// Service code (`test_usd`).
    pub code: String,
    /// Payout method (`test`, `swift`).
    pub method: Option<String>,
    /// Currency paid out.
    pub currency: Option<String>,
    /// Whether it can be used now (available and enabled).
    pub usable: bool,
    /// Smallest amount, decimal text.
    pub amount_min: Option<String>,
    /// Largest amount, decimal text.
    pub amount_max: Option<String>,
}

/// The Cascad API client.
pub struct CascadClient {
    base_url: String,
    account_id: String,
    api_key: SecretString,
    callback_secret: ProviderSecret,
    public_key: String,
    services: CascadServices,
    options: CascadOptions,
    test_mode: Option<bool>,
    http: Arc<Http>,
}

impl std::fmt::Debug for CascadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadClient")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field(
                "services",
                &self.services.all().iter().map(CascadService::id).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .field("test_mode", &self.test_mode)
            .finish_non_exhaustive()
    }
}

fn error(kind: ProviderErrorKind, message: impl Into<String>) -> ProviderError {
    ProviderError::new(CASCAD, kind, message)
}

/// Which kind of call failed: it decides what a 5xx or a lost answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Other,
}

impl CascadClient {
    pub(crate) fn new(config: CascadConfig, http: Arc<Http>) -> Result<CascadClient, ConfigError> {
        let base_url = crate::checked_base_url(CASCAD, &config.base_url)?;
        let credential = |what| ConfigError::Credential { provider: CASCAD, what };
        if config.account_id.is_empty() || config.api_key.expose_secret().is_empty() {
            return Err(credential("the account id and API key are required"));
        }
        if config.callback_secret.expose().is_empty() {
            return Err(credential("the callback secret is empty"));
        }
        Ok(CascadClient {
            base_url,
            account_id: config.account_id,
            api_key: config.api_key,
            callback_secret: config.callback_secret,
            public_key: config.public_key,
            services: config.services,
            options: config.options,
            test_mode: config.test_mode,
            http,
        })
    }

    fn private(&self, method: Method, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{path}", self.base_url))
            .basic_auth(&self.account_id, self.api_key.expose_secret())
            .header("accept", "application/json")
    }

    /// Classifies an answer that is not the expected success.
    fn failure(call: Call, reply: &Reply) -> ProviderError {
        let detail = serde_json::from_slice::<ErrorDoc>(&reply.body)
            .map(|d| d.summary())
            .unwrap_or_else(|_| body_excerpt(&reply.body));
        let status = reply.status.as_u16();
        let kind = match status {
            429 => ProviderErrorKind::Retryable {
                retry_after: reply.retry_after,
            },
            500..=599 => match call {
                // The directive: check the status by reference before creating again.
                Call::Create => ProviderErrorKind::Ambiguous,
                Call::Other => ProviderErrorKind::Retryable {
                    retry_after: reply.retry_after,
                },
            },
            400 | 422 => ProviderErrorKind::Declined,
            401 | 402 | 403 | 405 => ProviderErrorKind::Configuration,
            404 => match call {
                // A create answered 404: the URL or the account is wrong.
                Call::Create => ProviderErrorKind::Configuration,
                Call::Other => ProviderErrorKind::NotFound,
            },
            409 => ProviderErrorKind::InvalidState,
            408 => ProviderErrorKind::Retryable { retry_after: None },
            _ => ProviderErrorKind::Protocol,
        };
        error(kind, format!("HTTP {status}: {}", excerpt(&detail))).with_code(status.to_string())
    }

    fn to_payout(resource: &InvoiceResource) -> Result<ProviderPayout, ProviderError> {
        let a = &resource.attributes;
        let status: CascadStatus = a.status.parse().unwrap_or_else(|never| match never {});
        let processed_at = a.processed.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let state = payout_state(
            &status,
            a.resolution.as_deref(),
            processed_at,
            a.processed_amount.map(|d| d.0),
        );
        if state == PayoutState::Unknown {
            tracing::warn!(provider = %CASCAD, id = %resource.id, status = %a.status, "unknown Cascad status: nothing changes");
        }
        let provider_status = match a.resolution.as_deref() {
            Some(r) if r != "ok" => format!("{} ({r})", status.as_str()),
            _ => status.as_str().to_owned(),
        };
        Ok(ProviderPayout {
            provider: CASCAD,
            payout_id: ProviderPayoutId::new(resource.id.as_str())
                .map_err(|e| error(ProviderErrorKind::Protocol, "an invalid invoice id").with_source(e))?,
            reference: a.reference_id.as_deref().and_then(|r| r.parse().ok()),
            state,
            provider_status,
            updated_at: a.updated.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    fn read_invoice(reply: &Reply) -> Result<InvoiceResource, ProviderError> {
        serde_json::from_slice::<InvoiceDoc>(&reply.body)
            .map(|d| d.data)
            .map_err(|e| {
                error(
                    ProviderErrorKind::Protocol,
                    format!("unreadable invoice: {}", body_excerpt(&reply.body)),
                )
                .with_source(e)
            })
    }

    /// Creates the payout invoice for `order` and has it processed. 409 adopts the existing
    /// invoice of the reference.
    #[tracing::instrument(name = "cascad.create", skip_all, fields(reference = %order.reference))]
    pub async fn create(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        if order.hold {
            return Err(error(
                ProviderErrorKind::Declined,
                "Cascad cannot create a payout on hold",
            ));
        }
        let service = self.service_for(order)?;
        let doc = self.invoice_doc(order, service)?;
        let request = self
            .private(Method::POST, "/payout-invoices")
            .json(&doc)
            .map_err(|e| error(ProviderErrorKind::Protocol, "could not encode the invoice").with_source(e))?;
        let reply = self.http.send(request).await.map_err(|t| t.on_create(CASCAD))?;
        match reply.status {
            StatusCode::CREATED => {
                let invoice = Self::read_invoice(&reply).map_err(|e| {
                    // Created (201) but unreadable: the caller must look it up.
                    error(
                        ProviderErrorKind::Ambiguous,
                        "the invoice was created (201) but its body is unreadable",
                    )
                    .with_source(e)
                })?;
                tracing::info!(provider = %CASCAD, reference = %order.reference, id = %invoice.id, "payout invoice created");
                self.ensure_processed(invoice).await
            }
            StatusCode::CONFLICT => {
                tracing::info!(provider = %CASCAD, reference = %order.reference, "reference_id already used: adopting the existing invoice");
                let named = serde_json::from_slice::<ConflictDoc>(&reply.body)
                    .ok()
                    .and_then(ConflictDoc::invoice)
                    .filter(|inv| inv.attributes.reference_id.as_deref() == Some(&order.reference.to_string()));
                if let Some(existing) = named {
                    return self.ensure_processed(existing).await;
                }
                match self.find(order.reference).await {
                    Ok(Some(existing)) => Ok(existing),
                    Ok(None) => Err(error(
                        ProviderErrorKind::Ambiguous,
                        "409 conflict, but no invoice is found for the reference yet",
                    )
                    .with_code("409")),
                    Err(e) => Err(error(ProviderErrorKind::Ambiguous, "409 conflict; the lookup failed")
                        .with_code("409")
                        .with_source(e)),
                }
            }
            StatusCode::BAD_REQUEST => {
                // Seed 003: "Request the transaction status (if [...] the status request has
                // received an error 404, you can consider the request unsuccessful)".
                let refused = Self::failure(Call::Create, &reply);
                tracing::warn!(provider = %CASCAD, reference = %order.reference, error = %refused, "create answered 400: looking the reference up before calling it refused");
                match self.find(order.reference).await {
                    Ok(Some(existing)) => {
                        tracing::warn!(provider = %CASCAD, reference = %order.reference, id = %existing.payout_id, "the 400 create made an invoice: adopting it");
                        Ok(existing)
                    }
                    Ok(None) => Err(refused),
                    Err(e) => Err(error(
                        ProviderErrorKind::Ambiguous,
                        "create answered 400 and the lookup failed",
                    )
                    .with_code("400")
                    .with_source(e)),
                }
            }
            s if s.is_success() => Err(error(
                ProviderErrorKind::Ambiguous,
                format!("the create answered {} instead of 201: look the invoice up", s.as_u16()),
            )),
            _ => {
                let e = Self::failure(Call::Create, &reply);
                tracing::warn!(provider = %CASCAD, reference = %order.reference, kind = ?e.kind, code = ?e.code, "create failed");
                Err(e)
            }
        }
    }

    /// The service chosen at creation, checked against the beneficiary once more: a request
    /// whose service is no longer configured, or whose beneficiary no longer matches its
    /// fields (the configuration changed since), is not sent (`Configuration`: an operator can
    /// retry it once the settings are fixed).
    fn service_for(&self, order: &PayoutOrder) -> Result<&CascadService, ProviderError> {
        let service = match order.service.as_deref() {
            Some(id) => self.services.get(id).ok_or_else(|| {
                error(
                    ProviderErrorKind::Configuration,
                    format!("the cascad service `{id}` chosen at creation is no longer configured"),
                )
            })?,
            // A request made before the service was recorded: the one service of its currency.
            None => self.services.choose(order.country, order.currency, None).map_err(|e| {
                let why = match e {
                    ServiceChoiceError::NoService => "no cascad service is configured",
                    ServiceChoiceError::Ambiguous(_) => "several cascad services are configured",
                };
                error(
                    ProviderErrorKind::Configuration,
                    format!("{why} for {} in {}", order.currency, order.country),
                )
            })?,
        };
        if service.currency() != order.currency {
            return Err(error(
                ProviderErrorKind::Configuration,
                format!(
                    "the cascad service `{}` pays {}, not {}",
                    service.id(),
                    service.currency(),
                    order.currency
                ),
            ));
        }
        let mut problems = ValidationErrors::default();
        service.check(&order.beneficiary, &mut problems);
        if !problems.is_empty() {
            return Err(error(
                ProviderErrorKind::Configuration,
                format!(
                    "the beneficiary does not match cascad service `{}`: {problems}",
                    service.id()
                ),
            ));
        }
        Ok(service)
    }

    /// The create document (seed 003 lines 328–361) for `order` through `service`.
    fn invoice_doc<'a>(
        &'a self,
        order: &'a PayoutOrder,
        service: &'a CascadService,
    ) -> Result<CreateInvoiceDoc<'a>, ProviderError> {
        // The exact decimal, without trailing zeros: seed 003 writes `"amount":10`.
        let amount = RawValue::from_string(order.amount.value().normalize().to_string())
            .map_err(|e| error(ProviderErrorKind::Protocol, "the amount is not a JSON number").with_source(e))?;
        let b = &order.beneficiary;
        let options = self.options.any().then_some(InvoiceOptions {
            split_mode: self.options.split_mode,
            parallel_mode: self.options.parallel_mode,
            allow_partially: self.options.allow_partially,
            auto_process: self.options.auto_process,
        });
        let customer = b.reference_id.as_deref().map(|reference_id| InvoiceCustomer {
            reference_id,
            email: b.email.as_deref(),
            name: match &b.last_name {
                Some(last) => Cow::Owned(format!("{} {last}", b.name)),
                None => Cow::Borrowed(b.name.as_str()),
            },
            phone: b.phone.as_deref(),
            individual_tax_id: b.document_id.as_deref(),
            date_of_birth: b.birthdate.map(|d| d.to_string()),
            address: (b.address.is_some() || b.city.is_some() || b.postal_code.is_some()).then(|| CustomerAddress {
                country: order.country.code(),
                city: b.city.as_deref(),
                full_address: b.address.as_deref(),
                post_code: b.postal_code.as_deref(),
            }),
        });
        Ok(CreateInvoiceDoc {
            data: CreateInvoiceData {
                kind: "payout-invoice",
                attributes: CreateInvoiceAttributes {
                    service: service.id(),
                    currency: order.currency.code(),
                    amount,
                    reference_id: order.reference.to_string(),
                    test_mode: self.test_mode,
                    fields: service.fields_of(b).into_iter().collect(),
                    callback_url: order.notification_url.as_deref(),
                    description: Some(order.description.as_str()).filter(|d| !d.is_empty()),
                    options,
                    customer,
                    metadata: Some(&order.metadata).filter(|m| !m.is_empty()),
                },
            },
        })
    }

    /// Processes an invoice still `created` (unless Cascad processes it by itself), and
    /// returns the payout as it then is.
    async fn ensure_processed(&self, invoice: InvoiceResource) -> Result<ProviderPayout, ProviderError> {
        if self.options.auto_process() || invoice.attributes.status != "created" {
            return Self::to_payout(&invoice);
        }
        let path = format!("/payout-invoices/{}/process", invoice.id);
        // One attempt: seed 003 asks for the status before an operation is repeated after a 5xx
        // or a lost answer, so a failure is followed by a read, never by a second process call.
        let processed = match self.http.send(self.private(Method::POST, &path)).await {
            Ok(reply) if reply.status.is_success() => Self::read_invoice(&reply),
            Ok(reply) => Err(Self::failure(Call::Other, &reply)),
            Err(t) => Err(t.on_read(CASCAD)),
        };
        match processed {
            Ok(inv) => Self::to_payout(&inv),
            Err(e) => {
                // A lost answer or a refusal because an earlier attempt went through: the
                // invoice's own state says which. One still `created` is processed at the next
                // look at it; a failed read leaves it so too.
                tracing::warn!(provider = %CASCAD, id = %invoice.id, error = %e, "process failed; re-reading the invoice");
                match self.get(&invoice.id).await {
                    Ok(now) => Ok(now),
                    Err(_) => Self::to_payout(&invoice),
                }
            }
        }
    }

    async fn fetch(&self, id: &str) -> Result<InvoiceResource, ProviderError> {
        let path = format!("/payout-invoices/{id}");
        self.http
            .retrying(|| async {
                let reply = self
                    .http
                    .send(self.private(Method::GET, &path))
                    .await
                    .map_err(|t| t.on_read(CASCAD))?;
                if reply.status == StatusCode::OK {
                    Self::read_invoice(&reply)
                } else {
                    Err(Self::failure(Call::Other, &reply))
                }
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<ProviderPayout, ProviderError> {
        Self::to_payout(&self.fetch(id).await?)
    }

    /// The invoice by its id, processed if it was left `created`.
    #[tracing::instrument(name = "cascad.status", skip_all, fields(payout_id = %id))]
    pub async fn status(&self, id: &ProviderPayoutId) -> Result<ProviderPayout, ProviderError> {
        let invoice = self.fetch(id.as_str()).await?;
        self.ensure_processed(invoice).await
    }

    async fn list_query(&self, query: &[(&str, String)]) -> Result<InvoiceListDoc, ProviderError> {
        self.http
            .retrying(|| async {
                let reply = self
                    .http
                    .send(
                        self.private(Method::GET, "/payout-invoices")
                            .query(query)
                            .map_err(|e| {
                                error(ProviderErrorKind::Protocol, "could not encode the query").with_source(e)
                            })?,
                    )
                    .await
                    .map_err(|t| t.on_read(CASCAD))?;
                if reply.status != StatusCode::OK {
                    return Err(Self::failure(Call::Other, &reply));
                }
                serde_json::from_slice::<InvoiceListDoc>(&reply.body).map_err(|e| {
                    error(
                        ProviderErrorKind::Protocol,
                        format!("unreadable invoice list: {}", body_excerpt(&reply.body)),
                    )
                    .with_source(e)
                })
            })
            .await
    }

    /// The invoice made for `reference` (`filter[reference_id]`), processed if it was left
    /// `created`.
    #[tracing::instrument(name = "cascad.find", skip_all, fields(%reference))]
    pub async fn find(&self, reference: CashoutRequestId) -> Result<Option<ProviderPayout>, ProviderError> {
        let list = match self
            .list_query(&[("filter[reference_id]", reference.to_string())])
            .await
        {
            Ok(list) => list,
            // Seed 003: a 404 on a valid status request means the transaction does not exist.
            Err(e) if e.kind == ProviderErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut matching: Vec<InvoiceResource> = list
            .data
            .into_iter()
            .filter(|r| r.attributes.reference_id.as_deref() == Some(&reference.to_string()))
            .collect();
        if matching.len() > 1 {
            // Cascad enforces unique references; if it ever did not, a person must see it.
            tracing::error!(provider = %CASCAD, %reference, count = matching.len(), "several invoices for one reference: a double payout at the provider");
        }
        matching.sort_by_key(|r| r.attributes.created.unwrap_or(i64::MAX));
        match matching.into_iter().next() {
            Some(invoice) => self.ensure_processed(invoice).await.map(Some),
            None => Ok(None),
        }
    }

    /// One page of every invoice, newest first (`page[after]` is the cursor of the next page).
    pub async fn list(&self, after: Option<&str>, size: u32) -> Result<InvoicePage, ProviderError> {
        let mut query = vec![("page[size]", size.to_string())];
        if let Some(a) = after {
            query.push(("page[after]", a.to_owned()));
        }
        let doc = self.list_query(&query).await?;
        let payouts = doc.data.iter().map(Self::to_payout).collect::<Result<Vec<_>, _>>()?;
        let has_next = doc
            .links
            .as_ref()
            .and_then(|l| l.next.as_deref())
            .is_some_and(|n| !n.is_empty());
        let next = if has_next { doc.meta.and_then(|m| m.after) } else { None };
        Ok(InvoicePage { payouts, next })
    }

    /// Every payout service of the account (all pages).
    pub async fn payout_services(&self) -> Result<Vec<PayoutService>, ProviderError> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let query = [("page[number]", page.to_string()), ("page[size]", "50".to_owned())];
            let doc = self
                .http
                .retrying(|| async {
                    let reply = self
                        .http
                        .send(
                            self.private(Method::GET, "/payout-services")
                                .query(&query)
                                .map_err(|e| {
                                    error(ProviderErrorKind::Protocol, "could not encode the query").with_source(e)
                                })?,
                        )
                        .await
                        .map_err(|t| t.on_read(CASCAD))?;
                    if reply.status != StatusCode::OK {
                        return Err(Self::failure(Call::Other, &reply));
                    }
                    serde_json::from_slice::<ServiceListDoc>(&reply.body)
                        .map_err(|e| error(ProviderErrorKind::Protocol, "unreadable service list").with_source(e))
                })
                .await?;
            let got = doc.data.len();
            out.extend(doc.data.into_iter().map(service_of));
            let pages = doc.meta.and_then(|m| m.pages).unwrap_or(page);
            if got == 0 || page >= pages || page >= 100 {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// One payout service by its account service id (`comcpos_…`).
    pub async fn payout_service(&self, id: &str) -> Result<PayoutService, ProviderError> {
        let path = format!("/payout-services/{id}");
        let doc = self
            .http
            .retrying(|| async {
                let reply = self
                    .http
                    .send(self.private(Method::GET, &path))
                    .await
                    .map_err(|t| t.on_read(CASCAD))?;
                if reply.status != StatusCode::OK {
                    return Err(Self::failure(Call::Other, &reply));
                }
                serde_json::from_slice::<ServiceDoc>(&reply.body)
                    .map_err(|e| error(ProviderErrorKind::Protocol, "unreadable service").with_source(e))
            })
            .await?;
        Ok(service_of(doc.data))
    }

    /// The public pre-request (`POST /payout-prerequest`, seed 003 lines 15–140): the services
    /// the account offers for `amount` of `currency`, by code.
    async fn prerequest(
        &self,
        currency: &str,
        amount: String,
    ) -> Result<std::collections::BTreeMap<String, PrerequestService>, ProviderError> {
        let body = PrerequestBody {
            currency,
            amount: RawValue::from_string(amount)
                .map_err(|e| error(ProviderErrorKind::Protocol, "the amount is not a JSON number").with_source(e))?,
            public_key: &self.public_key,
        };
        let doc = self
            .http
            .retrying(|| async {
                let request = HttpRequest::new(Method::POST, format!("{}/payout-prerequest", self.base_url))
                    .json(&body)
                    .map_err(|e| {
                        error(ProviderErrorKind::Protocol, "could not encode the pre-request").with_source(e)
                    })?;
                let reply = self.http.send(request).await.map_err(|t| t.on_read(CASCAD))?;
                if reply.status != StatusCode::OK {
                    return Err(Self::failure(Call::Other, &reply));
                }
                serde_json::from_slice::<PrerequestDoc>(&reply.body)
                    .map_err(|e| error(ProviderErrorKind::Protocol, "unreadable pre-request answer").with_source(e))
            })
            .await?;
        Ok(offered_services(&doc))
    }

    /// The configured services able to pay `query` that the account offers now for its amount
    /// (the pre-request; without an amount, an amount of 1), each with the beneficiary fields a
    /// create request must carry, named by their path in it (`beneficiary.card_number`).
    pub async fn payout_methods(&self, query: &PayoutMethodQuery) -> Result<Vec<PayoutMethod>, ProviderError> {
        let configured: Vec<&CascadService> = self.services.paying(query.country, query.currency).collect();
        if configured.is_empty() {
            return Ok(Vec::new());
        }
        let amount = query.amount.map_or_else(|| "1".to_owned(), |a| a.to_decimal_string());
        let offered = self.prerequest(query.currency.code(), amount).await?;
        Ok(configured
            .into_iter()
            .filter_map(|service| {
                let live = offered.get(service.id())?;
                for problem in field_differences(service, live) {
                    tracing::warn!(provider = %CASCAD, service = service.id(), %problem, "the configured service differs from Cascad's pre-request");
                }
                Some(PayoutMethod {
                    provider: CASCAD,
                    method: service.method(),
                    service: Some(service.id().to_owned()),
                    amount_min: live
                        .amount_min
                        .map(|d| d.0)
                        .or(service.amount_min())
                        .map(|d| d.normalize().to_string()),
                    amount_max: live
                        .amount_max
                        .map(|d| d.0)
                        .or(service.amount_max())
                        .map(|d| d.normalize().to_string()),
                    fields: service
                        .fields()
                        .iter()
                        .map(|f| MethodField {
                            key: f.source().path(),
                            kind: live
                                .fields
                                .iter()
                                .find(|l| l.key == f.key())
                                .and_then(|l| l.kind.clone())
                                .unwrap_or_else(|| "string".to_owned()),
                            regexp: f.regexp().map(str::to_owned),
                            required: f.required(),
                        })
                        .collect(),
                })
            })
            .collect())
    }

    /// How the configured services differ from what the account's pre-request says of them:
    /// a service not offered (for an amount within its limits, in its currency), a field Cascad
    /// requires that is not configured, or a field whose `required` or `regexp` differ. Empty
    /// when the configuration agrees with Cascad. For operators and the contract tests; routing
    /// never waits for it.
    pub async fn service_differences(&self) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        for service in self.services.all() {
            let amount = service
                .amount_min()
                .filter(|m| *m > rust_decimal::Decimal::ONE)
                .unwrap_or(rust_decimal::Decimal::ONE);
            let offered = self
                .prerequest(service.currency().code(), amount.normalize().to_string())
                .await?;
            match offered.get(service.id()) {
                None => out.push(format!(
                    "`{}`: not offered for {} {}",
                    service.id(),
                    amount.normalize(),
                    service.currency()
                )),
                Some(live) => out.extend(
                    field_differences(service, live)
                        .into_iter()
                        .map(|d| format!("`{}`: {d}", service.id())),
                ),
            }
        }
        Ok(out)
    }

    /// Verifies `X-Signature` (base64 SHA-1 of secret ‖ body ‖ secret) and reads the invoice.
    pub fn parse_callback(&self, notification: &InboundNotification) -> Result<ProviderNotification, ProviderError> {
        let Some(signature) = notification.header("x-signature") else {
            return Err(error(ProviderErrorKind::Protocol, "the callback has no X-Signature").with_code("signature"));
        };
        if !verify_cascad_signature(&self.callback_secret, &notification.body, signature) {
            tracing::warn!(provider = %CASCAD, "callback with an invalid X-Signature refused");
            return Err(
                error(ProviderErrorKind::Protocol, "the callback's X-Signature does not match").with_code("signature"),
            );
        }
        parse_callback_body(&notification.body)
    }
}

/// Reads a verified callback body: one invoice, or a batch (then only a hint to poll is given
/// when it holds several: the port returns one notification).
fn parse_callback_body(body: &[u8]) -> Result<ProviderNotification, ProviderError> {
    if let Ok(doc) = serde_json::from_slice::<InvoiceDoc>(body) {
        return CascadClient::to_payout(&doc.data).map(ProviderNotification::Status);
    }
    let list = serde_json::from_slice::<InvoiceListDoc>(body)
        .map_err(|e| error(ProviderErrorKind::Protocol, "unreadable callback body").with_source(e))?;
    let mut payouts = list
        .data
        .iter()
        .map(CascadClient::to_payout)
        .collect::<Result<Vec<_>, _>>()?;
    match payouts.len() {
        0 => Err(error(ProviderErrorKind::Protocol, "an empty callback batch")),
        1 => Ok(ProviderNotification::Status(payouts.remove(0))),
        n => {
            tracing::warn!(provider = %CASCAD, count = n, "batched callback: only a hint for the first invoice; poll the rest");
            let first = payouts.remove(0);
            Ok(ProviderNotification::Hint {
                reference: first.reference,
                payout_id: Some(first.payout_id),
            })
        }
    }
}

fn service_of(s: transformers::ServiceResource) -> PayoutService {
    PayoutService {
        id: s.id,
        code: s.attributes.service,
        method: s.attributes.service_method,
        currency: s.attributes.service_currency,
        usable: s.attributes.available.unwrap_or(true) && s.attributes.enabled.unwrap_or(true),
        amount_min: s.attributes.amount_min.map(|d| d.0.normalize().to_string()),
        amount_max: s.attributes.amount_max.map(|d| d.0.normalize().to_string()),
    }
}

/// The pre-request's services by code (the `methods` and `account` entries seed 003 puts among
/// them are skipped).
fn offered_services(doc: &PrerequestDoc) -> std::collections::BTreeMap<String, PrerequestService> {
    doc.data
        .services
        .values()
        .filter_map(|raw| serde_json::from_str::<PrerequestService>(raw.get()).ok())
        .map(|s| (s.code.clone(), s))
        .collect()
}

/// Where a configured service's fields differ from the pre-request's. A regexp Cascad prints
/// escaped twice (seed 003 line 51) is read once unescaped.
fn field_differences(service: &CascadService, live: &PrerequestService) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(method) = live.method.as_deref()
        && let Some(ours) = service.method()
        && PayoutMethodKind::from_cascad_method(method) != Some(ours)
    {
        out.push(format!("method `{method}`, configured `{ours}`"));
    }
    for theirs in &live.fields {
        match service.fields().iter().find(|f| f.key() == theirs.key) {
            None if theirs.required => out.push(format!("field `{}` is required and not configured", theirs.key)),
            None => {}
            Some(ours) => {
                if ours.required() != theirs.required {
                    out.push(format!(
                        "field `{}`: required {}, configured {}",
                        theirs.key,
                        theirs.required,
                        ours.required()
                    ));
                }
                let same = match (ours.regexp(), theirs.regexp.as_deref()) {
                    (Some(a), Some(b)) => a == b || a == b.replace(r"\\", r"\"),
                    (None, None) => true,
                    (Some(_), None) | (None, Some(_)) => false,
                };
                if !same {
                    out.push(format!(
                        "field `{}`: regexp {:?}, configured {:?}",
                        theirs.key,
                        theirs.regexp.as_deref().unwrap_or(""),
                        ours.regexp().unwrap_or("")
                    ));
                }
            }
        }
    }
    for ours in service.fields() {
        if !live.fields.iter().any(|f| f.key == ours.key()) {
            out.push(format!("field `{}` is configured and not Cascad's", ours.key()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
