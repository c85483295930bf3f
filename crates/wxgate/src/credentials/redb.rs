//! Credentials in the embedded database, for one instance: survive a restart, so the
//! tokens already fetched are reused instead of spending quota.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};
use wxgate_client::credential::{Fence, StoreError as CredentialStoreError, StoreFuture};
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

    /// Reads `key`, blocking the calling thread (tests).
    #[cfg(test)]
    pub(crate) fn read(&self, key: &str) -> Result<Option<Credential>, StoreError> {
        read(&self.db, key)
    }

    /// Writes `key` durably, blocking the calling thread (tests).
    #[cfg(test)]
    pub(crate) fn write(&self, key: &str, credential: &Credential) -> Result<(), StoreError> {
        write(&self.db, key, credential)
    }
}

fn read(db: &Db, key: &str) -> Result<Option<Credential>, StoreError> {
    db.with(|database| {
        let txn = database.begin_read()?;
        let table = txn.open_table(CREDENTIALS)?;
        let Some(value) = table.get(key)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(value.value())?))
    })
}

fn write(db: &Db, key: &str, credential: &Credential) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(credential)?;
    db.write(|database| {
        let txn = database.begin_write()?;
        {
            let mut table = txn.open_table(CREDENTIALS)?;
            table.insert(key, bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    })
}

/// A stored value that is not a credential is [`CredentialStoreError::Corrupt`]; every
/// other failure means the database cannot be used now.
fn credential_error(error: StoreError) -> CredentialStoreError {
    match error {
        StoreError::Json(json) => CredentialStoreError::Corrupt(json),
        other => CredentialStoreError::unavailable(other),
    }
}

impl CredentialStore for RedbStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let result = read(&self.db, key).map_err(credential_error);
        Box::pin(async move { result })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        _lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        let result = write(&self.db, key, credential).map_err(credential_error);
        Box::pin(async move { result })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        let fence = Fence::new(self.fence.fetch_add(1, Ordering::Relaxed) + 1);
        Box::pin(async move { Ok(Some(fence)) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, _fence: Fence) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "redb"
    }
    fn shared(&self) -> bool {
        false
    }
}
