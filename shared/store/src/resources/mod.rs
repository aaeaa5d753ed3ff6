//! The table and the queues, declared once in `infra/template.yaml` (embedded here, so binaries
//! need no file at run time), and created from that same declaration on any DynamoDB and SQS
//! endpoint: the local emulators, or a scratch account. [`Definition`] reads the template
//! (`template.rs`); [`create_all`] creates what it declares (`create.rs`).

mod create;
mod template;

pub use create::{Created, create_all, create_queues, create_table, emulator_config};
pub use template::{AttributeSpec, Definition, IndexSpec, KeyElement, ProjectionSpec, QueueSpec, TableSpec};

/// The SAM template, as built into this binary.
pub const TEMPLATE: &str = include_str!("../../../../infra/template.yaml");

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

/// The local name of a declared resource: `<prefix>-<suffix>`, as `${AWS::StackName}-<suffix>`
/// resolves on AWS with the stack named `prefix`.
pub fn local_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{suffix}")
}
