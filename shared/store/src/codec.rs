//! What every backend encodes the same way: times as Unix nanoseconds, JSON bodies, and the
//! opaque listing cursors (so a cursor means the same position whatever the backend).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

const REQUEST_CURSOR: &str = "r1|";
const ATTEMPT_CURSOR: &str = "a1|";

fn encode_cursor(prefix: &str, body: &str) -> Cursor {
    Cursor(URL_SAFE_NO_PAD.encode(format!("{prefix}{body}")))
}

fn decode_cursor<'a>(cursor: &Cursor, prefix: &str, buf: &'a mut String) -> Result<&'a str, StoreError> {
    let bad = || StoreError::invalid("malformed cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.0.as_bytes()).map_err(|_| bad())?;
    *buf = String::from_utf8(bytes).map_err(|_| bad())?;
    buf.strip_prefix(prefix).ok_or_else(bad)
}

/// The position after request `last` in a merchant listing (newest first).
pub(crate) fn request_cursor(last: CashoutRequestId) -> Cursor {
    encode_cursor(REQUEST_CURSOR, &last.to_string())
}

/// Reads a [`request_cursor`].
pub(crate) fn parse_request_cursor(cursor: &Cursor) -> Result<CashoutRequestId, StoreError> {
    let mut buf = String::new();
    let body = decode_cursor(cursor, REQUEST_CURSOR, &mut buf)?;
    body.parse().map_err(|_| StoreError::invalid("malformed cursor"))
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

    fn parse_sort_key(text: &str) -> Option<Self> {
        let mut parts = text.split('#');
        let ns: i64 = parts.next()?.parse().ok()?;
        let event_id: EventId = parts.next()?.parse().ok()?;
        let attempt: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || ns < 0 {
            return None;
        }
        Some(AttemptPosition {
            attempted_at_ns: ns,
            event_id,
            attempt,
        })
    }

    pub(crate) fn cursor(&self) -> Cursor {
        encode_cursor(ATTEMPT_CURSOR, &self.sort_key())
    }

    pub(crate) fn from_cursor(cursor: &Cursor) -> Result<Self, StoreError> {
        let mut buf = String::new();
        let body = decode_cursor(cursor, ATTEMPT_CURSOR, &mut buf)?;
        Self::parse_sort_key(body).ok_or_else(|| StoreError::invalid("malformed cursor"))
    }
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
        for bad in ["", "!!", "cjF8bm90LWEtdXVpZA", "YTF8MQ"] {
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
    }

    #[test]
    fn ttl_seconds_never_round_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_000_000_000_500).unwrap();
        assert_eq!(to_epoch_seconds_ceil(t), 1001);
        let whole = OffsetDateTime::from_unix_timestamp(1000).unwrap();
        assert_eq!(to_epoch_seconds_ceil(whole), 1000);
    }
}
