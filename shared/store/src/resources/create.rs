//! Creating the declared table and queues on an endpoint (the emulators, a scratch account).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::template::{AttributeSpec, Definition, IndexSpec, KeyElement};
use super::{ResourceError, local_name, template_error};
use crate::sqs::QueueUrls;

/// What [`create_all`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The table's name.
    pub table_name: String,
    /// Every queue's URL and its dead-letter queue's.
    pub queue_urls: QueueUrls,
}

/// Creates the table and every queue under the stack name `prefix` (existing ones are kept).
pub async fn create_all(
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<Created, ResourceError> {
    let def = Definition::embedded()?;
    Ok(Created {
        table_name: create_table(dynamodb, def, prefix).await?,
        queue_urls: create_queues(sqs, def, prefix).await?,
    })
}

fn dynamo_error(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> ResourceError {
    ResourceError::Dynamo {
        message: message.into(),
        source: Box::new(source),
    }
}

fn sqs_error(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> ResourceError {
    ResourceError::Sqs {
        message: message.into(),
        source: Box::new(source),
    }
}

fn key_elements(keys: &[KeyElement]) -> Result<Vec<KeySchemaElement>, ResourceError> {
    keys.iter()
        .map(|k| {
            let key_type = match k.key_type.as_str() {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => return Err(template_error(format!("key type {other}"))),
            };
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(key_type)
                .build()
                .map_err(|e| dynamo_error("key schema", e))
        })
        .collect()
}

/// Creates the table (with its indexes and TTL) as declared, named `<prefix>-<suffix>`; an
/// existing table of that name is kept. Waits until it is active (bounded).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    def: &Definition,
    prefix: &str,
) -> Result<String, ResourceError> {
    let spec = &def.table;
    let name = local_name(prefix, &spec.name_suffix);
    let attributes = attribute_definitions(&spec.attributes)?;
    let indexes = global_secondary_indexes(&spec.indexes)?;
    let created = client
        .create_table()
        .table_name(&name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_elements(&spec.key_schema)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table = %name, "created the table"),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {
            tracing::debug!(table = %name, "the table exists")
        }
        Err(e) => return Err(dynamo_error(format!("creating table {name}"), e)),
    }
    wait_until_active(client, &name).await?;
    if let Some(attr) = &spec.ttl_attribute {
        enable_ttl(client, &name, attr).await?;
    }
    Ok(name)
}

fn attribute_definitions(attributes: &[AttributeSpec]) -> Result<Vec<AttributeDefinition>, ResourceError> {
    attributes
        .iter()
        .map(|a| {
            let t = match a.attribute_type.as_str() {
                "S" => ScalarAttributeType::S,
                "N" => ScalarAttributeType::N,
                "B" => ScalarAttributeType::B,
                other => return Err(template_error(format!("attribute type {other}"))),
            };
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(t)
                .build()
                .map_err(|e| dynamo_error("attribute definition", e))
        })
        .collect()
}

fn global_secondary_indexes(indexes: &[IndexSpec]) -> Result<Vec<GlobalSecondaryIndex>, ResourceError> {
    indexes
        .iter()
        .map(|i| {
            let projection_type = match i.projection.projection_type.as_str() {
                "KEYS_ONLY" => ProjectionType::KeysOnly,
                "INCLUDE" => ProjectionType::Include,
                "ALL" => ProjectionType::All,
                other => return Err(template_error(format!("projection type {other}"))),
            };
            let projection = Projection::builder()
                .projection_type(projection_type)
                .set_non_key_attributes(
                    (!i.projection.non_key_attributes.is_empty()).then(|| i.projection.non_key_attributes.clone()),
                )
                .build();
            GlobalSecondaryIndex::builder()
                .index_name(&i.index_name)
                .set_key_schema(Some(key_elements(&i.key_schema)?))
                .projection(projection)
                .build()
                .map_err(|e| dynamo_error("index", e))
        })
        .collect()
}

/// Turns TTL on for `attribute` (already on is fine).
async fn enable_ttl(client: &aws_sdk_dynamodb::Client, name: &str, attribute: &str) -> Result<(), ResourceError> {
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .map_err(|e| dynamo_error("ttl", e))?;
    let updated = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await;
    // Enabling TTL twice is refused with a validation error: already enabled is fine.
    if let Err(e) = updated {
        let already = e
            .as_service_error()
            .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::message)
            .is_some_and(|m| m.contains("already enabled"));
        if !already {
            return Err(dynamo_error(format!("enabling TTL on {name}"), e));
        }
    }
    Ok(())
}

async fn wait_until_active(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), ResourceError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| dynamo_error(format!("describing table {name}"), e))?;
        let status = described.table().and_then(|t| t.table_status().cloned());
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(template_error(format!(
                "table {name} is not active after 60 s ({status:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates every queue and its dead-letter queue as declared, named `<prefix>-<suffix>`
/// (creating an existing queue with the same attributes is a no-op in SQS).
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    def: &Definition,
    prefix: &str,
) -> Result<QueueUrls, ResourceError> {
    let mut urls = QueueUrls::default();
    for spec in def.queues.values() {
        let dlq_name = local_name(prefix, &spec.dead_letter_name_suffix);
        let dlq_url = client
            .create_queue()
            .queue_name(&dlq_name)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                spec.dead_letter_retention.as_secs().to_string(),
            )
            .send()
            .await
            .map_err(|e| sqs_error(format!("creating queue {dlq_name}"), e))?
            .queue_url
            .ok_or_else(|| template_error(format!("no URL for {dlq_name}")))?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sqs_error(format!("reading the ARN of {dlq_name}"), e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| template_error(format!("no ARN for {dlq_name}")))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": spec.max_receive_count.to_string(),
        });
        let name = local_name(prefix, &spec.name_suffix);
        let url = client
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                spec.visibility_timeout.as_secs().to_string(),
            )
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                spec.retention.as_secs().to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| sqs_error(format!("creating queue {name}"), e))?
            .queue_url
            .ok_or_else(|| template_error(format!("no URL for {name}")))?;
        urls.insert(spec.queue, url, dlq_url);
    }
    Ok(urls)
}

/// An SDK configuration for a local emulator at `endpoint_url` (DynamoDB Local, moto): region
/// `us-east-1` and fixed dummy credentials, so that nothing reads the machine's AWS settings.
pub async fn emulator_config(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "emulator",
        ))
        .load()
        .await
}
