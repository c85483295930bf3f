//! The durable inbox: every message handed to forwarding is committed here (redb,
//! fsync on commit) before WeChat gets its answer, with its delivery state. WeChat's
//! retries are recognised here too, so a retry never causes a second delivery.

use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// id → record (JSON).
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("inbox");
/// `account:dedup_key` → id.
const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("inbox_dedup");
/// id → next attempt (Unix seconds), for pending records only.
const PENDING: TableDefinition<u64, i64> = TableDefinition::new("inbox_pending");
/// id → (), for dead letters only: counting and listing them reads no records.
const DEAD: TableDefinition<u64, ()> = TableDefinition::new("inbox_dead");
/// `next_id` → the next id; `dead_index` → 1 once DEAD covers every record.
const META: TableDefinition<&str, u64> = TableDefinition::new("inbox_meta");

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not yet delivered; retried with backoff.
    Pending,
    /// The service answered 2xx.
    Delivered,
    /// Retried until `max_age_s` without success.
    Dead,
}

impl DeliveryState {
    /// Parses `pending`, `delivered` or `dead`.
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }

    /// `pending`, `delivered` or `dead`, as [`DeliveryState::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

/// One accepted message and its delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The delivery id (also sent to the service).
    pub id: u64,
    /// Account name.
    pub account: String,
    /// Unix seconds when WeChat's push was accepted.
    pub received_at: i64,
    /// The key WeChat's retries share.
    pub dedup_key: String,
    /// The decrypted message as JSON (snake_case fields, string values).
    pub message: serde_json::Value,
    /// Delivery state.
    pub state: DeliveryState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Next attempt, Unix seconds (pending only).
    pub next_attempt_at: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the service answered 2xx.
    pub delivered_at: Option<i64>,
    /// The service's `reply`, when it gave one.
    pub service_reply: Option<serde_json::Value>,
    /// How that reply reached the user: `passive`, `late`, or why it did not.
    pub reply_outcome: Option<String>,
}

impl Record {
    /// A new pending record, due now.
    pub fn new(
        id: u64,
        account: &str,
        dedup_key: &str,
        message: serde_json::Value,
        received_at: i64,
    ) -> Record {
        Record {
            id,
            account: account.to_owned(),
            received_at,
            dedup_key: dedup_key.to_owned(),
            message,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: received_at,
            last_error: None,
            delivered_at: None,
            service_reply: None,
            reply_outcome: None,
        }
    }
}

/// What [`Inbox::accept`] found.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// A new message, committed as pending.
    New(Record),
    /// A retry of a message already in the inbox.
    Duplicate(Record),
}

/// The inbox tables inside the process's redb database: the whole inbox with the
/// redb backend, and the fallback for Redis outages with the Redis backend.
///
/// Every write goes through one committer thread, which gathers every job waiting at
/// that moment (new messages and state updates alike) into a single transaction: under
/// load one commit serves many messages, and no async worker blocks on the disk. A
/// transaction with a new message is durable (fsync) before any of its callers hears
/// back. One with state updates only is committed without waiting for the disk: a
/// crash can lose such an update, and the delivery then repeats (at least once, same
/// delivery id), which the service must tolerate anyway.
#[derive(Debug, Clone)]
pub struct LocalInbox {
    db: Arc<Database>,
    committer: std::sync::mpsc::Sender<Job>,
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
}

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;

fn committer(db: Arc<Database>, id_base: u64, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&db, id_base, &batch) {
            Ok(accepted) => {
                let mut accepted = accepted.into_iter();
                for job in batch {
                    match job {
                        Job::Accept { answer, .. } => {
                            let result = accepted.next().ok_or("lost an acceptance".to_owned());
                            let _ = answer.send(result);
                        }
                        Job::Update { answer, .. } => {
                            let _ = answer.send(Ok(()));
                        }
                    }
                }
            }
            Err(error) => {
                for job in batch {
                    match job {
                        Job::Accept { answer, .. } => {
                            let _ = answer.send(Err(error.clone()));
                        }
                        Job::Update { answer, .. } => {
                            let _ = answer.send(Err(error.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// Commits a batch in one transaction, durable when it holds a new message. A retry
/// within the batch finds the record its twin just inserted. Returns the acceptances
/// in order.
fn commit_batch(db: &Database, id_base: u64, batch: &[Job]) -> Result<Vec<Accepted>, String> {
    let mut txn = db.begin_write().map_err(err)?;
    if !batch.iter().any(|job| matches!(job, Job::Accept { .. })) {
        txn.set_durability(redb::Durability::None);
    }
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut dedup_table = txn.open_table(DEDUP).map_err(err)?;
        let mut records = txn.open_table(RECORDS).map_err(err)?;
        let mut pending = txn.open_table(PENDING).map_err(err)?;
        let mut dead = txn.open_table(DEAD).map_err(err)?;
        let mut meta = txn.open_table(META).map_err(err)?;
        let mut next_id = meta
            .get("next_id")
            .map_err(err)?
            .map(|v| v.value())
            .unwrap_or(1)
            .max(id_base + 1);
        for job in batch {
            let (account, dedup_key, message, now) = match job {
                Job::Update { record, .. } => {
                    write_record(&mut records, &mut pending, &mut dead, record)?;
                    continue;
                }
                Job::Accept {
                    account,
                    dedup_key,
                    message,
                    now,
                    ..
                } => (account, dedup_key, message, *now),
            };
            let dedup = format!("{account}:{dedup_key}");
            let existing = dedup_table
                .get(dedup.as_str())
                .map_err(err)?
                .map(|id| id.value());
            if let Some(id) = existing {
                let bytes = records.get(id).map_err(err)?.map(|v| v.value().to_vec());
                if let Some(bytes) = bytes {
                    results.push(Accepted::Duplicate(
                        serde_json::from_slice(&bytes).map_err(err)?,
                    ));
                    continue;
                }
            }
            let record = Record::new(next_id, account, dedup_key, message.clone(), now);
            next_id += 1;
            write_record(&mut records, &mut pending, &mut dead, &record)?;
            dedup_table.insert(dedup.as_str(), record.id).map_err(err)?;
            results.push(Accepted::New(record));
        }
        meta.insert("next_id", next_id).map_err(err)?;
    }
    txn.commit().map_err(err)?;
    Ok(results)
}

/// The `limit` highest ids of an index table, highest first.
fn newest_ids<V: redb::Value + 'static>(
    index: &redb::ReadOnlyTable<u64, V>,
    limit: usize,
) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for entry in index.iter().map_err(err)?.rev().take(limit) {
        ids.push(entry.map_err(err)?.0.value());
    }
    Ok(ids)
}

/// Writes a record and keeps the pending and dead indexes in step.
fn write_record(
    records: &mut redb::Table<u64, &[u8]>,
    pending: &mut redb::Table<u64, i64>,
    dead: &mut redb::Table<u64, ()>,
    record: &Record,
) -> Result<(), String> {
    if record.state == DeliveryState::Dead {
        dead.insert(record.id, ()).map_err(err)?;
    } else {
        dead.remove(record.id).map_err(err)?;
    }
    records
        .insert(
            record.id,
            serde_json::to_vec(record).map_err(err)?.as_slice(),
        )
        .map_err(err)?;
    if record.state == DeliveryState::Pending {
        pending
            .insert(record.id, record.next_attempt_at)
            .map_err(err)?;
    } else {
        pending.remove(record.id).map_err(err)?;
    }
    Ok(())
}

const STOPPED: &str = "the inbox committer stopped";

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl LocalInbox {
    /// Opens the inbox tables (creating them). New ids start above `id_base`.
    ///
    /// # Errors
    /// redb errors.
    pub fn new(db: Arc<Database>, id_base: u64) -> Result<LocalInbox, String> {
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(RECORDS).map_err(err)?;
        txn.open_table(DEDUP).map_err(err)?;
        txn.open_table(PENDING).map_err(err)?;
        {
            // Inboxes written before the dead index existed get it once.
            let mut meta = txn.open_table(META).map_err(err)?;
            let indexed = meta.get("dead_index").map_err(err)?.is_some();
            if !indexed {
                let records = txn.open_table(RECORDS).map_err(err)?;
                let mut dead = txn.open_table(DEAD).map_err(err)?;
                for entry in records.iter().map_err(err)? {
                    let (id, bytes) = entry.map_err(err)?;
                    if serde_json::from_slice::<Record>(bytes.value())
                        .is_ok_and(|r| r.state == DeliveryState::Dead)
                    {
                        dead.insert(id.value(), ()).map_err(err)?;
                    }
                }
                meta.insert("dead_index", 1).map_err(err)?;
            }
        }
        txn.commit().map_err(err)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let committer_db = db.clone();
        std::thread::Builder::new()
            .name("wxgate-inbox-commit".into())
            .spawn(move || committer(committer_db, id_base, receiver))
            .map_err(err)?;
        Ok(LocalInbox {
            db,
            committer: sender,
        })
    }

    /// Commits a new pending record, or returns the existing one for a retry. The
    /// commit is durable (fsync) when this returns.
    ///
    /// # Errors
    /// redb errors: the caller must not acknowledge the message to WeChat.
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

    /// Writes a record back (state, attempts, reply), keeping the pending index in
    /// step; committed with whatever else is waiting, without waiting for the disk.
    ///
    /// # Errors
    /// redb errors.
    pub async fn update(&self, record: &Record) -> Result<(), String> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.send(Job::Update {
            record: record.clone(),
            answer,
        })?;
        result.await.map_err(|_| STOPPED.to_owned())?
    }

    fn send(&self, job: Job) -> Result<(), String> {
        self.committer.send(job).map_err(|_| STOPPED.to_owned())
    }

    /// One record.
    ///
    /// # Errors
    /// redb errors.
    pub fn get(&self, id: u64) -> Result<Option<Record>, String> {
        let txn = self.db.begin_read().map_err(err)?;
        let records = txn.open_table(RECORDS).map_err(err)?;
        let bytes = records.get(id).map_err(err)?.map(|v| v.value().to_vec());
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(err))
            .transpose()
    }

    /// Pending records whose next attempt is due, oldest first, at most `limit`.
    ///
    /// # Errors
    /// redb errors.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, String> {
        let ids: Vec<u64> = {
            let txn = self.db.begin_read().map_err(err)?;
            let pending = txn.open_table(PENDING).map_err(err)?;
            let mut ids = Vec::new();
            for entry in pending.iter().map_err(err)? {
                let (id, at) = entry.map_err(err)?;
                if at.value() <= now {
                    ids.push(id.value());
                    if ids.len() >= limit {
                        break;
                    }
                }
            }
            ids
        };
        Ok(ids
            .into_iter()
            .filter_map(|id| self.get(id).ok().flatten())
            .collect())
    }

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// redb errors.
    pub fn list(&self, state: Option<DeliveryState>, limit: usize) -> Result<Vec<Record>, String> {
        let txn = self.db.begin_read().map_err(err)?;
        let records = txn.open_table(RECORDS).map_err(err)?;
        let read = |id: u64| -> Result<Option<Record>, String> {
            let bytes = records.get(id).map_err(err)?.map(|v| v.value().to_vec());
            bytes
                .map(|b| serde_json::from_slice(&b).map_err(err))
                .transpose()
        };
        // Pending records and dead letters have indexes; delivered ones are most of
        // the inbox, so the newest are found by walking back from the end.
        let indexed = match state {
            Some(DeliveryState::Pending) => {
                Some(newest_ids(&txn.open_table(PENDING).map_err(err)?, limit)?)
            }
            Some(DeliveryState::Dead) => {
                Some(newest_ids(&txn.open_table(DEAD).map_err(err)?, limit)?)
            }
            _ => None,
        };
        if let Some(ids) = indexed {
            return Ok(ids
                .into_iter()
                .map(read)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect());
        }
        let mut out = Vec::new();
        for entry in records.iter().map_err(err)?.rev() {
            let (_, bytes) = entry.map_err(err)?;
            let record: Record = serde_json::from_slice(bytes.value()).map_err(err)?;
            if state.is_none_or(|s| s == record.state) {
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The id of the record with this dedup key, if there is one.
    ///
    /// # Errors
    /// redb errors.
    pub fn find(&self, account: &str, dedup_key: &str) -> Result<Option<u64>, String> {
        let txn = self.db.begin_read().map_err(err)?;
        let dedup = txn.open_table(DEDUP).map_err(err)?;
        let id = dedup
            .get(format!("{account}:{dedup_key}").as_str())
            .map_err(err)?
            .map(|id| id.value());
        Ok(id)
    }

    /// How many pending records have an id of at most `id`.
    ///
    /// # Errors
    /// redb errors.
    pub fn pending_up_to(&self, id: u64) -> Result<usize, String> {
        let txn = self.db.begin_read().map_err(err)?;
        let pending = txn.open_table(PENDING).map_err(err)?;
        let count = pending.range(..=id).map_err(err)?.count();
        Ok(count)
    }

    /// How many records are pending, delivered and dead.
    ///
    /// # Errors
    /// redb errors.
    pub fn counts(&self) -> Result<(u64, u64, u64), String> {
        let txn = self.db.begin_read().map_err(err)?;
        let total = txn.open_table(RECORDS).map_err(err)?.len().map_err(err)?;
        let pending = txn.open_table(PENDING).map_err(err)?.len().map_err(err)?;
        let dead = txn.open_table(DEAD).map_err(err)?.len().map_err(err)?;
        Ok((pending, total - pending - dead, dead))
    }

    /// Deletes the records in `states` (delivered or dead; pending ones are never
    /// deleted) received before `before`. Returns how many were deleted.
    ///
    /// Records are read oldest first and the walk stops a minute past `before`, so a
    /// purge costs what it deletes, not the size of the inbox.
    ///
    /// # Errors
    /// redb errors.
    pub fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, String> {
        let txn = self.db.begin_write().map_err(err)?;
        let mut removed = 0;
        {
            let mut records = txn.open_table(RECORDS).map_err(err)?;
            let mut dedup = txn.open_table(DEDUP).map_err(err)?;
            let mut dead = txn.open_table(DEAD).map_err(err)?;
            let mut doomed = Vec::new();
            for entry in records.iter().map_err(err)? {
                let (id, bytes) = entry.map_err(err)?;
                let record: Record = serde_json::from_slice(bytes.value()).map_err(err)?;
                // Ids follow arrival; a minute of slack covers acceptances that
                // committed slightly out of order.
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
            for (id, key) in doomed {
                records.remove(id).map_err(err)?;
                dedup.remove(key.as_str()).map_err(err)?;
                dead.remove(id).map_err(err)?;
                removed += 1;
            }
        }
        txn.commit().map_err(err)?;
        Ok(removed)
    }
}

/// With the Redis backend, ids of the records the local fallback accepted (while
/// Redis was unreachable) start above this, so they never collide with Redis's ids.
pub const FALLBACK_ID_BASE: u64 = 1 << 53;

/// The inbox the forwarder works with.
#[derive(Debug, Clone)]
pub enum Inbox {
    /// One instance: everything in redb.
    Local(LocalInbox),
    /// Several instances: records and the queue in Redis; a local redb inbox takes
    /// the messages that arrive while Redis is unreachable, and this instance delivers
    /// those itself.
    Shared {
        /// The Redis inbox.
        queue: Arc<crate::redis_inbox::RedisQueue>,
        /// The fallback, ids above [`FALLBACK_ID_BASE`].
        fallback: LocalInbox,
    },
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())?
}

/// Where one record lives.
enum Place<'a> {
    Local(&'a LocalInbox),
    Redis(&'a crate::redis_inbox::RedisQueue),
}

impl Inbox {
    fn place(&self, id: u64) -> Place<'_> {
        match self {
            Inbox::Local(local) => Place::Local(local),
            Inbox::Shared { fallback, .. } if id > FALLBACK_ID_BASE => Place::Local(fallback),
            Inbox::Shared { queue, .. } => Place::Redis(queue),
        }
    }

    /// Commits a new pending record, or returns the existing one for a retry. The
    /// record is stored (redb: fsync; Redis: as durable as Redis is configured) when
    /// this returns. With Redis unreachable, the local fallback takes it.
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
        match self {
            Inbox::Local(local) => local.accept(account, dedup_key, message, now).await,
            Inbox::Shared { queue, fallback } => {
                match queue.accept(account, dedup_key, message.clone(), now).await {
                    Ok(accepted) => Ok(accepted),
                    Err(error) => {
                        tracing::warn!(account, "the Redis inbox is unavailable ({error}); the message goes to this instance's local inbox and this instance delivers it");
                        fallback.accept(account, dedup_key, message, now).await
                    }
                }
            }
        }
    }

    /// Writes a record back after an attempt.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn update(&self, record: &Record) -> Result<(), String> {
        match self.place(record.id) {
            Place::Local(local) => local.update(record).await,
            Place::Redis(queue) => queue.update(record).await,
        }
    }

    /// One record.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(&self, id: u64) -> Result<Option<Record>, String> {
        match self.place(id) {
            Place::Local(local) => local.get(id),
            Place::Redis(queue) => queue.get(id).await,
        }
    }

    /// Pending records due now that this instance delivers, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, String> {
        match self {
            Inbox::Local(local) => local.due(now, limit),
            Inbox::Shared { queue, fallback } => {
                let mut due = fallback.due(now, limit)?;
                match queue.due(now, limit.saturating_sub(due.len())).await {
                    Ok(records) => due.extend(records),
                    Err(error) => tracing::warn!("cannot read the Redis inbox: {error}"),
                }
                Ok(due)
            }
        }
    }

    /// Keeps this instance's queue entries and takes over those of instances that
    /// stopped answering (Redis only). Returns how many were taken over.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn maintain(&self) -> Result<usize, String> {
        match self {
            Inbox::Local(_) => Ok(0),
            Inbox::Shared { queue, fallback } => {
                queue
                    .maintain(&|account, key| fallback.find(account, key).ok().flatten())
                    .await
            }
        }
    }

    /// The Redis queue, with the Redis backend.
    pub fn queue(&self) -> Option<&crate::redis_inbox::RedisQueue> {
        match self {
            Inbox::Local(_) => None,
            Inbox::Shared { queue, .. } => Some(queue),
        }
    }

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> Result<Vec<Record>, String> {
        match self {
            Inbox::Local(local) => local.list(state, limit),
            Inbox::Shared { queue, fallback } => {
                let mut records = queue.list(state, limit).await?;
                records.extend(fallback.list(state, limit)?);
                records.sort_by_key(|r| std::cmp::Reverse((r.received_at, r.id)));
                records.truncate(limit);
                Ok(records)
            }
        }
    }

    /// How many records are pending, delivered and dead.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn counts(&self) -> Result<(u64, u64, u64), String> {
        match self {
            Inbox::Local(local) => local.counts(),
            Inbox::Shared { queue, fallback } => {
                let (a, b, c) = queue.counts().await?;
                let (x, y, z) = fallback.counts()?;
                Ok((a + x, b + y, c + z))
            }
        }
    }

    /// Deletes the records in `states` (delivered, dead) received before `before`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, String> {
        let (local, queue) = match self {
            Inbox::Local(local) => (local.clone(), None),
            Inbox::Shared { queue, fallback } => (fallback.clone(), Some(queue)),
        };
        let owned = states.to_vec();
        let mut purged = blocking(move || local.purge(before, &owned)).await?;
        if let Some(queue) = queue {
            purged += queue.purge(before, states).await?;
        }
        Ok(purged)
    }

    /// Marks a record pending again, due now (`wxgate inbox retry`).
    ///
    /// # Errors
    /// Unknown id, a delivery another instance holds, or storage errors.
    pub async fn retry(&self, id: u64, now: i64) -> Result<Record, String> {
        match self.place(id) {
            Place::Local(local) => {
                let mut record = local.get(id)?.ok_or_else(|| format!("no delivery {id}"))?;
                record.state = DeliveryState::Pending;
                record.next_attempt_at = now;
                local.update(&record).await?;
                Ok(record)
            }
            Place::Redis(queue) => queue.retry(id, now).await,
        }
    }
}

#[cfg(test)]
mod tests;
