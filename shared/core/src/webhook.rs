//! Merchant webhook endpoints, delivery attempts, the retry schedule, and the destination
//! policy that keeps deliveries away from private networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::EventType;
use crate::ids::{EndpointId, EventId, MerchantId};
use crate::signing::WebhookSecret;

/// A merchant's URL that receives signed events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// `ep_…`.
    pub id: EndpointId,
    /// Its owner.
    pub merchant_id: MerchantId,
    /// Where events are posted (checked by [`check_endpoint_url`]).
    pub url: String,
    /// The event types it receives; every type when empty.
    pub event_types: Vec<EventType>,
    /// Signing secrets, newest first. During a rotation's grace period the old one is kept with
    /// an expiry, and every delivery is signed with both.
    pub secrets: Vec<EndpointSecret>,
    /// Set when the endpoint no longer receives events.
    pub disabled: Option<DisabledReason>,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Written version: 1 when created, +1 on every write (rotation, disabling), so that a write
    /// can be conditional on the version it read. Endpoints stored before versions read as 0.
    #[serde(default)]
    pub version: u64,
    /// The merchant's note (at most [`MAX_DESCRIPTION`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Headers sent with every delivery (checked by [`CustomHeaders::new`]).
    #[serde(default, skip_serializing_if = "CustomHeaders::is_empty")]
    pub headers: CustomHeaders,
    /// At most this many deliveries per second to it (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Events of one request are delivered in sequence: the next waits until the previous one
    /// was delivered or given up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
    /// The first failure since its last success (`None` while healthy). Written only when it
    /// changes (the first failure, the first success after failures), not at every delivery.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failing_since: Option<OffsetDateTime>,
}

/// The longest endpoint description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// The most custom headers an endpoint may carry.
pub const MAX_CUSTOM_HEADERS: usize = 10;

/// The longest custom header name.
pub const MAX_HEADER_NAME: usize = 64;

/// The longest custom header value.
pub const MAX_HEADER_VALUE: usize = 256;

/// Deliveries per second allowed to one endpoint: 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct RateLimit(u32);

impl RateLimit {
    /// The highest limit.
    pub const MAX: u32 = 1000;

    /// A limit of `per_second` deliveries per second.
    pub fn new(per_second: u32) -> Result<Self, HeaderError> {
        if (1..=Self::MAX).contains(&per_second) {
            Ok(RateLimit(per_second))
        } else {
            Err(HeaderError::RateLimit)
        }
    }

    /// Deliveries per second.
    pub const fn per_second(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for RateLimit {
    type Error = HeaderError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        RateLimit::new(value)
    }
}

impl From<RateLimit> for u32 {
    fn from(value: RateLimit) -> Self {
        value.0
    }
}

/// The headers a merchant adds to its deliveries: at most [`MAX_CUSTOM_HEADERS`], names RFC 7230
/// tokens (stored lower-case, unique) that do not clash with the signature or the transport,
/// values printable ASCII.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "std::collections::BTreeMap<String, String>",
    into = "std::collections::BTreeMap<String, String>"
)]
pub struct CustomHeaders(std::collections::BTreeMap<String, String>);

/// Why custom headers (or a rate limit) are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// More than [`MAX_CUSTOM_HEADERS`].
    #[error("at most {MAX_CUSTOM_HEADERS} custom headers")]
    TooMany,
    /// Not a token, or too long.
    #[error("`{0}` is not a header name of 1 to {MAX_HEADER_NAME} token characters")]
    Name(String),
    /// Set by the signature or the transport.
    #[error("the header `{0}` is reserved (signing or transport)")]
    Reserved(String),
    /// Twice, in any case.
    #[error("the header `{0}` is given twice")]
    Duplicate(String),
    /// Not printable ASCII, or too long.
    #[error("the value of `{0}` must be at most {MAX_HEADER_VALUE} printable ASCII characters")]
    Value(String),
    /// Out of 1..=1000.
    #[error("rate_limit must be 1 to 1000 deliveries per second")]
    RateLimit,
}

/// Header names a merchant may not set (compared lower-case): the Standard Webhooks headers
/// (and every `webhook-` name, kept for the standard), what the HTTP client sets for the body
/// and the connection, hop-by-hop headers, and `user-agent` (ours identifies the sender).
/// `authorization` is allowed: receivers behind a gateway commonly want a static credential.
const RESERVED_HEADERS: [&str; 13] = [
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "user-agent",
    "expect",
    "cookie",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl CustomHeaders {
    /// Checks the pairs; names are kept lower-case.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, HeaderError> {
        let mut map = std::collections::BTreeMap::new();
        for (name, value) in pairs {
            if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.chars().all(is_token_char) {
                return Err(HeaderError::Name(name.chars().take(MAX_HEADER_NAME).collect()));
            }
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("webhook-")
                || lower.starts_with("proxy-")
                || RESERVED_HEADERS.contains(&lower.as_str())
            {
                return Err(HeaderError::Reserved(lower));
            }
            if value.len() > MAX_HEADER_VALUE || !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
                return Err(HeaderError::Value(lower));
            }
            if map.insert(lower.clone(), value).is_some() {
                return Err(HeaderError::Duplicate(lower));
            }
            if map.len() > MAX_CUSTOM_HEADERS {
                return Err(HeaderError::TooMany);
            }
        }
        Ok(CustomHeaders(map))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The headers, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl TryFrom<std::collections::BTreeMap<String, String>> for CustomHeaders {
    type Error = HeaderError;
    fn try_from(value: std::collections::BTreeMap<String, String>) -> Result<Self, Self::Error> {
        CustomHeaders::new(value)
    }
}

impl From<CustomHeaders> for std::collections::BTreeMap<String, String> {
    fn from(value: CustomHeaders) -> Self {
        value.0
    }
}

/// What [`crate::ports::WebhookStore::create_endpoint`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum EndpointCreated {
    /// The endpoint is stored.
    Created,
    /// The merchant already has the most endpoints allowed: nothing was written.
    LimitReached,
}

/// One signing secret of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecret {
    /// The `whsec_…` secret.
    pub secret: WebhookSecret,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a rotated-out secret stops signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Why an endpoint stopped receiving events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// It answered 410 Gone.
    Gone,
    /// The merchant disabled it.
    Manual,
    /// Its deliveries failed without a success for the configured window.
    Failing,
}

impl DisabledReason {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Gone => "gone",
            DisabledReason::Manual => "manual",
            DisabledReason::Failing => "failing",
        }
    }
}

impl WebhookEndpoint {
    /// How long a rotated-out secret keeps signing.
    pub const ROTATION_GRACE: time::Duration = time::Duration::hours(24);

    /// Whether the endpoint receives events of this type now.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.disabled.is_none() && (self.event_types.is_empty() || self.event_types.contains(&event_type))
    }

    /// The secrets that sign deliveries at `now` (newest first).
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&WebhookSecret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| &s.secret)
            .collect()
    }

    /// The longest grace a rotation may give the old secret.
    pub const MAX_ROTATION_GRACE: time::Duration = time::Duration::days(1);

    /// A new secret becomes the primary; the previous primary signs for
    /// [`Self::ROTATION_GRACE`] more (at most), and every other secret is dropped: at most two
    /// live secrets, ever.
    pub fn rotate(&self, secret: WebhookSecret, now: OffsetDateTime) -> WebhookEndpoint {
        self.rotate_with_grace(secret, now, Self::ROTATION_GRACE)
    }

    /// [`Self::rotate`] with another grace for the old primary; zero (or less) drops it at once.
    pub fn rotate_with_grace(
        &self,
        secret: WebhookSecret,
        now: OffsetDateTime,
        grace: time::Duration,
    ) -> WebhookEndpoint {
        let grace_end = now + grace.min(Self::MAX_ROTATION_GRACE);
        let mut secrets = vec![EndpointSecret {
            secret,
            created_at: now,
            expires_at: None,
        }];
        if grace_end > now {
            // Only the newest live secret stays (a rotation during a grace period drops the
            // older one), and never longer than it was already promised.
            secrets.extend(
                self.secrets
                    .iter()
                    .find(|s| s.expires_at.is_none_or(|at| at > now))
                    .map(|s| EndpointSecret {
                        expires_at: Some(s.expires_at.map_or(grace_end, |at| at.min(grace_end))),
                        ..s.clone()
                    }),
            );
        }
        WebhookEndpoint {
            secrets,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The endpoint disabled for `reason`, at the next version.
    pub fn disable(&self, reason: DisabledReason) -> WebhookEndpoint {
        WebhookEndpoint {
            disabled: Some(reason),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Whether an event of this request sequence must wait for the ones before it.
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }
}

crate::named::named_enum! {
    /// What became of one delivery attempt.
    pub enum AttemptOutcome / UnknownAttemptOutcome(32) {
        /// 2xx.
        Delivered = "delivered",
        /// Failed; another attempt is scheduled.
        Failed = "failed",
        /// Failed and the schedule is spent: dead-lettered (replayable).
        Exhausted = "exhausted",
        /// 410: the endpoint was disabled.
        Gone = "gone",
        /// Not attempted: the endpoint is disabled or no longer subscribed.
        Skipped = "skipped",
        /// Being sent now: the attempt number is claimed (see
        /// [`crate::ports::WebhookStore::claim_attempt`]) and the answer not yet recorded.
        Sending = "sending",
    }
}

/// A text that is not an attempt outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a delivery outcome")]
pub struct UnknownAttemptOutcome(pub String);

/// One attempt to deliver one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The event (also the `webhook-id`).
    pub event_id: EventId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// The endpoint's merchant.
    pub merchant_id: MerchantId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The HTTP status, if an answer came.
    pub status_code: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// The start of the answer body (at most 1 KiB) or the transport error.
    pub response_excerpt: Option<String>,
    /// When the next attempt is due, if one is scheduled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// The largest response excerpt kept with an attempt, in bytes.
pub const MAX_RESPONSE_EXCERPT: usize = 1024;

/// Cuts a response body to [`MAX_RESPONSE_EXCERPT`] bytes on a character boundary.
pub fn excerpt(body: &str) -> String {
    let mut end = body.len().min(MAX_RESPONSE_EXCERPT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// When to try again after a failed attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
/// 10 h (the Standard Webhooks / Svix schedule), each delay but the first stretched by a random
/// jitter of up to +20 %, and never sooner than the receiver's `Retry-After` — which is honoured
/// up to the schedule's longest delay, so that no receiver can push its retries out of reach (or
/// overflow a date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        RetrySchedule {
            delays: vec![
                s(0),
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(10 * 3600),
            ],
        }
    }
}

impl RetrySchedule {
    /// A schedule with other delays (tests, a compressed local run).
    pub fn new(delays: Vec<Duration>) -> Self {
        RetrySchedule { delays }
    }

    /// Total attempts: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The delay before attempt `failed_attempt + 1`, or `None` when the schedule is spent.
    /// `jitter_permille` (0..=1000, from the caller's randomness) stretches the delay by up to
    /// 20 %.
    pub fn next_delay(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
        jitter_permille: u32,
    ) -> Option<Duration> {
        let index = usize::try_from(failed_attempt.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        let jitter = base * jitter_permille.min(1000) / 5000;
        let asked = retry_after.unwrap_or_default().min(self.longest());
        Some((base + jitter).max(asked))
    }

    /// The longest delay of the schedule: the most a `Retry-After` can add.
    pub fn longest(&self) -> Duration {
        self.delays.iter().copied().max().unwrap_or_default()
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointUrlError {
    /// Not a URL.
    #[error("not a valid URL")]
    Invalid,
    /// Only `https` (and `http` where private destinations are allowed).
    #[error("the URL scheme must be https")]
    Scheme,
    /// User names and passwords do not belong in endpoint URLs.
    #[error("the URL must not contain credentials")]
    Credentials,
    /// Longer than 2048 characters.
    #[error("the URL is too long")]
    TooLong,
    /// A literal private, loopback or link-local address.
    #[error("the URL points to a private, loopback or link-local address")]
    PrivateAddress,
}

/// Checks an endpoint URL before it is stored. Host names are checked again after DNS resolution
/// at every delivery (see [`is_public_ip`]); here only literal addresses can be judged.
pub fn check_endpoint_url(text: &str, allow_private: bool) -> Result<url::Url, EndpointUrlError> {
    if text.len() > 2048 {
        return Err(EndpointUrlError::TooLong);
    }
    if !is_uri_text(text) {
        return Err(EndpointUrlError::Invalid);
    }
    let url = url::Url::parse(text).map_err(|_| EndpointUrlError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(EndpointUrlError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointUrlError::Credentials);
    }
    let literal = match url.host() {
        None => return Err(EndpointUrlError::Invalid),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            if !allow_private && (d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost"))
            {
                return Err(EndpointUrlError::PrivateAddress);
            }
            None
        }
    };
    if literal.is_some_and(|ip| !allow_private && !is_public_ip(ip)) {
        return Err(EndpointUrlError::PrivateAddress);
    }
    Ok(url)
}

/// Whether `text` is written as an RFC 3986 URI: ASCII, only the characters the RFC allows,
/// `%` followed by two hex digits, at most one `#`, and `[` `]` only around an IPv6 host. The
/// `url` crate alone is more lenient (it percent-encodes spaces and maps Unicode hosts), and the
/// API documents the `uri` format.
fn is_uri_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b) => {}
            _ => return false,
        }
        i += 1;
    }
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let path_start = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    text.matches('#').count() <= 1 && !after_scheme[path_start..].contains(['[', ']'])
}

/// Whether a resolved address may receive webhooks: not private, loopback, link-local (cloud
/// metadata at 169.254.169.254 included), shared (CGNAT), unspecified, broadcast, multicast,
/// documentation or benchmarking space, and the same for IPv4 inside IPv6 (mapped, compatible,
/// NAT64).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0])) // discard-only 100::/64
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240) // reserved
}

/// IPv4 carried inside IPv6: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = ip.segments();
    let tail = |a: u16, b: u16| {
        let ([a1, a2], [b1, b2]) = (a.to_be_bytes(), b.to_be_bytes());
        Ipv4Addr::new(a1, a2, b1, b2)
    };
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(tail(seg[6], seg[7]));
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return Some(tail(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return Some(tail(seg[1], seg[2]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_destinations_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public_ip(ip(bad)), "{bad} must be refused");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public_ip(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn endpoint_urls_are_checked() {
        assert!(check_endpoint_url("https://hooks.example.com/cashout", false).is_ok());
        assert_eq!(
            check_endpoint_url("http://hooks.example.com/", false),
            Err(EndpointUrlError::Scheme)
        );
        assert_eq!(
            check_endpoint_url("ftp://x.example/", true),
            Err(EndpointUrlError::Scheme)
        );
        assert_eq!(
            check_endpoint_url("https://u:p@x.example/", false),
            Err(EndpointUrlError::Credentials)
        );
        assert_eq!(check_endpoint_url("not a url", false), Err(EndpointUrlError::Invalid));
        // written as an RFC 3986 URI, not just something the `url` crate can repair
        for not_uri in [
            "https://\u{cf}/",
            "https://hooks.example.com/a b",
            "https://hooks.example.com/%zz",
            "https://hooks.example.com/#a#b",
            "https://hooks.example.com/[x]",
            "https://hooks.example.com/\u{e9}t\u{e9}",
        ] {
            assert_eq!(
                check_endpoint_url(not_uri, false),
                Err(EndpointUrlError::Invalid),
                "{not_uri}"
            );
        }
        assert!(check_endpoint_url("https://[2606:4700::1]:8443/a?b=c#d", false).is_ok());
        assert!(check_endpoint_url("https://hooks.example.com/a%20b", false).is_ok());
        // Literal private addresses in any spelling the URL parser understands.
        for bad in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/",
            "https://api.localhost/",
        ] {
            assert_eq!(
                check_endpoint_url(bad, false),
                Err(EndpointUrlError::PrivateAddress),
                "{bad}"
            );
        }
        assert!(check_endpoint_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[test]
    fn the_retry_schedule_is_at_least_the_standard_one() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 9);
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        assert_eq!(secs(s.next_delay(1, None, 0)), Some(0));
        assert_eq!(secs(s.next_delay(2, None, 0)), Some(5));
        assert_eq!(secs(s.next_delay(3, None, 0)), Some(300));
        assert_eq!(secs(s.next_delay(8, None, 0)), Some(36_000));
        assert_eq!(s.next_delay(9, None, 0), None);
        assert_eq!(secs(s.next_delay(3, None, 1000)), Some(360));
        assert_eq!(secs(s.next_delay(2, Some(Duration::from_secs(120)), 0)), Some(120));
        assert_eq!(
            secs(s.next_delay(2, Some(Duration::from_secs(u64::MAX)), 0)),
            Some(36_000),
            "a hostile Retry-After is honoured only up to the longest step"
        );
        assert_eq!(s.next_delay(0, None, 0), None);
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_grace_period() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let old = WebhookSecret::from_key_bytes(&[1; 32]);
        let new = WebhookSecret::from_key_bytes(&[2; 32]);
        let ep = WebhookEndpoint {
            id: EndpointId::from_uuid(uuid::Uuid::nil()),
            merchant_id: MerchantId::new("m").unwrap(),
            url: "https://x.example/".into(),
            event_types: vec![],
            secrets: vec![EndpointSecret {
                secret: old.clone(),
                created_at: t0,
                expires_at: None,
            }],
            disabled: None,
            created_at: t0,
            version: 1,
            description: None,
            headers: CustomHeaders::default(),
            rate_limit: None,
            ordered: false,
            failing_since: None,
        };
        let rotated = ep.rotate(new.clone(), t0);
        assert_eq!(rotated.version, 2, "a rotation is the next version");
        assert_eq!(ep.disable(DisabledReason::Gone).version, 2);
        assert_eq!(rotated.signing_secrets(t0), vec![&new, &old]);
        let after = t0 + WebhookEndpoint::ROTATION_GRACE;
        assert_eq!(rotated.signing_secrets(after), vec![&new]);
        assert!(rotated.receives(EventType::Created));
        let only = WebhookEndpoint {
            event_types: vec![EventType::StatusUpdate],
            ..rotated
        };
        assert!(!only.receives(EventType::Created));
    }

    #[test]
    fn an_endpoint_stored_before_versions_reads_as_version_zero() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ep = WebhookEndpoint {
            id: EndpointId::from_uuid(uuid::Uuid::nil()),
            merchant_id: MerchantId::new("m").unwrap(),
            url: "https://x.example/".into(),
            event_types: vec![],
            secrets: vec![],
            disabled: None,
            created_at: t0,
            version: 3,
            description: None,
            headers: CustomHeaders::default(),
            rate_limit: None,
            ordered: false,
            failing_since: None,
        };
        let mut json = serde_json::to_value(&ep).unwrap();
        json.as_object_mut().unwrap().remove("version");
        let old: WebhookEndpoint = serde_json::from_value(json).unwrap();
        assert_eq!(old.version, 0);
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let long = "é".repeat(1000);
        let e = excerpt(&long);
        assert!(e.len() <= MAX_RESPONSE_EXCERPT);
        assert!(e.chars().all(|c| c == 'é'));
    }
}
