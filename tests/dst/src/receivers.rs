//! The merchants' webhook receivers. Each endpoint answers by a seeded plan (accepting, failing,
//! hanging until the sender's timeout, answering 410 once, or 503 with a hostile
//! `Retry-After`), and checks every delivery's Standard Webhooks signature with the official
//! library's signing (`standardwebhooks`), independently of cashout's own signing code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashout_core::ports::{OutgoingWebhook, SendError, SendErrorKind, WebhookResponse, WebhookSender};
use time::OffsetDateTime;

use crate::ctx::{Ctx, lock};
use crate::exec::yield_now;
use crate::net::Window;
use crate::truth::{Delivery, Truth};

/// What an endpoint does for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers 500.
    Fails,
    /// Never answers: the sender times out.
    Hangs,
    /// Answers 503 with `Retry-After` of this many seconds.
    Hostile(u64),
    /// Answers 410 Gone once (the endpoint is then disabled).
    Gone,
}

/// One endpoint's plan: accepting, but for these windows.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Misbehaviour windows.
    pub windows: Vec<(Window, Behaviour)>,
}

struct Endpoint {
    secret: String,
    plan: Plan,
    gone_answered: bool,
}

/// Every merchant's receivers.
pub struct SimReceivers {
    ctx: Arc<Ctx>,
    truth: Arc<Truth>,
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
}

impl SimReceivers {
    /// No endpoint yet.
    pub fn new(ctx: Arc<Ctx>, truth: Arc<Truth>) -> Self {
        SimReceivers {
            ctx,
            truth,
            endpoints: Mutex::new(BTreeMap::new()),
        }
    }

    /// A receiver at `url` with its endpoint's signing secret.
    pub fn add(&self, url: &str, secret: &str, plan: Plan) {
        lock(&self.endpoints).insert(
            url.to_owned(),
            Endpoint {
                secret: secret.to_owned(),
                plan,
                gone_answered: false,
            },
        );
    }

    fn behaviour(&self, url: &str, now: OffsetDateTime) -> Option<Behaviour> {
        let mut endpoints = lock(&self.endpoints);
        let e = endpoints.get_mut(url)?;
        let b = e
            .plan
            .windows
            .iter()
            .find(|(w, _)| w.from <= now && now < w.until)
            .map(|(_, b)| *b);
        if self.ctx.is_healed() && b != Some(Behaviour::Gone) {
            return None;
        }
        match b {
            Some(Behaviour::Gone) if e.gone_answered => None,
            Some(Behaviour::Gone) => {
                e.gone_answered = true;
                Some(Behaviour::Gone)
            }
            other => other,
        }
    }

    fn verify(&self, request: &OutgoingWebhook, now: OffsetDateTime) -> Result<String, String> {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let secret = lock(&self.endpoints)
            .get(&request.url)
            .map(|e| e.secret.clone())
            .ok_or("no such endpoint")?;
        let id = header("webhook-id").ok_or("no webhook-id")?;
        let timestamp: i64 = header("webhook-timestamp")
            .and_then(|t| t.parse().ok())
            .ok_or("no webhook-timestamp")?;
        let signatures = header("webhook-signature").ok_or("no webhook-signature")?;
        if (now.unix_timestamp() - timestamp).abs() > 300 {
            return Err(format!("timestamp {timestamp} is off by more than 5 minutes"));
        }
        let hook = standardwebhooks::Webhook::new(&secret).map_err(|e| format!("secret: {e}"))?;
        let expected = hook
            .sign(&id, timestamp, request.body.as_bytes())
            .map_err(|e| format!("sign: {e}"))?;
        if signatures.split(' ').any(|s| s == expected) {
            Ok(id)
        } else {
            Err("no signature matches".into())
        }
    }
}

impl WebhookSender for SimReceivers {
    async fn send(&self, request: &OutgoingWebhook) -> Result<WebhookResponse, SendError> {
        yield_now().await;
        let ms = self.ctx.rng(|r| r.between(2, 300));
        self.ctx.sleep(Duration::from_millis(ms)).await;
        let now = self.ctx.now();
        let elapsed = Duration::from_millis(ms);
        let answer = |status: u16, retry_after: Option<Duration>| {
            Ok(WebhookResponse {
                status,
                retry_after,
                body_excerpt: String::new(),
                elapsed,
            })
        };
        match self.behaviour(&request.url, now) {
            Some(Behaviour::Fails) => answer(500, None),
            Some(Behaviour::Hostile(after)) => {
                self.ctx
                    .trace(|| format!("receiver {} answers 503 Retry-After {after}", request.url));
                answer(503, Some(Duration::from_secs(after)))
            }
            Some(Behaviour::Gone) => answer(410, None),
            Some(Behaviour::Hangs) => {
                self.ctx.sleep(Duration::from_secs(15)).await;
                Err(SendError {
                    kind: SendErrorKind::Timeout,
                    message: "timed out".into(),
                    elapsed: Duration::from_secs(15),
                })
            }
            None => match self.verify(request, now) {
                Ok(id) => {
                    self.ctx.trace(|| format!("receiver {} verified {id}", request.url));
                    self.truth.delivered(Delivery {
                        url: request.url.clone(),
                        webhook_id: id,
                    });
                    answer(200, None)
                }
                Err(why) => {
                    self.ctx
                        .violation(format!("a delivery to {} fails verification: {why}", request.url));
                    answer(401, None)
                }
            },
        }
    }
}
