//! Reading the Redis inbox for the admin API and the worker (records by id, lists,
//! counts), and deleting old records.

use super::scripts::{dedup_redis_key, state_key, ALL, RECORDS};
use super::{parse, RedisQueue};
use crate::inbox::error::InboxError;
use crate::inbox::record::{DeliveryState, Record};

/// Ids per page of a purge.
const PURGE_PAGE: usize = 500;

impl RedisQueue {
    /// The records with these ids, `None` where one is gone, in the same order.
    pub(super) async fn get_many(&self, ids: &[u64]) -> Result<Vec<Option<Record>>, InboxError> {
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

    /// Records, newest first, filtered by state, at most `limit`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn list(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> Result<Vec<Record>, InboxError> {
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
    pub async fn counts(&self) -> Result<(u64, u64, u64), InboxError> {
        let mut invocation = self.scripts.counts.prepare_invoke();
        invocation
            .key(state_key(DeliveryState::Pending))
            .key(state_key(DeliveryState::Delivered))
            .key(state_key(DeliveryState::Dead));
        Ok(self.link.invoke(&invocation).await?)
    }

    /// Deletes the records in `states` (delivered, dead) received before `before`,
    /// oldest first, stopping a minute past `before`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn purge(&self, before: i64, states: &[DeliveryState]) -> Result<usize, InboxError> {
        let mut removed = 0;
        for &state in states {
            if state != DeliveryState::Pending {
                removed += self.purge_state(before, state).await?;
            }
        }
        Ok(removed)
    }

    /// [`RedisQueue::purge`] for one state, page by page.
    async fn purge_state(&self, before: i64, state: DeliveryState) -> Result<usize, InboxError> {
        let mut removed = 0;
        let mut after = 0u64;
        loop {
            let ids: Vec<u64> = self
                .link
                .query(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(state_key(state))
                        .arg(format!("({after}"))
                        .arg("+inf")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(PURGE_PAGE),
                )
                .await?;
            let Some(&last) = ids.last() else {
                return Ok(removed);
            };
            after = last;
            for (id, record) in ids.iter().zip(self.get_many(&ids).await?) {
                // Ids follow arrival: past `before` (with a minute of slack for
                // out-of-order stores) there is nothing older left.
                if record
                    .as_ref()
                    .is_some_and(|r| r.received_at >= before.saturating_add(60))
                {
                    return Ok(removed);
                }
                let doomed = record
                    .as_ref()
                    .is_none_or(|r| r.received_at < before && r.state != DeliveryState::Pending);
                if doomed {
                    self.delete(*id, record.as_ref()).await?;
                    removed += 1;
                }
            }
        }
    }

    /// Deletes one record, its state entries and its dedup key (when it still names it).
    async fn delete(&self, id: u64, record: Option<&Record>) -> Result<(), InboxError> {
        let dedup = record.map_or_else(
            || "wxgate:inbox:none".to_owned(),
            |r| dedup_redis_key(&r.account, &r.dedup_key),
        );
        let mut invocation = self.scripts.delete.prepare_invoke();
        invocation
            .key(RECORDS)
            .key(state_key(DeliveryState::Delivered))
            .key(state_key(DeliveryState::Dead))
            .key(ALL)
            .key(dedup)
            .arg(id);
        let _: i64 = self.link.invoke(&invocation).await?;
        Ok(())
    }
}
