//! The Lambda functions' handlers fed with the sample events of `events/` (the same files
//! `cargo lambda invoke --data-file` uses), over the embedded store and the in-process
//! simulators. Each function's `main.rs` only wires these handlers to AWS clients.

#![allow(clippy::unwrap_used)]
// The callbacks handler's future (delivery, health, ordering) is deeper than the default allows.
#![recursion_limit = "256"]

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use cashout_app::http::{api_router, finish, webhooks_router};
use cashout_app::sender::HttpWebhookSender;
use cashout_app::sqs::PollerEvent;
use cashout_app::{App, AppConfig};
use cashout_core::auth::{ApiKey, Principal};
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, EndpointId, MerchantId};
use cashout_core::input::CashoutInput;
use cashout_core::ports::{
    CashoutStore, Clock, QueueName, SystemClock, SystemIds, TaskEnvelope, TaskSource, WebhookStore,
};
use cashout_core::review::{ApprovalPolicy, ReviewFacts};
use cashout_core::signing::WebhookSecret;
use cashout_core::status::CashoutStatus;
use cashout_core::webhook::{EndpointCreated, EndpointSecret, WebhookEndpoint};
use cashout_provider_sim::SimHandle;
use cashout_providers::{Providers, ProvidersConfig};
use cashout_store::sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

type LambdaApp = App<SqliteStore, SqliteStore, Providers, HttpWebhookSender>;

/// The id the sample events refer to.
const SAMPLE_ID: &str = "01a20934-c515-72c7-b804-edd159a73933";
const SAMPLE_ENDPOINT: &str = "ep_01a20934c5087bbe9ab8ba8b3c4e7f7d";

fn event(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Fixture {
    app: LambdaApp,
    _sim: SimHandle,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = cashout_provider_sim::start(
        cashout_provider_sim::SimConfig {
            time_scale: 100,
            ..Default::default()
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite3"), clock.clone()).unwrap());
    let providers_config = ProvidersConfig::for_simulator(&sim.url());
    let coverage = providers_config.coverage();
    let providers = Providers::new(providers_config).unwrap();
    let app = App::new(
        store.clone(),
        store,
        Arc::new(providers),
        Arc::new(HttpWebhookSender::new(true).unwrap()),
        clock,
        Arc::new(SystemIds),
        AppConfig {
            // D24 requires a notification URL; nothing listens there, so polling does the work.
            notification_base_url: Some("http://127.0.0.1:9".into()),
            coverage,
            ..AppConfig::local()
        },
    );
    let merchant = Principal::Merchant {
        merchant_id: MerchantId::new("merchant_local").unwrap(),
    };
    app.register_api_key(&ApiKey::new("sk_local_merchant"), merchant, None)
        .await
        .unwrap();
    app.register_api_key(&ApiKey::new("sk_local_operator"), Principal::admin("ops"), None)
        .await
        .unwrap();
    Fixture {
        app,
        _sim: sim,
        _dir: dir,
    }
}

/// Writes the approved request the sample SQS events name.
async fn approved_sample(app: &LambdaApp) {
    let body: Value = serde_json::from_str(&event("api/create-cashout.json")).unwrap();
    let input: CashoutInput = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    let id: CashoutRequestId = SAMPLE_ID.parse().unwrap();
    let now = app.clock.now();
    let created = CashoutRequest::create(
        id,
        MerchantId::new("merchant_local").unwrap(),
        input.validate(&app.config.coverage).unwrap(),
        now,
    );
    let record = cashout_core::ports::IdempotencyRecord::begin(
        MerchantId::new("merchant_local").unwrap(),
        "k".parse().unwrap(),
        "h".into(),
        id,
        now,
    );
    app.store.create_request(&created, &record, &[]).await.unwrap();
    let approved = created
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, now)
        .unwrap();
    app.store.apply_change(&approved).await.unwrap();
}

async fn call(router: Router, path: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(&event(path)).unwrap();
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn queued(app: &LambdaApp, queue: QueueName) -> Vec<TaskEnvelope> {
    let got = app
        .store
        .receive(queue, 10, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    got.iter().map(|m| TaskEnvelope::from_json(&m.body).unwrap()).collect()
}

#[tokio::test]
async fn api_events_reach_the_router() {
    let f = fixture().await;
    let api = || finish(api_router(f.app.clone()));
    let (status, created) = call(api(), "api/create-cashout.json").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["requested_amount"], "1050.00");
    let (status, again) = call(api(), "api/create-cashout.json").await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::CREATED, &created["id"]),
        "the sample's Idempotency-Key replays"
    );
    let (status, list) = call(api(), "api/list-cashouts.json").await;
    assert_eq!(
        (status, list["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "no PAID request yet"
    );
    for (path, code) in [
        ("api/get-cashout.json", StatusCode::NOT_FOUND),
        ("api/cancel-cashout.json", StatusCode::NOT_FOUND),
        ("api/approve-cashout.json", StatusCode::NOT_FOUND),
    ] {
        let (status, problem) = call(api(), path).await;
        assert_eq!((status, problem["code"].as_str()), (code, Some("not_found")), "{path}");
    }
    let (status, ep) = call(api(), "api/create-webhook-endpoint.json").await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    assert!(ep["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, methods) = call(api(), "api/payout-methods.json").await;
    assert_eq!(status, StatusCode::OK, "{methods}");
    assert_eq!(methods["data"][0]["provider"], "tupay");
    let (status, doc) = call(api(), "api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn provider_notifications_are_verified_and_queued() {
    let f = fixture().await;
    let hooks = || finish(webhooks_router(f.app.clone()));
    let (status, _) = call(hooks(), "provider-webhooks/d24-notification.json").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(hooks(), "provider-webhooks/cascad-callback.json").await;
    assert_eq!(status, StatusCode::OK);
    // The D24 sample names a request this store does not hold: a hint about no payout of ours
    // is answered 200 (the provider stops) and queues nothing. The signed callback is queued.
    let tasks = queued(&f.app, QueueName::ProviderEvents).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");

    // A callback whose body was changed after signing is refused and queues nothing.
    let mut tampered: Value = serde_json::from_str(&event("provider-webhooks/cascad-callback.json")).unwrap();
    let body = tampered["body"]
        .as_str()
        .unwrap()
        .replace("processed", "process_failed");
    tampered["body"] = Value::String(body);
    let request = lambda_http::request::from_str(&tampered.to_string()).unwrap();
    let (parts, body) = request.into_parts();
    let response = hooks()
        .oneshot(axum::http::Request::from_parts(parts, Body::from(body.to_vec())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_dispatcher_sends_the_sample_request_to_the_provider() {
    let f = fixture().await;
    approved_sample(&f.app).await;
    let batch: SqsEvent = serde_json::from_str(&event("dispatcher/sqs-dispatch.json")).unwrap();
    let response = f.app.dispatcher_batch(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let r = f
        .app
        .store
        .get_request(SAMPLE_ID.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), CashoutStatus::PendingPayment);

    // A message that is not a task is reported, alone.
    let mut batch: SqsEvent = serde_json::from_str(&event("dispatcher/sqs-dispatch.json")).unwrap();
    let mut bad = batch.records[0].clone();
    bad.message_id = Some("bad-one".into());
    bad.body = Some("{not a task".into());
    batch.records.push(bad);
    let response = f.app.dispatcher_batch(batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad-one"]);
}

#[tokio::test]
async fn the_poller_takes_queue_batches_and_the_schedule() {
    let f = fixture().await;
    approved_sample(&f.app).await;
    f.app.dispatch(SAMPLE_ID.parse().unwrap()).await.unwrap();
    for path in ["poller/sqs-provider-event.json", "poller/sqs-poll.json"] {
        let event: PollerEvent = serde_json::from_str(&event(path)).unwrap();
        let answer = f.app.poller_event(event).await.unwrap();
        assert_eq!(answer["batchItemFailures"], Value::Array(vec![]), "{path}");
    }
    let schedule: PollerEvent = serde_json::from_str(&event("poller/scheduled-sweep.json")).unwrap();
    let report = f.app.poller_event(schedule).await.unwrap();
    assert!(report["polls"].is_u64(), "{report}");
}

#[tokio::test]
async fn callbacks_deliver_the_sample_event_to_the_sample_endpoint() {
    let f = fixture().await;
    approved_sample(&f.app).await;
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let sink = got.clone();
    let receiver = Router::new().route(
        "/",
        axum::routing::post(move |body: String| async move {
            sink.lock().unwrap().push(body);
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let now = f.app.clock.now();
    let created = f
        .app
        .store
        .create_endpoint(
            &WebhookEndpoint {
                id: SAMPLE_ENDPOINT.parse::<EndpointId>().unwrap(),
                merchant_id: MerchantId::new("merchant_local").unwrap(),
                url,
                event_types: vec![],
                secrets: vec![EndpointSecret {
                    secret: WebhookSecret::from_key_bytes(&[3; 32]),
                    created_at: now,
                    expires_at: None,
                }],
                disabled: None,
                created_at: now,
                version: 1,
                description: None,
                headers: Default::default(),
                rate_limit: None,
                ordered: false,
                failing_since: None,
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(created, EndpointCreated::Created);
    let batch: SqsEvent = serde_json::from_str(&event("callbacks/sqs-deliver.json")).unwrap();
    let response = f.app.callbacks_batch(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let bodies = got.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        1,
        "the deliver task delivered once; the publish task queued another"
    );
    assert!(bodies[0].contains("\"status\":\"APPROVED\""));
    let queued = queued(&f.app, QueueName::Callbacks).await;
    assert!(
        queued
            .iter()
            .any(|t| matches!(t.task, cashout_core::ports::Task::Deliver { attempt: 1, .. }))
    );
}
