//! Operational events: what cashout tells a merchant about its endpoints rather than about a
//! request (`webhook_endpoint.test`, `webhook_endpoint.disabled`). They are signed and delivered
//! like status events, but belong to no request: their id is an [`EventId::operational`], and
//! their body travels in the delivery task (nothing to read back from the store).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::EventType;
use crate::ids::{EndpointId, EventId, MerchantId};
use crate::webhook::DisabledReason;

/// One operational event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `evt_op_…`: the `webhook-id` of its deliveries.
    pub id: EventId,
    /// The merchant whose endpoints receive it.
    pub merchant_id: MerchantId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// What it says.
    pub payload: NoticePayload,
}

/// What an operational event says; its JSON form (with `event_id` and `occurred_at`) is the
/// webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum NoticePayload {
    /// `webhook_endpoint.test`: sent on the merchant's demand to one endpoint.
    #[serde(rename = "webhook_endpoint.test")]
    Test {
        /// The endpoint tested.
        endpoint_id: EndpointId,
    },
    /// `webhook_endpoint.disabled`: sent to the merchant's other endpoints.
    #[serde(rename = "webhook_endpoint.disabled")]
    Disabled {
        /// The endpoint disabled.
        endpoint_id: EndpointId,
        /// Why.
        reason: DisabledReason,
        /// Its first failure without a success since (for `failing`), else when it was disabled.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
}

#[derive(Serialize)]
struct NoticeBody<'a> {
    #[serde(flatten)]
    payload: &'a NoticePayload,
    event_id: EventId,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
}

impl Notice {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self.payload {
            NoticePayload::Test { .. } => EventType::EndpointTest,
            NoticePayload::Disabled { .. } => EventType::EndpointDisabled,
        }
    }

    /// The webhook body, as sent (and signed).
    pub fn webhook_body(&self) -> String {
        let body = NoticeBody {
            payload: &self.payload,
            event_id: self.id,
            occurred_at: self.occurred_at,
        };
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_notice_has_the_documented_body() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let endpoint_id = EndpointId::from_uuid(uuid::Uuid::nil());
        let notice = Notice {
            id: EventId::operational(uuid::Uuid::from_u128(7)),
            merchant_id: MerchantId::new("m").unwrap(),
            occurred_at: at,
            payload: NoticePayload::Disabled {
                endpoint_id,
                reason: DisabledReason::Failing,
                since: at,
            },
        };
        let body: serde_json::Value = serde_json::from_str(&notice.webhook_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "event": "webhook_endpoint.disabled",
                "endpoint_id": endpoint_id.to_string(),
                "reason": "failing",
                "since": "2023-11-14T22:13:20Z",
                "event_id": notice.id.to_string(),
                "occurred_at": "2023-11-14T22:13:20Z",
            })
        );
        assert_eq!(notice.event_type(), EventType::EndpointDisabled);
    }
}
