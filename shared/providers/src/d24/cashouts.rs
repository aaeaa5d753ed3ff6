//! The calls on D24 cashouts: create (adopting the cashout of a used `external_id`), status by
//! `cashout_id` or by `external_id`, cancel and hold.

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{HoldAction, PayoutOrder, ProviderError, ProviderErrorKind};
use cashout_core::provider::{PayoutState, ProviderPayout};
use cashout_core::reconcile::ProviderRecord;
use reqwest::Method;
use serde::Serialize;

use super::transformers::{CancelRequest, CreateCashoutResponse, ErrorBody, SetStatusRequest, StatusRequest};
use super::{Call, D24Client, known_cashout_id, wire_id};
use secrecy::ExposeSecret;

impl D24Client {
    /// Creates the cashout for `order`; 511 (external_id already used) adopts the existing one.
    #[tracing::instrument(name = "d24.create", skip_all, fields(provider = %self.name, reference = %order.reference))]
    pub async fn create(&self, order: &PayoutOrder) -> Result<ProviderPayout, ProviderError> {
        let request = self.cashout_body(order)?;
        let reply = self.call(Call::Create, Method::POST, "/v3/cashout", &request).await?;
        if reply.status.is_success() {
            if let Ok(created) = serde_json::from_slice::<CreateCashoutResponse>(&reply.body) {
                tracing::info!(provider = %self.name, reference = %order.reference, cashout_id = %created.cashout_id.text(), "cashout created");
                return self.created_payout(order, &created);
            }
            let is_error = serde_json::from_slice::<ErrorBody>(&reply.body)
                .ok()
                .and_then(|b| b.code())
                .is_some();
            if !is_error {
                // 200 without a readable id: it was probably created. Look it up.
                return Err(self.error(
                    ProviderErrorKind::Ambiguous,
                    "the create answered 200 without a readable cashout_id",
                ));
            }
        }
        let error = self.failure(Call::Create, &reply);
        if error.code.as_deref() == Some("511") && !reply.status.is_server_error() {
            tracing::info!(provider = %self.name, reference = %order.reference, "external_id already used: adopting the existing cashout");
            return self.adopt_existing(order.reference).await;
        }
        tracing::warn!(provider = %self.name, reference = %order.reference, kind = ?error.kind, code = ?error.code, "create failed");
        Err(error)
    }

    /// The cashout of a used `external_id` (D24 511). It exists: whatever goes wrong from here,
    /// the caller must look it up, not create.
    async fn adopt_existing(&self, reference: PayoutReference) -> Result<ProviderPayout, ProviderError> {
        match self.find(reference).await {
            Ok(Some(existing)) => Ok(existing),
            Ok(None) => Err(self.error(
                ProviderErrorKind::Ambiguous,
                "511 external_id already used, but no cashout is found for it yet",
            )),
            Err(e) => Err(self
                .error(
                    ProviderErrorKind::Ambiguous,
                    "511 external_id already used; the lookup failed",
                )
                .with_code("511")
                .with_source(e)),
        }
    }

    /// Sends a call whose answer is the cashout's status, and reads it.
    async fn status_call(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        known_id: Option<&str>,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let reply = self.call(Call::Other, method, path, body).await?;
        if reply.status.is_success() {
            self.read_status(&reply, known_id, reference)
        } else {
            Err(self.failure(Call::Other, &reply))
        }
    }

    async fn status_once(
        &self,
        cashout_id: Option<&str>,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let request = StatusRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: cashout_id.map(wire_id),
            // Seed 001's parameters mark both `cashout_id` and `external_id` required: sent
            // together, an answer also confirms that the id belongs to our reference.
            external_id: Some(reference.to_string()),
        };
        self.status_call(Method::POST, "/v3/cashout/status", &request, cashout_id, reference)
            .await
    }

    /// The status by `cashout_id` (or by `external_id` for an `ext:` id).
    #[tracing::instrument(name = "d24.status", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference))]
    pub async fn status(
        &self,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let cashout_id = known_cashout_id(payout_id);
        self.http.retrying(|| self.status_once(cashout_id, reference)).await
    }

    /// The cashout made for `reference` (our `external_id`), if any.
    #[tracing::instrument(name = "d24.find", skip_all, fields(provider = %self.name, %reference))]
    pub async fn find(&self, reference: PayoutReference) -> Result<Option<ProviderPayout>, ProviderError> {
        let found = self.http.retrying(|| self.status_once(None, reference)).await;
        match found {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.kind == ProviderErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The cashout made for `reference` as D24 holds it, for reconciliation: the status by
    /// `external_id` ([`D24Client::find`]). The documented status answer carries no amount,
    /// currency or creation time (`cashout_status`, `cashout_status_description`, and
    /// `rejection_code`/`rejection_reason` when rejected), so those stay `None`.
    #[tracing::instrument(name = "d24.record", skip_all, fields(provider = %self.name, %reference))]
    pub async fn record(&self, reference: PayoutReference) -> Result<Option<ProviderRecord>, ProviderError> {
        Ok(self.find(reference).await?.map(|payout| ProviderRecord {
            payout,
            amount: None,
            currency: None,
            reference: Some(reference.to_string()),
            created_at: None,
        }))
    }

    /// Cancels while D24 allows it (PENDING). Cancelling a cancelled cashout succeeds.
    #[tracing::instrument(name = "d24.cancel", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference))]
    pub async fn cancel(
        &self,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
    ) -> Result<ProviderPayout, ProviderError> {
        let Some(cashout_id) = known_cashout_id(payout_id) else {
            return Err(self.error(
                ProviderErrorKind::InvalidState,
                "the D24 cashout_id is unknown (adopted by external_id); cancel needs it",
            ));
        };
        let request = CancelRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: wire_id(cashout_id),
            external_id: reference.to_string(),
        };
        let result = self
            .http
            .retrying(|| {
                self.status_call(
                    Method::DELETE,
                    "/v3/cashout/cancel",
                    &request,
                    Some(cashout_id),
                    reference,
                )
            })
            .await;
        match result {
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                // Refused: maybe because an earlier attempt (whose answer was lost) cancelled it.
                let now = self.status(payout_id, reference).await?;
                if now.state == PayoutState::Cancelled {
                    Ok(now)
                } else {
                    Err(self
                        .error(
                            ProviderErrorKind::InvalidState,
                            format!("cannot cancel: the cashout is {}", now.provider_status),
                        )
                        .with_code(e.code.unwrap_or_default()))
                }
            }
            other => other,
        }
    }

    /// Puts a PENDING cashout on hold or releases a held one (not on Tupay).
    #[tracing::instrument(name = "d24.set_hold", skip_all, fields(provider = %self.name, payout_id = %payout_id, %reference, ?action))]
    pub async fn set_hold(
        &self,
        payout_id: &ProviderPayoutId,
        reference: PayoutReference,
        action: HoldAction,
    ) -> Result<ProviderPayout, ProviderError> {
        if !self.profile.supports_on_hold() {
            return Err(self.error(ProviderErrorKind::InvalidState, format!("{} has no ON_HOLD", self.name)));
        }
        let Some(cashout_id) = known_cashout_id(payout_id) else {
            return Err(self.error(
                ProviderErrorKind::InvalidState,
                "the D24 cashout_id is unknown (adopted by external_id)",
            ));
        };
        let request = SetStatusRequest {
            login: &self.login,
            pass: self.pass.expose_secret(),
            cashout_id: wire_id(cashout_id),
            status: match action {
                HoldAction::Hold => "ON_HOLD",
                HoldAction::Release => "PENDING",
            },
        };
        let result = self
            .http
            .retrying(|| self.status_call(Method::PUT, "/v3/cashout/status", &request, Some(cashout_id), reference))
            .await;
        match result {
            Err(e) if e.kind == ProviderErrorKind::InvalidState => {
                // Refused: maybe because an earlier attempt (whose answer was lost) did it.
                let now = self.status(payout_id, reference).await?;
                if now.provider_status == request.status {
                    Ok(now)
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }
}
