//! The inbox on Redis, shared by several instances: records in a hash, the delivery
//! queue on a Redis Stream with one consumer group.
//!
//! ```text
//! accept ─▶ ACCEPT script: dedup? ─▶ INCR id, HSET record, XADD queue,
//!           XREADGROUP (the entry is now pending on this instance's consumer)
//! deliver ─▶ UPDATE script: HSET record; done or dead ─▶ XACK + XDEL
//! every reclaim_after/3 ─▶ HEARTBEAT: XCLAIM own pending entries to self (their idle
//!           time restarts), then RECLAIM: XAUTOCLAIM entries idle longer than
//!           reclaim_after: their instance stopped answering (kill -9, lost host)
//! ```
//!
//! Every entry is pending on exactly one consumer (one per process) from the moment it
//! is accepted, so a live instance keeps its work and a dead one's work moves to a
//! survivor after `reclaim_after_s`. An instance that was only paused past that time
//! (a stopped VM) loses its entries and may deliver one a second time: delivery is at
//! least once, and a repeat carries the same delivery id.
//!
//! Keys (prefix `wxgate:inbox:`): `next_id`, `records` (hash id → JSON),
//! `dedup:{account}:{key}` → id, `state:{pending,delivered,dead}` and `all` (sorted
//! sets of ids), `queue` (the stream; group `wxgate`, field `id`).
//!
//! Here: accepting, writing back and retrying a record. `scripts` holds the keys and
//! the Lua scripts, `maintain` the heartbeat and the takeover, `queries` the lists,
//! counts and the purge.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::InboxError;
use super::record::{Accepted, DeliveryState, Record};
use crate::redis::RedisLink;

mod maintain;
mod queries;
mod scripts;

use scripts::{dedup_redis_key, state_key, Scripts, ALL, NEXT_ID, QUEUE, RECORDS};

/// How long `accept` waits for Redis (see there).
const ACCEPT_DEADLINE: Duration = Duration::from_millis(1500);

/// Where the local fallback inbox keeps a message, if it took it: the id of its
/// record for `(account, dedup_key)`. [`RedisQueue::maintain`] asks it about entries
/// it finds in the queue without knowing them. A plain closure answers at once (the
/// tests); the redb fallback answers from a blocking thread.
pub trait LocalCopies: Sync {
    /// The local record's id, if there is one.
    fn find(&self, account: &str, dedup_key: &str) -> impl Future<Output = Option<u64>> + Send;
}

impl<F: Fn(&str, &str) -> Option<u64> + Sync> LocalCopies for F {
    async fn find(&self, account: &str, dedup_key: &str) -> Option<u64> {
        self(account, dedup_key)
    }
}

/// A delivery this instance's consumer holds.
#[derive(Debug)]
struct Owned {
    stream_id: String,
    next_attempt_at: i64,
    /// When this instance learned it holds the entry (heartbeats started before that
    /// cannot have seen it).
    since: Instant,
    /// A final state Redis has not stored yet: written again, never delivered again.
    unfinished: Option<Record>,
}

/// The Redis inbox of one instance (see the module documentation).
pub struct RedisQueue {
    link: RedisLink,
    consumer: String,
    reclaim_after: Duration,
    owned: Mutex<HashMap<u64, Owned>>,
    last_heartbeat: Mutex<Option<Instant>>,
    last_forget: Mutex<Option<Instant>>,
    /// Deliveries taken over from instances that stopped answering.
    pub reclaimed: AtomicU64,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

fn parse(json: &str) -> Result<Record, InboxError> {
    serde_json::from_str(json).map_err(InboxError::Unreadable)
}

fn to_json(record: &Record) -> Result<String, InboxError> {
    serde_json::to_string(record).map_err(InboxError::Unwritable)
}

impl RedisQueue {
    /// The queue of this process, named `consumer` in the group.
    pub fn new(link: RedisLink, consumer: String, reclaim_after: Duration) -> RedisQueue {
        RedisQueue {
            link,
            consumer,
            reclaim_after,
            owned: Mutex::new(HashMap::new()),
            last_heartbeat: Mutex::new(None),
            last_forget: Mutex::new(None),
            reclaimed: AtomicU64::new(0),
            scripts: Scripts::new(),
        }
    }

    /// A consumer name unique to this process: host, pid and a random suffix.
    pub fn consumer_name() -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "wxgate".to_owned());
        format!(
            "{host}-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        )
    }

    /// This instance's consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Owned>> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many deliveries this instance holds.
    pub fn held(&self) -> usize {
        self.owned().len()
    }

    /// Stores a new record and queues it on this instance, or returns the record of
    /// an earlier push with the same dedup key.
    ///
    /// # Errors
    /// Redis errors: the message was not stored.
    pub async fn accept(&self, template: &Record) -> Result<Accepted, InboxError> {
        // Redis numbers the record: the script puts its id in place of the 0.
        let template = Record {
            id: 0,
            ..template.clone()
        };
        let (account, dedup_key, now) =
            (&template.account, &template.dedup_key, template.received_at);
        let json = to_json(&template)?;
        debug_assert!(json.starts_with("{\"id\":0,"));
        let mut invocation = self.scripts.accept.prepare_invoke();
        invocation
            .key(QUEUE)
            .key(dedup_redis_key(account, dedup_key))
            .key(NEXT_ID)
            .key(RECORDS)
            .key(state_key(DeliveryState::Pending))
            .key(ALL)
            .arg(&self.consumer)
            .arg(json);
        // A timeout here leaves the outcome unknown (the script may have run), and the
        // caller then stores the message locally: wait longer than for other steps so
        // that a slow Redis rarely causes a double store. A Redis that is down fails
        // at once (connection refused) or within the connect deadline.
        let (new, json, stream_id): (i64, String, String) = self
            .link
            .invoke_within(ACCEPT_DEADLINE, &invocation)
            .await?;
        let record = parse(&json)?;
        if new == 0 {
            return Ok(Accepted::Duplicate(record));
        }
        self.owned().insert(
            record.id,
            Owned {
                stream_id,
                // The first attempt runs right away on the accepting request; the worker
                // only steps in if that attempt never records its outcome.
                next_attempt_at: now + 60,
                since: Instant::now(),
                unfinished: None,
            },
        );
        Ok(Accepted::New(record))
    }

    async fn write(
        &self,
        record: &Record,
        stream_id: &str,
        requeue: bool,
    ) -> Result<String, InboxError> {
        let json = to_json(record)?;
        let mut invocation = self.scripts.update.prepare_invoke();
        invocation
            .key(QUEUE)
            .key(RECORDS)
            .key(state_key(DeliveryState::Pending))
            .key(state_key(DeliveryState::Delivered))
            .key(state_key(DeliveryState::Dead))
            .arg(record.id)
            .arg(json)
            .arg(record.state.as_str())
            .arg(stream_id)
            .arg(if requeue { self.consumer.as_str() } else { "" });
        Ok(self.link.invoke(&invocation).await?)
    }

    /// Writes a record back after an attempt. A final state acknowledges the queue
    /// entry; a pending one stays with this instance until its next attempt.
    ///
    /// # Errors
    /// Redis errors. A final state is then kept here and written again by
    /// [`RedisQueue::maintain`], never delivered again.
    pub async fn update(&self, record: &Record) -> Result<(), InboxError> {
        let stream_id = self
            .owned()
            .get(&record.id)
            .map(|o| o.stream_id.clone())
            .unwrap_or_default();
        let result = self.write(record, &stream_id, false).await;
        let mut owned = self.owned();
        match (record.state, &result) {
            (DeliveryState::Pending, _) => {
                if let Some(entry) = owned.get_mut(&record.id) {
                    entry.next_attempt_at = record.next_attempt_at;
                }
            }
            (_, Ok(_)) => {
                owned.remove(&record.id);
            }
            (_, Err(_)) => {
                if let Some(entry) = owned.get_mut(&record.id) {
                    entry.unfinished = Some(record.clone());
                }
            }
        }
        result.map(|_| ())
    }

    /// Queues a record again now, on this instance (`wxgate inbox retry`).
    ///
    /// # Errors
    /// Unknown id, a delivery another instance holds, or Redis errors.
    pub async fn retry(&self, id: u64, now: i64) -> Result<Record, InboxError> {
        let mut record = self.get(id).await?.ok_or(InboxError::NotFound(id))?;
        let held = self.owned().get(&id).map(|o| o.stream_id.clone());
        if record.state == DeliveryState::Pending && held.is_none() {
            return Err(InboxError::HeldElsewhere {
                id,
                next_attempt_at: record.next_attempt_at,
            });
        }
        record.state = DeliveryState::Pending;
        record.next_attempt_at = now;
        let stream_id = self
            .write(&record, held.as_deref().unwrap_or(""), true)
            .await?;
        self.owned().insert(
            id,
            Owned {
                stream_id,
                next_attempt_at: now,
                since: Instant::now(),
                unfinished: None,
            },
        );
        Ok(record)
    }

    /// One record.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn get(&self, id: u64) -> Result<Option<Record>, InboxError> {
        let json: Option<String> = self
            .link
            .query(redis::cmd("HGET").arg(RECORDS).arg(id))
            .await?;
        json.map(|j| parse(&j)).transpose()
    }

    /// Pending records this instance holds whose next attempt is due, at most `limit`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, InboxError> {
        let mut ids: Vec<(i64, u64)> = self
            .owned()
            .iter()
            .filter(|(_, o)| o.unfinished.is_none() && o.next_attempt_at <= now)
            .map(|(&id, o)| (o.next_attempt_at, id))
            .collect();
        ids.sort_unstable();
        ids.truncate(limit);
        let ids: Vec<u64> = ids.into_iter().map(|(_, id)| id).collect();
        let records = self.get_many(&ids).await?;
        let mut due = Vec::new();
        let mut finished = Vec::new();
        for (id, record) in ids.into_iter().zip(records) {
            match record {
                Some(record) if record.state == DeliveryState::Pending => due.push(record),
                Some(record) => finished.push(record),
                None => {
                    tracing::error!(delivery_id = id, "delivery {id} is no longer in Redis (was Redis restarted without persistence? see README, several instances); it cannot be delivered");
                    self.owned().remove(&id);
                }
            }
        }
        // Finished elsewhere (a takeover race): acknowledge, do not deliver again.
        for record in finished {
            let _ = self.update(&record).await;
        }
        Ok(due)
    }
}
