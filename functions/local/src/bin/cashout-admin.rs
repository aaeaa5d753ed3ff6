//! `cashout-admin`: administration of a cashout store, on the embedded store or on a
//! deployment's DynamoDB table: named operators (create, revoke), API keys (shown once, stored
//! as a SHA-256 hash), and the by-day index backfill.

use std::path::PathBuf;
use std::sync::Arc;

use cashout_core::auth::{ApiKey, ApiKeyRecord, OperatorName, OperatorRecord, OperatorRole, Principal};
use cashout_core::ids::MerchantId;
use cashout_core::ports::{ApiKeyStore, Clock, IdGenerator, PeopleStore, StoreError, SystemClock, SystemIds};
use cashout_store::dynamo::BackfillReport;
use clap::{Parser, Subcommand};

/// Administer cashout.
#[derive(Debug, Parser)]
#[command(name = "cashout-admin", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates an API key and prints it (the only time it is shown).
    CreateApiKey {
        /// A merchant key for this merchant…
        #[arg(long, conflicts_with = "operator", required_unless_present = "operator")]
        merchant_id: Option<String>,
        /// …or a key of the operator named by `--name` (an existing operator; without `--name`,
        /// the admin `operator` of keys made before operators had names).
        #[arg(long)]
        operator: bool,
        /// With `--operator`: whose key.
        #[arg(long, requires = "operator")]
        name: Option<String>,
        /// A name for people.
        #[arg(long)]
        label: Option<String>,
        /// The embedded store's data directory (as `cashout-local --data-dir`).
        #[arg(long, default_value = ".cashout", conflicts_with = "table")]
        data_dir: PathBuf,
        /// A DynamoDB table (a deployment's `TableName` output), through the standard AWS
        /// configuration.
        #[arg(long)]
        table: Option<String>,
    },
    /// Creates a named operator with a role and prints their first API key (the only time it is
    /// shown).
    CreateOperator {
        /// 1 to 64 lowercase letters, digits, `.`, `_` or `-`.
        #[arg(long)]
        name: String,
        /// `reviewer` (approve, reject, exclude, hold) or `admin` (also routing rules, policies,
        /// operators, retries, redeliveries, reconciliations).
        #[arg(long)]
        role: String,
        /// The embedded store's data directory (as `cashout-local --data-dir`).
        #[arg(long, default_value = ".cashout", conflicts_with = "table")]
        data_dir: PathBuf,
        /// A DynamoDB table (a deployment's `TableName` output).
        #[arg(long)]
        table: Option<String>,
    },
    /// Revokes an operator: none of their keys works any more (console sessions end at their
    /// next page).
    RevokeOperator {
        /// The operator.
        #[arg(long)]
        name: String,
        /// The embedded store's data directory (as `cashout-local --data-dir`).
        #[arg(long, default_value = ".cashout", conflicts_with = "table")]
        data_dir: PathBuf,
        /// A DynamoDB table (a deployment's `TableName` output).
        #[arg(long)]
        table: Option<String>,
    },
    /// Gives every status event written before the `by-day` index its entry, so that statements
    /// and reconciliations see periods from before the upgrade (DynamoDB only: the embedded
    /// store indexes its old events itself when it opens). Idempotent; run it once after
    /// deploying the upgrade.
    BackfillDayIndex {
        /// The DynamoDB table (a deployment's `TableName` output), through the standard AWS
        /// configuration.
        #[arg(long)]
        table: String,
        /// Items per `Scan` call (1 to 1000).
        #[arg(long, default_value_t = 500)]
        page: u32,
    },
    /// Gives every request written before the operators' work lists (review queue, processor
    /// errors, attention) its index attributes, so that requests waiting since before the upgrade
    /// show in the console (DynamoDB only: the embedded store fills them when it opens).
    /// Idempotent; run it once after deploying the upgrade.
    /// Seals the signing secrets of webhook endpoints stored in clear before secrets were sealed
    /// (DynamoDB; the embedded store seals them itself when it opens), with the KMS key of
    /// `--kms-key-id` (the stack's `SigningSecretsKey`). Idempotent; run it once after deploying
    /// the upgrade.
    SealSecrets {
        /// The DynamoDB table (a deployment's `TableName` output), through the standard AWS
        /// configuration.
        #[arg(long)]
        table: String,
        /// The KMS key that seals them (id, ARN or alias).
        #[arg(long, env = "CASHOUT_KMS_KEY_ID")]
        kms_key_id: String,
        /// Items per `Scan` call (1 to 1000).
        #[arg(long, default_value_t = 500)]
        page: u32,
    },
    /// Gives every status event written before `GET /v1/events` its entry in the merchant's
    /// listing (DynamoDB only: the embedded store fills it when it opens). Idempotent; run it
    /// once after deploying the upgrade.
    BackfillEventIndex {
        /// The DynamoDB table (a deployment's `TableName` output), through the standard AWS
        /// configuration.
        #[arg(long)]
        table: String,
        /// Items per `Scan` call (1 to 1000).
        #[arg(long, default_value_t = 500)]
        page: u32,
    },
    BackfillWorkIndex {
        /// The DynamoDB table (a deployment's `TableName` output), through the standard AWS
        /// configuration.
        #[arg(long)]
        table: String,
        /// Items per `Scan` call (1 to 1000).
        #[arg(long, default_value_t = 500)]
        page: u32,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Args::parse().command {
        Command::CreateApiKey {
            merchant_id,
            operator,
            name,
            label,
            data_dir,
            table,
        } => create_api_key(merchant_id, operator, name, label, data_dir, table).await,
        Command::CreateOperator {
            name,
            role,
            data_dir,
            table,
        } => create_operator(name, role, data_dir, table).await,
        Command::RevokeOperator { name, data_dir, table } => revoke_operator(name, data_dir, table).await,
        Command::BackfillDayIndex { table, page } => {
            let (store, _) = dynamo(table).await;
            migrate("events without a by-day entry", async |p| {
                store.backfill_day_index(page, p).await
            })
            .await
        }
        Command::BackfillWorkIndex { table, page } => {
            let (store, _) = dynamo(table).await;
            migrate("waiting requests without their work-list entries", async |p| {
                store.backfill_work_index(page, p).await
            })
            .await
        }
        Command::BackfillEventIndex { table, page } => {
            let (store, _) = dynamo(table).await;
            migrate("events without a listing entry", async |p| {
                store.backfill_event_owner_index(page, p).await
            })
            .await
        }
        Command::SealSecrets {
            table,
            kms_key_id,
            page,
        } => {
            use cashout_store::sealing::{Kms, Sealer};
            let (store, aws) = dynamo(table).await;
            let store = store.with_sealer(Sealer::from(Kms::from_sdk(&aws, kms_key_id)));
            migrate("endpoints with secrets in clear", async |p| {
                store.seal_clear_secrets(page, p).await
            })
            .await
        }
    }
}

/// A deployment's table, through the standard AWS configuration.
async fn dynamo(table: String) -> (cashout_store::dynamo::DynamoStore, aws_config::SdkConfig) {
    let aws = aws_config::load_from_env().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = cashout_store::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table, clock);
    (store, aws)
}

/// Runs one upgrade migration of a table (`cashout-admin backfill-…`, `seal-secrets`): tells the
/// progress after each scanned page and the outcome at the end; `items` names what it migrates.
async fn migrate(
    items: &str,
    run: impl AsyncFnOnce(&mut dyn FnMut(&BackfillReport)) -> Result<BackfillReport, StoreError>,
) -> std::process::ExitCode {
    let mut progress = |r: &BackfillReport| {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "scanned {} pages: {} {items} to migrate, {} migrated",
                r.pages, r.found, r.updated
            );
        }
    };
    match run(&mut progress).await {
        Ok(r) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{} {items} migrated ({} found)", r.updated, r.found);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The store named by `--table` (DynamoDB) or `--data-dir` (embedded).
enum AdminStore {
    Dynamo(cashout_store::dynamo::DynamoStore),
    Sqlite(cashout_store::sqlite::SqliteStore),
}

impl AdminStore {
    async fn open(data_dir: PathBuf, table: Option<String>, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Ok(match table {
            Some(table) => {
                let aws = aws_config::load_from_env().await;
                AdminStore::Dynamo(cashout_store::dynamo::DynamoStore::new(
                    aws_sdk_dynamodb::Client::new(&aws),
                    table,
                    clock,
                ))
            }
            None => AdminStore::Sqlite(cashout_store::sqlite::SqliteStore::open(
                &data_dir.join("cashout.sqlite3"),
                clock,
            )?),
        })
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        match self {
            AdminStore::Dynamo(s) => s.put_api_key(record).await,
            AdminStore::Sqlite(s) => s.put_api_key(record).await,
        }
    }

    async fn get_operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, StoreError> {
        match self {
            AdminStore::Dynamo(s) => s.get_operator(name).await,
            AdminStore::Sqlite(s) => s.get_operator(name).await,
        }
    }

    async fn put_operator(&self, record: &OperatorRecord, expected: u64) -> Result<(), StoreError> {
        match self {
            AdminStore::Dynamo(s) => s.put_operator(record, expected).await,
            AdminStore::Sqlite(s) => s.put_operator(record, expected).await,
        }
    }
}

async fn create_operator(
    name: String,
    role: String,
    data_dir: PathBuf,
    table: Option<String>,
) -> std::process::ExitCode {
    let name = match OperatorName::new(name) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let role: OperatorRole = match role.parse() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let store = match AdminStore::open(data_dir, table, clock).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let record = OperatorRecord::new(name.clone(), role, cashout_app::CREATED_OUTSIDE_THE_API, now);
    match store.put_operator(&record, 0).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => return fail(format!("an operator named `{name}` exists already")),
        Err(e) => return fail(e),
    }
    let key = format!("sk_op_{}", hex(&SystemIds.secret_bytes()));
    let key_record = ApiKeyRecord {
        hash: ApiKey::new(key.clone()).hash(),
        principal: Principal::operator(name, role),
        label: Some("operator key (cashout-admin)".into()),
        created_at: now,
    };
    if let Err(e) = store.put_api_key(&key_record).await {
        return fail(e);
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{key}");
    }
    std::process::ExitCode::SUCCESS
}

async fn revoke_operator(name: String, data_dir: PathBuf, table: Option<String>) -> std::process::ExitCode {
    let name = match OperatorName::new(name) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let store = match AdminStore::open(data_dir, table, clock).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    for _ in 0..3 {
        let current = match store.get_operator(&name).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let Some((record, expected)) =
            OperatorRecord::revocation(&name, current.as_ref(), cashout_app::CREATED_OUTSIDE_THE_API, now)
        else {
            #[allow(clippy::print_stdout)]
            {
                println!("operator `{name}` was already revoked");
            }
            return std::process::ExitCode::SUCCESS;
        };
        match store.put_operator(&record, expected).await {
            Ok(()) => {
                #[allow(clippy::print_stdout)]
                {
                    println!("operator `{name}` revoked");
                }
                return std::process::ExitCode::SUCCESS;
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return fail(e),
        }
    }
    fail("the operator kept changing; try again")
}

async fn create_api_key(
    merchant_id: Option<String>,
    operator: bool,
    name: Option<String>,
    label: Option<String>,
    data_dir: PathBuf,
    table: Option<String>,
) -> std::process::ExitCode {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = match AdminStore::open(data_dir, table, clock.clone()).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let principal = match (merchant_id, operator) {
        (Some(m), false) => match MerchantId::new(m) {
            Ok(merchant_id) => Principal::Merchant { merchant_id },
            Err(e) => return fail(e),
        },
        _ => match name {
            Some(name) => {
                let name = match OperatorName::new(name) {
                    Ok(n) => n,
                    Err(e) => return fail(e),
                };
                match store.get_operator(&name).await {
                    Ok(Some(op)) if op.revoked_at.is_none() => Principal::operator(name, op.role),
                    Ok(Some(_)) => return fail(format!("operator `{name}` is revoked")),
                    Ok(None) => return fail(format!("no operator named `{name}`: create-operator first")),
                    Err(e) => return fail(e),
                }
            }
            None => Principal::admin("operator"),
        },
    };
    let prefix = if matches!(principal, Principal::Operator { .. }) {
        "sk_op_"
    } else {
        "sk_"
    };
    let key = format!("{prefix}{}", hex(&SystemIds.secret_bytes()));
    let record = ApiKeyRecord {
        hash: ApiKey::new(key.clone()).hash(),
        principal,
        label,
        created_at: clock.now(),
    };
    if let Err(e) = store.put_api_key(&record).await {
        return fail(e);
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{key}");
    }
    std::process::ExitCode::SUCCESS
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail(e: impl std::fmt::Display) -> std::process::ExitCode {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("cashout-admin: {e}");
    }
    std::process::ExitCode::FAILURE
}
