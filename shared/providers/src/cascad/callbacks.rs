//! Callbacks: the `X-Signature` check, then the invoice (or a batch of them) they carry.

use cashout_core::ports::{InboundNotification, ProviderError, ProviderErrorKind, ProviderNotification};
use cashout_core::signing::verify_cascad_signature;

use super::transformers::{InvoiceDoc, InvoiceListDoc};
use super::{CASCAD, CascadClient, error};

impl CascadClient {
    /// Verifies `X-Signature` (base64 SHA-1 of secret ‖ body ‖ secret) and reads the invoice.
    pub fn parse_callback(&self, notification: &InboundNotification) -> Result<ProviderNotification, ProviderError> {
        let Some(signature) = notification.header("x-signature") else {
            return Err(error(ProviderErrorKind::Protocol, "the callback has no X-Signature").with_code("signature"));
        };
        if !verify_cascad_signature(&self.callback_secret, &notification.body, signature) {
            tracing::warn!(provider = %CASCAD, "callback with an invalid X-Signature refused");
            return Err(
                error(ProviderErrorKind::Protocol, "the callback's X-Signature does not match").with_code("signature"),
            );
        }
        parse_callback_body(&notification.body)
    }
}

/// Reads a verified callback body: one invoice, or a batch (then only a hint to poll is given
/// when it holds several: the port returns one notification).
fn parse_callback_body(body: &[u8]) -> Result<ProviderNotification, ProviderError> {
    if let Ok(doc) = serde_json::from_slice::<InvoiceDoc>(body) {
        return CascadClient::to_payout(&doc.data).map(ProviderNotification::Status);
    }
    let list = serde_json::from_slice::<InvoiceListDoc>(body)
        .map_err(|e| error(ProviderErrorKind::Protocol, "unreadable callback body").with_source(e))?;
    let mut payouts = list
        .data
        .iter()
        .map(CascadClient::to_payout)
        .collect::<Result<Vec<_>, _>>()?;
    match payouts.len() {
        0 => Err(error(ProviderErrorKind::Protocol, "an empty callback batch")),
        1 => Ok(ProviderNotification::Status(payouts.remove(0))),
        n => {
            tracing::warn!(provider = %CASCAD, count = n, "batched callback: only a hint for the first invoice; poll the rest");
            let first = payouts.remove(0);
            Ok(ProviderNotification::Hint {
                reference: first.reference,
                payout_id: Some(first.payout_id),
            })
        }
    }
}
