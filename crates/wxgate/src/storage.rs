//! Embedded storage: credentials in a redb file under `data_dir`, so a restart reuses
//! the tokens it already has instead of spending quota.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, TableDefinition};
use wxgate_client::credential::StoreFuture;
use wxgate_client::{Credential, CredentialStore};

const CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");

/// A [`CredentialStore`] in `data_dir/wxgate.redb`. Single process: its refresh lease
/// is always granted (the center's single-flight serialises refreshes).
#[derive(Debug)]
pub struct RedbStore {
    db: Arc<Database>,
    fence: AtomicU64,
}

/// Opens (or creates) `path` as the process's one redb database.
///
/// # Errors
/// The file cannot be opened: another wxgate process holds it, or the directory is not
/// writable.
pub fn open_database(path: &Path) -> Result<Arc<Database>, String> {
    Database::create(path).map(Arc::new).map_err(|e| {
        format!(
            "cannot open {}: {e} (is another wxgate running with the same data_dir?)",
            path.display()
        )
    })
}

impl RedbStore {
    /// The credential store inside an opened database.
    ///
    /// # Errors
    /// The table cannot be created.
    pub fn new(db: Arc<Database>) -> Result<RedbStore, String> {
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.open_table(CREDENTIALS).map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        Ok(RedbStore {
            db,
            fence: AtomicU64::new(0),
        })
    }

    /// Opens (or creates) the database file with only the credential store.
    ///
    /// # Errors
    /// As [`open_database`].
    pub fn open(path: &Path) -> Result<RedbStore, String> {
        RedbStore::new(open_database(path)?)
    }

    fn read(&self, key: &str) -> Result<Option<Credential>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(CREDENTIALS).map_err(|e| e.to_string())?;
        let Some(value) = table.get(key).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| e.to_string())
    }

    fn write(&self, key: &str, credential: &Credential) -> Result<(), String> {
        let bytes = serde_json::to_vec(credential).map_err(|e| e.to_string())?;
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(CREDENTIALS).map_err(|e| e.to_string())?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

impl CredentialStore for RedbStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let result = self.read(key);
        Box::pin(async move { result })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        _fence: u64,
    ) -> StoreFuture<'a, ()> {
        let result = self.write(key, credential);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("wxgate-redb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wxgate.redb");
        let credential = Credential {
            value: "tok".into(),
            expires_at: 100,
            fetched_at: 1,
        };
        {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.read("k").unwrap(), None);
            store.write("k", &credential).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.read("k").unwrap(), Some(credential));
    }
}
