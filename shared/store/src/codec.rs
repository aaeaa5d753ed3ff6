//! What every backend encodes the same way: times as Unix nanoseconds, JSON bodies, and the
//! opaque listing cursors (so a cursor means the same position whatever the backend).

use cashout_core::ids::{CashoutRequestId, EventId};
use cashout_core::ports::{Cursor, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// Unix nanoseconds (exact, and ordered like the times; fits in `i64` until 2262).
pub(crate) fn to_ns(at: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| StoreError::invalid(format!("time {at} is out of the storable range")))
}

/// Back from Unix nanoseconds.
pub(crate) fn from_ns(ns: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .map_err(|e| StoreError::corrupt(format!("stored time {ns} is out of range"), e))
}

/// Unix seconds rounded up (the DynamoDB TTL attribute: never deleted before it expires).
pub(crate) fn to_epoch_seconds_ceil(at: OffsetDateTime) -> i64 {
    let secs = at.unix_timestamp();
    if at.nanosecond() > 0 { secs + 1 } else { secs }
}

/// A domain value as its stored JSON.
pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid {
        message: format!("{what} cannot be serialised"),
        source: Some(e.into()),
    })
}

/// A stored JSON back to its domain value; unreadable data is [`StoreError::Corrupt`].
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("stored {what}"), e))
}

// Listing cursors are keyset positions written in the clear, so that the API can document their
// exact form (a pattern) and accept every text of that form: the position after request
// `<uuid>`, or after attempt `<20-digit ns>.<event id>.<10-digit attempt>`. A well-formed
// cursor that names nothing still names a position; only malformed text is refused.

fn malformed() -> StoreError {
    StoreError::invalid("malformed cursor")
}

/// The position after request `last` in a merchant listing (newest first): its id.
pub(crate) fn request_cursor(last: CashoutRequestId) -> Cursor {
    Cursor(last.to_string())
}

/// Reads a [`request_cursor`]: a lowercase hyphenated UUID, exactly as cashout writes ids.
pub(crate) fn parse_request_cursor(cursor: &Cursor) -> Result<CashoutRequestId, StoreError> {
    let id: CashoutRequestId = cursor.0.parse().map_err(|_| malformed())?;
    if id.to_string() == cursor.0 {
        Ok(id)
    } else {
        Err(malformed())
    }
}

/// `n` ASCII digits exactly, as a number (at most 20 digits, so `u128` holds it).
fn fixed_digits(text: &str, n: usize) -> Option<u128> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Where a delivery attempt sorts in its endpoint's listing: time, then event, then number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptPosition {
    pub attempted_at_ns: i64,
    pub event_id: EventId,
    pub attempt: u32,
}

impl AttemptPosition {
    /// A sort key whose byte order is the listing order (fixed-width numbers).
    pub(crate) fn sort_key(&self) -> String {
        format!("{:020}#{}#{:010}", self.attempted_at_ns, self.event_id, self.attempt)
    }

    pub(crate) fn cursor(&self) -> Cursor {
        Cursor(format!(
            "{:020}.{}.{:010}",
            self.attempted_at_ns, self.event_id, self.attempt
        ))
    }

    /// Reads a [`Self::cursor`]. Every text of the documented form is a position: a time or an
    /// attempt number past the largest one stored saturates (it sorts after everything).
    pub(crate) fn from_cursor(cursor: &Cursor) -> Result<Self, StoreError> {
        let mut parts = cursor.0.split('.');
        let (Some(ns), Some(event), Some(attempt), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let ns = fixed_digits(ns, 20).ok_or_else(malformed)?;
        let attempt = fixed_digits(attempt, 10).ok_or_else(malformed)?;
        let sequence = event.rsplit('_').next().unwrap_or_default();
        let event_id: EventId = event.parse().map_err(|_| malformed())?;
        if event_id.to_string() != event || (!event_id.is_operational() && sequence.len() > 19) {
            return Err(malformed());
        }
        Ok(AttemptPosition {
            attempted_at_ns: i64::try_from(ns).unwrap_or(i64::MAX),
            event_id,
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        })
    }
}

/// Where a request sorts in a listing of changed requests on the embedded and in-memory stores:
/// the time of its first status event in the range (Unix ns), then its id. Written
/// `<20-digit ns>.<request id>`.
pub(crate) fn changed_cursor(at_ns: i64, id: CashoutRequestId) -> Cursor {
    Cursor(format!("{at_ns:020}.{id}"))
}

/// Reads a [`changed_cursor`]; a time past the largest storable saturates.
pub(crate) fn parse_changed_cursor(cursor: &Cursor) -> Result<(i64, CashoutRequestId), StoreError> {
    let (ns, id) = cursor.0.split_once('.').ok_or_else(malformed)?;
    let ns = fixed_digits(ns, 20).ok_or_else(malformed)?;
    let id = parse_request_cursor(&Cursor(id.to_owned()))?;
    Ok((i64::try_from(ns).unwrap_or(i64::MAX), id))
}

/// Where a request sorts in an operator work list (oldest first): its `request_date` (Unix ns),
/// then its id. Written `<20-digit ns>.<request id>`, on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WorkPosition {
    pub request_date_ns: i64,
    pub id: CashoutRequestId,
}

impl WorkPosition {
    pub(crate) fn of(request: &cashout_core::cashout::CashoutRequest) -> Result<Self, StoreError> {
        Ok(WorkPosition {
            request_date_ns: to_ns(request.request_date())?,
            id: request.id(),
        })
    }

    /// A sort key whose byte order is the list order (the DynamoDB work indexes).
    pub(crate) fn sort_key(&self) -> String {
        format!("{:020}#{}", self.request_date_ns, self.id)
    }

    pub(crate) fn cursor(&self) -> Cursor {
        changed_cursor(self.request_date_ns, self.id)
    }

    /// Reads a [`Self::sort_key`] back (an index entry's).
    pub(crate) fn from_sort_key(key: &str) -> Result<Self, StoreError> {
        let (ns, id) = key
            .split_once('#')
            .ok_or_else(|| StoreError::corrupt("a work-list sort key", key.to_owned()))?;
        Self::from_cursor(&Cursor(format!("{ns}.{id}")))
            .map_err(|e| StoreError::corrupt(format!("the work-list sort key {key}"), e))
    }

    /// Reads a [`Self::cursor`]; a time past the largest storable saturates.
    pub(crate) fn from_cursor(cursor: &Cursor) -> Result<Self, StoreError> {
        let (request_date_ns, id) = parse_changed_cursor(cursor)?;
        Ok(WorkPosition { request_date_ns, id })
    }
}

/// Where a given-up delivery attempt sorts in the dead-letter listing (newest first): time,
/// event, endpoint, attempt number. Written `<20-digit ns>.<event id>.<endpoint id>.<10-digit
/// attempt>`, on every backend.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DeadLetterPosition {
    pub attempted_at_ns: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub attempt: u32,
}

impl DeadLetterPosition {
    pub(crate) fn of(attempt: &cashout_core::webhook::DeliveryAttempt) -> Result<Self, StoreError> {
        Ok(DeadLetterPosition {
            attempted_at_ns: to_ns(attempt.attempted_at)?,
            event_id: attempt.event_id.to_string(),
            endpoint_id: attempt.endpoint_id.to_string(),
            attempt: attempt.attempt,
        })
    }

    /// A sort key whose byte order is the order of the position's parts (`#` sorts before every
    /// character of an id, so a shorter id sorts first, as it does compared alone).
    pub(crate) fn sort_key(&self) -> String {
        format!(
            "{:020}#{}#{}#{:010}",
            self.attempted_at_ns, self.event_id, self.endpoint_id, self.attempt
        )
    }

    pub(crate) fn cursor(&self) -> Cursor {
        Cursor(format!(
            "{:020}.{}.{}.{:010}",
            self.attempted_at_ns, self.event_id, self.endpoint_id, self.attempt
        ))
    }

    /// Reads a [`Self::cursor`]: every part must be of its form.
    pub(crate) fn from_cursor(cursor: &Cursor) -> Result<Self, StoreError> {
        let mut parts = cursor.0.split('.');
        let (Some(ns), Some(event), Some(endpoint), Some(attempt), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let ns = fixed_digits(ns, 20).ok_or_else(malformed)?;
        let attempt = fixed_digits(attempt, 10).ok_or_else(malformed)?;
        let event_id: EventId = event.parse().map_err(|_| malformed())?;
        let endpoint_id: cashout_core::ids::EndpointId = endpoint.parse().map_err(|_| malformed())?;
        if event_id.to_string() != event || endpoint_id.to_string() != endpoint {
            return Err(malformed());
        }
        Ok(DeadLetterPosition {
            attempted_at_ns: i64::try_from(ns).unwrap_or(i64::MAX),
            event_id: event.to_owned(),
            endpoint_id: endpoint.to_owned(),
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        })
    }
}

/// Page sizes of a listing of changed requests: 1 to 1,000.
pub(crate) fn changed_page_size(limit: u32) -> Result<usize, StoreError> {
    if (1..=1000).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(StoreError::invalid(format!("page size {limit} is outside 1..=1000")))
    }
}

/// The position after a difference in its run's listing: its key
/// (`{provider}|{reference}|{kind}`), which must name a provider and a kind.
pub(crate) fn difference_cursor(key: &str) -> Cursor {
    Cursor(key.to_owned())
}

/// Reads a [`difference_cursor`]: the key, once checked to have the form of one.
pub(crate) fn parse_difference_cursor(cursor: &Cursor) -> Result<String, StoreError> {
    let (provider, rest) = cursor.0.split_once('|').ok_or_else(malformed)?;
    let (reference, kind) = rest.rsplit_once('|').ok_or_else(malformed)?;
    let provider_ok =
        serde_json::from_value::<cashout_core::provider::ProviderName>(serde_json::Value::String(provider.to_owned()))
            .is_ok_and(|p| p.to_string() == provider);
    let kind_ok =
        serde_json::from_value::<cashout_core::reconcile::DifferenceKind>(serde_json::Value::String(kind.to_owned()))
            .is_ok();
    if !provider_ok || !kind_ok || reference.is_empty() {
        return Err(malformed());
    }
    Ok(cursor.0.clone())
}

/// The most differences recorded in one call.
pub(crate) const MAX_DIFFERENCES_PER_CALL: usize = 25;

/// The differences of one `put_differences` call, by key (the last of one key wins), once their
/// number is within [`MAX_DIFFERENCES_PER_CALL`].
pub(crate) fn differences_by_key(
    differences: &[cashout_core::reconcile::Difference],
) -> Result<std::collections::BTreeMap<String, &cashout_core::reconcile::Difference>, StoreError> {
    if differences.len() > MAX_DIFFERENCES_PER_CALL {
        return Err(StoreError::invalid(format!(
            "{} differences in one call; at most {MAX_DIFFERENCES_PER_CALL}",
            differences.len()
        )));
    }
    Ok(differences.iter().map(|d| (d.key(), d)).collect())
}

/// Page sizes the ports allow: 1 to 100.
pub(crate) fn page_size(limit: u32) -> Result<usize, StoreError> {
    if (1..=100).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(StoreError::invalid(format!("page size {limit} is outside 1..=100")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(parse_request_cursor(&request_cursor(id)).unwrap(), id);
        assert_eq!(request_cursor(id).0, id.to_string());
        let upper = id.to_string().to_uppercase();
        let simple = id.as_uuid().simple().to_string();
        for bad in [
            "",
            "!!",
            "cjF8bm90LWEtdXVpZA",
            "YTF8MQ",
            upper.as_str(),
            simple.as_str(),
        ] {
            assert!(matches!(
                parse_request_cursor(&Cursor(bad.into())),
                Err(StoreError::Invalid { .. })
            ));
        }
        let pos = AttemptPosition {
            attempted_at_ns: 1_700_000_000_000_000_000,
            event_id: EventId::new(id, 3),
            attempt: 2,
        };
        assert_eq!(AttemptPosition::from_cursor(&pos.cursor()).unwrap(), pos);
        assert!(AttemptPosition::from_cursor(&request_cursor(id)).is_err());
        // every text of the documented form is a position; past the largest, it saturates
        let event = EventId::new(id, 7);
        let far = AttemptPosition::from_cursor(&Cursor(format!("99999999999999999999.{event}.9999999999"))).unwrap();
        assert_eq!((far.attempted_at_ns, far.attempt), (i64::MAX, u32::MAX));
        for bad in [
            format!("1.{event}.0000000001"),
            format!("00000000000000000001.{event}.1"),
            format!("00000000000000000001.{}.0000000001", event.to_string().to_uppercase()),
            format!("00000000000000000001.evt_{}_01.0000000001", id.as_uuid().simple()),
            format!("00000000000000000001.{event}.0000000001.1"),
        ] {
            assert!(AttemptPosition::from_cursor(&Cursor(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn work_and_dead_letter_positions_round_trip_and_sort_keys_keep_their_order() {
        let id = |n: u128| CashoutRequestId::from_uuid(uuid::Uuid::from_u128(n));
        let work = |ns, n| WorkPosition {
            request_date_ns: ns,
            id: id(n),
        };
        let positions = [work(5, 9), work(10, 1), work(10, 2), work(1_700_000_000_000_000_000, 0)];
        for w in positions.windows(2) {
            assert!(w[0] < w[1] && w[0].sort_key() < w[1].sort_key(), "{w:?}");
        }
        for p in positions {
            assert_eq!(WorkPosition::from_cursor(&p.cursor()).unwrap(), p);
            assert_eq!(WorkPosition::from_sort_key(&p.sort_key()).unwrap(), p);
        }
        let endpoint = |n: u128| cashout_core::ids::EndpointId::from_uuid(uuid::Uuid::from_u128(n)).to_string();
        let dead = |ns, seq, ep, attempt| DeadLetterPosition {
            attempted_at_ns: ns,
            event_id: EventId::new(id(3), seq).to_string(),
            endpoint_id: endpoint(ep),
            attempt,
        };
        // Event 2 sorts after event 10 as text: every backend orders by the text.
        let positions = [
            dead(7, 10, 1, 1),
            dead(7, 2, 1, 1),
            dead(7, 2, 2, 1),
            dead(7, 2, 2, 3),
            dead(8, 1, 1, 1),
        ];
        for w in positions.windows(2) {
            assert!(w[0] < w[1] && w[0].sort_key() < w[1].sort_key(), "{w:?}");
        }
        for p in positions {
            assert_eq!(DeadLetterPosition::from_cursor(&p.cursor()).unwrap(), p);
        }
        for bad in [
            "",
            "00000000000000000007.x.y.0000000001",
            &format!("7.{}.{}.0000000001", EventId::new(id(3), 1), endpoint(1)),
            &format!("00000000000000000007.{}.{}.1", EventId::new(id(3), 1), endpoint(1)),
            &format!("00000000000000000007.{}.{}.0000000001", EventId::new(id(3), 1), id(1)),
        ] {
            assert!(
                DeadLetterPosition::from_cursor(&Cursor(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ttl_seconds_never_round_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_000_000_000_500).unwrap();
        assert_eq!(to_epoch_seconds_ceil(t), 1001);
        let whole = OffsetDateTime::from_unix_timestamp(1000).unwrap();
        assert_eq!(to_epoch_seconds_ceil(whole), 1000);
    }
}
