//! Per-endpoint delivery rate limits (`rate_limit`, deliveries per second): a token bucket per
//! endpoint, in this process's memory. Each process (each Lambda instance of the callbacks
//! function, the one local runner) keeps its own buckets, so on AWS the limit holds per
//! concurrent consumer; the callbacks function's reserved concurrency bounds the total. A
//! delivery over the limit is put back on the queue for the time the next token needs; it is
//! not an attempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cashout_core::ids::EndpointId;
use cashout_core::webhook::WebhookEndpoint;
use time::OffsetDateTime;

/// Tokens are counted in millionths, so that the bucket needs no floating point.
const MICRO: u128 = 1_000_000;

/// One endpoint's bucket: tokens (in millionths, up to one second's worth) as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    micro_tokens: u128,
    at: OffsetDateTime,
}

/// The buckets of the endpoints this process delivered to.
#[derive(Debug, Default)]
pub struct EndpointThrottle {
    buckets: Mutex<HashMap<EndpointId, Bucket>>,
}

impl EndpointThrottle {
    /// Takes a token for one delivery to `endpoint` at `now`; `Some(wait)` when there is none
    /// (the time until the next one). Endpoints without a limit always pass.
    pub fn take(&self, endpoint: &WebhookEndpoint, now: OffsetDateTime) -> Option<Duration> {
        let rate = u128::from(endpoint.rate_limit?.per_second());
        let full = rate * MICRO;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(endpoint.id).or_insert(Bucket {
            micro_tokens: full,
            at: now,
        });
        let elapsed_ns = u128::try_from((now - bucket.at).whole_nanoseconds()).unwrap_or(0);
        // rate tokens a second: rate × 10⁶ millionths per 10⁹ ns.
        bucket.micro_tokens = (bucket.micro_tokens + elapsed_ns * rate / 1000).min(full);
        bucket.at = bucket.at.max(now);
        if bucket.micro_tokens >= MICRO {
            bucket.micro_tokens -= MICRO;
            None
        } else {
            let missing_ns = (MICRO - bucket.micro_tokens) * 1000 / rate;
            // At least a millisecond, so a queue with coarse delays still moves it on.
            Some(Duration::from_nanos(u64::try_from(missing_ns).unwrap_or(u64::MAX)).max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_endpoint_gets_its_rate_and_no_more() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut endpoint: WebhookEndpoint = serde_json::from_value(serde_json::json!({
            "id": EndpointId::from_uuid(uuid::Uuid::nil()).to_string(),
            "merchant_id": "m",
            "url": "https://x.example/",
            "event_types": [],
            "secrets": [],
            "disabled": null,
            "created_at": "2023-11-14T22:13:20Z",
            "version": 1,
        }))
        .unwrap();
        let throttle = EndpointThrottle::default();
        assert!(
            (0..10).all(|_| throttle.take(&endpoint, t0).is_none()),
            "no limit: no wait"
        );
        endpoint.rate_limit = Some(cashout_core::webhook::RateLimit::new(2).unwrap());
        let throttle = EndpointThrottle::default();
        assert!(throttle.take(&endpoint, t0).is_none());
        assert!(throttle.take(&endpoint, t0).is_none());
        let wait = throttle
            .take(&endpoint, t0)
            .expect("the third in the same second waits");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(
            throttle
                .take(&endpoint, t0 + time::Duration::milliseconds(500))
                .is_none()
        );
    }
}
