//! D24 notifications: form posts that only name a cashout, read as a hint to poll.

use cashout_core::ids::{PayoutReference, ProviderPayoutId};
use cashout_core::ports::{InboundNotification, ProviderError, ProviderErrorKind, ProviderNotification};

use super::D24Client;
use super::transformers::Notification;

impl D24Client {
    /// A notification is a hint to poll: it carries no status, and its `control` signature's
    /// message is undocumented, so nothing in it is trusted beyond the ids.
    pub fn parse_notification(
        &self,
        notification: &InboundNotification,
    ) -> Result<ProviderNotification, ProviderError> {
        let form: Notification = serde_urlencoded::from_bytes(&notification.body).map_err(|e| {
            self.error(
                ProviderErrorKind::Protocol,
                "the notification is not a form-urlencoded body",
            )
            .with_source(e)
        })?;
        let reference = form
            .external_id
            .as_deref()
            .and_then(|e| e.parse::<PayoutReference>().ok());
        let payout_id = form
            .cashout_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .and_then(|id| ProviderPayoutId::new(id).ok());
        if reference.is_none() && payout_id.is_none() {
            return Err(self.error(
                ProviderErrorKind::Protocol,
                "the notification names no cashout (no external_id or cashout_id)",
            ));
        }
        tracing::debug!(provider = %self.name, ?reference, payout_id = ?payout_id, date = ?form.date, has_control = form.control.is_some(), "notification: a hint to poll");
        Ok(ProviderNotification::Hint { reference, payout_id })
    }
}
