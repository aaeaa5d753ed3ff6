//! Merchant webhook endpoints: register, list, read, delete, rotate the signing secret, and read
//! the delivery attempts.

use cashout_core::auth::Principal;
use cashout_core::event::EventType;
use cashout_core::ids::EndpointId;
use cashout_core::ports::{Cursor, Store, StoreError};
use cashout_core::signing::WebhookSecret;
use cashout_core::webhook::{CustomHeaders, EndpointCreated, EndpointSecret, WebhookEndpoint, check_endpoint_url};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::App;
use crate::access::require_merchant;
use crate::error::AppError;
use crate::query::page_limit;
use crate::views::{AttemptPage, AttemptView, EndpointList, EndpointView};

/// The most endpoints one merchant may register.
pub const MAX_ENDPOINTS: usize = 20;

/// How many times a write to an endpoint re-reads it and tries again after losing a race.
pub(crate) const ENDPOINT_WRITE_ATTEMPTS: u32 = 5;

/// The body of `POST /v1/webhook-endpoints`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://…` (plain `http` and private addresses only where the deployment allows them).
    #[schema(schema_with = crate::http::openapi::endpoint_url)]
    pub url: String,
    /// Event types to receive; every type when absent or empty.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::http::openapi::EventTypeSchema>>)]
    pub event_types: Option<Vec<String>>,
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Registers an endpoint; the answer is the only time its secret is shown, with rotation.
    #[tracing::instrument(skip(self, principal, body))]
    pub async fn create_endpoint(&self, principal: &Principal, body: &[u8]) -> Result<EndpointView, AppError> {
        let merchant = require_merchant(principal)?;
        let input: NewEndpoint = serde_json::from_slice(body)?;
        let url = check_endpoint_url(&input.url, self.config.allow_private_webhooks)
            .map_err(|e| AppError::BadParameter(format!("url: {e}")))?;
        let mut event_types = Vec::new();
        for t in input.event_types.unwrap_or_default() {
            let t: EventType = t
                .parse()
                .map_err(|e: cashout_core::event::UnknownEventType| AppError::BadParameter(e.to_string()))?;
            if !event_types.contains(&t) {
                event_types.push(t);
            }
        }
        let now = self.now();
        let endpoint = WebhookEndpoint {
            id: EndpointId::from_uuid(self.ids.uuid_v7(now)),
            merchant_id: merchant.clone(),
            url: url.to_string(),
            event_types,
            secrets: vec![EndpointSecret {
                secret: WebhookSecret::from_key_bytes(&self.ids.secret_bytes()),
                created_at: now,
                expires_at: None,
            }],
            disabled: None,
            created_at: now,
            version: 1,
            description: None,
            headers: CustomHeaders::default(),
            rate_limit: None,
            ordered: false,
            failing_since: None,
        };
        // The store counts and writes in one conditional write: concurrent creations cannot
        // pass the limit together.
        match self.store.create_endpoint(&endpoint, MAX_ENDPOINTS).await? {
            EndpointCreated::Created => {}
            EndpointCreated::LimitReached => return Err(AppError::EndpointLimit(MAX_ENDPOINTS)),
        }
        tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint registered");
        Ok(EndpointView::with_secret(&endpoint))
    }

    /// The merchant's endpoints.
    pub async fn list_endpoints(&self, principal: &Principal) -> Result<EndpointList, AppError> {
        let merchant = require_merchant(principal)?;
        let endpoints = self.store.list_endpoints(merchant).await?;
        let mut data = Vec::with_capacity(endpoints.len());
        for e in &endpoints {
            data.push(EndpointView::of(e).with_health(&self.endpoint_health(e).await?));
        }
        Ok(EndpointList { data })
    }

    /// One endpoint.
    pub async fn get_endpoint(&self, principal: &Principal, id: EndpointId) -> Result<EndpointView, AppError> {
        let merchant = require_merchant(principal)?;
        let endpoint = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
        Ok(EndpointView::of(&endpoint).with_health(&self.endpoint_health(&endpoint).await?))
    }

    /// Deletes an endpoint.
    #[tracing::instrument(skip(self, principal))]
    pub async fn delete_endpoint(&self, principal: &Principal, id: EndpointId) -> Result<(), AppError> {
        let merchant = require_merchant(principal)?;
        if self.store.delete_endpoint(merchant, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Issues a new secret; the old one keeps signing for the grace period (both signatures are
    /// sent), so receivers can switch without losing a delivery.
    #[tracing::instrument(skip(self, principal))]
    pub async fn rotate_endpoint_secret(
        &self,
        principal: &Principal,
        id: EndpointId,
    ) -> Result<EndpointView, AppError> {
        let merchant = require_merchant(principal)?;
        let secret = WebhookSecret::from_key_bytes(&self.ids.secret_bytes());
        let mut attempt = 1;
        loop {
            let endpoint = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
            let rotated = endpoint.rotate(secret.clone(), self.now());
            match self.store.replace_endpoint(&rotated, endpoint.version).await {
                // The secret answered is the one stored.
                Ok(()) => return Ok(EndpointView::with_secret(&rotated)),
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                // Another rotation, or the delivery worker disabling it, came first: rotate the
                // endpoint as it now is.
                Err(StoreError::Conflict { .. }) if attempt < ENDPOINT_WRITE_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An endpoint's delivery attempts, newest first.
    pub async fn list_attempts(
        &self,
        principal: &Principal,
        id: EndpointId,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<AttemptPage, AppError> {
        let merchant = require_merchant(principal)?;
        self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
        let limit = page_limit(limit)?;
        let cursor = cursor.map(Cursor);
        let page = self.store.list_attempts(merchant, id, limit, cursor.as_ref()).await?;
        Ok(AttemptPage {
            data: page.items.iter().map(AttemptView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.0),
        })
    }
}
