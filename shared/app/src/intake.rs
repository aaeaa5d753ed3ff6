//! Provider notifications: verified and handed to the poller. A D24 notification carries no
//! status (on purpose), so it only triggers an immediate poll; a Cascad callback with a valid
//! signature carries the payout and is recorded directly. Duplicates and reordering change
//! nothing: the status machine ignores stale answers.

use std::time::Duration;

use cashout_core::ids::{CashoutRequestId, ProviderPayoutId};
use cashout_core::ports::{InboundNotification, PayoutProvider, ProviderNotification, Store, Task, TaskQueue};
use cashout_core::provider::{ProviderName, ProviderPayout};

use crate::App;
use crate::error::AppError;
use crate::tasks::TaskOutcome;

impl<S, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// `POST /webhooks/{provider}`: parses and verifies, then queues the notification for the
    /// poller. An error means the provider should be told no (it retries).
    #[tracing::instrument(skip(self, notification), fields(provider = %provider))]
    pub async fn receive_notification(
        &self,
        provider: ProviderName,
        notification: InboundNotification,
    ) -> Result<(), AppError> {
        let parsed = self.provider.parse_notification(provider, &notification).map_err(|e| {
            tracing::warn!(error = %e, "refused a provider notification");
            AppError::InvalidNotification(e.message)
        })?;
        let task = match parsed {
            ProviderNotification::Hint { reference, payout_id } => Task::ProviderEvent {
                provider,
                reference,
                payout_id,
                payout: None,
            },
            ProviderNotification::Status(payout) => Task::ProviderEvent {
                provider,
                reference: payout.reference,
                payout_id: Some(payout.payout_id.clone()),
                payout: Some(payout),
            },
        };
        self.enqueue(task, Duration::ZERO).await
    }
}

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// The `provider_event` task.
    #[tracing::instrument(skip(self, payout), fields(provider = %provider, cashout_request_id))]
    pub async fn handle_provider_event(
        &self,
        provider: ProviderName,
        reference: Option<CashoutRequestId>,
        payout_id: Option<ProviderPayoutId>,
        payout: Option<ProviderPayout>,
    ) -> Result<TaskOutcome, AppError> {
        let id = match (reference, &payout_id) {
            (Some(id), _) => Some(id),
            (None, Some(pid)) => self.store.find_by_provider_reference(provider, pid).await?,
            (None, None) => None,
        };
        let Some(id) = id else {
            tracing::warn!(payout_id = ?payout_id, "a notification about a payout we do not know");
            return Ok(TaskOutcome::Done);
        };
        tracing::Span::current().record("cashout_request_id", tracing::field::display(id));
        match payout {
            Some(p) if p.provider == provider => self.observe(id, Some(&p), None).await,
            Some(_) => {
                tracing::warn!("a notification whose payout belongs to another provider");
                Ok(TaskOutcome::Done)
            }
            None => self.poll(id, None).await,
        }
    }
}
