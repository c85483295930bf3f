//! The committer thread: every write of the redb inbox, gathered into batches.
//!
//! ```text
//! accept / update / flush ─▶ channel ─▶ committer: take every job waiting (≤ 512)
//!   ─▶ one transaction: durable (fsync) when it holds an acceptance or a flush,
//!      otherwise committed at once and made durable within GROUP_COMMIT_WINDOW
//!   ─▶ answer every job of the batch on its oneshot
//! ```

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use redb::ReadableTable;
use tokio::sync::oneshot;

use super::tables::{dedup_key, Tables, DEDUP, META};
use super::GROUP_COMMIT_WINDOW;
use crate::inbox::error::InboxError;
use crate::inbox::record::{Accepted, Record};
use crate::storage::{Db, StoreError};

/// One write for the committer thread.
#[derive(Debug)]
pub(super) enum Job {
    Accept {
        /// The new record; its id is given here.
        template: Record,
        answer: oneshot::Sender<Result<Accepted, InboxError>>,
    },
    Update {
        record: Record,
        answer: oneshot::Sender<Result<(), InboxError>>,
    },
    /// Commit durably now.
    Flush {
        answer: oneshot::Sender<Result<(), InboxError>>,
    },
}

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// The committer thread's loop: runs until every sender is gone, then commits durably
/// once more.
pub(super) fn committer(db: Arc<Db>, id_base: u64, jobs: Receiver<Job>) {
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
        answer(batch, result.map_err(Arc::new));
    }
}

/// Answers every job of a batch (a caller that gave up is no longer listening).
fn answer(batch: Vec<Job>, result: Result<Vec<Accepted>, Arc<StoreError>>) {
    let (mut accepted, error) = match result {
        Ok(accepted) => (accepted.into_iter(), None),
        Err(error) => (Vec::new().into_iter(), Some(error)),
    };
    let failed = |error: &Arc<StoreError>| InboxError::Commit(error.clone());
    for job in batch {
        match job {
            Job::Accept { answer, .. } => {
                // `write_batch` gives one acceptance per Accept job, in order.
                let result = match &error {
                    Some(error) => Err(failed(error)),
                    None => match accepted.next() {
                        Some(accepted) => Ok(accepted),
                        None => continue,
                    },
                };
                let _ = answer.send(result);
            }
            Job::Update { answer, .. } | Job::Flush { answer } => {
                let _ = answer.send(error.as_ref().map_or(Ok(()), |e| Err(failed(e))));
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
        let template = match job {
            Job::Update { record, .. } => {
                tables.write(record)?;
                continue;
            }
            Job::Flush { .. } => continue,
            Job::Accept { template, .. } => template,
        };
        let dedup = dedup_key(&template.account, &template.dedup_key);
        let existing = dedup_table.get(dedup.as_str())?.map(|id| id.value());
        if let Some(id) = existing {
            let bytes = tables.records.get(id)?.map(|v| v.value().to_vec());
            if let Some(bytes) = bytes {
                results.push(Accepted::Duplicate(serde_json::from_slice(&bytes)?));
                continue;
            }
        }
        let record = Record {
            id: next_id,
            ..template.clone()
        };
        next_id += 1;
        tables.write(&record)?;
        dedup_table.insert(dedup.as_str(), record.id)?;
        results.push(Accepted::New(record));
    }
    meta.insert("next_id", next_id)?;
    Ok(results)
}
