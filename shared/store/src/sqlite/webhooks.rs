//! Webhook endpoints and delivery attempts on SQLite.

use cashout_core::ids::{EndpointId, EventId, MerchantId};
use cashout_core::ports::{Cursor, Page, StoreError, WebhookStore};
use cashout_core::webhook::{DeliveryAttempt, EndpointCreated, WebhookEndpoint};
use rusqlite::{OptionalExtension, params};

use super::rows::json_bodies;
use super::{SqliteStore, sql_error};
use crate::codec::{AttemptPosition, from_json, page_size, to_json, to_ns};
use crate::endpoints::{endpoint_body, read_endpoint, stored_version};
use crate::work::is_dead_letter;

impl WebhookStore for SqliteStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint, max: usize) -> Result<EndpointCreated, StoreError> {
        let body = endpoint_body(endpoint, 0, Some(self.sealer())).await?;
        let merchant = endpoint.merchant_id.to_string();
        let id = endpoint.id.to_string();
        let created_at = to_ns(endpoint.created_at)?;
        // One transaction of the writer thread: nothing else writes between the count and the
        // insert.
        self.write(move |conn, _| {
            let exists = conn
                .prepare_cached("SELECT 1 FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .query_row([&merchant, &id], |_| Ok(()))
                .optional()
                .map_err(sql_error)?;
            if exists.is_some() {
                return Err(StoreError::Conflict { expected: 0 });
            }
            let stored: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM endpoints WHERE merchant_id = ?1")
                .map_err(sql_error)?
                .query_row([&merchant], |r| r.get(0))
                .map_err(sql_error)?;
            if usize::try_from(stored).unwrap_or(usize::MAX) >= max {
                return Ok(EndpointCreated::LimitReached);
            }
            conn.prepare_cached("INSERT INTO endpoints (merchant_id, id, created_at, body) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql_error)?
                .execute(params![merchant, id, created_at, body])
                .map_err(sql_error)?;
            Ok(EndpointCreated::Created)
        })
        .await
    }

    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint, expected_version: u64) -> Result<(), StoreError> {
        let body = endpoint_body(endpoint, expected_version, Some(self.sealer())).await?;
        let merchant = endpoint.merchant_id.to_string();
        let id = endpoint.id.to_string();
        // The version lives in the body (endpoints stored before it read as 0): read and compare
        // in the writer's transaction.
        self.write(move |conn, _| {
            let stored = conn
                .prepare_cached("SELECT body FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .query_row([&merchant, &id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .ok_or(StoreError::NotFound)?;
            if stored_version(&stored)? != expected_version {
                return Err(StoreError::Conflict {
                    expected: expected_version,
                });
            }
            conn.prepare_cached("UPDATE endpoints SET body = ?3 WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .execute(params![merchant, id, body])
                .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn get_endpoint(
        &self,
        merchant_id: &MerchantId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let merchant = merchant_id.to_string();
        let id = id.to_string();
        let stored = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                    .map_err(sql_error)?
                    .query_row([merchant, id], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(sql_error)
            })
            .await?;
        match stored {
            Some(body) => Ok(Some(read_endpoint(&body, Some(self.sealer())).await?)),
            None => Ok(None),
        }
    }

    async fn list_endpoints(&self, merchant_id: &MerchantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let merchant = merchant_id.to_string();
        let stored = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM endpoints WHERE merchant_id = ?1 ORDER BY created_at, id")
                    .map_err(sql_error)?
                    .query_map([merchant], |r| r.get::<_, String>(0))
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)
            })
            .await?;
        let mut endpoints = Vec::with_capacity(stored.len());
        for body in &stored {
            endpoints.push(read_endpoint(body, Some(self.sealer())).await?);
        }
        Ok(endpoints)
    }

    async fn delete_endpoint(&self, merchant_id: &MerchantId, id: EndpointId) -> Result<bool, StoreError> {
        let merchant = merchant_id.to_string();
        let id = id.to_string();
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM endpoints WHERE merchant_id = ?1 AND id = ?2")
                .map_err(sql_error)?
                .execute([merchant, id])
                .map_err(sql_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn claim_attempt(
        &self,
        attempt: &DeliveryAttempt,
        stale_before: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        super::deliveries::claim_attempt(self, attempt, stale_before).await
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        let event_id = attempt.event_id.to_string();
        let endpoint_id = attempt.endpoint_id.to_string();
        let merchant = attempt.merchant_id.to_string();
        let number = i64::from(attempt.attempt);
        let attempted_at = to_ns(attempt.attempted_at)?;
        let body = to_json(attempt, "delivery attempt")?;
        let dead = is_dead_letter(attempt).then_some(1i64);
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO attempts (event_id, endpoint_id, attempt, merchant_id, attempted_at, body, dead)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (event_id, endpoint_id, attempt)
                 DO UPDATE SET merchant_id = ?4, attempted_at = ?5, body = ?6, dead = ?7",
            )
            .map_err(sql_error)?
            .execute(params![
                event_id,
                endpoint_id,
                number,
                merchant,
                attempted_at,
                body,
                dead
            ])
            .map_err(sql_error)?;
            Ok(())
        })
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
        let merchant = merchant_id.to_string();
        let endpoint = endpoint_id.to_string();
        let (at, event, number) = match &after {
            Some(p) => (
                Some(p.attempted_at_ns),
                Some(p.event_id.to_string()),
                Some(i64::from(p.attempt)),
            ),
            None => (None, None, None),
        };
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM attempts
                     WHERE merchant_id = ?1 AND endpoint_id = ?2
                       AND (?3 IS NULL OR (attempted_at, event_id, attempt) < (?3, ?4, ?5))
                     ORDER BY attempted_at DESC, event_id DESC, attempt DESC LIMIT ?6",
                )
                .map_err(sql_error)?;
            let bodies = stmt
                .query_map(
                    params![
                        merchant,
                        endpoint,
                        at,
                        event,
                        number,
                        i64::try_from(limit + 1).unwrap_or(101)
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            let mut items = bodies
                .iter()
                .map(|b| from_json::<DeliveryAttempt>(b, "delivery attempt"))
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                match items.last() {
                    Some(a) => Some(
                        AttemptPosition {
                            attempted_at_ns: to_ns(a.attempted_at)?,
                            event_id: a.event_id,
                            attempt: a.attempt,
                        }
                        .cursor(),
                    ),
                    None => None,
                }
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn list_event_attempts(&self, event_id: EventId) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let event = event_id.to_string();
        self.read(move |conn| {
            json_bodies(
                conn,
                "SELECT body FROM attempts WHERE event_id = ?1
                     ORDER BY attempted_at, endpoint_id, attempt",
                [event],
                "delivery attempt",
            )
        })
        .await
    }
}
