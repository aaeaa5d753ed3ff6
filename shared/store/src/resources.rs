//! The table and the queues, declared once in `infra/template.yaml` (embedded here, so binaries
//! need no file at run time), and created from that same declaration on any DynamoDB and SQS
//! endpoint: the local emulators, or a scratch account.
//!
//! The YAML is read with `serde_yaml_ng` (the maintained fork of the archived `serde_yaml`,
//! same API) because CloudFormation's short-form tags (`!Sub`, `!GetAtt`, `!Ref`) are custom YAML
//! tags: it keeps them as [`serde_yaml_ng::Value::Tagged`] instead of failing on them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use cashout_core::ports::QueueName;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::sqs::QueueUrls;

/// The SAM template, as built into this binary.
pub const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The template cannot be read, or a resource cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The template does not declare what cashout needs.
    #[error("infra/template.yaml: {0}")]
    Template(String),
    /// DynamoDB refused or failed.
    #[error("DynamoDB: {message}")]
    Dynamo {
        /// What was being done.
        message: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// SQS refused or failed.
    #[error("SQS: {message}")]
    Sqs {
        /// What was being done.
        message: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn template_error(message: impl Into<String>) -> ResourceError {
    ResourceError::Template(message.into())
}

/// One attribute of a key schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    /// The attribute.
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// An attribute used in a key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeSpec {
    /// Its name.
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexSpec {
    /// Its name.
    pub index_name: String,
    /// Its keys.
    pub key_schema: Vec<KeyElement>,
    /// What it projects.
    pub projection: ProjectionSpec,
}

/// The projection of an index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionSpec {
    /// `KEYS_ONLY`, `INCLUDE` or `ALL`.
    pub projection_type: String,
    /// With `INCLUDE`.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlSpec {
    attribute_name: String,
    enabled: bool,
}

/// The table as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The name after the stack prefix (`cashout`).
    pub name_suffix: String,
    /// Key attributes.
    pub attributes: Vec<AttributeSpec>,
    /// The table's keys.
    pub key_schema: Vec<KeyElement>,
    /// Its global secondary indexes.
    pub indexes: Vec<IndexSpec>,
    /// The TTL attribute, if TTL is enabled.
    pub ttl_attribute: Option<String>,
}

/// A queue as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Which cashout queue.
    pub queue: QueueName,
    /// The name after the stack prefix (`dispatch`).
    pub name_suffix: String,
    /// Default visibility timeout.
    pub visibility_timeout: Duration,
    /// How long messages are kept.
    pub retention: Duration,
    /// Receives after which a message goes to the dead-letter queue.
    pub max_receive_count: u32,
    /// The dead-letter queue's name after the stack prefix (`dispatch-dlq`).
    pub dead_letter_name_suffix: String,
    /// How long dead letters are kept.
    pub dead_letter_retention: Duration,
}

/// Everything the template declares for the store and the queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The table.
    pub table: TableSpec,
    /// The four queues.
    pub queues: BTreeMap<QueueName, QueueSpec>,
}

impl Definition {
    /// The definition built into this binary (parsed once).
    pub fn embedded() -> Result<&'static Definition, ResourceError> {
        static PARSED: OnceLock<Result<Definition, String>> = OnceLock::new();
        PARSED
            .get_or_init(|| Definition::parse(TEMPLATE).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| template_error(e.clone()))
    }

    /// Reads the definition from a template's text.
    pub fn parse(template: &str) -> Result<Definition, ResourceError> {
        let doc: Value = serde_yaml_ng::from_str(template).map_err(|e| template_error(format!("not YAML: {e}")))?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| template_error("no Resources"))?;
        let of_type = |t: &'static str| {
            resources
                .iter()
                .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(t))
                .filter_map(|(k, r)| Some((k.as_str()?, r)))
        };

        let mut tables = of_type("AWS::DynamoDB::Table");
        let (_, table) = tables.next().ok_or_else(|| template_error("no AWS::DynamoDB::Table"))?;
        if tables.next().is_some() {
            return Err(template_error("more than one table (single-table design)"));
        }
        let table = parse_table(table)?;

        let mut queues = BTreeMap::new();
        for (logical_id, resource) in of_type("AWS::SQS::Queue") {
            let props = properties(resource, logical_id)?;
            let Some(redrive) = props.get("RedrivePolicy") else {
                continue; // a dead-letter queue: read through its source queue
            };
            let suffix = stack_name_suffix(props.get("QueueName"), logical_id)?;
            let queue = QueueName::ALL
                .into_iter()
                .find(|q| q.as_str() == suffix)
                .ok_or_else(|| template_error(format!("{logical_id}: `{suffix}` is not a cashout queue")))?;
            let dlq_id = get_att_arn(redrive.get("deadLetterTargetArn"), logical_id)?;
            let dlq = resources
                .get(dlq_id.as_str())
                .ok_or_else(|| template_error(format!("{logical_id}: no resource {dlq_id}")))?;
            let dlq_props = properties(dlq, &dlq_id)?;
            let spec = QueueSpec {
                queue,
                name_suffix: suffix,
                visibility_timeout: seconds(props.get("VisibilityTimeout"), 30, logical_id)?,
                retention: seconds(props.get("MessageRetentionPeriod"), 345_600, logical_id)?,
                max_receive_count: redrive
                    .get("maxReceiveCount")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| template_error(format!("{logical_id}: maxReceiveCount")))?,
                dead_letter_name_suffix: stack_name_suffix(dlq_props.get("QueueName"), &dlq_id)?,
                dead_letter_retention: seconds(dlq_props.get("MessageRetentionPeriod"), 345_600, &dlq_id)?,
            };
            if queues.insert(queue, spec).is_some() {
                return Err(template_error(format!("queue {queue} declared twice")));
            }
        }
        if let Some(missing) = QueueName::ALL.into_iter().find(|q| !queues.contains_key(q)) {
            return Err(template_error(format!("no `{missing}` queue with a dead-letter queue")));
        }
        Ok(Definition { table, queues })
    }

    /// The declaration of one queue.
    pub fn queue(&self, queue: QueueName) -> Result<&QueueSpec, ResourceError> {
        self.queues
            .get(&queue)
            .ok_or_else(|| template_error(format!("no `{queue}` queue")))
    }
}

fn properties<'a>(resource: &'a Value, logical_id: &str) -> Result<&'a Value, ResourceError> {
    resource
        .get("Properties")
        .ok_or_else(|| template_error(format!("{logical_id}: no Properties")))
}

/// `!Sub "${AWS::StackName}-name"` → `name`.
fn stack_name_suffix(value: Option<&Value>, logical_id: &str) -> Result<String, ResourceError> {
    let bad = || {
        template_error(format!(
            "{logical_id}: the name must be !Sub \"${{AWS::StackName}}-<name>\""
        ))
    };
    match value {
        Some(Value::Tagged(t)) if t.tag == "Sub" => t
            .value
            .as_str()
            .and_then(|s| s.strip_prefix("${AWS::StackName}-"))
            .filter(|s| !s.is_empty() && !s.contains('$'))
            .map(str::to_owned)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// `!GetAtt Name.Arn` → `Name`.
fn get_att_arn(value: Option<&Value>, logical_id: &str) -> Result<String, ResourceError> {
    match value {
        Some(Value::Tagged(t)) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.strip_suffix(".Arn"))
            .map(str::to_owned)
            .ok_or_else(|| template_error(format!("{logical_id}: deadLetterTargetArn"))),
        _ => Err(template_error(format!(
            "{logical_id}: deadLetterTargetArn must be !GetAtt <Queue>.Arn"
        ))),
    }
}

fn seconds(value: Option<&Value>, default: u64, logical_id: &str) -> Result<Duration, ResourceError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| template_error(format!("{logical_id}: a duration must be whole seconds"))),
    }
}

fn parse_table(resource: &Value) -> Result<TableSpec, ResourceError> {
    let props = properties(resource, "table")?;
    let field = |name: &str| {
        props
            .get(name)
            .cloned()
            .ok_or_else(|| template_error(format!("table: no {name}")))
    };
    let decode = |name: &str| -> Result<Value, ResourceError> { field(name) };
    let attributes: Vec<AttributeSpec> = serde_yaml_ng::from_value(decode("AttributeDefinitions")?)
        .map_err(|e| template_error(format!("table AttributeDefinitions: {e}")))?;
    let key_schema: Vec<KeyElement> =
        serde_yaml_ng::from_value(decode("KeySchema")?).map_err(|e| template_error(format!("table KeySchema: {e}")))?;
    let indexes: Vec<IndexSpec> = match props.get("GlobalSecondaryIndexes") {
        None => Vec::new(),
        Some(v) => serde_yaml_ng::from_value(v.clone())
            .map_err(|e| template_error(format!("table GlobalSecondaryIndexes: {e}")))?,
    };
    let ttl_attribute = match props.get("TimeToLiveSpecification") {
        None => None,
        Some(v) => {
            let ttl: TtlSpec = serde_yaml_ng::from_value(v.clone())
                .map_err(|e| template_error(format!("table TimeToLiveSpecification: {e}")))?;
            ttl.enabled.then_some(ttl.attribute_name)
        }
    };
    Ok(TableSpec {
        name_suffix: stack_name_suffix(props.get("TableName"), "table")?,
        attributes,
        key_schema,
        indexes,
        ttl_attribute,
    })
}

/// The local name of a declared resource: `<prefix>-<suffix>`, as `${AWS::StackName}-<suffix>`
/// resolves on AWS with the stack named `prefix`.
pub fn local_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{suffix}")
}

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
    let attributes = spec
        .attributes
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
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = spec
        .indexes
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
        .collect::<Result<Vec<_>, _>>()?;
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
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(true)
            .build()
            .map_err(|e| dynamo_error("ttl", e))?;
        let updated = client
            .update_time_to_live()
            .table_name(&name)
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
    }
    Ok(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_template_declares_the_table_and_four_queues() {
        let def = Definition::embedded().unwrap();
        assert_eq!(def.table.name_suffix, "cashout");
        assert_eq!(def.table.ttl_attribute.as_deref(), Some("ttl"));
        let names: Vec<_> = def.table.indexes.iter().map(|i| i.index_name.as_str()).collect();
        assert_eq!(names, ["by-owner", "by-status", "due", "outbox"]);
        for q in QueueName::ALL {
            let spec = def.queue(q).unwrap();
            assert_eq!(spec.name_suffix, q.as_str());
            assert_eq!(spec.dead_letter_name_suffix, format!("{q}-dlq"));
            assert!(spec.max_receive_count >= 1);
            // ≥ 6 × the 30 s function timeout.
            assert!(spec.visibility_timeout >= Duration::from_secs(180));
        }
    }

    #[test]
    fn a_template_missing_a_queue_or_its_dead_letter_queue_is_refused() {
        let without_callbacks = TEMPLATE.replace("-callbacks\"", "-other\"");
        assert!(Definition::parse(&without_callbacks).is_err());
        let no_dlq = TEMPLATE.replace(
            "deadLetterTargetArn: !GetAtt PollDeadLetterQueue.Arn",
            "deadLetterTargetArn: arn:aws:sqs:us-east-1:000000000000:x",
        );
        assert!(Definition::parse(&no_dlq).is_err());
    }
}
