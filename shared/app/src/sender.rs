//! The HTTP adapter of the [`WebhookSender`] port (reqwest, rustls): no redirects followed, a 15 s
//! timeout, and destinations checked after DNS resolution — a host name that resolves to a
//! private, loopback or link-local address is refused, and the connection only ever uses the
//! addresses that passed (no rebinding between check and connect). No proxy from the
//! environment is used: it would resolve names past the check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_core::ports::{OutgoingWebhook, SendError, SendErrorKind, WebhookResponse, WebhookSender};
use cashout_core::webhook::{MAX_RESPONSE_EXCERPT, is_public_ip};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The timeout of one delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends webhooks over HTTP.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

/// A resolver that drops every address a webhook may not reach.
struct PublicOnly;

/// The resolved name had no public address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback or link-local addresses")]
struct ForbiddenDestination(String);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public_ip(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(ForbiddenDestination(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

impl HttpWebhookSender {
    /// A sender; `allow_private` lifts the destination check (local development only).
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(crate::deliver::USER_AGENT)
            // A proxy from the environment (`HTTP(S)_PROXY`, `ALL_PROXY`) would resolve the
            // merchant's host itself, past the private-address check below: never use one.
            .no_proxy();
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(HttpWebhookSender {
            client: builder.build()?,
            allow_private,
        })
    }

    fn check_literal(&self, url: &reqwest::Url) -> Result<(), SendErrorKind> {
        if self.allow_private {
            return Ok(());
        }
        // Literal addresses never reach the resolver: check them here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(SendErrorKind::InvalidUrl),
        };
        match literal {
            Some(ip) if !is_public_ip(ip) => Err(SendErrorKind::ForbiddenDestination),
            _ => Ok(()),
        }
    }
}

fn classify(error: &reqwest::Error) -> SendErrorKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<ForbiddenDestination>() {
            return SendErrorKind::ForbiddenDestination;
        }
        source = e.source();
    }
    if error.is_timeout() {
        SendErrorKind::Timeout
    } else if error.is_builder() {
        SendErrorKind::InvalidUrl
    } else {
        SendErrorKind::Connect
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap, now: time::OffsetDateTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    (at - now).try_into().ok()
}

impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &OutgoingWebhook) -> Result<WebhookResponse, SendError> {
        let started = Instant::now();
        let fail = |kind, message: String| SendError {
            kind,
            message,
            elapsed: started.elapsed(),
        };
        let url = reqwest::Url::parse(&request.url).map_err(|e| fail(SendErrorKind::InvalidUrl, e.to_string()))?;
        self.check_literal(&url)
            .map_err(|kind| fail(kind, "the destination address is not allowed".into()))?;
        let mut builder = self.client.post(url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(|e| fail(classify(&e), e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), time::OffsetDateTime::now_utc());
        // Keep only the start of the answer; never read an unbounded body.
        let mut excerpt = Vec::new();
        while excerpt.len() < MAX_RESPONSE_EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(MAX_RESPONSE_EXCERPT);
        Ok(WebhookResponse {
            status,
            retry_after,
            body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_destinations_are_refused_before_any_connection() {
        let sender = HttpWebhookSender::new(false).unwrap();
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:10.0.0.1]/",
            "http://localhost:9/",
        ] {
            let request = OutgoingWebhook {
                url: url.into(),
                headers: vec![],
                body: "{}".into(),
            };
            let err = sender.send(&request).await.unwrap_err();
            assert_eq!(err.kind, SendErrorKind::ForbiddenDestination, "{url}: {err}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = time::OffsetDateTime::from_unix_timestamp(784_111_777).unwrap(); // Sun, 06 Nov 1994 08:49:37 GMT
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:50:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }
}
