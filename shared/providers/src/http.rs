//! The HTTP layer shared by every adapter: requests built as plain values and sent through an
//! [`HttpTransport`] (one pooled `reqwest` client in deployments, a simulated network in the
//! deterministic simulation), transport failures told apart by what they mean for a create
//! (never sent, or outcome unknown), and bounded retries of reads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cashout_core::ports::{BoxError, ProviderError, ProviderErrorKind};
use cashout_core::provider::ProviderName;
use reqwest::{Method, StatusCode};

use crate::config::HttpConfig;

/// A request as an adapter builds it: the transport sends it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// The whole URL, query included.
    pub url: String,
    /// Headers, in the order given (names as written).
    pub headers: Vec<(String, String)>,
    /// The body's exact bytes (signatures cover them).
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub(crate) fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The body as JSON, with its content type.
    pub(crate) fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Result<Self, serde_json::Error> {
        let bytes = serde_json::to_vec(body)?;
        Ok(self.header("content-type", "application/json").body(bytes))
    }

    pub(crate) fn body(mut self, bytes: Vec<u8>) -> Self {
        self.body = bytes;
        self
    }

    /// Appends form-encoded query parameters.
    pub(crate) fn query<T: serde::Serialize + ?Sized>(
        mut self,
        query: &T,
    ) -> Result<Self, serde_urlencoded::ser::Error> {
        let encoded = serde_urlencoded::to_string(query)?;
        if !encoded.is_empty() {
            self.url.push(if self.url.contains('?') { '&' } else { '?' });
            self.url.push_str(&encoded);
        }
        Ok(self)
    }

    /// HTTP Basic authentication (RFC 7617).
    pub(crate) fn basic_auth(self, user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", format!("Basic {token}"))
    }
}

/// An answer with its whole body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Retry-After` header in seconds, when the provider sent one as a number.
    pub retry_after: Option<Duration>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// A request that got no complete answer.
#[derive(Debug)]
pub enum Transport {
    /// The connection could not be made: the request was never sent.
    NotSent(BoxError),
    /// No answer in time: the provider may have acted on it.
    TimedOut(BoxError),
    /// The connection broke while sending or reading: the provider may have acted on it.
    Broken(BoxError),
}

impl Transport {
    fn of(e: reqwest::Error) -> Transport {
        if e.is_connect() {
            Transport::NotSent(e.into())
        } else if e.is_timeout() {
            Transport::TimedOut(e.into())
        } else {
            Transport::Broken(e.into())
        }
    }

    /// What this means for a call that creates something.
    pub(crate) fn on_create(self, provider: ProviderName) -> ProviderError {
        match self {
            Transport::NotSent(e) => ProviderError::new(
                provider,
                ProviderErrorKind::Retryable { retry_after: None },
                "could not connect; the create was not sent",
            )
            .with_source(e),
            Transport::TimedOut(e) => ProviderError::new(
                provider,
                ProviderErrorKind::Ambiguous,
                "the create timed out; it may have been made: look it up by reference",
            )
            .with_source(e),
            Transport::Broken(e) => ProviderError::new(
                provider,
                ProviderErrorKind::Ambiguous,
                "the connection dropped during the create; it may have been made: look it up by reference",
            )
            .with_source(e),
        }
    }

    /// What this means for a read or a repeatable change.
    pub(crate) fn on_read(self, provider: ProviderName) -> ProviderError {
        let (message, source) = match self {
            Transport::NotSent(e) => ("could not connect", e),
            Transport::TimedOut(e) => ("the request timed out", e),
            Transport::Broken(e) => ("the connection dropped", e),
        };
        ProviderError::new(provider, ProviderErrorKind::Retryable { retry_after: None }, message).with_source(source)
    }
}

/// What carries the adapters' requests: HTTP over [`reqwest`] in every deployment
/// ([`ReqwestTransport`]); a simulated network in the deterministic simulation.
pub trait HttpTransport: Send + Sync {
    /// Sends the request and reads the whole answer.
    fn send(&self, request: HttpRequest) -> Pin<Box<dyn Future<Output = Result<Reply, Transport>> + Send + '_>>;

    /// Waits before a retried read.
    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real network: one pooled client, redirects never followed.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A pooled client with the configured timeouts.
    pub fn new(config: &HttpConfig) -> Result<ReqwestTransport, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .user_agent(config.user_agent.clone())
            // A provider never redirects a payout call; following one could re-send a create.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ReqwestTransport { client })
    }
}

impl HttpTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> Pin<Box<dyn Future<Output = Result<Reply, Transport>> + Send + '_>> {
        Box::pin(async move {
            let mut builder = self.client.request(request.method, &request.url);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            let response = builder.body(request.body).send().await.map_err(Transport::of)?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.bytes().await.map_err(Transport::of)?.to_vec();
            Ok(Reply {
                status,
                retry_after,
                body,
            })
        })
    }

    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(wait))
    }
}

pub(crate) struct Http {
    transport: Arc<dyn HttpTransport>,
    config: HttpConfig,
}

impl Http {
    pub(crate) fn new(config: &HttpConfig, transport: Arc<dyn HttpTransport>) -> Http {
        Http {
            transport,
            config: config.clone(),
        }
    }

    /// Sends and reads the whole body.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<Reply, Transport> {
        self.transport.send(request).await
    }

    /// Runs a read, retrying `Retryable` failures with exponential back-off (or the provider's
    /// `Retry-After`, capped) up to `read_retries` more times.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut backoff = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if attempt < self.config.read_retries => {
                    let ProviderErrorKind::Retryable { retry_after } = e.kind else {
                        return Err(e);
                    };
                    attempt += 1;
                    let wait = retry_after.unwrap_or(backoff).min(self.config.max_retry_backoff);
                    tracing::debug!(provider = %e.provider, attempt, ?wait, error = %e, "retrying a read");
                    self.transport.pause(wait).await;
                    backoff = (backoff * 2).min(self.config.max_retry_backoff);
                }
                other => return other,
            }
        }
    }
}

/// A provider's message, shortened for logs and errors (providers may echo input back).
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// The body as text for a message, shortened.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(body))
}
