//! The event-source pump for running the Lambda functions locally under `cargo lambda watch`:
//! it does what the SQS event source mapping and the EventBridge schedule do on AWS. It receives
//! from the local SQS queues (moto), invokes the consuming function through cargo lambda's invoke
//! endpoint with a real SQS event, and deletes only the messages the function did not report in
//! `batchItemFailures` (the others reappear after their visibility timeout, as on AWS). It also
//! invokes the poller with a scheduled event at a fixed rate.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use cashout_core::ports::QueueName;
use cashout_store::sqs::QueueUrls;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Which function consumes which queue (the template's event sources).
pub fn default_routes() -> Vec<(QueueName, String)> {
    vec![
        (QueueName::Dispatch, "cashout-dispatcher".to_owned()),
        (QueueName::Poll, "cashout-poller".to_owned()),
        (QueueName::ProviderEvents, "cashout-poller".to_owned()),
        (QueueName::Callbacks, "cashout-callbacks".to_owned()),
    ]
}

/// What the pump does.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// cargo lambda's invoke endpoint (`http://127.0.0.1:9000`).
    pub invoke_url: String,
    /// Queue → function.
    pub routes: Vec<(QueueName, String)>,
    /// Messages per invocation (the template's `BatchSize`).
    pub batch: i32,
    /// Long-polling wait of each receive.
    pub wait: Duration,
    /// The function that gets the scheduled sweep, and how often.
    pub schedule: Option<(String, Duration)>,
}

/// Why a pump step failed (logged; the pump keeps going).
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// An SQS call failed.
    #[error("sqs: {0}")]
    Sqs(String),
    /// The invoke endpoint failed or answered something unreadable.
    #[error("invoke {function}: {message}")]
    Invoke {
        function: String,
        /// What happened.
        message: String,
    },
}

/// The SQS event a batch of received messages makes, as Lambda builds it.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: BTreeMap<String, String> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_default();
            let message_attributes: BTreeMap<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The message ids a function reported as failed.
pub fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect()
}

async fn invoke(http: &reqwest::Client, base: &str, function: &str, payload: &Value) -> Result<Value, PumpError> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        base.trim_end_matches('/')
    );
    let fail = |message: String| PumpError::Invoke {
        function: function.to_owned(),
        message,
    };
    let response = http
        .post(url)
        .json(payload)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let function_error = response.headers().contains_key("x-amz-function-error");
    let body: Value = response.json().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() || function_error {
        return Err(fail(format!("{status}: {body}")));
    }
    Ok(body)
}

/// Pumps one queue into one function until shutdown.
async fn pump_queue(
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    config: PumpConfig,
    queue_url: String,
    function: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let region = sqs
        .config()
        .region()
        .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()
        .and_then(|a| a.attributes)
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_else(|| queue_url.clone());
    while !*shutdown.borrow() {
        let step = pump_once(&sqs, &http, &config, &queue_url, &function, &arn, &region);
        tokio::select! {
            result = step => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, queue = %queue_url, "pump step failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Receives one batch, invokes the function with it, deletes what succeeded. Returns how many
/// messages were deleted.
pub async fn pump_once(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    config: &PumpConfig,
    queue_url: &str,
    function: &str,
    queue_arn: &str,
    region: &str,
) -> Result<usize, PumpError> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(config.batch)
        .wait_time_seconds(i32::try_from(config.wait.as_secs()).unwrap_or(1))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| PumpError::Sqs(e.to_string()))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let event = sqs_event(messages, queue_arn, region);
    let response = invoke(http, &config.invoke_url, function, &event).await?;
    let failed = failed_ids(&response);
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    let deleted = entries.len();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PumpError::Sqs(e.to_string()))?;
    }
    tracing::info!(function, received = messages.len(), failed = failed.len(), "invoked");
    Ok(deleted)
}

/// The scheduled event EventBridge sends.
pub fn scheduled_event(now: time::OffsetDateTime) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::now_v7().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/cashout-sweep"],
        "detail": {},
    })
}

/// Runs the pump until `shutdown` turns true.
pub async fn run(sqs: aws_sdk_sqs::Client, urls: QueueUrls, config: PumpConfig, shutdown: watch::Receiver<bool>) {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (queue, function) in config.routes.clone() {
        let Some(url) = urls.url(queue) else {
            tracing::warn!(queue = %queue, "no URL for the queue; not pumped");
            continue;
        };
        tasks.push(tokio::spawn(pump_queue(
            sqs.clone(),
            http.clone(),
            config.clone(),
            url.to_owned(),
            function,
            shutdown.clone(),
        )));
    }
    if let Some((function, every)) = config.schedule.clone() {
        let (http, base, mut shutdown) = (http.clone(), config.invoke_url.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = invoke(
                    &http,
                    &base,
                    &function,
                    &scheduled_event(time::OffsetDateTime::now_utc()),
                )
                .await
                {
                    tracing::warn!(error = %e, "scheduled invoke failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_read_from_the_batch_response() {
        let r = json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]});
        assert_eq!(failed_ids(&r), ["a", "b"]);
        assert!(failed_ids(&json!({"batchItemFailures": []})).is_empty());
        assert!(failed_ids(&json!(null)).is_empty());
    }

    #[test]
    fn events_have_the_lambda_shape() {
        let m = aws_sdk_sqs::types::Message::builder()
            .message_id("m1")
            .receipt_handle("r1")
            .body("{\"v\":1}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let e = sqs_event(&[m], "arn:aws:sqs:us-east-1:000000000000:q", "us-east-1");
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(parsed.records[0].message_id.as_deref(), Some("m1"));
        assert_eq!(
            parsed.records[0]
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(e["Records"][0]["eventSource"], "aws:sqs");
        let s = scheduled_event(time::OffsetDateTime::UNIX_EPOCH);
        let parsed: cashout_app::sqs::PollerEvent = serde_json::from_value(s).unwrap();
        assert!(matches!(parsed, cashout_app::sqs::PollerEvent::Schedule(_)));
    }
}
