//! Invoice claims: one invoice (a merchant's invoice id from one payer) is advanced by at most
//! one request at a time.
//!
//! Every invoice of a new request is claimed in the store together with the request. A claim
//! stays with its request until that request lets the invoice go: it ended CANCELLED or
//! REJECTED with nothing for a person to look at, or it excluded the invoice. Both are final, so
//! a claim is released lazily: the next request that wants the invoice reads the holder, and
//! takes the claim over only if the holder still lets it go (a conditional write on the holder,
//! so that two requests racing for a released invoice cannot both win).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::{CashoutRequestId, InvoiceId, MerchantId};

/// How long a claim whose request does not exist yet belongs to a create in progress. A
/// create that crashed between claiming and writing its request (possible only where the
/// claims do not fit in one transaction) leaves claims that lapse after this.
pub const ORPHAN_CLAIM_EXPIRY: time::Duration = time::Duration::minutes(15);

/// What identifies an invoice for uniqueness: the merchant, the payer's tax id and the
/// merchant's invoice id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InvoiceKey {
    /// The merchant advancing it.
    pub merchant_id: MerchantId,
    /// Who owes it.
    pub payer_tax_id: String,
    /// The merchant's invoice id.
    pub invoice_id: InvoiceId,
}

impl InvoiceKey {
    /// A fixed-length key for storage (hex SHA-256 of the length-prefixed parts): any text in
    /// the parts, and no separator that a part could contain.
    pub fn storage_key(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.merchant_id.as_str(),
            self.payer_tax_id.as_str(),
            self.invoice_id.as_str(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }
}

/// One invoice held by one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceClaim {
    /// The invoice.
    pub key: InvoiceKey,
    /// The request that holds it.
    pub holder: CashoutRequestId,
    /// When the holder claimed it.
    pub claimed_at: OffsetDateTime,
}

impl InvoiceClaim {
    /// Whether a claim whose holder does not exist is a crashed create's leftover (free) rather
    /// than a create in progress.
    pub fn is_orphan_at(&self, now: OffsetDateTime) -> bool {
        self.claimed_at
            .checked_add(ORPHAN_CLAIM_EXPIRY)
            .is_some_and(|lapse| lapse <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(merchant: &str, tax: &str, invoice: &str) -> InvoiceKey {
        InvoiceKey {
            merchant_id: MerchantId::new(merchant).unwrap(),
            payer_tax_id: tax.into(),
            invoice_id: InvoiceId::new(invoice).unwrap(),
        }
    }

    #[test]
    fn storage_keys_cannot_be_confused_by_moving_text_between_parts() {
        assert_ne!(key("m", "12", "3").storage_key(), key("m", "1", "23").storage_key());
        assert_ne!(key("m", "1", "1").storage_key(), key("n", "1", "1").storage_key());
        assert_eq!(key("m", "1", "2").storage_key(), key("m", "1", "2").storage_key());
        assert_eq!(key("m", "1", "2").storage_key().len(), 64);
    }
}
