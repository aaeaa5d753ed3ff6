//! The event-source pump against moto SQS and a stand-in for cargo lambda's invoke endpoint:
//! messages a function reports in `batchItemFailures` stay in the queue; the others are deleted;
//! a failed invocation deletes nothing.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cashout_core::ports::QueueName;
use cashout_local::pump::{PumpConfig, default_routes, pump_once};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Invokes(Arc<Mutex<Vec<(String, Value)>>>);

async fn invoke(State(seen): State<Invokes>, Path(function): Path<String>, Json(event): Json<Value>) -> Response {
    seen.0.lock().unwrap().push((function, event.clone()));
    let bodies: Vec<&str> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    if bodies.contains(&"crash") {
        return (
            StatusCode::OK,
            [("x-amz-function-error", "Unhandled")],
            Json(json!({"errorMessage": "boom"})),
        )
            .into_response();
    }
    let failures: Vec<Value> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["body"] == "fail")
        .map(|r| json!({"itemIdentifier": r["messageId"]}))
        .collect();
    Json(json!({ "batchItemFailures": failures })).into_response()
}

async fn counts(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let n = |k| a.get(&k).unwrap().parse::<u64>().unwrap();
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn only_messages_not_reported_as_failed_are_deleted() {
    let endpoint = std::env::var("CASHOUT_TEST_SQS_URL")
        .expect("CASHOUT_TEST_SQS_URL is not set: run the tests with ./scripts/test, which starts moto");
    let aws = cashout_store::resources::emulator_config(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let def = cashout_store::resources::Definition::embedded().unwrap();
    let urls = cashout_store::resources::create_queues(&sqs, def, &format!("pump-{}", std::process::id()))
        .await
        .unwrap();
    let url = urls.url(QueueName::Dispatch).unwrap().to_owned();

    let seen = Invokes::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let invoke_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = PumpConfig {
        invoke_url,
        routes: default_routes(),
        batch: 10,
        wait: Duration::from_secs(1),
        schedule: None,
    };

    for body in ["ok-1", "fail", "ok-2"] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut deleted = 0;
    while deleted < 2 {
        deleted += pump_once(
            &sqs,
            &reqwest::Client::new(),
            &config,
            &url,
            "cashout-dispatcher",
            "arn:q",
            "us-east-1",
        )
        .await
        .unwrap();
        if seen.0.lock().unwrap().len() > 5 {
            break;
        }
    }
    assert_eq!(deleted, 2);
    assert_eq!(counts(&sqs, &url).await, (0, 1), "the failed message stays, in flight");
    let (function, event) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(function, "cashout-dispatcher");
    let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    assert!(
        parsed
            .records
            .iter()
            .all(|r| r.event_source.as_deref() == Some("aws:sqs"))
    );

    // A function error deletes nothing.
    sqs.send_message()
        .queue_url(&url)
        .message_body("crash")
        .send()
        .await
        .unwrap();
    let result = pump_once(
        &sqs,
        &reqwest::Client::new(),
        &config,
        &url,
        "cashout-dispatcher",
        "arn:q",
        "us-east-1",
    )
    .await;
    assert!(result.is_err());
    assert_eq!(counts(&sqs, &url).await, (0, 2));
}
