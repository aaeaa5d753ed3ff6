//! # cashout-store: where cashout keeps its state and its work
//!
//! Adapters of the store and queue ports of `cashout-core`:
//!
//! | module | implements | for |
//! |---|---|---|
//! | [`sqlite`] | `Store` + `TaskQueue` + `TaskSource` | the local runner and fast tests: one SQLite file, WAL, `synchronous=FULL` |
//! | [`memory`] | `Store` + `TaskQueue` + `TaskSource` | the deterministic simulation and fast tests: nothing kept across a process |
//! | [`dynamo`] | `Store` | AWS: one DynamoDB table (see `docs/store.md` for keys, indexes and costs) |
//! | [`sqs`] | `TaskQueue` + `TaskSource` | AWS: the four SQS queues and their dead-letter queues |
//! | [`sealing`] | — | endpoint signing secrets sealed at rest (AES-256-GCM data keys wrapped by a key file or KMS) |
//! | [`resources`] | — | the table and queues as declared once in `infra/template.yaml`, created on emulators |
//!
//! Each backend keeps one file per port: `requests.rs` (`CashoutStore`; the steps of a creation
//! in `creation.rs` where it has several), `webhooks.rs` (`WebhookStore`), `api_keys.rs`
//! (`ApiKeyStore`), `routing.rs` (`RoutingStore`: routing rules and provider health),
//! `reconcile.rs` (`ReconciliationStore`: reconciliation runs and their differences),
//! `people.rs` (`PeopleStore`: operators, approval policies, day usage, known beneficiaries,
//! sessions), `work.rs` (`WorkStore`: the operators' work lists and the dead letters), and, where
//! it holds queues too, `queue.rs` (`TaskQueue` + `TaskSource`). DynamoDB lists the requests that
//! changed in a period in `dynamo/changed.rs` (the `by-day` index).
//!
//! Every backend passes the same conformance suite (`tests/conformance`). Errors are the ports'
//! typed errors; throttling and timeouts are retried a bounded number of times inside the
//! adapter and then surface as retryable (`Unavailable`).

pub mod aws;
pub mod dynamo;
pub mod memory;
pub mod resources;
pub mod sealing;
pub mod sqlite;
pub mod sqs;

mod codec;
mod endpoints;
mod events;
mod inspect;
mod people;
mod routing;
mod work;

pub use inspect::{DeadLetter, QueueDepth, QueueInspect};
