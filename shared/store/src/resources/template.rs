//! Reading the template: the table and the four queues with their dead-letter queues, as
//! declared.
//!
//! The YAML is read with `serde_yaml_ng` (the maintained fork of the archived `serde_yaml`,
//! same API) because CloudFormation's short-form tags (`!Sub`, `!GetAtt`, `!Ref`) are custom YAML
//! tags: it keeps them as [`serde_yaml_ng::Value::Tagged`] instead of failing on them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use cashout_core::ports::QueueName;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{ResourceError, TEMPLATE, template_error};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_template_declares_the_table_and_four_queues() {
        let def = Definition::embedded().unwrap();
        assert_eq!(def.table.name_suffix, "cashout");
        assert_eq!(def.table.ttl_attribute.as_deref(), Some("ttl"));
        let names: Vec<_> = def.table.indexes.iter().map(|i| i.index_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "by-owner",
                "by-status",
                "due",
                "outbox",
                "by-day",
                "work",
                "attention",
                "dead-letters"
            ]
        );
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
