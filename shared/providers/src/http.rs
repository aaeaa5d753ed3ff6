//! The HTTP layer shared by every adapter: one pooled client, transport failures told apart by
//! what they mean for a create (never sent, or outcome unknown), and bounded retries of reads.

use std::future::Future;
use std::time::Duration;

use cashout_core::ports::{ProviderError, ProviderErrorKind};
use cashout_core::provider::ProviderName;
use reqwest::StatusCode;

use crate::config::HttpConfig;

/// An answer with its whole body read.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// A request that got no complete answer.
#[derive(Debug)]
pub(crate) enum Transport {
    /// The connection could not be made: the request was never sent.
    NotSent(reqwest::Error),
    /// No answer in time: the provider may have acted on it.
    TimedOut(reqwest::Error),
    /// The connection broke while sending or reading: the provider may have acted on it.
    Broken(reqwest::Error),
}

impl Transport {
    fn of(e: reqwest::Error) -> Transport {
        if e.is_connect() {
            Transport::NotSent(e)
        } else if e.is_timeout() {
            Transport::TimedOut(e)
        } else {
            Transport::Broken(e)
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

pub(crate) struct Http {
    pub client: reqwest::Client,
    config: HttpConfig,
}

impl Http {
    pub(crate) fn new(config: &HttpConfig) -> Result<Http, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .user_agent(config.user_agent.clone())
            // A provider never redirects a payout call; following one could re-send a create.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Http {
            client,
            config: config.clone(),
        })
    }

    /// Sends and reads the whole body.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, Transport> {
        let response = request.send().await.map_err(Transport::of)?;
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
                    tokio::time::sleep(wait).await;
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
