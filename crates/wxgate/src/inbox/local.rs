//! The inbox tables inside the process's redb database, and the committer thread that
//! writes them.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::record::{Accepted, DeliveryState, Record};
use crate::storage::{Db, StoreError};

/// id → record (JSON).
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("inbox");
/// `account:dedup_key` → id.
const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("inbox_dedup");
/// id → next attempt (Unix seconds), for pending records only.
const PENDING: TableDefinition<u64, i64> = TableDefinition::new("inbox_pending");
/// (next attempt, id) → (), for pending records only: the due ones are read from the
/// front, without walking every pending record.
const DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("inbox_due");
/// id → (), for dead letters only: counting and listing them reads no records.
const DEAD: TableDefinition<u64, ()> = TableDefinition::new("inbox_dead");
/// `next_id` → the next id; `dead_index` → 1 once DEAD covers every record;
/// `due_index` → 1 once DUE covers every pending record.
const META: TableDefinition<&str, u64> = TableDefinition::new("inbox_meta");

/// The longest a committed state update waits for a durable commit. Acceptances are
/// durable before they are answered; a state update (delivered, next attempt) is
/// committed at once without waiting for the disk, and made durable by the next
/// acceptance or at most this long after. A crash (kill -9, power loss) can lose the
/// updates of this window, and those deliveries repeat.
pub const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(100);

/// Why the inbox cannot do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InboxError {
    /// The database refused the commit.
    #[error("the inbox cannot commit: {0}")]
    Commit(String),
    /// The committer thread is gone (the process is stopping).
    #[error("the inbox committer stopped")]
    Stopped,
}

/// The inbox tables inside the process's redb database: the whole inbox with the
/// redb backend, and the fallback for Redis outages with the Redis backend.
///
/// Every write goes through one committer thread, which gathers every job waiting at
/// that moment (new messages and state updates alike) into a single transaction: under
/// load one commit serves many messages, and no async worker blocks on the disk. A
/// transaction with a new message is durable (fsync) before any of its callers hears
/// back. One with state updates only is committed without waiting for the disk, and a
/// durable commit follows within [`GROUP_COMMIT_WINDOW`]; [`LocalInbox::flush`] forces
/// one (at shutdown).
#[derive(Debug, Clone)]
pub struct LocalInbox {
    db: Arc<Db>,
    committer: Sender<Job>,
}

/// One write for the committer thread.
#[derive(Debug)]
enum Job {
    Accept {
        account: String,
        dedup_key: String,
        message: serde_json::Value,
        now: i64,
        answer: tokio::sync::oneshot::Sender<Result<Accepted, String>>,
    },
    Update {
        record: Record,
        answer: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Commit durably now.
    Flush {
        answer: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;

fn committer(db: Arc<Db>, id_base: u64, jobs: Receiver<Job>) {
    // After a commit that did not wait for the disk: when a durable one must follow.
    let mut flush_by: Option<Instant> = None;
    loop {
        let first = match flush_by {
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(deadline) => {
                match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        flush_by = match flush(&db) {
                            Ok(()) => None,
                            Err(_) => Some(Instant::now() + GROUP_COMMIT_WINDOW),
                        };
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = flush(&db);
                        return;
                    }
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = flush_by.is_some_and(|at| at <= Instant::now())
            || batch
                .iter()
                .any(|job| matches!(job, Job::Accept { .. } | Job::Flush { .. }));
        let result = commit_batch(&db, id_base, &batch, durable);
        if result.is_ok() {
            flush_by = match (durable, flush_by) {
                (true, _) => None,
                (false, None) => Some(Instant::now() + GROUP_COMMIT_WINDOW),
                (false, Some(at)) => Some(at),
            };
        }
        answer(batch, result.map_err(|e| e.to_string()));
    }
}

/// Answers every job of a batch (a caller that gave up is no longer listening).
fn answer(batch: Vec<Job>, result: Result<Vec<Accepted>, String>) {
    let (mut accepted, error) = match result {
        Ok(accepted) => (accepted.into_iter(), None),
        Err(error) => (Vec::new().into_iter(), Some(error)),
    };
    for job in batch {
        match job {
            Job::Accept { answer, .. } => {
                let result = match &error {
                    Some(error) => Err(error.clone()),
                    None => accepted.next().ok_or("lost an acceptance".to_owned()),
                };
                let _ = answer.send(result);
            }
            Job::Update { answer, .. } | Job::Flush { answer } => {
                let _ = answer.send(error.clone().map_or(Ok(()), Err));
            }
        }
    }
}

/// An empty durable commit: makes every earlier commit durable.
fn flush(db: &Db) -> Result<(), StoreError> {
    db.write(|database| {
        database.begin_write()?.commit()?;
        Ok(())
    })
}

/// Commits a batch in one transaction, durable when asked. A retry within the batch
/// finds the record its twin just inserted. Returns the acceptances in order.
fn commit_batch(
    db: &Db,
    id_base: u64,
    batch: &[Job],
    durable: bool,
) -> Result<Vec<Accepted>, StoreError> {
    db.write(|database| {
        let mut txn = database.begin_write()?;
        if !durable {
            txn.set_durability(redb::Durability::None)?;
        }
        let results = write_batch(&txn, id_base, batch)?;
        txn.commit()?;
        Ok(results)
    })
}

fn write_batch(
    txn: &redb::WriteTransaction,
    id_base: u64,
    batch: &[Job],
) -> Result<Vec<Accepted>, StoreError> {
    let mut results = Vec::with_capacity(batch.len());
    let mut dedup_table = txn.open_table(DEDUP)?;
    let mut tables = Tables::open(txn)?;
    let mut meta = txn.open_table(META)?;
    let mut next_id = meta
        .get("next_id")?
        .map(|v| v.value())
        .unwrap_or(1)
        .max(id_base + 1);
    for job in batch {
        let (account, dedup_key, message, now) = match job {
            Job::Update { record, .. } => {
                tables.write(record)?;
                continue;
            }
            Job::Flush { .. } => continue,
            Job::Accept {
                account,
                dedup_key,
                message,
                now,
                ..
            } => (account, dedup_key, message, *now),
        };
        let dedup = format!("{account}:{dedup_key}");
        let existing = dedup_table.get(dedup.as_str())?.map(|id| id.value());
        if let Some(id) = existing {
            let bytes = tables.records.get(id)?.map(|v| v.value().to_vec());
            if let Some(bytes) = bytes {
                results.push(Accepted::Duplicate(serde_json::from_slice(&bytes)?));
                continue;
            }
        }
        let record = Record::new(next_id, account, dedup_key, message.clone(), now);
        next_id += 1;
        tables.write(&record)?;
        dedup_table.insert(dedup.as_str(), record.id)?;
        results.push(Accepted::New(record));
    }
    meta.insert("next_id", next_id)?;
    Ok(results)
}

/// The tables a record's state touches.
struct Tables<'t> {
    records: redb::Table<'t, u64, &'static [u8]>,
    pending: redb::Table<'t, u64, i64>,
    due: redb::Table<'t, (i64, u64), ()>,
    dead: redb::Table<'t, u64, ()>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Tables<'t>, StoreError> {
        Ok(Tables {
            records: txn.open_table(RECORDS)?,
            pending: txn.open_table(PENDING)?,
            due: txn.open_table(DUE)?,
            dead: txn.open_table(DEAD)?,
        })
    }

    /// Writes a record and keeps the pending, due and dead indexes in step.
    fn write(&mut self, record: &Record) -> Result<(), StoreError> {
        if record.state == DeliveryState::Dead {
            self.dead.insert(record.id, ())?;
        } else {
            self.dead.remove(record.id)?;
        }
        self.records
            .insert(record.id, serde_json::to_vec(record)?.as_slice())?;
        let was_due = self.pending.remove(record.id)?.map(|at| at.value());
        if let Some(at) = was_due {
            self.due.remove((at, record.id))?;
        }
        if record.state == DeliveryState::Pending {
            self.pending.insert(record.id, record.next_attempt_at)?;
            self.due.insert((record.next_attempt_at, record.id), ())?;
        }
        Ok(())
    }
}

/// The `limit` highest ids of an index table, highest first.
fn newest_ids<V: redb::Value + 'static>(
    index: &redb::ReadOnlyTable<u64, V>,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in index.iter()?.rev().take(limit) {
        ids.push(entry?.0.value());
    }
    Ok(ids)
}

fn read_record(
    records: &redb::ReadOnlyTable<u64, &[u8]>,
    id: u64,
) -> Result<Option<Record>, StoreError> {
    match records.get(id)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

/// Creates the tables and builds the indexes an older inbox lacks.
fn prepare(database: &Database) -> Result<(), StoreError> {
    let txn = database.begin_write()?;
    txn.open_table(RECORDS)?;
    txn.open_table(DEDUP)?;
    {
        let mut meta = txn.open_table(META)?;
        if meta.get("dead_index")?.is_none() {
            let records = txn.open_table(RECORDS)?;
            let mut dead = txn.open_table(DEAD)?;
            for entry in records.iter()? {
                let (id, bytes) = entry?;
                if serde_json::from_slice::<Record>(bytes.value())
                    .is_ok_and(|r| r.state == DeliveryState::Dead)
                {
                    dead.insert(id.value(), ())?;
                }
            }
            meta.insert("dead_index", 1)?;
        }
        if meta.get("due_index")?.is_none() {
            let pending = txn.open_table(PENDING)?;
            let mut due = txn.open_table(DUE)?;
            for entry in pending.iter()? {
                let (id, at) = entry?;
                due.insert((at.value(), id.value()), ())?;
            }
            meta.insert("due_index", 1)?;
        }
    }
    txn.commit()?;
    Ok(())
}

const STOPPED: &str = "the inbox committer stopped";

fn text(error: StoreError) -> String {
    error.to_string()
}

impl LocalInbox {
    /// Opens the inbox tables (creating them). New ids start above `id_base`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn new(db: Arc<Db>, id_base: u64) -> Result<LocalInbox, String> {
        db.write(prepare).map_err(text)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let committer_db = db.clone();
        std::thread::Builder::new()
            .name("wxgate-inbox-commit".into())
            .spawn(move || committer(committer_db, id_base, receiver))
            .map_err(|e| e.to_string())?;
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
    pub async fn accept(
        &self,
        account: &str,
        dedup_key: &str,
        message: serde_json::Value,
        now: i64,
    ) -> Result<Accepted, String> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.send(Job::Accept {
            account: account.to_owned(),
            dedup_key: dedup_key.to_owned(),
            message,
            now,
            answer,
        })?;
        result.await.map_err(|_| STOPPED.to_owned())?
    }

    /// Writes a record back (state, attempts, reply), keeping the indexes in step;
    /// committed with whatever else is waiting, durable within
    /// [`GROUP_COMMIT_WINDOW`].
    ///
    /// # Errors
    /// Storage errors.
    pub async fn update(&self, record: &Record) -> Result<(), String> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.send(Job::Update {
            record: record.clone(),
            answer,
        })?;
        result.await.map_err(|_| STOPPED.to_owned())?
    }

    /// Commits durably everything committed so far.
    ///
    /// # Errors
    /// The commit failed, or the committer is gone.
    pub async fn flush(&self) -> Result<(), InboxError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.committer
            .send(Job::Flush { answer })
            .map_err(|_| InboxError::Stopped)?;
        result
            .await
            .map_err(|_| InboxError::Stopped)?
            .map_err(InboxError::Commit)
    }

    fn send(&self, job: Job) -> Result<(), String> {
        self.committer.send(job).map_err(|_| STOPPED.to_owned())
    }

    /// One record.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: u64) -> Result<Option<Record>, String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                read_record(&txn.open_table(RECORDS)?, id)
            })
            .map_err(text)
    }

    /// Pending records whose next attempt is due, earliest first, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                let due = txn.open_table(DUE)?;
                let records = txn.open_table(RECORDS)?;
                let mut out = Vec::new();
                for entry in due.range(..=(now, u64::MAX))?.take(limit) {
                    let id = entry?.0.value().1;
                    out.extend(read_record(&records, id)?);
                }
                Ok(out)
            })
            .map_err(text)
    }

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list(&self, state: Option<DeliveryState>, limit: usize) -> Result<Vec<Record>, String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                let records = txn.open_table(RECORDS)?;
                // Pending records and dead letters have indexes; delivered ones are most
                // of the inbox, so the newest are found by walking back from the end.
                let indexed = match state {
                    Some(DeliveryState::Pending) => {
                        Some(newest_ids(&txn.open_table(PENDING)?, limit)?)
                    }
                    Some(DeliveryState::Dead) => Some(newest_ids(&txn.open_table(DEAD)?, limit)?),
                    _ => None,
                };
                let mut out = Vec::new();
                if let Some(ids) = indexed {
                    for id in ids {
                        out.extend(read_record(&records, id)?);
                    }
                    return Ok(out);
                }
                for entry in records.iter()?.rev() {
                    let (_, bytes) = entry?;
                    let record: Record = serde_json::from_slice(bytes.value())?;
                    if state.is_none_or(|s| s == record.state) {
                        out.push(record);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
                Ok(out)
            })
            .map_err(text)
    }

    /// The id of the record with this dedup key, if there is one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn find(&self, account: &str, dedup_key: &str) -> Result<Option<u64>, String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                let dedup = txn.open_table(DEDUP)?;
                let id = dedup
                    .get(format!("{account}:{dedup_key}").as_str())?
                    .map(|id| id.value());
                Ok(id)
            })
            .map_err(text)
    }

    /// How many pending records have an id of at most `id`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn pending_up_to(&self, id: u64) -> Result<usize, String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                let pending = txn.open_table(PENDING)?;
                let count = pending.range(..=id)?.count();
                Ok(count)
            })
            .map_err(text)
    }

    /// How many records are pending, delivered and dead.
    ///
    /// # Errors
    /// Storage errors.
    pub fn counts(&self) -> Result<(u64, u64, u64), String> {
        self.db
            .with(|database| {
                let txn = database.begin_read()?;
                let total = txn.open_table(RECORDS)?.len()?;
                let pending = txn.open_table(PENDING)?.len()?;
                let dead = txn.open_table(DEAD)?.len()?;
                Ok((pending, total - pending - dead, dead))
            })
            .map_err(text)
    }

    /// Deletes the records in `states` (delivered or dead; pending ones are never
    /// deleted) received before `before`. Returns how many were deleted.
    ///
    /// Records are read oldest first and the walk stops a minute past `before`, so a
    /// purge costs what it deletes, not the size of the inbox.
    ///
    /// # Errors
    /// Storage errors.
    pub fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, String> {
        self.db
            .write(|database| {
                let txn = database.begin_write()?;
                let removed = purge_in(&txn, before, states)?;
                txn.commit()?;
                Ok(removed)
            })
            .map_err(text)
    }
}

fn purge_in(
    txn: &redb::WriteTransaction,
    before: i64,
    states: &[DeliveryState],
) -> Result<usize, StoreError> {
    let mut records = txn.open_table(RECORDS)?;
    let mut dedup = txn.open_table(DEDUP)?;
    let mut dead = txn.open_table(DEAD)?;
    let mut doomed = Vec::new();
    for entry in records.iter()? {
        let (id, bytes) = entry?;
        let record: Record = serde_json::from_slice(bytes.value())?;
        // Ids follow arrival; a minute of slack covers acceptances that committed
        // slightly out of order.
        if record.received_at >= before.saturating_add(60) {
            break;
        }
        if record.state != DeliveryState::Pending
            && states.contains(&record.state)
            && record.received_at < before
        {
            doomed.push((
                id.value(),
                format!("{}:{}", record.account, record.dedup_key),
            ));
        }
    }
    for (id, key) in &doomed {
        records.remove(id)?;
        dedup.remove(key.as_str())?;
        dead.remove(id)?;
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests;
