//! The benchmarks. Every figure is taken next to its ceiling in the same run, so that a noisy
//! machine still gives a true ratio:
//!
//! | figure | ceiling |
//! |---|---|
//! | API create, requests/s and latency at concurrency 1, 8, 32 | a no-op route of the same server, same client, same body |
//! | signed webhook deliveries/s (the callbacks worker) | a bare loop of POSTs of the same bodies to the same receiver |
//! | whole lifecycle, cashouts/s from create to `PAID` with every webhook delivered | API creates/s at the same concurrency |
//! | DynamoDB units and SQS requests per paid cashout (DynamoDB Local + moto) | the minimum the design needs (`docs/cost-model.md`) |
//!
//! One module per figure; the sustained scenario and the Lambda footprint have modules of their
//! own beside this one.

use std::sync::Arc;

use cashout_store::sqlite::SqliteStore;

mod api;
mod cost;
mod lifecycle;
mod webhooks;

pub use api::{ApiFigure, Throughput, api};
pub use cost::{CostFigure, MINIMUM, Minimum, PerCashout, WatchCost, WatchProjection, cost};
pub use lifecycle::{LifecycleFigure, lifecycle};
pub use webhooks::{WebhookFigure, webhooks};

/// A benchmark that could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

pub(crate) fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}

/// An embedded store in `dir`.
fn temp_store(dir: &tempfile::TempDir) -> Result<Arc<SqliteStore>, BenchError> {
    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    Ok(Arc::new(
        SqliteStore::open(&dir.path().join("cashout.sqlite3"), clock).map_err(fail)?,
    ))
}
