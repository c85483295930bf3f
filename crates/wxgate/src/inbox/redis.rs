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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimReply, StreamClaimReply, StreamId};
use redis::Script;

use super::record::{Accepted, DeliveryState, Record};
use crate::redis::RedisLink;

const RECORDS: &str = "wxgate:inbox:records";
const NEXT_ID: &str = "wxgate:inbox:next_id";
const ALL: &str = "wxgate:inbox:all";
const QUEUE: &str = "wxgate:inbox:queue";
const GROUP: &str = "wxgate";

/// How long `accept` waits for Redis (see there).
const ACCEPT_DEADLINE: Duration = Duration::from_millis(1500);

fn state_key(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "wxgate:inbox:state:pending",
        DeliveryState::Delivered => "wxgate:inbox:state:delivered",
        DeliveryState::Dead => "wxgate:inbox:state:dead",
    }
}

fn dedup_redis_key(account: &str, key: &str) -> String {
    format!("wxgate:inbox:dedup:{account}:{key}")
}

/// Creates the stream and its group when Redis lost them (a restart without
/// persistence); `KEYS[1]` is always the queue.
const ENSURE_GROUP: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'wxgate', '0', 'MKSTREAM')
end
"#;

/// KEYS: queue, dedup, next_id, records, pending, all. ARGV: consumer, record JSON
/// starting with `{"id":0,`. Returns {0, existing JSON, ""} for a retry, or
/// {1, new JSON, stream id}.
const ACCEPT: &str = r#"
local existing = redis.call('GET', KEYS[2])
if existing then
  local record = redis.call('HGET', KEYS[4], existing)
  if record then return {0, record, ''} end
end
local id = redis.call('INCR', KEYS[3])
local json = '{"id":' .. id .. string.sub(ARGV[2], 8)
redis.call('HSET', KEYS[4], id, json)
redis.call('SET', KEYS[2], id)
redis.call('ZADD', KEYS[5], id, id)
redis.call('ZADD', KEYS[6], id, id)
local sid = redis.call('XADD', KEYS[1], '*', 'id', id)
redis.call('XREADGROUP', 'GROUP', 'wxgate', ARGV[1], 'COUNT', 1000, 'STREAMS', KEYS[1], '>')
return {1, json, sid}
"#;

/// KEYS: queue, records, pending, delivered, dead. ARGV: id, JSON, state, stream id
/// (or ""), consumer (or "" to leave the queue alone). With a consumer and no stream
/// id, the record is queued again (a manual retry) and the new stream id returned.
const UPDATE: &str = r#"
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local target = {pending = KEYS[3], delivered = KEYS[4], dead = KEYS[5]}
redis.call('ZADD', target[ARGV[3]], ARGV[1], ARGV[1])
if ARGV[3] ~= 'pending' then
  if ARGV[4] ~= '' then
    redis.call('XACK', KEYS[1], 'wxgate', ARGV[4])
    redis.call('XDEL', KEYS[1], ARGV[4])
  end
  return ''
end
if ARGV[5] ~= '' and ARGV[4] == '' then
  local sid = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
  redis.call('XREADGROUP', 'GROUP', 'wxgate', ARGV[5], 'COUNT', 1000, 'STREAMS', KEYS[1], '>')
  return sid
end
return ARGV[4]
"#;

/// KEYS: queue. ARGV: consumer, count, start (`-` or `(id`). Claims a page of this
/// consumer's own pending entries again, which restarts their idle time. Returns the
/// last pending id of the page, the page's size and the claimed entries.
const HEARTBEAT: &str = r#"
local mine = redis.call('XPENDING', KEYS[1], 'wxgate', ARGV[3], '+', ARGV[2], ARGV[1])
if #mine == 0 then return {'', 0, {}} end
local ids = {}
for i, entry in ipairs(mine) do ids[i] = entry[1] end
return {ids[#ids], #ids, redis.call('XCLAIM', KEYS[1], 'wxgate', ARGV[1], 0, unpack(ids))}
"#;

/// KEYS: queue. ARGV: consumer, min idle ms, start, count.
const RECLAIM: &str = r#"
return redis.call('XAUTOCLAIM', KEYS[1], 'wxgate', ARGV[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
"#;

/// KEYS: queue. ARGV: min idle ms, own consumer. Forgets consumers with nothing
/// pending that have been silent for longer than the idle time.
const FORGET_CONSUMERS: &str = r#"
local forgotten = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], 'wxgate')) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields['pending'] == 0 and fields['idle'] > tonumber(ARGV[1]) and fields['name'] ~= ARGV[2] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'wxgate', fields['name'])
    forgotten = forgotten + 1
  end
end
return forgotten
"#;

/// KEYS: pending, delivered, dead.
const COUNTS: &str = r#"
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
"#;

/// KEYS: records, delivered, dead, all, dedup. ARGV: id.
const DELETE: &str = r#"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 1
"#;

/// A script that works on the queue, which it first makes sure exists.
fn queue_script(body: &str) -> Script {
    Script::new(&format!("{ENSURE_GROUP}{body}"))
}

/// Finds the local fallback's record id for `(account, dedup_key)`.
pub type StoredLocally<'a> = dyn Fn(&str, &str) -> Option<u64> + Send + Sync + 'a;

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

struct Scripts {
    accept: Script,
    update: Script,
    heartbeat: Script,
    reclaim: Script,
    forget: Script,
    counts: Script,
    delete: Script,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

fn parse(json: &str) -> Result<Record, String> {
    serde_json::from_str(json).map_err(|e| format!("unreadable inbox record in Redis: {e}"))
}

fn record_id(entry: &StreamId) -> Option<u64> {
    entry.get::<String>("id").and_then(|text| text.parse().ok())
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
            scripts: Scripts {
                accept: queue_script(ACCEPT),
                update: queue_script(UPDATE),
                heartbeat: queue_script(HEARTBEAT),
                reclaim: queue_script(RECLAIM),
                forget: Script::new(FORGET_CONSUMERS),
                counts: Script::new(COUNTS),
                delete: Script::new(DELETE),
            },
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
    pub async fn accept(
        &self,
        account: &str,
        dedup_key: &str,
        message: serde_json::Value,
        now: i64,
    ) -> Result<Accepted, String> {
        // Redis numbers the record: the script puts its id in place of the 0.
        let template = Record::new(0, account, dedup_key, message, now);
        let json = serde_json::to_string(&template).map_err(|e| e.to_string())?;
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
    ) -> Result<String, String> {
        let json = serde_json::to_string(record).map_err(|e| e.to_string())?;
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
        self.link.invoke(&invocation).await
    }

    /// Writes a record back after an attempt. A final state acknowledges the queue
    /// entry; a pending one stays with this instance until its next attempt.
    ///
    /// # Errors
    /// Redis errors. A final state is then kept here and written again by
    /// [`RedisQueue::maintain`], never delivered again.
    pub async fn update(&self, record: &Record) -> Result<(), String> {
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
    pub async fn retry(&self, id: u64, now: i64) -> Result<Record, String> {
        let mut record = self
            .get(id)
            .await?
            .ok_or_else(|| format!("no delivery {id}"))?;
        let held = self.owned().get(&id).map(|o| o.stream_id.clone());
        if record.state == DeliveryState::Pending && held.is_none() {
            return Err(format!(
                "delivery {id} is pending on another instance, which retries it on its own schedule (next attempt at {}); if that instance is gone, a survivor takes it over after reclaim_after_s",
                record.next_attempt_at
            ));
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
    pub async fn get(&self, id: u64) -> Result<Option<Record>, String> {
        let json: Option<String> = self
            .link
            .query(redis::cmd("HGET").arg(RECORDS).arg(id))
            .await?;
        json.map(|j| parse(&j)).transpose()
    }

    async fn get_many(&self, ids: &[u64]) -> Result<Vec<Option<Record>>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let jsons: Vec<Option<String>> = self
            .link
            .query(redis::cmd("HMGET").arg(RECORDS).arg(ids))
            .await?;
        jsons
            .into_iter()
            .map(|j| j.map(|j| parse(&j)).transpose())
            .collect()
    }

    /// Pending records this instance holds whose next attempt is due, at most `limit`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<Record>, String> {
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

    /// Keeps this instance's entries alive and takes over those of instances that
    /// stopped answering; runs at most every `reclaim_after / 3`. Returns how many
    /// deliveries were taken over.
    ///
    /// # Errors
    /// Redis errors (retried at the next call).
    ///
    /// `stored_locally(account, dedup_key)` names the local fallback's record of a
    /// message, if it has one. An entry of this consumer that this instance does not
    /// know was stored by an `accept` whose answer came too late; when the fallback
    /// took that message, the Redis record is closed as its duplicate instead of
    /// being delivered a second time.
    pub async fn maintain(&self, stored_locally: &StoredLocally<'_>) -> Result<usize, String> {
        let every = (self.reclaim_after / 3).max(Duration::from_millis(200));
        let started = Instant::now();
        {
            let mut last = self
                .last_heartbeat
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| started.duration_since(at) < every) {
                return Ok(0);
            }
            *last = Some(started);
        }
        // Final states that could not be written: write them now.
        let unfinished: Vec<Record> = self
            .owned()
            .values()
            .filter_map(|o| o.unfinished.clone())
            .collect();
        for record in unfinished {
            self.update(&record).await?;
        }

        const PAGE: usize = 1000;
        let mut mine = Vec::new();
        let mut start = "-".to_owned();
        loop {
            let mut invocation = self.scripts.heartbeat.prepare_invoke();
            invocation
                .key(QUEUE)
                .arg(&self.consumer)
                .arg(PAGE)
                .arg(&start);
            let (last, size, page): (String, usize, StreamClaimReply) =
                self.link.invoke(&invocation).await?;
            mine.extend(page.ids);
            if size < PAGE {
                break;
            }
            start = format!("({last}");
        }
        let held: HashSet<&str> = mine.iter().map(|e| e.id.as_str()).collect();
        let mut found = Vec::new();
        {
            let mut owned = self.owned();
            owned.retain(|id, o| {
                let keep = o.since > started || held.contains(o.stream_id.as_str());
                if !keep {
                    tracing::warn!(delivery_id = id, "delivery {id} was taken over by another instance (this one did not answer for reclaim_after_s); it may be delivered twice");
                }
                keep
            });
            let known: HashSet<&str> = owned.values().map(|o| o.stream_id.as_str()).collect();
            for entry in &mine {
                if !known.contains(entry.id.as_str()) {
                    found.push(entry.clone());
                }
            }
        }

        let mut taken = Vec::new();
        let mut cursor = "0-0".to_owned();
        for _ in 0..20 {
            let mut invocation = self.scripts.reclaim.prepare_invoke();
            invocation
                .key(QUEUE)
                .arg(&self.consumer)
                .arg(self.reclaim_after.as_millis() as u64)
                .arg(&cursor)
                .arg(200);
            let reply: StreamAutoClaimReply = self.link.invoke(&invocation).await?;
            taken.extend(reply.claimed);
            cursor = reply.next_stream_id;
            if cursor == "0-0" {
                break;
            }
        }
        let reclaimed = taken.len();
        if reclaimed > 0 {
            self.reclaimed
                .fetch_add(reclaimed as u64, Ordering::Relaxed);
            tracing::warn!(
                consumer = %self.consumer,
                "took over {reclaimed} deliveries from an instance that stopped answering for {} s",
                self.reclaim_after.as_secs()
            );
        }
        found.extend(taken);
        self.adopt(found, stored_locally).await?;

        let forget = {
            let mut last = self.last_forget.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|at| started.duration_since(at) > Duration::from_secs(60));
            if due {
                *last = Some(started);
            }
            due
        };
        if forget {
            let mut invocation = self.scripts.forget.prepare_invoke();
            invocation
                .key(QUEUE)
                .arg((self.reclaim_after.as_millis() as u64).max(600_000))
                .arg(&self.consumer);
            let _: i64 = self.link.invoke(&invocation).await.unwrap_or(0);
        }
        Ok(reclaimed)
    }

    /// Holds the given queue entries from now on, or acknowledges those already done.
    async fn adopt(
        &self,
        entries: Vec<StreamId>,
        stored_locally: &StoredLocally<'_>,
    ) -> Result<(), String> {
        let pairs: Vec<(String, u64)> = entries
            .iter()
            .filter_map(|e| record_id(e).map(|id| (e.id.clone(), id)))
            .collect();
        let ids: Vec<u64> = pairs.iter().map(|(_, id)| *id).collect();
        let records = self.get_many(&ids).await?;
        for ((stream_id, id), record) in pairs.into_iter().zip(records) {
            match record {
                Some(mut record) if record.state == DeliveryState::Pending => {
                    if let Some(local) = stored_locally(&record.account, &record.dedup_key) {
                        tracing::warn!(delivery_id = id, "delivery {id} was stored in Redis after this instance had given up waiting and stored the message locally as delivery {local}; {local} delivers it, {id} is closed");
                        record.state = DeliveryState::Delivered;
                        record.reply_outcome = Some(format!("duplicate of delivery {local}"));
                        self.write(&record, &stream_id, false).await?;
                        continue;
                    }
                    self.owned().insert(
                        id,
                        Owned {
                            stream_id,
                            next_attempt_at: record.next_attempt_at,
                            since: Instant::now(),
                            unfinished: None,
                        },
                    );
                }
                _ => {
                    let _: i64 = self
                        .link
                        .query(redis::cmd("XACK").arg(QUEUE).arg(GROUP).arg(&stream_id))
                        .await?;
                    let _: i64 = self
                        .link
                        .query(redis::cmd("XDEL").arg(QUEUE).arg(&stream_id))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn list(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> Result<Vec<Record>, String> {
        let key = state.map_or(ALL, state_key);
        let ids: Vec<u64> = self
            .link
            .query(
                redis::cmd("ZREVRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(limit.max(1) - 1),
            )
            .await?;
        Ok(self.get_many(&ids).await?.into_iter().flatten().collect())
    }

    /// How many records are pending, delivered and dead.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn counts(&self) -> Result<(u64, u64, u64), String> {
        let mut invocation = self.scripts.counts.prepare_invoke();
        invocation
            .key(state_key(DeliveryState::Pending))
            .key(state_key(DeliveryState::Delivered))
            .key(state_key(DeliveryState::Dead));
        self.link.invoke(&invocation).await
    }

    /// Deletes the records in `states` (delivered, dead) received before `before`,
    /// oldest first, stopping a minute past `before`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, String> {
        let mut removed = 0;
        for &state in states {
            if state == DeliveryState::Pending {
                continue;
            }
            let mut after = 0u64;
            'pages: loop {
                let ids: Vec<u64> = self
                    .link
                    .query(
                        redis::cmd("ZRANGEBYSCORE")
                            .arg(state_key(state))
                            .arg(format!("({after}"))
                            .arg("+inf")
                            .arg("LIMIT")
                            .arg(0)
                            .arg(500),
                    )
                    .await?;
                let Some(&last) = ids.last() else { break };
                after = last;
                for (id, record) in ids.iter().zip(self.get_many(&ids).await?) {
                    // Ids follow arrival: past `before` (with a minute of slack for
                    // out-of-order stores) there is nothing older left.
                    if record
                        .as_ref()
                        .is_some_and(|r| r.received_at >= before.saturating_add(60))
                    {
                        break 'pages;
                    }
                    let doomed = record.as_ref().is_none_or(|r| {
                        r.received_at < before && r.state != DeliveryState::Pending
                    });
                    if !doomed {
                        continue;
                    }
                    let dedup = record
                        .map(|r| dedup_redis_key(&r.account, &r.dedup_key))
                        .unwrap_or_default();
                    let mut invocation = self.scripts.delete.prepare_invoke();
                    invocation
                        .key(RECORDS)
                        .key(state_key(DeliveryState::Delivered))
                        .key(state_key(DeliveryState::Dead))
                        .key(ALL)
                        .key(if dedup.is_empty() {
                            "wxgate:inbox:none".to_owned()
                        } else {
                            dedup
                        })
                        .arg(*id);
                    let _: i64 = self.link.invoke(&invocation).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
