//! What the functions run against: a fresh table and queues on the emulators (with the sample
//! events' API keys in it), the provider simulator, a webhook receiver, and each function's
//! environment pointing at them, as the template sets it.

use std::sync::Arc;

use cashout_core::provider::ProviderName;
use cashout_system::receiver::{Mode, Receiver};
use cashout_system::workload::sim_provider;
use serde_json::{Value, json};

use crate::bench::{BenchError, fail};

/// The template's `MemorySize`.
const MEMORY_SIZE_MB: u32 = 256;
/// The merchant key of the sample API events (`events/api/*.json`).
const SAMPLE_MERCHANT_KEY: &str = "sk_local_merchant";
/// Its merchant.
const SAMPLE_MERCHANT: &str = "merchant_local";
/// The operator key of the sample API events.
const SAMPLE_OPERATOR_KEY: &str = "sk_local_operator";

/// The emulators' resources, the provider simulator and a webhook receiver, and the functions'
/// environment pointing at them.
pub(super) struct Environment {
    common: Vec<(String, String)>,
    sim: cashout_provider_sim::SimHandle,
    /// Where the API's endpoint delivers.
    pub receiver: Receiver,
}

impl Environment {
    pub async fn start() -> Result<Environment, BenchError> {
        let cashout_system::emulators::EmulatorStack {
            dynamodb_url,
            sqs_url,
            dynamodb,
            created,
            ..
        } = cashout_system::emulators::stack("footprint")
            .await
            .map_err(BenchError)?;
        register_sample_keys(dynamodb, &created.table_name).await?;
        let sim = cashout_provider_sim::start(
            cashout_provider_sim::SimConfig::default(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?,
        )
        .await
        .map_err(fail)?;
        let receiver = Receiver::start(Mode::Count, 7).await.map_err(fail)?;
        let common = common_vars(&dynamodb_url, &sqs_url, &created, &sim)?;
        Ok(Environment { common, sim, receiver })
    }

    /// The environment of function `name`.
    pub fn vars(&self, name: &str) -> Vec<(String, String)> {
        let mut vars = self.common.clone();
        vars.push(("AWS_LAMBDA_FUNCTION_NAME".into(), name.to_owned()));
        vars.push(("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{name}")));
        vars
    }

    pub async fn stop(self) {
        self.sim.shutdown().await;
    }
}

/// The sample events' keys, as `cashout-local` registers them.
async fn register_sample_keys(dynamodb: aws_sdk_dynamodb::Client, table: &str) -> Result<(), BenchError> {
    use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
    use cashout_core::ids::MerchantId;
    use cashout_core::ports::ApiKeyStore;

    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    let store = cashout_store::dynamo::DynamoStore::new(dynamodb, table.to_owned(), clock);
    let now = time::OffsetDateTime::now_utc();
    for (key, principal) in [
        (
            SAMPLE_MERCHANT_KEY,
            Principal::Merchant {
                merchant_id: MerchantId::new(SAMPLE_MERCHANT).map_err(fail)?,
            },
        ),
        (SAMPLE_OPERATOR_KEY, Principal::admin("ops")),
    ] {
        store
            .put_api_key(&ApiKeyRecord {
                hash: ApiKey::new(key).hash(),
                principal,
                label: Some("footprint".into()),
                created_at: now,
            })
            .await
            .map_err(fail)?;
    }
    Ok(())
}

/// What every function's environment holds: region and credentials, the emulators, the table
/// and queues, the providers, Lambda's own variables.
fn common_vars(
    dynamodb_url: &str,
    sqs_url: &str,
    created: &cashout_store::resources::Created,
    sim: &cashout_provider_sim::SimHandle,
) -> Result<Vec<(String, String)>, BenchError> {
    use cashout_core::ports::QueueName;
    use cashout_store::aws::queue_variable;

    let mut common: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_url),
        ("AWS_ENDPOINT_URL_SQS", sqs_url),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "footprint"),
        ("RUST_LOG", "info"),
        ("CASHOUT_TABLE", created.table_name.as_str()),
        // Nothing listens there: the D24 simulator's notifications are refused at once and
        // the poller's on-demand polls do the work.
        ("CASHOUT_NOTIFICATION_BASE_URL", "http://127.0.0.1:9"),
        ("CASHOUT_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    common.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), MEMORY_SIZE_MB.to_string()));
    for queue in QueueName::ALL {
        let url = created
            .queue_urls
            .url(queue)
            .ok_or_else(|| BenchError(format!("no {queue} queue was created")))?;
        common.push((queue_variable(queue).to_owned(), url.to_owned()));
    }
    common.push(("CASHOUT_PROVIDERS".into(), providers_json(sim).to_string()));
    // A key file seals the endpoints' secrets (KMS on AWS), one per table.
    let key_file = std::env::temp_dir().join(format!("{}.key", created.table_name));
    common.push(("CASHOUT_KEY_FILE".into(), key_file.display().to_string()));
    Ok(common)
}

/// `CASHOUT_PROVIDERS` for the simulator (the settings document of `infra/local.env`).
fn providers_json(sim: &cashout_provider_sim::SimHandle) -> Value {
    use cashout_providers::simulator;
    let d24 = |name: ProviderName, (login, pass, secret): (&str, &str, &str)| json!({ "base_url": sim.base_url(sim_provider(name)), "login": login, "pass": pass, "api_secret": secret });
    let (account, key, secret, public_key) = simulator::CASCAD;
    json!({
        "d24": d24(ProviderName::D24, simulator::D24),
        "onspot": d24(ProviderName::Onspot, simulator::ONSPOT),
        "tupay": d24(ProviderName::Tupay, simulator::TUPAY),
        "cascad": {
            "base_url": sim.base_url(sim_provider(ProviderName::Cascad)), "account_id": account, "api_key": key,
            "callback_secret": secret, "public_key": public_key,
            "services": ["test_usd", "test_eur", "test_gbp", "card", "bank_transfer_zar", "swift_jpy"],
        },
    })
}
