//! The day's count of generated links per mini-program (WeChat's day: UTC+8), shared
//! through Redis when configured (`wxgate:links:count:{app_id}:{day}`, kept two days),
//! else in this process. A Redis that does not answer is logged and the local count is
//! used, so a generation is never blocked by the counter alone.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::redis::RedisLink;

/// The day number of `now` in UTC+8, when WeChat's daily quotas reset.
pub fn day(now: i64) -> i64 {
    (now + 8 * 3600).div_euclid(86_400)
}

/// The counter.
pub struct Counter {
    shared: Option<RedisLink>,
    local: Mutex<HashMap<String, (i64, u64)>>,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Counter {
    /// A counter in Redis (`Some`) or in this process.
    pub fn new(shared: Option<RedisLink>) -> Counter {
        Counter {
            shared,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn local(&self, app_id: &str, day: i64, add: u64) -> u64 {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let entry = local.entry(app_id.to_owned()).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        entry.1 += add;
        entry.1
    }

    /// Counts one generation for `app_id` on `day`; returns the day's count with it.
    pub async fn add(&self, app_id: &str, day: i64) -> u64 {
        let local = self.local(app_id, day, 1);
        let Some(link) = &self.shared else {
            return local;
        };
        let key = format!("wxgate:links:count:{app_id}:{day}");
        let counted: Result<u64, _> = link.query(redis::cmd("INCR").arg(&key)).await;
        match counted {
            Ok(count) => {
                if count == 1 {
                    let expire: Result<i64, _> = link
                        .query(redis::cmd("EXPIRE").arg(&key).arg(2 * 86_400))
                        .await;
                    if let Err(error) = expire {
                        tracing::warn!("links: cannot set the expiry of {key}: {error}");
                    }
                }
                count
            }
            Err(error) => {
                tracing::warn!("links: Redis does not count the generation ({error}); this instance's count ({local}) is used");
                local
            }
        }
    }

    /// The day's count so far (for the admin API).
    pub async fn get(&self, app_id: &str, day: i64) -> u64 {
        let local = self.local(app_id, day, 0);
        let Some(link) = &self.shared else {
            return local;
        };
        let key = format!("wxgate:links:count:{app_id}:{day}");
        let count: Result<Option<u64>, _> = link.query(redis::cmd("GET").arg(&key)).await;
        count.ok().flatten().unwrap_or(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_count_restarts_each_day() {
        let counter = Counter::new(None);
        let today = day(1_700_000_000);
        assert_eq!(counter.add("wxa", today).await, 1);
        assert_eq!(counter.add("wxa", today).await, 2);
        assert_eq!(counter.add("wxb", today).await, 1);
        assert_eq!(counter.add("wxa", today + 1).await, 1);
        // 16:00 UTC (1_699_977_600) is midnight in UTC+8.
        assert_eq!(day(1_699_977_600 - 1) + 1, day(1_699_977_600));
        assert_eq!(day(1_699_977_600), day(1_700_006_400));
    }
}
