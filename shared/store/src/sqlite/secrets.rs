//! The embedded store's key file (`<database stem>.key` beside the database, `cashout.key` for
//! `cashout.sqlite3`) and the sealing, at open, of signing secrets stored before sealing.
//!
//! At open: a key file is loaded, or created on first start, but never created where the
//! database already holds sealed secrets (a new key would silently lose them all: the store
//! refuses to start and says to restore the file); secrets sealed by another key file refuse the
//! start too; secrets still in clear are sealed, all in one transaction (idempotent: a second
//! open finds none).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cashout_core::ports::StoreError;
use rusqlite::{Connection, params};

use super::sql_error;
use crate::endpoints::{seal_stored_now, stored_secrets};
use crate::sealing::{KeyFile, Sealer, SealingError, is_sealed, sealed_key_id};

/// Where the key file of the database at `database` lives.
pub(crate) fn key_path(database: &Path) -> PathBuf {
    database.with_extension("key")
}

fn refused(message: String) -> StoreError {
    StoreError::Invalid { message, source: None }
}

fn key_error(e: SealingError) -> StoreError {
    StoreError::Invalid {
        message: "the key file of signing secrets".into(),
        source: Some(e.into()),
    }
}

/// Loads or creates the key of the database on `conn`, and seals the secrets stored in clear.
///
/// The clear texts replaced are overwritten in the file (`secure_delete` while sealing) and the
/// write-ahead log is truncated after, so no copy of them is left in the database's files.
pub(crate) fn prepare(conn: &Connection, key_path: &Path) -> Result<Sealer, StoreError> {
    conn.execute_batch("PRAGMA secure_delete = ON; BEGIN IMMEDIATE")
        .map_err(sql_error)?;
    let prepared = seal_stored(conn, key_path);
    let end = if prepared.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(sql_error)?;
    conn.execute_batch("PRAGMA secure_delete = OFF").map_err(sql_error)?;
    let (sealer, sealed) = prepared?;
    if sealed > 0 {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_error)?;
    }
    Ok(sealer)
}

/// The sealer, and how many endpoints had secrets sealed now.
fn seal_stored(conn: &Connection, key_path: &Path) -> Result<(Sealer, usize), StoreError> {
    let rows = conn
        .prepare("SELECT merchant_id, id, body FROM endpoints")
        .map_err(sql_error)?
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut sealed_by = BTreeSet::new();
    let mut sealed = 0usize;
    let mut clear = Vec::new();
    for (merchant, id, body) in rows {
        let secrets = stored_secrets(&body)?;
        for text in secrets.iter().filter(|t| is_sealed(t)) {
            sealed += 1;
            // A malformed one is reported when its endpoint is read, not here.
            sealed_by.extend(sealed_key_id(text));
        }
        if secrets.iter().any(|t| !is_sealed(t)) {
            clear.push((merchant, id, body));
        }
    }
    let key = match KeyFile::load(key_path).map_err(key_error)? {
        Some(key) => key,
        None if sealed > 0 => {
            return Err(refused(format!(
                "the key file {} is missing, but the database holds {sealed} sealed signing secrets: \
                 restore the key file from its backup (docs/store.md); a new key would lose them all",
                key_path.display()
            )));
        }
        None => KeyFile::create(key_path).map_err(key_error)?,
    };
    let held = format!("file:{}", key.id());
    if let Some(other) = sealed_by.iter().find(|k| **k != held) {
        return Err(refused(format!(
            "the database holds signing secrets sealed with {other}, but the key file {} is {held}: \
             the wrong key file (restore the right one from its backup)",
            key_path.display()
        )));
    }
    if !clear.is_empty() {
        let mut update = conn
            .prepare("UPDATE endpoints SET body = ?3 WHERE merchant_id = ?1 AND id = ?2")
            .map_err(sql_error)?;
        for (merchant, id, body) in &clear {
            if let Some(body) = seal_stored_now(body, |text, bound_to| key.seal(text, bound_to))? {
                update.execute(params![merchant, id, body]).map_err(sql_error)?;
            }
        }
        tracing::info!(endpoints = clear.len(), "sealed the signing secrets stored in clear");
    }
    Ok((Sealer::from(key), clear.len()))
}
