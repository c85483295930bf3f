//! Embedded storage: the process's one redb database, `data_dir/wxgate.redb`, which holds
//! the credentials (so a restart reuses the tokens it already has instead of spending
//! quota) and the inbox.
//!
//! [`Db`] owns the `redb::Database`; every holder (the credential store, the inbox and
//! its committer thread) goes through it. After an I/O error (a full disk, say) redb
//! refuses every later operation until the database is closed and opened again. `Db`
//! notes the failure, and its recovery thread reopens the file once a second and probes
//! it with a small durable commit until one succeeds. Since nobody else holds a handle,
//! every holder uses the new one from then on. While the database cannot commit,
//! [`Db::failure`] says why (and `/healthz` answers 503 with it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use redb::{Database, TableDefinition};

/// `probe` → Unix seconds of the last recovery probe.
const HEALTH: TableDefinition<&str, i64> = TableDefinition::new("health");

/// How often the recovery thread tries to reopen a failed database.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed; an I/O failure also marks the database as failed until a reopen works.
    #[error("{0}")]
    Redb(#[from] redb::Error),
    /// A stored value could not be read or written as JSON.
    #[error("a stored value is not valid JSON ({0}); the file was changed by something other than wxgate")]
    Json(#[from] serde_json::Error),
    /// The database is closed while it is being reopened after a failure.
    #[error("{path} is being reopened after a storage failure ({reason}); free disk space or fix the file system, wxgate retries every second")]
    Reopening {
        /// The database file.
        path: String,
        /// The failure that closed it.
        reason: String,
    },
}

macro_rules! from_redb {
    ($($kind:ty),*) => {$(
        impl From<$kind> for StoreError {
            fn from(error: $kind) -> StoreError {
                StoreError::Redb(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl StoreError {
    /// True for failures of the storage itself (I/O, a closed or damaged handle), which
    /// a reopen may cure; false for a value wxgate cannot read.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            StoreError::Redb(error) => matches!(
                error,
                redb::Error::Io(_)
                    | redb::Error::PreviousIo
                    | redb::Error::DatabaseClosed
                    | redb::Error::Corrupted(_)
                    | redb::Error::LockPoisoned(_)
                    | redb::Error::Backend(_)
                    | redb::Error::TransactionPoisoned
            ),
            StoreError::Json(_) => false,
            StoreError::Reopening { .. } => true,
        }
    }
}

/// Why the database file cannot be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// redb refused the file.
    #[error("cannot open {path}: {source} (is another wxgate running with the same data_dir?)")]
    Open {
        /// The database file.
        path: String,
        /// redb's reason.
        source: redb::DatabaseError,
    },
    /// A file in redb 2's format could not be upgraded.
    #[error("cannot upgrade {path} from the redb 2 file format: {reason}; the original is kept at {backup}. Free disk space (the upgrade needs about the file's size) and start again, or start from an empty data_dir")]
    Upgrade {
        /// The database file.
        path: String,
        /// The copy made before the upgrade.
        backup: String,
        /// What failed.
        reason: String,
    },
}

/// The process's one redb database, reopened after a storage failure. See the module
/// documentation.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    database: RwLock<Option<Database>>,
    /// Why the database cannot commit, while it cannot.
    failure: Mutex<Option<String>>,
}

impl Db {
    /// Opens (or creates) `path`, upgrading a file written by redb 2 (wxgate 0.1) in
    /// place after copying it to `path.redb2`, and starts the recovery thread.
    ///
    /// # Errors
    /// Another process holds the file, the directory is not writable, or the upgrade failed.
    pub fn open(path: &Path) -> Result<Arc<Db>, OpenError> {
        let database = match Database::create(path) {
            Err(redb::DatabaseError::UpgradeRequired(2)) => {
                upgrade_from_redb2(path)?;
                Database::create(path)
            }
            other => other,
        }
        .map_err(|source| OpenError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let db = Arc::new(Db {
            path: path.to_owned(),
            database: RwLock::new(Some(database)),
            failure: Mutex::new(None),
        });
        let weak = Arc::downgrade(&db);
        // Without the thread the database still works; it just does not recover by itself.
        if let Err(error) = std::thread::Builder::new()
            .name("wxgate-storage-recovery".into())
            .spawn(move || recovery_loop(weak))
        {
            tracing::warn!("cannot start the storage recovery thread: {error}");
        }
        Ok(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the open database (reads, or a write transaction it commits).
    /// A storage failure marks the database as failed, which starts the recovery.
    ///
    /// # Errors
    /// `work`'s error, or [`StoreError::Reopening`] while the database is closed.
    pub fn with<T>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Never wait behind a reopen (which may repair the file for a while): callers
        // include async tasks, and a refusal now is a 503 that WeChat retries.
        let guard = match self.database.try_read() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(self.reopening()),
        };
        let Some(database) = guard.as_ref() else {
            return Err(self.reopening());
        };
        let result = work(database);
        drop(guard);
        if let Err(error) = &result {
            if error.is_storage_failure() {
                self.fail(error);
            }
        }
        result
    }

    /// Like [`Db::with`], for `work` that commits: its success also means the database
    /// can commit again.
    ///
    /// # Errors
    /// As [`Db::with`].
    pub fn write<T>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.with(work);
        if result.is_ok() {
            self.recovered();
        }
        result
    }

    /// Why the database cannot commit, while it cannot.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn reopening(&self) -> StoreError {
        StoreError::Reopening {
            path: self.path.display().to_string(),
            reason: self
                .failure()
                .unwrap_or_else(|| "a storage failure".to_owned()),
        }
    }

    fn fail(&self, error: &StoreError) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::error!(
                "the database {} failed ({error}); messages are refused with 503 until it can commit again, retried every second",
                self.path.display()
            );
        }
        if !matches!(error, StoreError::Reopening { .. }) {
            *failure = Some(error.to_string());
        }
    }

    fn recovered(&self) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = failure.take() {
            tracing::info!(
                "the database {} commits again (it had failed: {reason})",
                self.path.display()
            );
        }
    }

    /// Closes the failed handle, opens the file again and commits a probe durably. The
    /// failure is cleared when the probe commits.
    fn recover(&self) {
        let mut slot = self.database.write().unwrap_or_else(|e| e.into_inner());
        // The old handle must be closed first: the file is locked while it is open.
        if let Some(old) = slot.take() {
            if let Err(error) = old.close() {
                tracing::debug!("closing the failed database: {error}");
            }
        }
        let database = match Database::create(&self.path) {
            Ok(database) => database,
            Err(error) => {
                self.fail(&StoreError::Redb(error.into()));
                return;
            }
        };
        let probe = probe(&database);
        *slot = Some(database);
        drop(slot);
        match probe {
            Ok(()) => self.recovered(),
            Err(error) => self.fail(&error),
        }
    }
}

/// A small durable commit: proof that the database can commit.
fn probe(database: &Database) -> Result<(), StoreError> {
    let txn = database.begin_write()?;
    {
        let mut table = txn.open_table(HEALTH)?;
        table.insert("probe", wxgate_client::clock::now())?;
    }
    txn.commit()?;
    Ok(())
}

fn recovery_loop(db: Weak<Db>) {
    loop {
        std::thread::sleep(RECOVERY_INTERVAL);
        let Some(db) = db.upgrade() else {
            return;
        };
        if db.failure().is_some() {
            db.recover();
        }
    }
}

/// Upgrades a redb 2 file in place (redb 2.6's `Database::upgrade`), after copying it
/// to `path.redb2`.
fn upgrade_from_redb2(path: &Path) -> Result<(), OpenError> {
    let mut backup = path.as_os_str().to_owned();
    backup.push(".redb2");
    let backup = PathBuf::from(backup);
    let failed = |reason: String| OpenError::Upgrade {
        path: path.display().to_string(),
        backup: backup.display().to_string(),
        reason,
    };
    if !backup.exists() {
        std::fs::copy(path, &backup)
            .map_err(|e| failed(format!("cannot copy it to {} first: {e}", backup.display())))?;
    }
    let mut old = redb2::Database::open(path).map_err(|e| failed(e.to_string()))?;
    old.upgrade().map_err(|e| failed(e.to_string()))?;
    drop(old);
    tracing::warn!(
        "upgraded {} from the redb 2 file format (wxgate 0.1); the original is kept at {}: delete it once this version runs well",
        path.display(),
        backup.display()
    );
    Ok(())
}

pub mod files;

#[cfg(test)]
mod tests;
