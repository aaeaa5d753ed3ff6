//! API keys in memory.

use cashout_core::auth::{ApiKeyHash, ApiKeyRecord};
use cashout_core::ports::{ApiKeyStore, StoreError};

use super::MemoryStore;

impl ApiKeyStore for MemoryStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.state().api_keys.insert(record.hash.clone(), record.clone());
        Ok(())
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.state().api_keys.get(hash).cloned())
    }
}
