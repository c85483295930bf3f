//! [`RedisQueue::maintain`]: what keeps this instance's queue entries, and takes over
//! those of instances that stopped answering, in its stages:
//!
//! ```text
//! due? (every reclaim_after/3) ─▶ write unfinished final states
//!   ─▶ heartbeat: XCLAIM own pending entries to self, page by page
//!   ─▶ reconcile: forget entries another instance took; find own entries not known here
//!   ─▶ reclaim: XAUTOCLAIM entries idle past reclaim_after
//!   ─▶ adopt what was found and taken ─▶ (every minute) forget silent consumers
//! ```

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimReply, StreamClaimReply, StreamId};

use super::scripts::{GROUP, QUEUE};
use super::{LocalCopies, Owned, RedisQueue};
use crate::inbox::error::InboxError;
use crate::inbox::record::{DeliveryState, Record};

/// Entries per heartbeat page.
const PAGE: usize = 1000;

fn record_id(entry: &StreamId) -> Option<u64> {
    entry.get::<String>("id").and_then(|text| text.parse().ok())
}

impl RedisQueue {
    /// Keeps this instance's entries alive and takes over those of instances that
    /// stopped answering; runs at most every `reclaim_after / 3`. Returns how many
    /// deliveries were taken over.
    ///
    /// # Errors
    /// Redis errors (retried at the next call).
    ///
    /// `local` names the local fallback's record of a message, if it has one. An entry
    /// of this consumer that this instance does not know was stored by an `accept`
    /// whose answer came too late; when the fallback took that message, the Redis
    /// record is closed as its duplicate instead of being delivered a second time.
    pub async fn maintain(&self, local: &impl LocalCopies) -> Result<usize, InboxError> {
        let started = Instant::now();
        if !self.heartbeat_due(started) {
            return Ok(0);
        }
        self.write_unfinished().await?;
        let mine = self.heartbeat().await?;
        let mut found = self.reconcile(&mine, started);
        let taken = self.reclaim().await?;
        let reclaimed = taken.len();
        found.extend(taken);
        self.adopt(found, local).await?;
        self.forget_silent_consumers(started).await;
        Ok(reclaimed)
    }

    /// Whether a round is due (at most every `reclaim_after / 3`); marks it started.
    fn heartbeat_due(&self, started: Instant) -> bool {
        let every = (self.reclaim_after / 3).max(Duration::from_millis(200));
        let mut last = self
            .last_heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| started.duration_since(at) < every) {
            return false;
        }
        *last = Some(started);
        true
    }

    /// Writes the final states that could not be written before.
    async fn write_unfinished(&self) -> Result<(), InboxError> {
        let unfinished: Vec<Record> = self
            .owned()
            .values()
            .filter_map(|o| o.unfinished.clone())
            .collect();
        for record in unfinished {
            self.update(&record).await?;
        }
        Ok(())
    }

    /// Claims every entry pending on this consumer again (their idle time restarts),
    /// page by page. Returns them.
    async fn heartbeat(&self) -> Result<Vec<StreamId>, InboxError> {
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
                return Ok(mine);
            }
            start = format!("({last}");
        }
    }

    /// Forgets the held entries that are no longer pending here (another instance took
    /// them over), unless learned after the heartbeat began. Returns the entries
    /// pending here that this instance does not know.
    fn reconcile(&self, mine: &[StreamId], started: Instant) -> Vec<StreamId> {
        let held: HashSet<&str> = mine.iter().map(|e| e.id.as_str()).collect();
        let mut owned = self.owned();
        owned.retain(|id, o| {
            let keep = o.since > started || held.contains(o.stream_id.as_str());
            if !keep {
                tracing::warn!(delivery_id = id, "delivery {id} was taken over by another instance (this one did not answer for reclaim_after_s); it may be delivered twice");
            }
            keep
        });
        let known: HashSet<&str> = owned.values().map(|o| o.stream_id.as_str()).collect();
        mine.iter()
            .filter(|entry| !known.contains(entry.id.as_str()))
            .cloned()
            .collect()
    }

    /// Takes over entries idle for longer than `reclaim_after` (at most 20 pages of
    /// 200 per round), and counts them.
    async fn reclaim(&self) -> Result<Vec<StreamId>, InboxError> {
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
        Ok(taken)
    }

    /// Holds the given queue entries from now on, or acknowledges those already done.
    async fn adopt(
        &self,
        entries: Vec<StreamId>,
        local: &impl LocalCopies,
    ) -> Result<(), InboxError> {
        let pairs: Vec<(String, u64)> = entries
            .iter()
            .filter_map(|e| record_id(e).map(|id| (e.id.clone(), id)))
            .collect();
        let ids: Vec<u64> = pairs.iter().map(|(_, id)| *id).collect();
        let records = self.get_many(&ids).await?;
        for ((stream_id, id), record) in pairs.into_iter().zip(records) {
            match record {
                Some(mut record) if record.state == DeliveryState::Pending => {
                    if let Some(copy) = local.find(&record.account, &record.dedup_key).await {
                        tracing::warn!(delivery_id = id, "delivery {id} was stored in Redis after this instance had given up waiting and stored the message locally as delivery {copy}; {copy} delivers it, {id} is closed");
                        record.state = DeliveryState::Delivered;
                        record.reply_outcome = Some(format!("duplicate of delivery {copy}"));
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
                _ => self.acknowledge(&stream_id).await?,
            }
        }
        Ok(())
    }

    /// Acknowledges and deletes a queue entry whose record is finished or gone.
    async fn acknowledge(&self, stream_id: &str) -> Result<(), InboxError> {
        let _: i64 = self
            .link
            .query(redis::cmd("XACK").arg(QUEUE).arg(GROUP).arg(stream_id))
            .await?;
        let _: i64 = self
            .link
            .query(redis::cmd("XDEL").arg(QUEUE).arg(stream_id))
            .await?;
        Ok(())
    }

    /// Once a minute, forgets the consumers with nothing pending that have been silent
    /// for longer than the idle time (at least 10 minutes). A failure waits for the
    /// next minute.
    async fn forget_silent_consumers(&self, started: Instant) {
        let due = {
            let mut last = self.last_forget.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|at| started.duration_since(at) > Duration::from_secs(60));
            if due {
                *last = Some(started);
            }
            due
        };
        if !due {
            return;
        }
        let mut invocation = self.scripts.forget.prepare_invoke();
        invocation
            .key(QUEUE)
            .arg((self.reclaim_after.as_millis() as u64).max(600_000))
            .arg(&self.consumer);
        let _: i64 = self.link.invoke(&invocation).await.unwrap_or(0);
    }
}
