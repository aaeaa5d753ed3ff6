//! The AWS deployment as a function sees it at cold start: the table and queues the template
//! passes in the environment, clients built once, and the provider settings read from SSM
//! Parameter Store (a `SecureString`), never from plain environment variables.
//!
//! | variable | what |
//! |---|---|
//! | `CASHOUT_TABLE` | the DynamoDB table |
//! | `CASHOUT_KMS_KEY_ID` | the KMS key that wraps the data keys of endpoint signing secrets (required on AWS) |
//! | `CASHOUT_KEY_FILE` | instead, a key file that wraps them, for local runs only (`cargo lambda watch`; created if absent) |
//! | `CASHOUT_QUEUE_DISPATCH`, `CASHOUT_QUEUE_POLL`, `CASHOUT_QUEUE_PROVIDER_EVENTS`, `CASHOUT_QUEUE_CALLBACKS` | queue URLs (a function gets those it sends to) |
//! | `CASHOUT_PROVIDERS_PARAMETER` | name of the SSM parameter holding the provider settings (JSON) |
//! | `CASHOUT_PROVIDERS` | the provider settings themselves, for local runs only (`cargo lambda watch`) |

use std::sync::Arc;

use cashout_core::ports::{Clock, QueueName};

use crate::dynamo::DynamoStore;
use crate::sealing::{KeyFile, Kms, Sealer, SealingError};
use crate::sqs::{QueueUrls, SqsQueue};

/// A setting that is missing or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// The key file of `CASHOUT_KEY_FILE` cannot be used.
    #[error(transparent)]
    KeyFile(#[from] SealingError),
    /// The provider settings parameter could not be read.
    #[error("reading SSM parameter {name}: {source}")]
    Parameter {
        /// The parameter's name.
        name: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The environment variable of a queue's URL.
pub fn queue_variable(queue: QueueName) -> &'static str {
    match queue {
        QueueName::Dispatch => "CASHOUT_QUEUE_DISPATCH",
        QueueName::Poll => "CASHOUT_QUEUE_POLL",
        QueueName::ProviderEvents => "CASHOUT_QUEUE_PROVIDER_EVENTS",
        QueueName::Callbacks => "CASHOUT_QUEUE_CALLBACKS",
    }
}

/// The store, the queues and the SDK configuration of a deployment.
pub struct Deployment {
    /// The SDK configuration (region, credentials, endpoints) from the standard sources.
    pub sdk: aws_config::SdkConfig,
    /// The table.
    pub store: DynamoStore,
    /// The queues this function was given.
    pub queue: SqsQueue,
}

impl Deployment {
    /// Builds the clients from the standard AWS configuration and the variables above.
    pub async fn from_env(clock: Arc<dyn Clock>) -> Result<Self, DeploymentError> {
        let sdk = aws_config::load_from_env().await;
        let table = std::env::var("CASHOUT_TABLE").map_err(|_| DeploymentError::Missing("CASHOUT_TABLE"))?;
        // Required: without a key endpoint secrets could not be written (nor read) at all.
        let sealer = match (std::env::var("CASHOUT_KMS_KEY_ID"), std::env::var("CASHOUT_KEY_FILE")) {
            (Ok(kms_key), _) => Sealer::from(Kms::from_sdk(&sdk, kms_key)),
            (Err(_), Ok(path)) => Sealer::from(KeyFile::load_or_create(std::path::Path::new(&path))?),
            (Err(_), Err(_)) => return Err(DeploymentError::Missing("CASHOUT_KMS_KEY_ID")),
        };
        let mut urls = QueueUrls::default();
        for queue in QueueName::ALL {
            if let Ok(url) = std::env::var(queue_variable(queue)) {
                // Dead-letter queues are read by operators and alarms, not by the functions.
                urls.insert(queue, url, String::new());
            }
        }
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, clock.clone()).with_sealer(sealer);
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), urls, clock);
        Ok(Deployment { sdk, store, queue })
    }

    /// The provider settings: the SSM `SecureString` named by `CASHOUT_PROVIDERS_PARAMETER`
    /// (decrypted), or `CASHOUT_PROVIDERS` for local runs.
    pub async fn provider_settings(&self) -> Result<String, DeploymentError> {
        if let Ok(name) = std::env::var("CASHOUT_PROVIDERS_PARAMETER") {
            let answer = aws_sdk_ssm::Client::new(&self.sdk)
                .get_parameter()
                .name(&name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| DeploymentError::Parameter {
                    name: name.clone(),
                    source: Box::new(e),
                })?;
            return answer
                .parameter
                .and_then(|p| p.value)
                .ok_or(DeploymentError::Parameter {
                    name,
                    source: "the parameter has no value".into(),
                });
        }
        std::env::var("CASHOUT_PROVIDERS").map_err(|_| DeploymentError::Missing("CASHOUT_PROVIDERS_PARAMETER"))
    }
}
