//! Credentials in the embedded database, for one instance: survive a restart, so the
//! tokens already fetched are reused instead of spending quota.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};
use wxgate_client::credential::StoreFuture;
use wxgate_client::{Credential, CredentialStore};

use crate::storage::{Db, StoreError};

const CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");

/// A [`CredentialStore`] in `data_dir/wxgate.redb`. Single process: its refresh lease
/// is always granted (the center's single-flight serialises refreshes).
#[derive(Debug)]
pub struct RedbStore {
    db: Arc<Db>,
    fence: AtomicU64,
}

impl RedbStore {
    /// The credential store inside an opened database.
    ///
    /// # Errors
    /// The table cannot be created.
    pub fn new(db: Arc<Db>) -> Result<RedbStore, StoreError> {
        db.write(|database| {
            let txn = database.begin_write()?;
            txn.open_table(CREDENTIALS)?;
            txn.commit()?;
            Ok(())
        })?;
        Ok(RedbStore {
            db,
            fence: AtomicU64::new(0),
        })
    }

    pub(crate) fn read(&self, key: &str) -> Result<Option<Credential>, StoreError> {
        self.db.with(|database| {
            let txn = database.begin_read()?;
            let table = txn.open_table(CREDENTIALS)?;
            let Some(value) = table.get(key)? else {
                return Ok(None);
            };
            Ok(Some(serde_json::from_slice(value.value())?))
        })
    }

    pub(crate) fn write(&self, key: &str, credential: &Credential) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(credential)?;
        self.db.write(|database| {
            let txn = database.begin_write()?;
            {
                let mut table = txn.open_table(CREDENTIALS)?;
                table.insert(key, bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
    }
}

impl CredentialStore for RedbStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let result = self.read(key).map_err(|e| e.to_string());
        Box::pin(async move { result })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        _fence: u64,
    ) -> StoreFuture<'a, ()> {
        let result = self.write(key, credential).map_err(|e| e.to_string());
        Box::pin(async move { result })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        let fence = self.fence.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Ok(Some(fence)) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, _fence: u64) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "redb"
    }
    fn shared(&self) -> bool {
        false
    }
}
