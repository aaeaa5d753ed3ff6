//! What operators and tests need to see of a queue beyond the ports: how many messages wait
//! where, and what went to the dead-letter queue.

use std::future::Future;

use cashout_core::ports::{QueueError, QueueName};

/// Messages in a queue (approximate on SQS, exact on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Ready to be received.
    pub visible: u64,
    /// Received and not yet acknowledged, or released with a delay.
    pub in_flight: u64,
    /// Sent with a delay that has not ended.
    pub delayed: u64,
}

impl QueueDepth {
    /// Every message the queue still holds.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// A message moved to a dead-letter queue after too many receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The raw body, as sent.
    pub body: String,
    /// How many times it had been received when it was moved.
    pub receive_count: u32,
}

/// Queue inspection for operators and tests.
pub trait QueueInspect: Send + Sync {
    /// How many messages the queue holds, by state.
    fn depth(&self, queue: QueueName) -> impl Future<Output = Result<QueueDepth, QueueError>> + Send;

    /// Up to `max` messages of the queue's dead-letter queue, oldest first where the backend
    /// can tell. On SQS this receives them (hiding them for 30 s); on SQLite it only reads.
    fn dead_letters(
        &self,
        queue: QueueName,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, QueueError>> + Send;
}
