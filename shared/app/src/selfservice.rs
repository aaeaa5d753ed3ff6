//! Endpoint self-service: edit an endpoint (`PATCH`), send it a test event, recover what it
//! missed in a time window, rotate its secret with a chosen grace, and list the merchant's events
//! across its requests. Every use case takes the caller's [`Principal`] (the API and the portal
//! call the same functions).

use std::collections::BTreeMap;
use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::event::{EventType, StatusEvent, UnknownEventType};
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId};
use cashout_core::notice::{Notice, NoticePayload};
use cashout_core::ports::{Cursor, EventQuery, Store, StoreError, Task, TaskQueue, WebhookSender};
use cashout_core::signing::WebhookSecret;
use cashout_core::webhook::{
    AttemptOutcome, CustomHeaders, DisabledReason, MAX_DESCRIPTION, RateLimit, WebhookEndpoint, check_endpoint_url,
};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::App;
use crate::access::require_merchant;
use crate::deliver::CLAIM_LEASE;
use crate::endpoints::ENDPOINT_WRITE_ATTEMPTS;
use crate::error::AppError;
use crate::query::page_limit;
use crate::views::{AttemptView, EndpointView, EventPage, EventView, RecoverAnswer};

/// How far back a recovery may start (events are kept longer; this bounds one call's work).
pub const RECOVER_WINDOW: time::Duration = time::Duration::days(30);

/// The most events one recovery queues (a longer outage is recovered in several windows).
pub const MAX_RECOVER: usize = 10_000;

/// The body of `PATCH /v1/webhook-endpoints/{id}`: every field optional; absent fields keep
/// their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// A new URL (checked like at creation).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::http::openapi::endpoint_url)]
    pub url: Option<String>,
    /// A note of at most 200 characters; null removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub description: Option<Option<String>>,
    /// Event types to receive; every type when empty.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<crate::http::openapi::EventTypeSchema>>, nullable = false)]
    pub event_types: Option<Vec<String>>,
    /// Headers sent with every delivery (replacing the ones set before): at most 10, names RFC
    /// 7230 tokens of at most 64 characters, values at most 256 printable ASCII characters.
    /// Refused names (any case): `webhook-*`, `proxy-*`, `content-type`, `content-length`,
    /// `content-encoding`, `host`, `connection`, `keep-alive`, `transfer-encoding`, `te`,
    /// `trailer`, `upgrade`, `user-agent`, `expect`, `cookie`.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::http::openapi::custom_headers)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Deliveries per second to this endpoint, 1 to 1000; null: no limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub rate_limit: Option<Option<u32>>,
    /// Deliver the events of one request in sequence.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub ordered: Option<bool>,
    /// `true` disables it (reason `manual`); `false` enables it again. Enabling does not send
    /// what was missed: recover it (`POST …/recover`).
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

/// A field given is `Some`; an absent one stays `None` (with `serde(default)`). Null is a value
/// only where `T` takes it (`Option<…>`: "clear it"); elsewhere it is refused.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The body of `POST /v1/webhook-endpoints/{id}/recover`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// The window's start (RFC 3339); one more than 30 days ago starts the window 30 days ago.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub since: OffsetDateTime,
    /// The window's end (RFC 3339); now when absent or in the future.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
}

/// The optional body of `POST /v1/webhook-endpoints/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the current secret keeps signing, 0 to 86400 seconds: 0 stops it now; 86400
    /// when absent.
    #[schema(minimum = 0, maximum = 86400)]
    pub expire_current_in_seconds: Option<u32>,
}

/// The filters of `GET /v1/events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<String>,
    /// Only this request's events.
    pub cashout_request_id: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// Before (RFC 3339).
    pub until: Option<String>,
    /// Page size, 1 to 100 (20).
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

fn bad(field: &str, e: impl std::fmt::Display) -> AppError {
    AppError::BadParameter(format!("{field}: {e}"))
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, AppError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| bad(field, e))
}

/// Event type names, each once.
pub(crate) fn parse_event_types(names: Vec<String>) -> Result<Vec<EventType>, AppError> {
    let mut types = Vec::new();
    for name in names {
        let t: EventType = name
            .parse()
            .map_err(|e: UnknownEventType| AppError::BadParameter(e.to_string()))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

impl<S: Store, Q: TaskQueue, P, W: WebhookSender> App<S, Q, P, W> {
    /// Edits an endpoint, conditionally on the version read (a concurrent write is re-read and
    /// the edit applied to it).
    #[tracing::instrument(skip(self, principal, body))]
    pub async fn update_endpoint(
        &self,
        principal: &Principal,
        id: EndpointId,
        body: &[u8],
    ) -> Result<EndpointView, AppError> {
        let merchant = require_merchant(principal)?;
        let patch: EndpointPatch = serde_json::from_slice(body)?;
        let url = patch
            .url
            .as_deref()
            .map(|u| check_endpoint_url(u, self.config.allow_private_webhooks).map_err(|e| bad("url", e)))
            .transpose()?;
        if let Some(Some(d)) = &patch.description
            && d.chars().count() > MAX_DESCRIPTION
        {
            return Err(bad("description", format!("at most {MAX_DESCRIPTION} characters")));
        }
        let event_types = patch.event_types.clone().map(parse_event_types).transpose()?;
        let headers = patch
            .headers
            .clone()
            .map(CustomHeaders::new)
            .transpose()
            .map_err(|e| bad("headers", e))?;
        let rate_limit = patch
            .rate_limit
            .map(|r| r.map(RateLimit::new).transpose())
            .transpose()
            .map_err(|e| bad("rate_limit", e))?;
        for _ in 0..ENDPOINT_WRITE_ATTEMPTS {
            let current = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
            let mut next = current.clone();
            if let Some(url) = &url {
                next.url = url.to_string();
            }
            if let Some(description) = &patch.description {
                next.description = description.clone();
            }
            if let Some(types) = &event_types {
                next.event_types = types.clone();
            }
            if let Some(headers) = &headers {
                next.headers = headers.clone();
            }
            if let Some(limit) = rate_limit {
                next.rate_limit = limit;
            }
            if let Some(ordered) = patch.ordered {
                next.ordered = ordered;
            }
            match patch.disabled {
                Some(true) if next.disabled.is_none() => next.disabled = Some(DisabledReason::Manual),
                Some(false) => {
                    // A fresh start: its failures before it was disabled no longer count.
                    next.disabled = None;
                    next.failing_since = None;
                }
                Some(true) | None => {}
            }
            next.version = current.version + 1;
            match self.store.replace_endpoint(&next, current.version).await {
                Ok(()) => {
                    tracing::info!(endpoint_id = %id, "webhook endpoint updated");
                    let health = self.endpoint_health(&next).await?;
                    return Ok(EndpointView::of(&next).with_health(&health));
                }
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }

    /// Sends a signed `webhook_endpoint.test` event to the endpoint now (whatever its event
    /// types, disabled or not, outside its rate limit: the merchant asked for this one) and
    /// answers the attempt, which its attempt log keeps too.
    #[tracing::instrument(skip(self, principal))]
    pub async fn test_endpoint(&self, principal: &Principal, id: EndpointId) -> Result<AttemptView, AppError> {
        let merchant = require_merchant(principal)?;
        let endpoint = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
        let now = self.now();
        let notice = Notice {
            id: EventId::operational(self.ids.uuid_v7(now)),
            merchant_id: merchant.clone(),
            occurred_at: now,
            payload: NoticePayload::Test { endpoint_id: id },
        };
        let (record, _) = self
            .attempt_once(&endpoint, notice.id, merchant, &notice.webhook_body(), 1, false)
            .await?
            .ok_or_else(|| AppError::Internal("a new event id was already claimed".into()))?;
        Ok(AttemptView::from(&record))
    }

    /// Queues, in event order, every event of the merchant in `[since, until)` that the endpoint
    /// receives and has not received successfully, once each; answers how many.
    #[tracing::instrument(skip(self, principal, body))]
    pub async fn recover_endpoint(
        &self,
        principal: &Principal,
        id: EndpointId,
        body: &[u8],
    ) -> Result<RecoverAnswer, AppError> {
        let merchant = require_merchant(principal)?;
        let input: RecoverRequest = serde_json::from_slice(body)?;
        let endpoint = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
        let now = self.now();
        // The window is cut to what may be recovered: the last 30 days, up to now (an empty
        // window queues nothing).
        let until = input.until.unwrap_or(now).min(now);
        let since = input.since.max(now - RECOVER_WINDOW);
        if endpoint.disabled.is_some() {
            return Err(AppError::Conflict(
                "the endpoint is disabled: enable it (PATCH disabled=false) before recovering".into(),
            ));
        }
        if since >= until {
            return Ok(RecoverAnswer { queued: 0 });
        }
        let events = self.events_in_window(&endpoint, since, until).await?;
        let mut queued = 0;
        for event in events {
            let attempts = self.pair_attempts(event.id, id).await?;
            if attempts.iter().any(|a| a.outcome == AttemptOutcome::Delivered) {
                continue;
            }
            let last = attempts.last();
            // Join the pair's chain: the number after its last attempt is the one a pending
            // retry would use, so the two cannot both send (the claim); a send in flight is
            // left its lease to finish first.
            let attempt = last.map_or(1, |a| a.attempt + 1);
            let delay = if last.is_some_and(|a| a.outcome == AttemptOutcome::Sending) {
                CLAIM_LEASE
            } else {
                Duration::ZERO
            };
            let task = Task::Deliver {
                event_id: event.id,
                endpoint_id: id,
                attempt,
            };
            self.enqueue(task, delay).await?;
            queued += 1;
        }
        tracing::info!(endpoint_id = %id, queued, "recovery queued");
        Ok(RecoverAnswer { queued })
    }

    /// The merchant's events in `[since, until)` of the types the endpoint receives, oldest
    /// first (time, request, sequence), at most [`MAX_RECOVER`].
    async fn events_in_window(
        &self,
        endpoint: &WebhookEndpoint,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StatusEvent>, AppError> {
        let mut query = EventQuery {
            types: endpoint.event_types.clone(),
            cashout_request_id: None,
            since: Some(since),
            until: Some(until),
            limit: 100,
            cursor: None,
        };
        let mut events = Vec::new();
        loop {
            let page = self.store.list_merchant_events(&endpoint.merchant_id, &query).await?;
            events.extend(page.items.into_iter().filter(|e| endpoint.receives(e.event_type())));
            if events.len() > MAX_RECOVER {
                return Err(AppError::BadParameter(format!(
                    "more than {MAX_RECOVER} events in the window: recover a shorter one"
                )));
            }
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        events.sort_by_key(|e| (e.occurred_at, e.cashout_request_id, e.sequence));
        Ok(events)
    }

    /// Issues a new secret; the current one keeps signing for `expire_current_in_seconds`
    /// (default 24 h; 0: not at all). At most two secrets are live.
    #[tracing::instrument(skip(self, principal, body))]
    pub async fn rotate_endpoint_secret_with(
        &self,
        principal: &Principal,
        id: EndpointId,
        body: &[u8],
    ) -> Result<EndpointView, AppError> {
        let merchant = require_merchant(principal)?;
        let input: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RotateRequest::default()
        } else {
            serde_json::from_slice(body)?
        };
        let grace = match input.expire_current_in_seconds {
            None => WebhookEndpoint::ROTATION_GRACE,
            Some(s @ 0..=86_400) => time::Duration::seconds(i64::from(s)),
            Some(_) => return Err(bad("expire_current_in_seconds", "0 to 86400")),
        };
        let secret = WebhookSecret::from_key_bytes(&self.ids.secret_bytes());
        for _ in 0..ENDPOINT_WRITE_ATTEMPTS {
            let endpoint = self.store.get_endpoint(merchant, id).await?.ok_or(AppError::NotFound)?;
            let rotated = endpoint.rotate_with_grace(secret.clone(), self.now(), grace);
            match self.store.replace_endpoint(&rotated, endpoint.version).await {
                Ok(()) => return Ok(EndpointView::with_secret(&rotated)),
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }

    /// The merchant's status events across its requests, newest first.
    pub async fn list_merchant_events(
        &self,
        principal: &Principal,
        filter: EventFilter,
    ) -> Result<EventPage, AppError> {
        let merchant = require_merchant(principal)?;
        let types = filter
            .event_type
            .map(|t| parse_event_types(vec![t]))
            .transpose()?
            .unwrap_or_default();
        let cashout_request_id = filter
            .cashout_request_id
            .map(|id| id.parse::<CashoutRequestId>().map_err(|e| bad("cashout_request_id", e)))
            .transpose()?;
        let query = EventQuery {
            types,
            cashout_request_id,
            since: filter.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
            until: filter.until.as_deref().map(|t| parse_time("until", t)).transpose()?,
            limit: page_limit(filter.limit)?,
            cursor: filter.cursor.map(Cursor),
        };
        let page = self.store.list_merchant_events(merchant, &query).await?;
        Ok(EventPage {
            data: page.items.iter().map(EventView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.0),
        })
    }
}
