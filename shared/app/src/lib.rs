//! # cashout-app: the use cases
//!
//! Everything the functions do, generic over the ports of `cashout-core`: create, review,
//! cancel, dispatch, poll, provider-notification intake, the outbox, webhook delivery and
//! redelivery, endpoints, API keys and payout methods. Also the glue the functions share: the
//! HTTP routers ([`http`]), the task loop ([`tasks`]) and the SQS batch handler ([`sqs`]).
//!
//! [`App`] holds the ports. Its type parameters are the store `S`, the task queue `Q`, the
//! payout provider `P` and the webhook sender `W`; a function that does not need one passes
//! `()`, and the methods that need it are simply not available.

mod access;
pub mod config;
mod create;
mod deliver;
mod dispatch;
mod endpoint_health;
mod endpoints;
pub mod error;
mod health;
pub mod http;
mod intake;
pub mod limits;
mod operators;
mod ordering;
mod outbox;
pub mod pipeline;
mod policies;
mod poll;
pub mod portal_sessions;
mod query;
pub mod reconcile;
pub(crate) mod review;
mod routing;
mod schedule;
pub mod selfservice;
pub mod sender;
pub mod sessions;
pub mod sqs;
pub mod tasks;
pub mod telemetry;
mod throttle;
pub mod views;
pub mod work;
pub mod worker;
mod write;

use std::sync::Arc;

use cashout_core::ports::{Clock, IdGenerator};

pub use config::{AppConfig, EnvError, PollSchedule};
pub use create::Created;
pub use error::AppError;
pub use operators::CREATED_OUTSIDE_THE_API;
pub use policies::PolicyInput;
pub use review::{BulkApproveItem, MAX_BULK};
pub use tasks::TaskOutcome;

/// The ports a deployment wired together, and its configuration. Cheap to clone.
pub struct App<S, Q, P, W> {
    /// Requests, events, endpoints, keys.
    pub store: Arc<S>,
    /// Where tasks go.
    pub queue: Arc<Q>,
    /// The payout providers.
    pub provider: Arc<P>,
    /// Sends merchant webhooks.
    pub sender: Arc<W>,
    /// Where every use case reads the time (a manual clock in tests and the simulation).
    pub clock: Arc<dyn Clock>,
    /// New ids and secrets.
    pub ids: Arc<dyn IdGenerator>,
    /// Policies and schedules.
    pub config: Arc<AppConfig>,
    /// Wake-ups and the backlog gauge, shared by the workers of one process.
    pub pipeline: Arc<pipeline::Pipeline>,
    /// What this process knows of the providers' health.
    health: Arc<health::HealthCache>,
    /// The routing rules this process read last.
    rules: Arc<routing::RulesCache>,
    /// The day whose scheduled reconciliation this process already started.
    daily: Arc<reconcile::DailyMemo>,
    /// The approval policies this process read last.
    policies: Arc<policies::PolicyCache>,
    /// This process's rate-limit buckets.
    limits: Arc<limits::LocalLimits>,
    /// Per-endpoint delivery rate limits, in this process.
    throttle: Arc<throttle::EndpointThrottle>,
}

impl<S, Q, P, W> Clone for App<S, Q, P, W> {
    fn clone(&self) -> Self {
        App {
            store: self.store.clone(),
            queue: self.queue.clone(),
            provider: self.provider.clone(),
            sender: self.sender.clone(),
            clock: self.clock.clone(),
            ids: self.ids.clone(),
            config: self.config.clone(),
            pipeline: self.pipeline.clone(),
            health: self.health.clone(),
            rules: self.rules.clone(),
            daily: self.daily.clone(),
            policies: self.policies.clone(),
            limits: self.limits.clone(),
            throttle: self.throttle.clone(),
        }
    }
}

impl<S, Q, P, W> App<S, Q, P, W> {
    /// Wires the ports.
    pub fn new(
        store: Arc<S>,
        queue: Arc<Q>,
        provider: Arc<P>,
        sender: Arc<W>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        config: AppConfig,
    ) -> Self {
        App {
            store,
            queue,
            provider,
            sender,
            clock,
            ids,
            config: Arc::new(config),
            pipeline: Arc::default(),
            health: Arc::default(),
            rules: Arc::default(),
            policies: Arc::default(),
            daily: Arc::default(),
            limits: Arc::default(),
            throttle: Arc::default(),
        }
    }

    /// A deployment's ports: random ids from the operating system, the given clock.
    pub fn deployed(store: S, queue: Q, provider: P, sender: W, clock: Arc<dyn Clock>, config: AppConfig) -> Self {
        Self::new(
            Arc::new(store),
            Arc::new(queue),
            Arc::new(provider),
            Arc::new(sender),
            clock,
            Arc::new(cashout_core::ports::SystemIds),
            config,
        )
    }

    fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests;
