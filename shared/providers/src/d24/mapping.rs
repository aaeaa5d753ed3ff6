//! Between core values and D24's wire types: the create body from an order (what each profile
//! requires of the beneficiary), and payouts from create and status answers.

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{PayoutOrder, ProviderError, ProviderErrorKind};
use cashout_core::provider::d24::{D24Status, payout_state};
use cashout_core::provider::{PayoutState, ProviderPayout};
use secrecy::ExposeSecret;
use serde_json::value::RawValue;

use super::transformers::{CreateCashout, CreateCashoutResponse, StatusResponse};
use super::{D24Client, payout_id};
use crate::http::Reply;

impl D24Client {
    /// The create body (`POST /v3/cashout`) for `order`, once the order has what the profile
    /// requires.
    pub(super) fn cashout_body<'a>(&'a self, order: &'a PayoutOrder) -> Result<CreateCashout<'a>, ProviderError> {
        let pass = self.pass.expose_secret();
        let amount = RawValue::from_string(order.amount.to_decimal_string()).map_err(|e| {
            self.error(ProviderErrorKind::Protocol, "the amount is not a JSON number")
                .with_source(e)
        })?;
        let b = &order.beneficiary;
        let document_id = self.check_order(order)?;
        let notification_url = order.notification_url.as_deref().ok_or_else(|| {
            self.error(
                ProviderErrorKind::Configuration,
                "D24 requires a notification_url and none is configured",
            )
        })?;
        Ok(CreateCashout {
            login: &self.login,
            pass,
            external_id: order.reference.to_string(),
            country: order.country.code(),
            currency: order.currency.code(),
            amount,
            document_id,
            document_type: b.document_type.as_deref(),
            beneficiary_name: &b.name,
            beneficiary_lastname: b.last_name.as_deref(),
            email: b.email.as_deref(),
            phone: b.phone.as_deref(),
            bank_code: b.bank_code.as_deref(),
            bank_account: b.bank_account.as_ref().map(|a| a.expose()),
            bank_branch: b.bank_branch.as_deref(),
            account_type: b.account_type.as_deref(),
            address: b.address.as_deref(),
            city: b.city.as_deref(),
            postal_code: b.postal_code.as_deref(),
            beneficiary_birthdate: b.birthdate.map(|d| d.to_string()),
            comments: Some(order.description.as_str()).filter(|d| !d.is_empty()),
            notification_url,
            on_hold: order.hold,
        })
    }

    /// What the profile requires of an order (`Declined` otherwise): the beneficiary's
    /// document id (returned), every field the profile requires (core's
    /// `d24_family_fields`, the list the payout-methods answer shows); ON_HOLD, for
    /// an order on hold.
    fn check_order<'a>(&self, order: &'a PayoutOrder) -> Result<&'a str, ProviderError> {
        let b = &order.beneficiary;
        let declined = |what: &str| self.error(ProviderErrorKind::Declined, what.to_owned());
        let document_id = b
            .document_id
            .as_deref()
            .ok_or_else(|| declined("the beneficiary has no document_id"))?;
        if let Some(missing) = cashout_core::routing::d24_family_fields(self.name)
            .iter()
            .find(|f| f.required && f.value(b).is_none())
        {
            return Err(declined(&format!("{} requires {}", self.name, missing.key)));
        }
        if order.hold && !self.profile.supports_on_hold() {
            return Err(declined(
                "the payout cannot be created on hold: this provider has no ON_HOLD",
            ));
        }
        Ok(document_id)
    }

    /// The payout a create answered with its `cashout_id`.
    pub(super) fn created_payout(
        &self,
        order: &PayoutOrder,
        created: &CreateCashoutResponse,
    ) -> Result<ProviderPayout, ProviderError> {
        Ok(self.payout(
            payout_id(&created.cashout_id.text())?,
            order.reference,
            PayoutState::Pending,
            // Seed 001: created ON_HOLD "only if specified [...] with on_hold: true".
            if order.hold {
                D24Status::OnHold
            } else {
                D24Status::Pending
            }
            .name()
            .to_owned(),
        ))
    }

    fn payout(
        &self,
        payout_id: ProviderPayoutId,
        reference: PayoutReference,
        state: PayoutState,
        provider_status: String,
    ) -> ProviderPayout {
        ProviderPayout {
            provider: self.name,
            payout_id,
            reference: Some(reference),
            state,
            provider_status,
            updated_at: None,
        }
    }

    /// Reads a status answer.
    pub(super) fn read_status(
        &self,
        reply: &Reply,
        known_id: Option<&str>,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let status: StatusResponse = serde_json::from_slice(&reply.body).map_err(|e| {
            self.error(
                ProviderErrorKind::Protocol,
                format!("unreadable status answer: {}", crate::http::body_excerpt(&reply.body)),
            )
            .with_source(e)
        })?;
        let id = match (status.cashout_id.as_ref(), known_id) {
            (Some(id), _) => id.text(),
            (None, Some(id)) => id.to_owned(),
            (None, None) => ProviderPayoutId::by_reference(reference).to_string(),
        };
        let (state, words) = match D24Status::from_code(status.cashout_status, self.profile) {
            Ok(s) => {
                let state = payout_state(s, status.rejection_code, status.rejection_reason.as_deref());
                let words = match (&state, s) {
                    (PayoutState::Rejected { code, reason }, _) => format!(
                        "{} {} {}",
                        s.name(),
                        code.as_deref().unwrap_or("-"),
                        reason.as_deref().unwrap_or("-")
                    ),
                    _ => s.name().to_owned(),
                };
                (state, words)
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, %reference, code = e.code, "unknown cashout_status: nothing changes");
                (
                    PayoutState::Unknown,
                    format!(
                        "cashout_status {} {}",
                        e.code,
                        status.cashout_status_description.unwrap_or_default()
                    ),
                )
            }
        };
        Ok(self.payout(payout_id(&id)?, reference, state, words))
    }
}
