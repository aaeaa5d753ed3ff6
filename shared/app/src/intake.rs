//! Provider notifications: verified and handed to the poller. A D24 notification carries no
//! status (on purpose) and no verifiable signature, so it is only a hint: it must name a request
//! whose provider may hold a payout, and however many hints arrive for one request, the
//! provider is asked at most once per [`AppConfig::hint_window`](crate::AppConfig::hint_window)
//! (the check runs at the end of the window, so it sees every change hinted within it). A hint
//! about anything else is dropped here: it costs one read, no queue message and no provider
//! call. A Cascad callback with a valid signature carries the payout and is recorded directly.
//! Duplicates and reordering change nothing: the status machine ignores stale answers.

use std::time::Duration;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{
    InboundNotification, PayoutProvider, ProviderEvent, ProviderNotification, Store, Task, TaskQueue,
};
use cashout_core::provider::ProviderName;

use crate::App;
use crate::error::AppError;
use crate::tasks::TaskOutcome;

impl<S: Store, Q: TaskQueue, P: PayoutProvider, W> App<S, Q, P, W> {
    /// `POST /webhooks/{provider}`: parses and verifies, then queues the notification for the
    /// poller (a hint only if it names a request the provider may hold, coalesced). An error
    /// means the provider should be told no (it retries).
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
        match parsed {
            ProviderNotification::Hint { reference, payout_id } => {
                self.accept_hint(provider, reference, payout_id).await
            }
            status @ ProviderNotification::Status(_) => {
                let task = Task::ProviderEvent(ProviderEvent {
                    provider,
                    notification: status,
                });
                self.enqueue(task, Duration::ZERO).await
            }
        }
    }

    /// A hint: schedules one on-demand check of the request it names, unless one is already
    /// scheduled; anything else is dropped (and answered 200, so that the provider stops).
    async fn accept_hint(
        &self,
        provider: ProviderName,
        reference: Option<PayoutReference>,
        payout_id: Option<ProviderPayoutId>,
    ) -> Result<(), AppError> {
        let Some(request) = self.hinted_request(provider, reference, payout_id.as_ref()).await? else {
            tracing::debug!(?reference, ?payout_id, "dropped a hint about no payout of ours");
            return Ok(());
        };
        let id = request.id();
        let window = self.config.hint_window;
        let coalesce = time::Duration::try_from(window).unwrap_or(time::Duration::ZERO);
        let m = self
            .mutate_from(request, |r, now| Ok(r.accept_hint(now, coalesce)))
            .await?;
        if m.change.is_none() {
            tracing::debug!(cashout_request_id = %id, "a check is already scheduled for this hint");
            return Ok(());
        }
        let reference = m.request.reference_at(provider);
        let task = Task::ProviderEvent(ProviderEvent {
            provider,
            notification: ProviderNotification::Hint {
                reference: Some(reference),
                payout_id,
            },
        });
        self.enqueue(task, window).await
    }

    /// The request a hint is about, if the provider may hold a payout for it.
    async fn hinted_request(
        &self,
        provider: ProviderName,
        reference: Option<PayoutReference>,
        payout_id: Option<&ProviderPayoutId>,
    ) -> Result<Option<CashoutRequest>, AppError> {
        let id = match (reference, payout_id) {
            (Some(r), _) => Some(r.request_id()),
            (None, Some(pid)) => self.store.find_by_provider_reference(provider, pid).await?,
            (None, None) => None,
        };
        let Some(id) = id else { return Ok(None) };
        Ok(self
            .store
            .get_request(id)
            .await?
            .filter(|r| (r.provider() == provider && r.provider_may_hold()) || r.left_provider(provider)))
    }

    /// The `provider_event` task.
    #[tracing::instrument(skip(self, event), fields(provider = %event.provider, cashout_request_id))]
    pub async fn handle_provider_event(&self, event: ProviderEvent) -> Result<TaskOutcome, AppError> {
        let provider = event.provider;
        let payout_id = event.payout_id().cloned();
        let id = match (event.reference(), &payout_id) {
            (Some(r), _) => Some(r.request_id()),
            (None, Some(pid)) => self.store.find_by_provider_reference(provider, pid).await?,
            (None, None) => None,
        };
        let Some(id) = id else {
            tracing::warn!(payout_id = ?payout_id, "a notification about a payout we do not know");
            return Ok(TaskOutcome::Done);
        };
        tracing::Span::current().record("cashout_request_id", tracing::field::display(id));
        match event.notification {
            ProviderNotification::Status(p) if p.provider == provider => self.observe(id, Some(&p), None).await,
            ProviderNotification::Status(_) => {
                tracing::warn!("a notification whose payout belongs to another provider");
                Ok(TaskOutcome::Done)
            }
            ProviderNotification::Hint { .. } => self.poll_hinted(id, None, payout_id.as_ref(), Some(provider)).await,
        }
    }
}
