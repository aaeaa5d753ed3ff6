//! The account's payout services and what they offer: the service list, one service, the
//! pre-request, the payout methods for a query, where the configured services differ from
//! Cascad's, and the configured service an order is sent through.

use std::collections::BTreeMap;

use cashout_core::ports::{
    MethodField, PayoutMethod, PayoutMethodQuery, PayoutOrder, ProviderError, ProviderErrorKind,
};
use cashout_core::routing::{CascadService, PayoutMethodKind, ServiceChoiceError};
use cashout_core::validation::ValidationErrors;
use reqwest::{Method, StatusCode};
use serde_json::value::RawValue;

use super::mapping::service_of;
use super::transformers::{PrerequestBody, PrerequestDoc, PrerequestService, ServiceDoc, ServiceListDoc};
use super::{CASCAD, Call, CascadClient, PayoutService, error};
use crate::http::HttpRequest;

impl CascadClient {
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
    ) -> Result<BTreeMap<String, PrerequestService>, ProviderError> {
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

    /// The service chosen at creation, checked against the beneficiary once more: a request
    /// whose service is no longer configured, or whose beneficiary no longer matches its
    /// fields (the configuration changed since), is not sent (`Configuration`: an operator can
    /// retry it once the settings are fixed).
    pub(super) fn service_for(&self, order: &PayoutOrder) -> Result<&CascadService, ProviderError> {
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
}

/// The pre-request's services by code (the `methods` and `account` entries seed 003 puts among
/// them are skipped).
pub(super) fn offered_services(doc: &PrerequestDoc) -> BTreeMap<String, PrerequestService> {
    doc.data
        .services
        .values()
        .filter_map(|raw| serde_json::from_str::<PrerequestService>(raw.get()).ok())
        .map(|s| (s.code.clone(), s))
        .collect()
}

/// Where a configured service's fields differ from the pre-request's. A regexp Cascad prints
/// escaped twice (seed 003 line 51) is read once unescaped.
pub(super) fn field_differences(service: &CascadService, live: &PrerequestService) -> Vec<String> {
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
