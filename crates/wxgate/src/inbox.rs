//! The durable inbox: every message handed to forwarding is committed here (redb,
//! fsync on commit) before WeChat gets its answer, with its delivery state. WeChat's
//! retries are recognised here too, so a retry never causes a second delivery.
//!
//! [`Inbox`] is what the forwarder works with; [`record`] is a message and its
//! delivery state as stored, `local` the redb inbox (its committer thread in
//! `local/commit.rs`, its tables, reads and purge in `local/tables.rs`), [`redis`] the
//! shared queue, and [`InboxError`] why any of them failed.

use std::sync::Arc;

mod error;
mod local;
pub mod record;
pub mod redis;

pub use error::InboxError;
pub use local::{LocalInbox, GROUP_COMMIT_WINDOW};
pub use record::{Accepted, DeliveryState, Record};

/// The forwarding inbox: redb alone, or, with Redis, the Redis queue with a local
/// fallback (refused while the redb inbox still has pending deliveries).
///
/// # Errors
/// Storage errors, or deliveries left in the redb inbox with the Redis backend.
pub async fn open(
    config: &crate::config::Config,
    db: Arc<crate::storage::Db>,
    shared: Option<&crate::redis::SharedSeen>,
) -> Result<Inbox, InboxError> {
    let id_base = if shared.is_some() {
        FALLBACK_ID_BASE
    } else {
        0
    };
    // Opening may build indexes over the whole inbox: off the async threads.
    let local = tokio::task::spawn_blocking(move || LocalInbox::new(db, id_base)).await??;
    let Some(shared) = shared else {
        return Ok(Inbox::Local(local));
    };
    let fallback = local;
    let left = fallback.pending_up_to(FALLBACK_ID_BASE).await?;
    if left > 0 {
        return Err(InboxError::LeftInRedb {
            left,
            path: config.data_dir.join("wxgate.redb").display().to_string(),
        });
    }
    let queue = crate::inbox::redis::RedisQueue::new(
        shared.link(),
        crate::inbox::redis::RedisQueue::consumer_name(),
        std::time::Duration::from_secs(config.reclaim_after_s),
    );
    tracing::info!(
        consumer = queue.consumer(),
        "forwarding queue on Redis; deliveries of an instance silent for {} s are taken over",
        config.reclaim_after_s
    );
    match shared.persistence().await {
        Ok((appendonly, appendfsync)) => {
            if let Some(warning) = crate::redis::persistence_warning(&appendonly, &appendfsync) {
                tracing::warn!("{warning}");
            }
        }
        Err(error) => tracing::info!("cannot read Redis's persistence settings ({error}); make sure it runs with appendonly yes and appendfsync always"),
    }
    Ok(Inbox::Shared {
        queue: Arc::new(queue),
        fallback,
    })
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
        queue: Arc<crate::inbox::redis::RedisQueue>,
        /// The fallback, ids above [`FALLBACK_ID_BASE`].
        fallback: LocalInbox,
    },
}

/// Where one record lives.
enum Place<'a> {
    Local(&'a LocalInbox),
    Redis(&'a crate::inbox::redis::RedisQueue),
}

impl Inbox {
    fn place(&self, id: u64) -> Place<'_> {
        match self {
            Inbox::Local(local) => Place::Local(local),
            Inbox::Shared { fallback, .. } if id > FALLBACK_ID_BASE => Place::Local(fallback),
            Inbox::Shared { queue, .. } => Place::Redis(queue),
        }
    }

    /// Commits `template` as a new pending record (numbered by the inbox), or returns
    /// the existing one for a retry (same account and dedup key). The
    /// record is stored (redb: fsync; Redis: as durable as Redis is configured) when
    /// this returns. With Redis unreachable, the local fallback takes it.
    ///
    /// # Errors
    /// Storage errors: the caller must not acknowledge the message to WeChat.
    pub async fn accept(&self, template: Record) -> Result<Accepted, InboxError> {
        match self {
            Inbox::Local(local) => local.accept(template).await,
            Inbox::Shared { queue, fallback } => match queue.accept(&template).await {
                Ok(accepted) => Ok(accepted),
                Err(error) => {
                    tracing::warn!(account = %template.account, "the Redis inbox is unavailable ({error}); the message goes to this instance's local inbox and this instance delivers it");
                    fallback.accept(template).await
                }
            },
        }
    }

    /// Writes a record back after an attempt.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn update(&self, record: &Record) -> Result<(), InboxError> {
        match self.place(record.id) {
            Place::Local(local) => local.update(record).await,
            Place::Redis(queue) => queue.update(record).await,
        }
    }

    /// One record.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(&self, id: u64) -> Result<Option<Record>, InboxError> {
        match self.place(id) {
            Place::Local(local) => local.get(id).await,
            Place::Redis(queue) => queue.get(id).await,
        }
    }

    /// Pending records due now that this instance delivers, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, InboxError> {
        match self {
            Inbox::Local(local) => local.due(now, limit).await,
            Inbox::Shared { queue, fallback } => {
                let mut due = fallback.due(now, limit).await?;
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
    pub async fn maintain(&self) -> Result<usize, InboxError> {
        match self {
            Inbox::Local(_) => Ok(0),
            Inbox::Shared { queue, fallback } => queue.maintain(fallback).await,
        }
    }

    /// Commits durably everything committed so far (at shutdown).
    ///
    /// # Errors
    /// The local database cannot commit.
    pub async fn flush(&self) -> Result<(), InboxError> {
        match self {
            Inbox::Local(local) => local.flush().await,
            Inbox::Shared { fallback, .. } => fallback.flush().await,
        }
    }

    /// The Redis queue, with the Redis backend.
    pub fn queue(&self) -> Option<&crate::inbox::redis::RedisQueue> {
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
    ) -> Result<Vec<Record>, InboxError> {
        match self {
            Inbox::Local(local) => local.list(state, limit).await,
            Inbox::Shared { queue, fallback } => {
                let mut records = queue.list(state, limit).await?;
                records.extend(fallback.list(state, limit).await?);
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
    pub async fn counts(&self) -> Result<(u64, u64, u64), InboxError> {
        match self {
            Inbox::Local(local) => local.counts().await,
            Inbox::Shared { queue, fallback } => {
                let (a, b, c) = queue.counts().await?;
                let (x, y, z) = fallback.counts().await?;
                Ok((a + x, b + y, c + z))
            }
        }
    }

    /// Deletes the records in `states` (delivered, dead) received before `before`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, InboxError> {
        let (local, queue) = match self {
            Inbox::Local(local) => (local, None),
            Inbox::Shared { queue, fallback } => (fallback, Some(queue)),
        };
        let mut purged = local.purge(before, states).await?;
        if let Some(queue) = queue {
            purged += queue.purge(before, states).await?;
        }
        Ok(purged)
    }

    /// Marks a record pending again, due now (`wxgate inbox retry`).
    ///
    /// # Errors
    /// Unknown id, a delivery another instance holds, or storage errors.
    pub async fn retry(&self, id: u64, now: i64) -> Result<Record, InboxError> {
        match self.place(id) {
            Place::Local(local) => {
                let mut record = local.get(id).await?.ok_or(InboxError::NotFound(id))?;
                record.state = DeliveryState::Pending;
                record.next_attempt_at = now;
                local.update(&record).await?;
                Ok(record)
            }
            Place::Redis(queue) => queue.retry(id, now).await,
        }
    }
}

/// The local fallback answers the Redis queue's question (see
/// [`redis::LocalCopies`]) from a blocking thread; a storage error counts as "not
/// stored here".
impl redis::LocalCopies for LocalInbox {
    async fn find(&self, account: &str, dedup_key: &str) -> Option<u64> {
        LocalInbox::find(self, account, dedup_key)
            .await
            .ok()
            .flatten()
    }
}
