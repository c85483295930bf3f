//! Credentials in the embedded database, for one instance: survive a restart, so the
//! tokens already fetched are reused instead of spending quota.
//!
//! redb reads and its fsync'd commits block: the store runs them on tokio's blocking
//! pool (`spawn_blocking`), never on an async worker thread.

use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};
use wxgate_client::credential::{
    Fence, LocalLease, StoreError as CredentialStoreError, StoreFuture,
};
use wxgate_client::{Credential, CredentialStore};

use crate::storage::{Db, StoreError};

const CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");

/// A [`CredentialStore`] in `data_dir/wxgate.redb`. Single process: its refresh lease
/// is always granted (the center's single-flight serialises refreshes).
#[derive(Debug)]
pub struct RedbStore {
    db: Arc<Db>,
    lease: LocalLease,
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
            lease: LocalLease::default(),
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

    /// Runs `work` on the blocking pool with the database.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CredentialStoreError> {
        let db = Arc::clone(&self.db);
        match tokio::task::spawn_blocking(move || work(&db)).await {
            Ok(result) => result.map_err(credential_error),
            Err(join) => Err(CredentialStoreError::unavailable(join)),
        }
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
        let key = key.to_owned();
        Box::pin(self.blocking(move |db| read(db, &key)))
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        _lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        let (key, credential) = (key.to_owned(), credential.clone());
        Box::pin(self.blocking(move |db| write(db, &key, &credential)))
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        let fence = self.lease.grant();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// The blocking pool exists on a current-thread runtime too: loads and saves work
    /// there, and the one async worker runs other tasks while they commit.
    #[test]
    fn loads_and_saves_on_a_current_thread_runtime() {
        let dir = std::env::temp_dir().join(format!("wxgate-redb-current-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = RedbStore::new(Db::open(&dir.join("wxgate.redb")).unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let credential = Credential {
            value: "tok".into(),
            expires_at: 100,
            fetched_at: 1,
            refresh_token: None,
        };
        let key = "wxgate:cred:wx1234567890abcdef:access_token";
        runtime.block_on(async {
            assert_eq!(store.load(key).await.unwrap(), None);
            // Counts the turns the one worker gives to another task.
            let turns = Arc::new(AtomicU64::new(0));
            let ticker = tokio::spawn({
                let turns = Arc::clone(&turns);
                async move {
                    loop {
                        turns.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                }
            });
            for _ in 0..5 {
                store.save(key, &credential, None).await.unwrap();
            }
            assert_eq!(store.load(key).await.unwrap(), Some(credential.clone()));
            assert!(
                turns.load(Ordering::Relaxed) > 0,
                "the worker ran another task while the store committed"
            );
            ticker.abort();
        });
        assert_eq!(store.read(key).unwrap(), Some(credential));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
