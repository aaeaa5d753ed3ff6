//! API keys on DynamoDB.

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::ports::{ApiKeyStore, StoreError};

use super::DynamoStore;
use super::items::{BODY, api_key_key, get_s, s};
use crate::codec::{from_json, to_json};

impl ApiKeyStore for DynamoStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut item = api_key_key(record.hash.as_str());
        item.insert(BODY.into(), s(to_json(record, "API key")?));
        self.put_plain("write an API key", item).await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_item("read an API key", api_key_key(hash.as_str()))
            .await?
            .map(|item| from_json(get_s(&item, BODY)?, "API key"))
            .transpose()
    }
}
