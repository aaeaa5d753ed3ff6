//! Typed identifiers. Each is parsed once at the edge; inside cashout an id is never a bare
//! `String` or `Uuid`, so a merchant id cannot be passed where an invoice id is expected.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a text was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Declares a string identifier with a length bound and a character rule.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, max = $max:literal, allowed = $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let allowed: fn(char) -> bool = $allowed;
                if value.is_empty() {
                    return Err(IdError { kind: $kind, reason: "it is empty" });
                }
                if value.len() > $max {
                    return Err(IdError { kind: $kind, reason: concat!("it is longer than ", $max, " characters") });
                }
                if !value.chars().all(allowed) {
                    return Err(IdError { kind: $kind, reason: "it contains characters that are not allowed" });
                }
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?).map_err(D::Error::custom)
            }
        }
    };
}

fn slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

fn reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '#')
}

fn visible_ascii(c: char) -> bool {
    c.is_ascii_graphic()
}

string_id!(
    /// A merchant (the platform that owes money to its sellers). Letters, digits, `_` and `-`.
    MerchantId, "merchant id", max = 64, allowed = slug_char
);
string_id!(
    /// The merchant's own id of an invoice inside a cashout request (`INV-1`).
    InvoiceId, "invoice id", max = 64, allowed = reference_char
);
string_id!(
    /// The provider's id of a payout (D24 `cashout_id`, Cascad `cpoi_…`).
    ProviderPayoutId, "provider payout id", max = 128, allowed = visible_ascii
);
string_id!(
    /// The client's `Idempotency-Key` header: printable ASCII, at most 255 characters.
    IdempotencyKey, "idempotency key", max = 255, allowed = visible_ascii
);

/// Declares a UUID-backed identifier, printed with a type prefix (`ep_…`) or as a plain UUID.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, prefix = $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID (use UUID v7 so ids sort by creation time).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $prefix.is_empty() {
                    write!(f, "{}", self.0.hyphenated())
                } else {
                    write!(f, "{}{}", $prefix, self.0.simple())
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s.strip_prefix($prefix).ok_or(IdError { kind: $kind, reason: concat!("it must start with `", $prefix, "`") })?;
                Uuid::try_parse(body)
                    .map(Self)
                    .map_err(|_| IdError { kind: $kind, reason: "it is not a valid id" })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(D::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A cashout request (a hyphenated UUID, as Osigu's). It is also the provider's
    /// `external_id` / `reference_id`, which is what makes payout creation exactly-once.
    CashoutRequestId, "cashout request id", prefix = ""
);
uuid_id!(
    /// A merchant's webhook endpoint (`ep_…`).
    EndpointId, "webhook endpoint id", prefix = "ep_"
);

uuid_id!(
    /// An operator's routing rule (`rr_…`).
    RoutingRuleId, "routing rule id", prefix = "rr_"
);

/// Our reference for a payout at a provider: the request id for the request's first provider
/// attempt, `<request id>.<n>` for its n-th (after a failover). It is the provider's
/// `external_id` / `reference_id`, so every provider attempt has its own: a lookup at the
/// second provider can never find the first one's payout, even when both run on one platform
/// (Onspot is a D24 white label), and each provider's ledger names one attempt per reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayoutReference {
    request: CashoutRequestId,
    attempt: u32,
}

impl PayoutReference {
    /// The most provider attempts a request can have (one per provider, at most).
    pub const MAX_ATTEMPT: u32 = 16;

    /// The reference of a request's first provider attempt: its id, as before failover existed.
    pub const fn first(request: CashoutRequestId) -> Self {
        Self { request, attempt: 1 }
    }

    /// The reference of attempt `attempt` (from 1) of a request.
    pub fn new(request: CashoutRequestId, attempt: u32) -> Result<Self, IdError> {
        if attempt == 0 || attempt > Self::MAX_ATTEMPT {
            return Err(IdError {
                kind: "payout reference",
                reason: "its attempt number is out of range",
            });
        }
        Ok(Self { request, attempt })
    }

    /// The request it pays.
    pub const fn request_id(&self) -> CashoutRequestId {
        self.request
    }

    /// Which provider attempt of the request it is (from 1).
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl From<CashoutRequestId> for PayoutReference {
    fn from(request: CashoutRequestId) -> Self {
        Self::first(request)
    }
}

impl fmt::Display for PayoutReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempt == 1 {
            write!(f, "{}", self.request)
        } else {
            write!(f, "{}.{}", self.request, self.attempt)
        }
    }
}

impl FromStr for PayoutReference {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| IdError {
            kind: "payout reference",
            reason,
        };
        let (id, attempt) = match s.split_once('.') {
            None => (s, 1),
            Some((id, n)) => {
                if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("its attempt number is not a number"));
                }
                let n: u32 = n.parse().map_err(|_| bad("its attempt number is out of range"))?;
                if n < 2 {
                    return Err(bad("the first attempt has no suffix"));
                }
                (id, n)
            }
        };
        Self::new(id.parse()?, attempt)
    }
}

impl Serialize for PayoutReference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PayoutReference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

impl ProviderPayoutId {
    /// Prefix of a payout id known only by our reference: the provider holds the payout (it said
    /// so, e.g. D24 511 "external_id already used") but its own id has not been seen yet.
    pub const BY_REFERENCE_PREFIX: &'static str = "ext:";

    /// The placeholder id of a payout known only by our reference (`ext:<request id>`), replaced
    /// by the provider's own id as soon as a status answer or a notification gives it.
    pub fn by_reference(reference: PayoutReference) -> Self {
        Self(format!("{}{reference}", Self::BY_REFERENCE_PREFIX))
    }

    /// Whether this is a [`Self::by_reference`] placeholder.
    pub fn is_by_reference(&self) -> bool {
        self.0.starts_with(Self::BY_REFERENCE_PREFIX)
    }
}

/// A status event: derived from its request and its sequence number
/// (`evt_<request uuid hex>_<sequence>`), so it is stable across retries and needs no index to
/// find its request. It is the Standard Webhooks `webhook-id` of every delivery of the event.
///
/// An *operational* event (`webhook_endpoint.test`, `webhook_endpoint.disabled`) belongs to no
/// request: its id is `evt_op_<uuid hex>` ([`EventId::operational`]), held here as sequence 0,
/// which no request event has (sequences start at 1), so a store asked for it finds no event and
/// no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    cashout_request_id: CashoutRequestId,
    sequence: u64,
}

impl EventId {
    /// The id of event number `sequence` (from 1) of a request.
    pub const fn new(cashout_request_id: CashoutRequestId, sequence: u64) -> Self {
        Self {
            cashout_request_id,
            sequence,
        }
    }

    /// The id of an operational event (`evt_op_<uuid hex>`): unique, valid as a `webhook-id`.
    pub const fn operational(uuid: Uuid) -> Self {
        Self {
            cashout_request_id: CashoutRequestId::from_uuid(uuid),
            sequence: 0,
        }
    }

    /// Whether this is an operational event's id (no request behind it).
    pub const fn is_operational(&self) -> bool {
        self.sequence == 0
    }

    /// The request the event belongs to (for an operational event, its uuid as a request id
    /// that names no request).
    pub const fn cashout_request_id(&self) -> CashoutRequestId {
        self.cashout_request_id
    }

    /// The event's per-request sequence number.
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_operational() {
            return write!(f, "evt_op_{}", self.cashout_request_id.as_uuid().simple());
        }
        write!(
            f,
            "evt_{}_{}",
            self.cashout_request_id.as_uuid().simple(),
            self.sequence
        )
    }
}

impl FromStr for EventId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| IdError {
            kind: "event id",
            reason,
        };
        let body = s.strip_prefix("evt_").ok_or(bad("it must start with `evt_`"))?;
        if let Some(uuid) = body.strip_prefix("op_") {
            let parsed = Uuid::try_parse(uuid).map_err(|_| bad("it is not a valid id"))?;
            let id = EventId::operational(parsed);
            // One spelling only (the simple hex form), so that the text is the key.
            return if id.to_string() == s {
                Ok(id)
            } else {
                Err(bad("it is not a valid id"))
            };
        }
        let (uuid, seq) = body.split_once('_').ok_or(bad("it is not a valid id"))?;
        let uuid = Uuid::try_parse(uuid).map_err(|_| bad("it is not a valid id"))?;
        let sequence: u64 = seq.parse().map_err(|_| bad("it is not a valid id"))?;
        if sequence == 0 || seq.starts_with('0') {
            return Err(bad("it is not a valid id"));
        }
        Ok(EventId::new(CashoutRequestId::from_uuid(uuid), sequence))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ids_refuse_empty_long_and_odd_values() {
        assert!(MerchantId::new("clinic-42").is_ok());
        assert!(MerchantId::new("").is_err());
        assert!(MerchantId::new("a b").is_err());
        assert!(MerchantId::new("x".repeat(65)).is_err());
        assert!(InvoiceId::new("INV-2024/001").is_ok());
        assert!(InvoiceId::new("INV 1").is_err());
        assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
        assert!(IdempotencyKey::new("k".repeat(256)).is_err());
        assert!(IdempotencyKey::new("tab\there").is_err());
    }

    #[test]
    fn prefixed_ids_round_trip() {
        let ep = EndpointId::from_uuid(Uuid::now_v7());
        let text = ep.to_string();
        assert!(text.starts_with("ep_"));
        assert_eq!(text.parse::<EndpointId>().unwrap(), ep);
        assert!("ep_nope".parse::<EndpointId>().is_err());
        assert!(ep.as_uuid().to_string().parse::<EndpointId>().is_err());
    }

    #[test]
    fn cashout_ids_are_hyphenated_uuids() {
        let id = CashoutRequestId::from_uuid(Uuid::now_v7());
        assert_eq!(id.to_string().len(), 36);
        assert_eq!(id.to_string().parse::<CashoutRequestId>().unwrap(), id);
    }

    #[test]
    fn payout_references_name_the_attempt_after_the_first() {
        let req = CashoutRequestId::from_uuid(Uuid::now_v7());
        let first = PayoutReference::first(req);
        assert_eq!(
            first.to_string(),
            req.to_string(),
            "the first attempt keeps the request id"
        );
        let third = PayoutReference::new(req, 3).unwrap();
        assert_eq!(third.to_string(), format!("{req}.3"));
        for r in [first, third] {
            assert_eq!(r.to_string().parse::<PayoutReference>().unwrap(), r);
        }
        for bad in [
            format!("{req}.1"),
            format!("{req}.0"),
            format!("{req}.03"),
            format!("{req}.x"),
            format!("{req}.17"),
            format!("{req}."),
            "nope.2".to_owned(),
        ] {
            assert!(bad.parse::<PayoutReference>().is_err(), "{bad}");
        }
        assert!(PayoutReference::new(req, 0).is_err());
    }

    #[test]
    fn event_ids_encode_request_and_sequence() {
        let req = CashoutRequestId::from_uuid(Uuid::now_v7());
        let evt = EventId::new(req, 12);
        let parsed: EventId = evt.to_string().parse().unwrap();
        assert_eq!(parsed.cashout_request_id(), req);
        assert_eq!(parsed.sequence(), 12);
        assert!(format!("evt_{}_0", req.as_uuid().simple()).parse::<EventId>().is_err());
        assert!(
            format!("evt_{}_012", req.as_uuid().simple())
                .parse::<EventId>()
                .is_err()
        );
        assert!("evt_x_1".parse::<EventId>().is_err());
        let op = EventId::operational(Uuid::now_v7());
        assert!(op.is_operational() && !evt.is_operational());
        assert!(op.to_string().starts_with("evt_op_"));
        assert_eq!(op.to_string().parse::<EventId>().unwrap(), op);
        assert!(
            format!("evt_op_{}", Uuid::now_v7().hyphenated())
                .parse::<EventId>()
                .is_err()
        );
    }
}

uuid_id!(
    /// A reconciliation run (`recon_…`).
    ReconciliationId, "reconciliation id", prefix = "recon_"
);
