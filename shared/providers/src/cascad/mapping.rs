//! Between core values and Cascad's wire types: the create document from an order, payouts
//! from invoices, and services from their resources.

use std::borrow::Cow;

use cashout_core::ids::ProviderPayoutId;
use cashout_core::ports::{PayoutOrder, ProviderError, ProviderErrorKind};
use cashout_core::provider::cascad::{CascadStatus, payout_state};
use cashout_core::provider::{PayoutState, ProviderPayout};
use cashout_core::reconcile::ProviderRecord;
use cashout_core::routing::CascadService;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::transformers::{
    CreateInvoiceAttributes, CreateInvoiceData, CreateInvoiceDoc, CustomerAddress, InvoiceCustomer, InvoiceDoc,
    InvoiceOptions, InvoiceResource, ServiceResource,
};
use super::{CASCAD, CascadClient, PayoutService, error};
use crate::http::{Reply, body_excerpt};

impl CascadClient {
    pub(super) fn to_payout(resource: &InvoiceResource) -> Result<ProviderPayout, ProviderError> {
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

    /// The invoice as a reconciliation record: the payout, and the amount, currency,
    /// reference (as Cascad holds it, even one that is not ours) and creation time its
    /// attributes give.
    pub(super) fn to_record(resource: &InvoiceResource) -> Result<ProviderRecord, ProviderError> {
        let a = &resource.attributes;
        Ok(ProviderRecord {
            payout: Self::to_payout(resource)?,
            amount: a.amount.map(|d| d.0),
            currency: a.currency.clone(),
            reference: a.reference_id.clone(),
            created_at: a.created.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    pub(super) fn read_invoice(reply: &Reply) -> Result<InvoiceResource, ProviderError> {
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

    /// The create document (seed 003 lines 328–361) for `order` through `service`.
    pub(super) fn invoice_doc<'a>(
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
}

pub(super) fn service_of(s: ServiceResource) -> PayoutService {
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
