//! `cashout-admin`: administration of a cashout store. For now: issue API keys (shown once,
//! stored as a SHA-256 hash), on the embedded store or on a deployment's DynamoDB table.

use std::path::PathBuf;
use std::sync::Arc;

use cashout_core::auth::{ApiKey, ApiKeyRecord, Principal};
use cashout_core::ids::MerchantId;
use cashout_core::ports::{ApiKeyStore, Clock, IdGenerator, SystemClock, SystemIds};
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
        /// …or an operator key.
        #[arg(long)]
        operator: bool,
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Args::parse().command {
        Command::CreateApiKey {
            merchant_id,
            operator,
            label,
            data_dir,
            table,
        } => create_api_key(merchant_id, operator, label, data_dir, table).await,
        Command::BackfillDayIndex { table, page } => backfill_day_index(table, page).await,
    }
}

async fn backfill_day_index(table: String, page: u32) -> std::process::ExitCode {
    let aws = aws_config::load_from_env().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = cashout_store::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table, clock);
    let result = store
        .backfill_day_index(page, |r| {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "scanned {} pages: {} events without an entry, {} given one",
                    r.pages, r.found, r.updated
                );
            }
        })
        .await;
    match result {
        Ok(r) => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{} events given their by-day entry ({} found without)",
                    r.updated, r.found
                );
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn create_api_key(
    merchant_id: Option<String>,
    operator: bool,
    label: Option<String>,
    data_dir: PathBuf,
    table: Option<String>,
) -> std::process::ExitCode {
    let principal = match (merchant_id, operator) {
        (Some(m), false) => match MerchantId::new(m) {
            Ok(merchant_id) => Principal::Merchant { merchant_id },
            Err(e) => return fail(e),
        },
        _ => Principal::Operator,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let prefix = if matches!(principal, Principal::Operator) {
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
    let stored = match table {
        Some(table) => {
            let aws = aws_config::load_from_env().await;
            let store = cashout_store::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table, clock);
            store.put_api_key(&record).await
        }
        None => match cashout_store::sqlite::SqliteStore::open(&data_dir.join("cashout.sqlite3"), clock) {
            Ok(store) => store.put_api_key(&record).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = stored {
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
