//! The four queues in memory: delays, visibility timeouts, receive counts and dead letters, as
//! SQS and the embedded queue keep them.

use std::time::Duration;

use cashout_core::ports::{QueueError, QueueName, Receipt, ReceivedTask, TaskEnvelope, TaskQueue, TaskSource};
use time::OffsetDateTime;

use super::{MemoryStore, Message};
use crate::inspect::{DeadLetter, QueueDepth, QueueInspect};

/// `now + delay`, saturating instead of overflowing.
fn later(now: OffsetDateTime, delay: Duration) -> OffsetDateTime {
    time::Duration::try_from(delay)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT))
}

fn receipt(id: u64, count: u32) -> Receipt {
    Receipt(format!("{id}.{count}"))
}

fn parse_receipt(receipt: &Receipt) -> Result<(u64, u32), QueueError> {
    let (id, count) = receipt.0.split_once('.').ok_or(QueueError::InvalidReceipt)?;
    Ok((
        id.parse().map_err(|_| QueueError::InvalidReceipt)?,
        count.parse().map_err(|_| QueueError::InvalidReceipt)?,
    ))
}

impl TaskQueue for MemoryStore {
    async fn send(&self, envelope: &TaskEnvelope) -> Result<(), QueueError> {
        let now = self.clock.now();
        let mut state = self.state();
        let id = state.next_message;
        state.next_message += 1;
        state.messages.insert(
            id,
            Message {
                queue: envelope.queue(),
                body: envelope.to_json(),
                visible_at: envelope.not_before.max(now),
                receive_count: 0,
            },
        );
        Ok(())
    }
}

impl TaskSource for MemoryStore {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, QueueError> {
        let now = self.clock.now();
        let hidden_until = later(now, visibility);
        let limit = self.max_receives.get(&queue).copied().unwrap_or(u32::MAX);
        let mut state = self.state();
        let mut visible: Vec<(OffsetDateTime, u64)> = state
            .messages
            .iter()
            .filter(|(_, m)| m.queue == queue && m.visible_at <= now)
            .map(|(id, m)| (m.visible_at, *id))
            .collect();
        visible.sort();
        let mut received = Vec::new();
        for (_, id) in visible {
            if received.len() >= max {
                break;
            }
            let Some(message) = state.messages.get_mut(&id) else {
                continue;
            };
            if message.receive_count >= limit {
                let dead = DeadLetter {
                    body: message.body.clone(),
                    receive_count: message.receive_count,
                };
                state.messages.remove(&id);
                state.dead_letters.push((queue, dead));
                continue;
            }
            message.receive_count += 1;
            message.visible_at = hidden_until;
            received.push(ReceivedTask {
                receipt: receipt(id, message.receive_count),
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
        }
        Ok(received)
    }

    async fn ack(&self, queue: QueueName, receipt: &Receipt) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let mut state = self.state();
        match state.messages.get(&id) {
            Some(m) if m.queue == queue && m.receive_count == count => {
                state.messages.remove(&id);
                Ok(())
            }
            _ => Err(QueueError::InvalidReceipt),
        }
    }

    async fn release(&self, queue: QueueName, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let at = later(self.clock.now(), delay);
        let mut state = self.state();
        match state.messages.get_mut(&id) {
            Some(m) if m.queue == queue && m.receive_count == count => {
                m.visible_at = at;
                Ok(())
            }
            _ => Err(QueueError::InvalidReceipt),
        }
    }
}

impl QueueInspect for MemoryStore {
    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, QueueError> {
        let now = self.clock.now();
        let state = self.state();
        let mut depth = QueueDepth::default();
        for m in state.messages.values().filter(|m| m.queue == queue) {
            if m.visible_at <= now {
                depth.visible += 1;
            } else if m.receive_count > 0 {
                depth.in_flight += 1;
            } else {
                depth.delayed += 1;
            }
        }
        Ok(depth)
    }

    async fn dead_letters(&self, queue: QueueName, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .state()
            .dead_letters
            .iter()
            .filter(|(q, _)| *q == queue)
            .take(max)
            .map(|(_, d)| d.clone())
            .collect())
    }
}
