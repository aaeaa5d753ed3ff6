//! The load of each function under which its peak RSS is read: events in the shape of `events/`
//! (the samples `cargo lambda invoke` uses), invoked one after the other on one long-lived
//! process within a time budget, each outcome counted.

use std::time::{Duration, Instant};

use cashout_core::ids::{CashoutRequestId, EndpointId, EventId};
use cashout_core::ports::{ProviderEvent, ProviderNotification, Task, TaskEnvelope};
use cashout_core::provider::ProviderName;
use cashout_system::stats::Latencies;
use serde_json::{Value, json};

use super::BATCH;
use super::environment::Environment;
use super::runtime_api::{Instance, Outcome};
use crate::bench::{BenchError, fail};

/// Every this many poller invocations is the scheduled sweep.
const SWEEP_EVERY: usize = 25;

const API_CREATE: &str = include_str!("../../../../events/api/create-cashout.json");
const API_ENDPOINT: &str = include_str!("../../../../events/api/create-webhook-endpoint.json");
const D24_NOTIFICATION: &str = include_str!("../../../../events/provider-webhooks/d24-notification.json");
const CASCAD_CALLBACK: &str = include_str!("../../../../events/provider-webhooks/cascad-callback.json");
const SQS_DISPATCH: &str = include_str!("../../../../events/dispatcher/sqs-dispatch.json");
const SQS_POLL: &str = include_str!("../../../../events/poller/sqs-poll.json");
const SQS_PROVIDER_EVENT: &str = include_str!("../../../../events/poller/sqs-provider-event.json");
const SCHEDULED_SWEEP: &str = include_str!("../../../../events/poller/scheduled-sweep.json");
const SQS_DELIVER: &str = include_str!("../../../../events/callbacks/sqs-deliver.json");

/// What one process did under load.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub function: String,
    pub load: String,
    pub invocations: u64,
    pub errors: u64,
    pub rejected: u64,
    pub failed_records: u64,
    pub first_problem: Option<String>,
    pub latencies: Latencies,
    pub peak_rss_kib: u64,
    pub failure: Option<String>,
    deadline: Option<Instant>,
    pub cut_short: bool,
}

impl Loaded {
    fn new(function: &str, load: String, deadline: Instant) -> Loaded {
        Loaded {
            function: function.to_owned(),
            load,
            deadline: Some(deadline),
            ..Loaded::default()
        }
    }

    /// Whether the time budget is spent (then the load stops, marked cut short).
    fn out_of_time(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.cut_short = true;
        }
        self.cut_short
    }

    fn problem(&mut self, what: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            let mut text = what();
            if text.len() > 400 {
                let mut end = 400;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push('…');
            }
            self.first_problem = Some(text);
        }
    }

    /// Invokes `event` and counts the outcome; answers the parsed response when there is one.
    async fn invoke(&mut self, instance: &mut Instance, event: &Value) -> Result<Option<Value>, BenchError> {
        let t = Instant::now();
        let outcome = instance.invoke(event).await?;
        self.latencies.push(t.elapsed());
        self.invocations += 1;
        match outcome {
            Outcome::Error(body) => {
                self.errors += 1;
                self.problem(|| format!("error: {}", String::from_utf8_lossy(&body)));
                Ok(None)
            }
            Outcome::Response(body) => {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Some(status) = value.get("statusCode").and_then(Value::as_u64)
                    && status >= 400
                {
                    self.rejected += 1;
                    self.problem(|| format!("HTTP {status}: {}", value["body"].as_str().unwrap_or_default()));
                }
                if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array)
                    && !failures.is_empty()
                {
                    self.failed_records += failures.len() as u64;
                    let records = event["Records"].as_array().map_or(0, Vec::len);
                    if failures.len() >= records {
                        self.rejected += 1;
                    }
                    self.problem(|| format!("{} of {records} records failed", failures.len()));
                }
                Ok(Some(value))
            }
        }
    }
}

/// Reads the peak RSS, stops the process and decides whether the measurement counts.
pub(super) async fn finish(
    instance: Instance,
    load: Result<(Loaded, Created), BenchError>,
) -> Result<(Loaded, Created), BenchError> {
    let peak = instance.peak_rss_kib();
    instance.stop().await;
    let (mut loaded, created) = load?;
    loaded.peak_rss_kib = peak?;
    if loaded.errors + loaded.rejected >= loaded.invocations {
        loaded.failure = Some(format!(
            "every one of {} invocations failed ({})",
            loaded.invocations,
            loaded.first_problem.clone().unwrap_or_default()
        ));
    }
    Ok((loaded, created))
}

fn sample(text: &str) -> Result<Value, BenchError> {
    serde_json::from_str(text).map_err(fail)
}

/// An SQS event of `bodies`, in the shape of the sample `template`.
fn sqs_event(template: &Value, bodies: &[String]) -> Value {
    let record = template["Records"][0].clone();
    let records: Vec<Value> = bodies
        .iter()
        .map(|body| {
            let mut r = record.clone();
            r["messageId"] = json!(uuid::Uuid::now_v7().to_string());
            r["body"] = json!(body);
            r["md5OfBody"] = json!("");
            r
        })
        .collect();
    json!({ "Records": records })
}

fn envelope(task: Task) -> String {
    TaskEnvelope::new(task, time::OffsetDateTime::now_utc(), Duration::ZERO).to_json()
}

/// The API's load: one webhook endpoint (to the local receiver), then one new cashout request
/// per invocation. Answers the created requests and the endpoint.
pub(super) async fn load_api(
    instance: &mut Instance,
    env: &Environment,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        "1 POST /v1/webhook-endpoints, then POST /v1/cashout-requests with a new Idempotency-Key each".into(),
        deadline,
    );
    let mut created = Created::default();
    let mut endpoint = sample(API_ENDPOINT)?;
    endpoint["body"] = json!(json!({ "url": env.receiver.url("footprint"), "event_types": [] }).to_string());
    if let Some(answer) = loaded.invoke(instance, &endpoint).await? {
        created.endpoint = body_of(&answer)["id"].as_str().and_then(|id| id.parse().ok());
    }
    let template = sample(API_CREATE)?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    for i in 1..invocations {
        if loaded.out_of_time() {
            break;
        }
        let mut event = template.clone();
        event["headers"]["idempotency-key"] = json!(format!("footprint-{run}-{i}"));
        if let Some(answer) = loaded.invoke(instance, &event).await?
            && answer["statusCode"] == 201
            && let Some(id) = body_of(&answer)["id"].as_str().and_then(|id| id.parse().ok())
        {
            created.requests.push(id);
        }
    }
    Ok((loaded, created))
}

/// The JSON body of an API Gateway answer.
fn body_of(answer: &Value) -> Value {
    answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

/// What the API created.
#[derive(Debug, Default)]
pub(super) struct Created {
    pub requests: Vec<CashoutRequestId>,
    pub endpoint: Option<EndpointId>,
}

/// Provider-webhooks: the sample D24 notification and Cascad callback, alternately.
pub(super) async fn load_provider_webhooks(
    instance: &mut Instance,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        "POST /webhooks/d24 and /webhooks/cascad (the signed samples), alternately".into(),
        deadline,
    );
    let events = [sample(D24_NOTIFICATION)?, sample(CASCAD_CALLBACK)?];
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        loaded.invoke(instance, &events[i % 2]).await?;
    }
    Ok((loaded, Created::default()))
}

/// `n` request ids from position `at` of `ids`, round the circle.
fn ids_from(ids: &[CashoutRequestId], at: usize, n: usize) -> impl Iterator<Item = CashoutRequestId> + '_ {
    (0..n).filter_map(move |k| ids.get((at + k) % ids.len().max(1)).copied())
}

/// The dispatcher: batches of dispatch tasks of the created requests.
pub(super) async fn load_dispatcher(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH} dispatch tasks of the {} created requests (each dispatched once, then redelivered)",
            ids.len()
        ),
        deadline,
    );
    let template = sample(SQS_DISPATCH)?;
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        let bodies: Vec<String> = ids_from(ids, i * BATCH, BATCH)
            .map(|id| envelope(Task::Dispatch { cashout_request_id: id }))
            .collect();
        loaded.invoke(instance, &sqs_event(&template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}

/// The poller: batches of on-demand polls and provider-event hints, and the scheduled sweep.
pub(super) async fn load_poller(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH}: polls and D24 provider-event hints of the dispatched requests; every {SWEEP_EVERY}th invocation the scheduled sweep"
        ),
        deadline,
    );
    let (poll, hint, sweep) = (sample(SQS_POLL)?, sample(SQS_PROVIDER_EVENT)?, sample(SCHEDULED_SWEEP)?);
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        if i % SWEEP_EVERY == SWEEP_EVERY - 1 {
            loaded.invoke(instance, &sweep).await?;
            continue;
        }
        let (template, bodies): (&Value, Vec<String>) = if i % 2 == 0 {
            (
                &poll,
                ids_from(ids, i * BATCH, BATCH)
                    .map(|id| {
                        envelope(Task::Poll {
                            cashout_request_id: id,
                            due_at: None,
                        })
                    })
                    .collect(),
            )
        } else {
            (
                &hint,
                ids_from(ids, i * BATCH, BATCH)
                    .map(|id| {
                        envelope(Task::ProviderEvent(ProviderEvent {
                            provider: ProviderName::D24,
                            notification: ProviderNotification::Hint {
                                reference: Some(id.into()),
                                payout_id: None,
                            },
                        }))
                    })
                    .collect(),
            )
        };
        loaded.invoke(instance, &sqs_event(template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}

/// Callbacks: batches of publish tasks (event 1 of a request: created) and deliveries (event 2:
/// `APPROVED`) to the endpoint the API registered.
pub(super) async fn load_callbacks(
    instance: &mut Instance,
    ids: &[CashoutRequestId],
    endpoint: Option<EndpointId>,
    invocations: usize,
    deadline: Instant,
) -> Result<(Loaded, Created), BenchError> {
    let endpoint = endpoint.ok_or_else(|| BenchError("the API registered no webhook endpoint".into()))?;
    let mut loaded = Loaded::new(
        &instance.name,
        format!(
            "SQS batches of {BATCH}: publish tasks and signed deliveries to a local receiver, for the {} created requests",
            ids.len()
        ),
        deadline,
    );
    let template = sample(SQS_DELIVER)?;
    let half = BATCH / 2;
    for i in 0..invocations {
        if loaded.out_of_time() {
            break;
        }
        let mut bodies = Vec::with_capacity(BATCH);
        for id in ids_from(ids, i * half, half) {
            bodies.push(envelope(Task::PublishEvent {
                event_id: EventId::new(id, 1),
            }));
            bodies.push(envelope(Task::Deliver {
                event_id: EventId::new(id, 2),
                endpoint_id: endpoint,
                attempt: 1,
            }));
        }
        loaded.invoke(instance, &sqs_event(&template, &bodies)).await?;
    }
    Ok((loaded, Created::default()))
}
