//! Webhook endpoints and delivery attempts on DynamoDB.

use aws_sdk_dynamodb::types::ReturnValue;
use cashout_core::ids::{EndpointId, EventId, MerchantId};
use cashout_core::ports::{Cursor, Page, StoreError, WebhookStore};
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};

use super::items::*;
use super::table::TOTAL;
use super::{DynamoStore, sdk_error};
use crate::codec::{AttemptPosition, from_json, page_size, to_json, to_ns};

impl WebhookStore for DynamoStore {
    async fn put_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let mut item = endpoint_key(&endpoint.merchant_id, endpoint.id);
        item.insert("created_at".into(), n(to_ns(endpoint.created_at)?));
        item.insert(BODY.into(), s(to_json(endpoint, "webhook endpoint")?));
        self.put_plain("write an endpoint", item).await
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.get_item("read an endpoint", endpoint_key(merchant_id, id))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "webhook endpoint"))
            .transpose()
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut endpoints = self
            .query_partition("list endpoints", endpoint_pk(merchant_id), ENDPOINT_SK_PREFIX)
            .await?
            .iter()
            .map(|item| from_json::<WebhookEndpoint>(get_s(item, BODY)?, "webhook endpoint"))
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by_key(|e| (e.created_at, e.id));
        Ok(endpoints)
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(endpoint_key(merchant_id, id)))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| sdk_error("delete an endpoint", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.put_plain("record a delivery attempt", attempt_item(attempt)?)
            .await
    }

    async fn list_attempts(
        &self,
        merchant_id: &MerchantId,
        endpoint_id: EndpointId,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        let limit = page_size(limit)?;
        let after = cursor.map(AttemptPosition::from_cursor).transpose()?;
        let mut keys = self
            .query_index(
                "list delivery attempts",
                BY_OWNER,
                (GSI1PK, endpoint_attempts_pk(merchant_id, endpoint_id)),
                (GSI1SK, after.map(|p| s(p.sort_key())), "<"),
                false,
                limit + 1,
            )
            .await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let keys = keys
            .iter()
            .map(|k| Ok(key(get_s(k, PK)?.to_owned(), get_s(k, SK)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let items = self
            .batch_get("read listed attempts", keys)
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(attempt_position(last)?.cursor()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let mut attempts = self
            .query_partition("list an event's attempts", attempts_pk(event_id), "EP#")
            .await?
            .iter()
            .map(|item| from_json::<DeliveryAttempt>(get_s(item, BODY)?, "delivery attempt"))
            .collect::<Result<Vec<_>, _>>()?;
        attempts.sort_by_key(|a| (a.attempted_at, a.endpoint_id, a.attempt));
        Ok(attempts)
    }
}
