//! The conformance suite on the in-memory store and queue.
#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;

use cashout_core::ports::{Clock, ManualClock};
use cashout_store::memory::MemoryStore;
use conformance::fixtures::t0;
use conformance::{QueueEnv, QueueTime, StoreEnv};

async fn store_env() -> StoreEnv<MemoryStore> {
    let clock = Arc::new(ManualClock::new(t0()));
    StoreEnv {
        store: MemoryStore::new(clock.clone() as Arc<dyn Clock>).unwrap(),
        clock,
        dir: None,
    }
}

async fn queue_env() -> QueueEnv<MemoryStore> {
    let clock = Arc::new(ManualClock::new(t0()));
    QueueEnv {
        queue: MemoryStore::new(clock.clone() as Arc<dyn Clock>).unwrap(),
        time: QueueTime::Manual(clock),
        dir: None,
    }
}

store_suite!(store_env);
queue_suite!(queue_env);
