//! The emulators the test, bench and chaos commands start (DynamoDB Local and moto), found
//! through `CASHOUT_TEST_DYNAMODB_URL` and `CASHOUT_TEST_SQS_URL`, and a fresh table and queues
//! on them.

use cashout_store::resources;

/// The variable naming DynamoDB Local.
pub const DYNAMODB_URL: &str = "CASHOUT_TEST_DYNAMODB_URL";
/// The variable naming moto (SQS).
pub const SQS_URL: &str = "CASHOUT_TEST_SQS_URL";

/// The URL in variable `name`, or why it is missing.
pub fn url(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set: run through ./scripts/test, ./scripts/bench or ./scripts/chaos, which start the emulators"
        )
    })
}

/// The emulators, and a table and queues of its own on them.
pub struct EmulatorStack {
    /// DynamoDB Local.
    pub dynamodb_url: String,
    /// moto.
    pub sqs_url: String,
    /// A client of DynamoDB Local.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// A client of moto.
    pub sqs: aws_sdk_sqs::Client,
    /// The table and queues.
    pub created: resources::Created,
}

/// Connects to the emulators and creates a table and queues named after `prefix` (and a fresh
/// id, so that runs never share them).
pub async fn stack(prefix: &str) -> Result<EmulatorStack, String> {
    let (dynamodb_url, sqs_url) = (url(DYNAMODB_URL)?, url(SQS_URL)?);
    let dynamodb = aws_sdk_dynamodb::Client::new(&resources::emulator_config(&dynamodb_url).await);
    let sqs = aws_sdk_sqs::Client::new(&resources::emulator_config(&sqs_url).await);
    let stack = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
    let created = resources::create_all(&dynamodb, &sqs, &stack)
        .await
        .map_err(|e| e.to_string())?;
    Ok(EmulatorStack {
        dynamodb_url,
        sqs_url,
        dynamodb,
        sqs,
        created,
    })
}
