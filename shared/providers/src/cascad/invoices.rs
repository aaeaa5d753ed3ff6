//! The calls on payout invoices: create (adopting the invoice of a used reference, confirming
//! a 400 by a lookup), process, read by id, find by reference, and the cursor list.

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{PayoutOrder, ProviderError, ProviderErrorKind, ProviderRecordPage};
use cashout_core::provider::ProviderPayout;
use cashout_core::reconcile::ProviderRecord;
use reqwest::{Method, StatusCode};

use super::transformers::{ConflictDoc, InvoiceListDoc, InvoiceResource};
use super::{CASCAD, Call, CascadClient, InvoicePage, error};
use crate::http::{Reply, body_excerpt};

impl CascadClient {
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
            StatusCode::CREATED => self.created(order, &reply).await,
            StatusCode::CONFLICT => self.adopt_conflicting(order, &reply).await,
            StatusCode::BAD_REQUEST => self.confirm_refusal(order, &reply).await,
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

    /// A create answered 201: the new invoice, processed.
    async fn created(&self, order: &PayoutOrder, reply: &Reply) -> Result<ProviderPayout, ProviderError> {
        let invoice = Self::read_invoice(reply).map_err(|e| {
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

    /// A create answered 409: the reference is used. The invoice the body names, if it is the
    /// reference's; otherwise the one found by reference.
    async fn adopt_conflicting(&self, order: &PayoutOrder, reply: &Reply) -> Result<ProviderPayout, ProviderError> {
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

    /// A create answered 400: refused only if Cascad holds no invoice for the reference.
    async fn confirm_refusal(&self, order: &PayoutOrder, reply: &Reply) -> Result<ProviderPayout, ProviderError> {
        // Seed 003: "Request the transaction status (if [...] the status request has
        // received an error 404, you can consider the request unsuccessful)".
        let refused = Self::failure(Call::Create, reply);
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
    pub async fn find(&self, reference: PayoutReference) -> Result<Option<ProviderPayout>, ProviderError> {
        match self.find_invoice(reference).await? {
            Some(invoice) => self.ensure_processed(invoice).await.map(Some),
            None => Ok(None),
        }
    }

    /// The invoice made for `reference` as Cascad holds it, for reconciliation: a read only (an
    /// invoice left `created` is not processed here), with its amount, currency and creation
    /// time.
    #[tracing::instrument(name = "cascad.record", skip_all, fields(%reference))]
    pub async fn record(&self, reference: PayoutReference) -> Result<Option<ProviderRecord>, ProviderError> {
        self.find_invoice(reference)
            .await?
            .as_ref()
            .map(Self::to_record)
            .transpose()
    }

    /// The oldest invoice of `reference` (`filter[reference_id]`); a 404 is none.
    async fn find_invoice(&self, reference: PayoutReference) -> Result<Option<InvoiceResource>, ProviderError> {
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
        Ok(matching.into_iter().next())
    }

    /// One page of the list (`page[size]`, `page[after]`) and the cursor of the next page: the
    /// last invoice's id (`meta.after`) when `links.next` says there is one.
    async fn list_page(
        &self,
        after: Option<&str>,
        size: u32,
    ) -> Result<(Vec<InvoiceResource>, Option<String>), ProviderError> {
        let mut query = vec![("page[size]", size.max(1).to_string())];
        if let Some(a) = after {
            query.push(("page[after]", a.to_owned()));
        }
        let doc = self.list_query(&query).await?;
        let has_next = doc
            .links
            .as_ref()
            .and_then(|l| l.next.as_deref())
            .is_some_and(|n| !n.is_empty());
        let next = if has_next { doc.meta.and_then(|m| m.after) } else { None };
        Ok((doc.data, next))
    }

    /// One page of every invoice, newest first (`page[after]` is the cursor of the next page).
    pub async fn list(&self, after: Option<&str>, size: u32) -> Result<InvoicePage, ProviderError> {
        let (data, next) = self.list_page(after, size).await?;
        let payouts = data.iter().map(Self::to_payout).collect::<Result<Vec<_>, _>>()?;
        Ok(InvoicePage { payouts, next })
    }

    /// One page of every invoice on the account as reconciliation records, newest first
    /// (`page[after]` is the cursor of the next page). An invoice whose reference is not ours
    /// keeps it as text in `reference`, with no `payout.reference`.
    #[tracing::instrument(name = "cascad.list_records", skip_all, fields(?after, size))]
    pub async fn list_records(&self, after: Option<&str>, size: u32) -> Result<ProviderRecordPage, ProviderError> {
        let (data, next) = self.list_page(after, size).await?;
        let records = data.iter().map(Self::to_record).collect::<Result<Vec<_>, _>>()?;
        Ok(ProviderRecordPage { records, next })
    }
}
