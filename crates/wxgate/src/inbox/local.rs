//! The inbox tables inside the process's redb database: writes through the committer
//! thread ([`commit`]), reads and the purge through `spawn_blocking` ([`tables`]), so
//! no async worker thread waits on the disk.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use redb::Database;
use tokio::sync::oneshot;

use super::error::InboxError;
use super::record::{Accepted, DeliveryState, Record};
use crate::storage::{Db, StoreError};

mod commit;
mod tables;

use commit::Job;

/// The longest a committed state update waits for a durable commit. Acceptances are
/// durable before they are answered; a state update (delivered, next attempt) is
/// committed at once without waiting for the disk, and made durable by the next
/// acceptance or at most this long after. A crash (kill -9, power loss) can lose the
/// updates of this window, and those deliveries repeat.
pub const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(100);

/// The inbox tables inside the process's redb database: the whole inbox with the
/// redb backend, and the fallback for Redis outages with the Redis backend.
///
/// Every write goes through one committer thread, which gathers every job waiting at
/// that moment (new messages and state updates alike) into a single transaction: under
/// load one commit serves many messages, and no async worker blocks on the disk. A
/// transaction with a new message is durable (fsync) before any of its callers hears
/// back. One with state updates only is committed without waiting for the disk, and a
/// durable commit follows within [`GROUP_COMMIT_WINDOW`]; [`LocalInbox::flush`] forces
/// one (at shutdown). Reads and purges run on tokio's blocking threads.
#[derive(Debug, Clone)]
pub struct LocalInbox {
    db: Arc<Db>,
    committer: Sender<Job>,
}

impl LocalInbox {
    /// Opens the inbox tables (creating them, and building the indexes an older inbox
    /// lacks) and starts the committer thread. New ids start above `id_base`.
    ///
    /// This blocks on the database: from async code, call it through `spawn_blocking`
    /// (as [`crate::inbox::open`] does).
    ///
    /// # Errors
    /// Storage errors, or the thread cannot start.
    pub fn new(db: Arc<Db>, id_base: u64) -> Result<LocalInbox, InboxError> {
        db.write(tables::prepare)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let committer_db = db.clone();
        std::thread::Builder::new()
            .name("wxgate-inbox-commit".into())
            .spawn(move || commit::committer(committer_db, id_base, receiver))
            .map_err(InboxError::Thread)?;
        Ok(LocalInbox {
            db,
            committer: sender,
        })
    }

    /// Why the inbox cannot commit, while it cannot.
    pub fn failure(&self) -> Option<String> {
        self.db.failure()
    }

    /// Commits a new pending record, or returns the existing one for a retry. The
    /// commit is durable (fsync) when this returns.
    ///
    /// # Errors
    /// Storage errors: the caller must not acknowledge the message to WeChat.
    pub async fn accept(&self, template: Record) -> Result<Accepted, InboxError> {
        let (answer, result) = oneshot::channel();
        self.send(Job::Accept { template, answer })?;
        result.await.map_err(|_| InboxError::Stopped)?
    }

    /// Writes a record back (state, attempts, reply), keeping the indexes in step;
    /// committed with whatever else is waiting, durable within
    /// [`GROUP_COMMIT_WINDOW`].
    ///
    /// # Errors
    /// Storage errors.
    pub async fn update(&self, record: &Record) -> Result<(), InboxError> {
        let (answer, result) = oneshot::channel();
        self.send(Job::Update {
            record: record.clone(),
            answer,
        })?;
        result.await.map_err(|_| InboxError::Stopped)?
    }

    /// Commits durably everything committed so far.
    ///
    /// # Errors
    /// The commit failed, or the committer is gone.
    pub async fn flush(&self) -> Result<(), InboxError> {
        let (answer, result) = oneshot::channel();
        self.send(Job::Flush { answer })?;
        result.await.map_err(|_| InboxError::Stopped)?
    }

    fn send(&self, job: Job) -> Result<(), InboxError> {
        self.committer.send(job).map_err(|_| InboxError::Stopped)
    }

    /// Runs `work` on the database on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, InboxError> {
        let db = self.db.clone();
        Ok(tokio::task::spawn_blocking(move || db.with(work)).await??)
    }

    /// One record.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(&self, id: u64) -> Result<Option<Record>, InboxError> {
        self.blocking(move |database| tables::get(database, id))
            .await
    }

    /// Pending records whose next attempt is due, earliest first, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, InboxError> {
        self.blocking(move |database| tables::due(database, now, limit))
            .await
    }

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> Result<Vec<Record>, InboxError> {
        self.blocking(move |database| tables::list(database, state, limit))
            .await
    }

    /// The id of the record with this dedup key, if there is one.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn find(&self, account: &str, dedup_key: &str) -> Result<Option<u64>, InboxError> {
        let key = tables::dedup_key(account, dedup_key);
        self.blocking(move |database| tables::find(database, &key))
            .await
    }

    /// How many pending records have an id of at most `id`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn pending_up_to(&self, id: u64) -> Result<usize, InboxError> {
        self.blocking(move |database| tables::pending_up_to(database, id))
            .await
    }

    /// How many records are pending, delivered and dead.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn counts(&self) -> Result<(u64, u64, u64), InboxError> {
        self.blocking(tables::counts).await
    }

    /// Deletes the records in `states` (delivered or dead; pending ones are never
    /// deleted) received before `before`. Returns how many were deleted.
    ///
    /// Records are read oldest first and the walk stops a minute past `before`, so a
    /// purge costs what it deletes, not the size of the inbox. It commits on its own
    /// (durably), beside the committer thread.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, InboxError> {
        let db = self.db.clone();
        let states = states.to_vec();
        let purge = move || db.write(|database| tables::purge(database, before, &states));
        Ok(tokio::task::spawn_blocking(purge).await??)
    }
}

#[cfg(test)]
mod tests;
