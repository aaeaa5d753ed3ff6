//! API keys on SQLite.

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::ports::{ApiKeyStore, StoreError};
use rusqlite::OptionalExtension;

use super::{SqliteStore, sql_error};
use crate::codec::{from_json, to_json};

impl ApiKeyStore for SqliteStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let hash = record.hash.as_str().to_owned();
        let body = to_json(record, "API key")?;
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO api_keys (hash, body) VALUES (?1, ?2)
                 ON CONFLICT (hash) DO UPDATE SET body = ?2",
            )
            .map_err(sql_error)?
            .execute([hash, body])
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM api_keys WHERE hash = ?1")
                .map_err(sql_error)?
                .query_row([hash], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sql_error)?
                .map(|b| from_json(&b, "API key"))
                .transpose()
        })
        .await
    }
}
