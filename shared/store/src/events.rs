//! What every backend does the same way for webhook delivery beyond endpoints: the merchant-wide
//! event listing (its position and cursor, its filters) and the claim of an attempt number
//! before a send.

use cashout_core::event::StatusEvent;
use cashout_core::ids::{CashoutRequestId, MerchantId};
use cashout_core::ports::{Cursor, EventQuery, StoreError};
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt};
use time::OffsetDateTime;

use crate::codec::{page_size, to_ns};

/// Where an event sorts in a merchant's listing (newest first): time, then request, then
/// sequence. Its cursor is `<20-digit ns>.<request id>.<10-digit sequence>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventPosition {
    pub occurred_at_ns: i64,
    pub request: CashoutRequestId,
    pub sequence: u64,
}

impl EventPosition {
    pub(crate) fn of(event: &StatusEvent) -> Result<Self, StoreError> {
        Ok(EventPosition {
            occurred_at_ns: to_ns(event.occurred_at)?,
            request: event.cashout_request_id,
            sequence: event.sequence,
        })
    }

    /// A sort key whose byte order is the listing order (fixed-width numbers; request ids are
    /// fixed-width too).
    pub(crate) fn sort_key(&self) -> String {
        format!("{:020}#{}#{:010}", self.occurred_at_ns, self.request, self.sequence)
    }

    pub(crate) fn cursor(&self) -> Cursor {
        Cursor(format!(
            "{:020}.{}.{:010}",
            self.occurred_at_ns, self.request, self.sequence
        ))
    }

    /// Reads a [`Self::cursor`]; every text of that form is a position.
    pub(crate) fn from_cursor(cursor: &Cursor) -> Result<Self, StoreError> {
        let malformed = || StoreError::invalid("malformed cursor");
        let mut parts = cursor.0.split('.');
        let (Some(ns), Some(request), Some(sequence), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let digits = |t: &str, n: usize| {
            (t.len() == n && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u128>().ok())
                .flatten()
        };
        let ns = digits(ns, 20).ok_or_else(malformed)?;
        let sequence = digits(sequence, 10).ok_or_else(malformed)?;
        let request: CashoutRequestId = request.parse().map_err(|_| malformed())?;
        if request.to_string() != cursor.0.split('.').nth(1).unwrap_or_default() {
            return Err(malformed());
        }
        Ok(EventPosition {
            occurred_at_ns: i64::try_from(ns).unwrap_or(i64::MAX),
            request,
            sequence: u64::try_from(sequence).unwrap_or(u64::MAX),
        })
    }
}

/// The page size of an event listing, and the position it continues after.
pub(crate) fn event_page(query: &EventQuery) -> Result<(usize, Option<EventPosition>), StoreError> {
    let limit = page_size(query.limit)?;
    let after = query.cursor.as_ref().map(EventPosition::from_cursor).transpose()?;
    Ok((limit, after))
}

/// Whether an event of `merchant` passes the query's filters (not its position).
pub(crate) fn event_matches(merchant: &MerchantId, query: &EventQuery, event: &StatusEvent) -> bool {
    &event.merchant_id == merchant
        && (query.types.is_empty() || query.types.contains(&event.event_type()))
        && query.cashout_request_id.is_none_or(|id| id == event.cashout_request_id)
        && query.since.is_none_or(|at| event.occurred_at >= at)
        && query.until.is_none_or(|at| event.occurred_at < at)
}

/// Whether an attempt number may be claimed over what is stored under it: nothing, or a claim
/// whose sender died (made before `stale_before`).
pub(crate) fn may_claim(stored: Option<&DeliveryAttempt>, stale_before: OffsetDateTime) -> bool {
    stored.is_none_or(|a| a.outcome == AttemptOutcome::Sending && a.attempted_at < stale_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursors_round_trip_and_refuse_other_forms() {
        let p = EventPosition {
            occurred_at_ns: 7,
            request: CashoutRequestId::from_uuid(uuid::Uuid::nil()),
            sequence: 3,
        };
        assert_eq!(EventPosition::from_cursor(&p.cursor()).unwrap(), p);
        for bad in [
            "",
            "7.x.3",
            "00000000000000000007.00000000-0000-0000-0000-000000000000.3",
        ] {
            assert!(EventPosition::from_cursor(&Cursor(bad.into())).is_err(), "{bad}");
        }
    }
}
