//! Credentials in Redis, shared by several wxgate instances.
//!
//! * `load`/`save`: the credential as JSON under its key, expiring with it.
//! * `try_lock`: the refresh lease. `INCR {key}:fence` numbers every grant;
//!   `SET {key}:lease <fence> NX PX ttl` grants it to one instance at a time.
//! * `save` is fenced: a Lua script writes only if the caller's fence is still the
//!   newest grant, so an instance that paused past its lease (GC, swap, a stopped VM)
//!   cannot overwrite the token a newer lease holder stored. A save without a lease
//!   writes only while nobody holds the lease, and is skipped without an error while
//!   someone does: that holder stores its newer token.
//!
//! Redis down: every call fails within [`crate::redis::REDIS_DEADLINE`] with a clear
//! error (the lease and the fenced write within [`LEASE_DEADLINE`]). The credential
//! center then keeps serving the token it has in memory and refreshes without the
//! lease (see `CredentialCenter`). The link reconnects on the next call once Redis is
//! back.

use std::time::Duration;

use redis::Script;
use wxgate_client::credential::{Fence, StoreError, StoreFuture};
use wxgate_client::{Credential, CredentialStore};

use crate::redis::RedisLink;

/// Longest wait for the lease and for the fenced write. A timeout of either leaves its
/// outcome unknown (the lease may be granted to nobody who knows it, the write may be
/// done), so they wait longer than the callback path's [`crate::redis::REDIS_DEADLINE`]:
/// a slow Redis then rarely makes an instance refresh without the lease. A Redis that
/// is down fails at once (connection refused) or within the connect deadline.
pub const LEASE_DEADLINE: Duration = Duration::from_millis(1500);

/// A [`CredentialStore`] on Redis.
#[derive(Clone, Debug)]
pub struct RedisStore {
    link: RedisLink,
}

/// Why the Redis credential store cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `redis_url` is not a Redis URL.
    #[error("{0}")]
    Url(Box<dyn std::error::Error + Send + Sync>),
    /// Redis did not answer the first `PING`.
    #[error("cannot reach redis at {url}: {reason}; start it or correct redis_url")]
    Unreachable {
        /// The URL, its password hidden.
        url: String,
        /// Why.
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// KEYS: value, fence counter, lease. ARGV: fence (`0` when the write has no lease;
/// granted fences start at 1), JSON, ttl seconds (0: no expiry). Writes when the fence is the newest
/// granted, or, without a lease, when nobody holds one. Returns 1 when written.
const SAVE_FENCED: &str = r#"
local fence = tonumber(ARGV[1])
if fence == 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
else
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if fence < newest then return 0 end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"#;

/// KEYS: lease, fence counter. ARGV: ttl ms. Returns the new fence, or 0 when the
/// lease is held by someone else. The counter only moves when a lease is granted.
const LOCK: &str = r#"
if redis.call('SET', KEYS[1], 'granting', 'NX', 'PX', ARGV[1]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
  return fence
end
return 0
"#;

const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

impl RedisStore {
    /// Connects to `redis_url` (`redis://host:port/db`) and checks that it answers.
    ///
    /// # Errors
    /// An invalid URL or an unreachable server.
    pub async fn connect(redis_url: &str) -> Result<RedisStore, ConnectError> {
        let link = RedisLink::new(redis_url).map_err(|e| ConnectError::Url(e.into()))?;
        let _: String =
            link.query(&redis::cmd("PING"))
                .await
                .map_err(|e| ConnectError::Unreachable {
                    url: crate::redis::shown_url(redis_url),
                    reason: e.into(),
                })?;
        Ok(RedisStore { link })
    }

    /// The link, for the other shared state.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }
}

/// What the fenced write's answer means for the caller.
fn saved(lease: Option<Fence>, written: bool) -> Result<(), StoreError> {
    match (lease, written) {
        (_, true) => Ok(()),
        // Another instance holds the lease: it stores the token it fetches.
        (None, false) => Ok(()),
        (Some(fence), false) => Err(StoreError::Superseded { fence }),
    }
}

impl CredentialStore for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async move {
            let value: Option<String> = self
                .link
                .query(redis::cmd("GET").arg(key))
                .await
                .map_err(StoreError::unavailable)?;
            value
                .map(|v| serde_json::from_str(&v).map_err(StoreError::Corrupt))
                .transpose()
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(credential).map_err(StoreError::Corrupt)?;
            // A credential that carries an authorizer's refresh token outlives its
            // access token: it is kept without expiry (0).
            let ttl = match credential.refresh_token {
                Some(_) => 0,
                None => (credential.expires_at - wxgate_client::clock::now()).max(1),
            };
            let source = Script::new(SAVE_FENCED);
            let mut script = source.prepare_invoke();
            script
                .key(key)
                .key(format!("{key}:fence"))
                .key(format!("{key}:lease"))
                .arg(lease.map_or(0, Fence::get))
                .arg(json)
                .arg(ttl);
            let written: i64 = self
                .link
                .invoke_within(LEASE_DEADLINE, &script)
                .await
                .map_err(StoreError::unavailable)?;
            saved(lease, written == 1)
        })
    }

    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        Box::pin(async move {
            let source = Script::new(LOCK);
            let mut script = source.prepare_invoke();
            script
                .key(format!("{key}:lease"))
                .key(format!("{key}:fence"))
                .arg(ttl.as_millis() as u64);
            let fence: u64 = self
                .link
                .invoke_within(LEASE_DEADLINE, &script)
                .await
                .map_err(StoreError::unavailable)?;
            Ok((fence != 0).then(|| Fence::new(fence)))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, fence: Fence) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let source = Script::new(UNLOCK);
            let mut script = source.prepare_invoke();
            script.key(format!("{key}:lease")).arg(fence.get());
            let _: i64 = self
                .link
                .invoke(&script)
                .await
                .map_err(StoreError::unavailable)?;
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_is_an_error_only_under_a_lease() {
        assert!(saved(Some(Fence::new(3)), true).is_ok());
        assert!(saved(None, true).is_ok());
        assert!(
            saved(None, false).is_ok(),
            "the lease holder stores its token"
        );
        let refused = saved(Some(Fence::new(3)), false).unwrap_err();
        assert!(
            matches!(refused, StoreError::Superseded { fence } if fence == Fence::new(3)),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("superseded"), "{refused}");
    }
}
