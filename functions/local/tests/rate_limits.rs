//! Rate limits on the running `cashout-local`: a merchant over its limit is answered `429
//! rate_limited` with `Retry-After` while another merchant's calls go through, and an address
//! sending bad keys is refused. The limits are low enough (a burst of 3, 1 a second) that the
//! calls of a test, a few milliseconds apart, cross them well within the second that refills one.

#![allow(clippy::unwrap_used)]

use cashout_system::runner::{Backend, RunnerSpec, Simulators, free_addr};

const A: (&str, &str) = ("merchant_rl_a", "sk_rl_merchant_a_1d7c");
const B: (&str, &str) = ("merchant_rl_b", "sk_rl_merchant_b_83fa");

/// Status, `code` and `Retry-After` of `GET /v1/webhook-endpoints` with `key`.
async fn call(http: &reqwest::Client, base: &str, key: &str) -> (u16, String, Option<String>) {
    let response = http
        .get(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        retry_after,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_over_its_limit_gets_429_while_another_merchant_and_bad_keys_are_answered_apart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RunnerSpec {
        binary: env!("CARGO_BIN_EXE_cashout-local").into(),
        data_dir: dir.path().join("data"),
        listen: free_addr().unwrap(),
        simulators: Simulators::InRunner {
            listen: free_addr().unwrap(),
        },
        backend: Backend::Embedded,
        operator_key: "sk_rl_operator_5b20".into(),
        rust_log: "warn".into(),
        log_dir: Some(dir.path().to_path_buf()),
        extra_args: [
            "--rate-limit",
            "1/3",
            "--rate-limits",
            "merchant_rl_b=1/10",
            "--unauthenticated-rate-limit",
            "1/2",
        ]
        .map(str::to_owned)
        .to_vec(),
        env: Vec::new(),
    };
    // B's key is registered by a first start; keys persist in the store.
    spec.start(B.0, B.1, 0).unwrap().terminate().unwrap();
    let runner = spec.start(A.0, A.1, 1).unwrap();
    let http = reqwest::Client::new();
    let base = runner.base.clone();

    for _ in 0..3 {
        assert_eq!(call(&http, &base, A.1).await.0, 200);
    }
    let refused = call(&http, &base, A.1).await;
    assert_eq!(refused, (429, "rate_limited".to_owned(), Some("1".to_owned())));
    for _ in 0..5 {
        assert_eq!(
            call(&http, &base, B.1).await.0,
            200,
            "B has a bucket of its own (and a larger one)"
        );
    }

    for guess in ["sk_guess_1", "sk_guess_2"] {
        assert_eq!(call(&http, &base, guess).await.0, 401);
    }
    let flooded = call(&http, &base, "sk_guess_3").await;
    assert_eq!(
        (flooded.0, flooded.1.as_str()),
        (429, "rate_limited"),
        "refused before the lookup"
    );
    runner.terminate().unwrap();
}

/// On DynamoDB (Local, as `./scripts/test` starts it), with a manual clock: once a merchant is
/// over its limit, each instance refuses its flood from its own bucket without another write (one
/// learnt it from the shared bucket, the other spent the burst itself), and lets it through again
/// when the bucket refills.
#[tokio::test(flavor = "multi_thread")]
async fn aws_a_flood_from_one_merchant_costs_no_write_once_it_is_over_its_limit() {
    use std::sync::Arc;

    use cashout_app::limits::RateLimits;
    use cashout_app::{App, AppConfig, AppError};
    use cashout_core::auth::Principal;
    use cashout_core::ids::MerchantId;
    use cashout_core::limit::RateLimit;
    use cashout_core::ports::{Clock, ManualClock, SequentialIds};
    use cashout_store::dynamo::DynamoStore;
    use cashout_store::resources::{self, Definition};

    let url = std::env::var("CASHOUT_TEST_DYNAMODB_URL")
        .expect("CASHOUT_TEST_DYNAMODB_URL is not set: run the tests with ./scripts/test, which starts DynamoDB Local");
    let client = aws_sdk_dynamodb::Client::new(&resources::emulator_config(&url).await);
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let table = resources::create_table(&client, Definition::embedded().unwrap(), &prefix)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
    ));
    let store = Arc::new(DynamoStore::new(client, table, clock.clone() as Arc<dyn Clock>));
    let config = AppConfig {
        rate_limits: RateLimits {
            default: RateLimit::new(2, 3).unwrap(),
            ..RateLimits::default()
        },
        ..AppConfig::default()
    };
    let instance = || {
        App::new(
            store.clone(),
            Arc::new(()),
            Arc::new(()),
            Arc::new(()),
            clock.clone() as Arc<dyn Clock>,
            Arc::new(SequentialIds::default()),
            config.clone(),
        )
    };
    let (one, two) = (instance(), instance());
    let merchant = |id: &str| Principal::Merchant {
        merchant_id: MerchantId::new(id).unwrap(),
    };
    let (a, b) = (merchant("m_flood"), merchant("m_calm"));
    let limited = |r: Result<(), AppError>| matches!(r, Err(AppError::RateLimited { retry_after_s: 1 }));

    for _ in 0..3 {
        two.admit_caller(&a).await.unwrap();
    }
    let writes = || store.consumed().write_calls;
    let before = writes();
    assert!(
        limited(one.admit_caller(&a).await),
        "the burst was spent on the other instance"
    );
    assert_eq!(writes(), before + 1, "one (failed) write to learn it");
    for _ in 0..50 {
        assert!(limited(one.admit_caller(&a).await));
        assert!(limited(two.admit_caller(&a).await));
    }
    assert_eq!(writes(), before + 1, "the flood costs no write on either instance");
    one.admit_caller(&b).await.unwrap();

    clock.advance(time::Duration::milliseconds(500));
    one.admit_caller(&a).await.unwrap();
    assert!(limited(one.admit_caller(&a).await));
}
