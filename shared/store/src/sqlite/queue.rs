//! The durable queue on SQLite: a message is a row until it is acknowledged; receiving hides it
//! for the visibility timeout and counts the receive; a message received more times than its
//! queue's `maxReceiveCount` (from `infra/template.yaml`) moves to `dead_letters` instead.
//!
//! A receipt is `<message id>.<receive count>`: it is valid only for the receive that issued it,
//! so a consumer whose visibility lapsed cannot acknowledge a message someone else now holds.

use std::time::Duration;

use cashout_core::ports::{
    QueueError, QueueName, Receipt, ReceivedTask, StoreError, TaskEnvelope, TaskQueue, TaskSource,
};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, queue_error, sql_error};
use crate::codec::to_ns;
use crate::inspect::{DeadLetter, QueueDepth, QueueInspect};

fn parse_receipt(receipt: &Receipt) -> Result<(i64, i64), QueueError> {
    let (id, count) = receipt.0.split_once('.').ok_or(QueueError::InvalidReceipt)?;
    let id = id.parse().map_err(|_| QueueError::InvalidReceipt)?;
    let count = count.parse().map_err(|_| QueueError::InvalidReceipt)?;
    Ok((id, count))
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl TaskQueue for SqliteStore {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        let queue = envelope.queue().as_str();
        let body = envelope.to_json();
        let not_before = to_ns(envelope.not_before).map_err(queue_error)?;
        self.write(move |conn, inner| {
            let now = to_ns(inner.clock.now())?;
            conn.prepare_cached(
                "INSERT INTO queue (queue, body, sent_at, visible_at, receive_count)
                 VALUES (?1, ?2, ?3, ?4, 0)",
            )
            .map_err(sql_error)?
            .execute(params![queue, body, now, not_before.max(now)])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
        .map_err(queue_error)
    }

    async fn send_batch(&self, envelopes: &[TaskEnvelope]) -> Result<(), QueueError> {
        let rows = envelopes
            .iter()
            .map(|e| Ok((e.queue().as_str(), e.to_json(), to_ns(e.not_before)?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(queue_error)?;
        if rows.is_empty() {
            return Ok(());
        }
        self.write(move |conn, inner| {
            let now = to_ns(inner.clock.now())?;
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO queue (queue, body, sent_at, visible_at, receive_count)
                     VALUES (?1, ?2, ?3, ?4, 0)",
                )
                .map_err(sql_error)?;
            for (queue, body, not_before) in rows {
                insert
                    .execute(params![queue, body, now, not_before.max(now)])
                    .map_err(sql_error)?;
            }
            Ok(())
        })
        .await
        .map_err(queue_error)
    }
}

impl TaskSource for SqliteStore {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max_receives = i64::from(self.inner.shared.max_receives.get(&queue).copied().unwrap_or(u32::MAX));
        let want = i64::try_from(max).unwrap_or(i64::MAX);
        let visibility = duration_ns(visibility);
        self.write(move |conn, inner| {
            let now = to_ns(inner.clock.now())?;
            let tx = conn;
            let mut received = Vec::new();
            // Dead-lettered messages do not count towards `max`: read again until full or empty.
            loop {
                let missing = want - i64::try_from(received.len()).unwrap_or(0);
                let rows = tx
                    .prepare_cached(
                        "SELECT id, body, sent_at, receive_count FROM queue
                         WHERE queue = ?1 AND visible_at <= ?2
                         ORDER BY visible_at, id LIMIT ?3",
                    )
                    .map_err(sql_error)?
                    .query_map(params![queue.as_str(), now, missing], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                if rows.is_empty() {
                    break;
                }
                let mut dead = 0;
                for (id, body, sent_at, count) in rows {
                    if count >= max_receives {
                        tx.prepare_cached(
                            "INSERT INTO dead_letters (queue, message_id, body, sent_at, receive_count, dead_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .map_err(sql_error)?
                        .execute(params![queue.as_str(), id, body, sent_at, count, now])
                        .map_err(sql_error)?;
                        tx.prepare_cached("DELETE FROM queue WHERE id = ?1")
                            .map_err(sql_error)?
                            .execute([id])
                            .map_err(sql_error)?;
                        tracing::warn!(queue = %queue, message_id = id, receives = count, "dead-lettered a message");
                        dead += 1;
                        continue;
                    }
                    let count = count + 1;
                    tx.prepare_cached("UPDATE queue SET receive_count = ?1, visible_at = ?2 WHERE id = ?3")
                        .map_err(sql_error)?
                        .execute(params![count, now.saturating_add(visibility), id])
                        .map_err(sql_error)?;
                    received.push(ReceivedTask {
                        receipt: Receipt(format!("{id}.{count}")),
                        body,
                        receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                    });
                }
                if dead == 0 || received.len() >= max {
                    break;
                }
            }
            Ok(received)
        })
        .await
        .map_err(queue_error)
    }

    async fn ack(&self, queue: QueueName, receipt: &Receipt) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let deleted = self
            .write(move |conn, _| {
                conn.prepare_cached("DELETE FROM queue WHERE id = ?1 AND queue = ?2 AND receive_count = ?3")
                    .map_err(sql_error)?
                    .execute(params![id, queue.as_str(), count])
                    .map_err(sql_error)
            })
            .await
            .map_err(queue_error)?;
        if deleted == 0 {
            return Err(QueueError::InvalidReceipt);
        }
        Ok(())
    }

    async fn ack_batch(&self, queue: QueueName, receipts: &[Receipt]) -> Result<usize, QueueError> {
        let held = receipts.iter().map(parse_receipt).collect::<Result<Vec<_>, _>>()?;
        if held.is_empty() {
            return Ok(0);
        }
        self.write(move |conn, _| {
            let mut delete = conn
                .prepare_cached("DELETE FROM queue WHERE id = ?1 AND queue = ?2 AND receive_count = ?3")
                .map_err(sql_error)?;
            let mut deleted = 0;
            for (id, count) in held {
                deleted += delete.execute(params![id, queue.as_str(), count]).map_err(sql_error)?;
            }
            Ok(deleted)
        })
        .await
        .map_err(queue_error)
    }

    async fn release(&self, queue: QueueName, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let delay = duration_ns(delay);
        let updated = self
            .write(move |conn, inner| {
                let now = to_ns(inner.clock.now())?;
                conn.prepare_cached(
                    "UPDATE queue SET visible_at = ?1
                     WHERE id = ?2 AND queue = ?3 AND receive_count = ?4",
                )
                .map_err(sql_error)?
                .execute(params![now.saturating_add(delay), id, queue.as_str(), count])
                .map_err(sql_error)
            })
            .await
            .map_err(queue_error)?;
        if updated == 0 {
            return Err(QueueError::InvalidReceipt);
        }
        Ok(())
    }
}

impl QueueInspect for SqliteStore {
    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, QueueError> {
        let now = to_ns(self.now()).map_err(queue_error)?;
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT
                    COALESCE(SUM(visible_at <= ?2), 0),
                    COALESCE(SUM(visible_at > ?2 AND receive_count > 0), 0),
                    COALESCE(SUM(visible_at > ?2 AND receive_count = 0), 0)
                 FROM queue WHERE queue = ?1",
            )
            .map_err(sql_error)?
            .query_row(params![queue.as_str(), now], |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok(QueueDepth {
                    visible: n(0)?,
                    in_flight: n(1)?,
                    delayed: n(2)?,
                })
            })
            .optional()
            .map_err(sql_error)
            .map(Option::unwrap_or_default)
        })
        .await
        .map_err(queue_error)
    }

    async fn dead_letters(&self, queue: QueueName, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body, receive_count FROM dead_letters WHERE queue = ?1 ORDER BY id LIMIT ?2")
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![queue.as_str(), max], |r| {
                    Ok(DeadLetter {
                        body: r.get(0)?,
                        receive_count: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX),
                    })
                })
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            Ok::<_, StoreError>(rows)
        })
        .await
        .map_err(queue_error)
    }
}
