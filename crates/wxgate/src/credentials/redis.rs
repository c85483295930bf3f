//! Credentials in Redis, shared by several wxgate instances.
//!
//! * `load`/`save`: the credential as JSON under its key, expiring with it.
//! * `try_lock`: the refresh lease. `INCR {key}:fence` numbers every grant;
//!   `SET {key}:lease <fence> NX PX ttl` grants it to one instance at a time.
//! * `save` is fenced: a Lua script writes only if the caller's fence is still the
//!   newest grant, so an instance that paused past its lease (GC, swap, a stopped VM)
//!   cannot overwrite the token a newer lease holder stored.
//!
//! Redis down: every call fails within [`crate::redis::REDIS_DEADLINE`] with a clear
//! error. The credential center then keeps serving the token it has in memory and
//! refreshes without the lease (see `CredentialCenter`). The link reconnects on the
//! next call once Redis is back.

use std::time::Duration;

use redis::Script;
use wxgate_client::credential::StoreFuture;
use wxgate_client::{Credential, CredentialStore};

use crate::redis::RedisLink;

/// A [`CredentialStore`] on Redis.
#[derive(Clone, Debug)]
pub struct RedisStore {
    link: RedisLink,
}
/// KEYS: value, fence counter, lease. ARGV: fence (0 = no lease), JSON, ttl seconds.
/// Writes when the fence is the newest granted, or, without a lease, when nobody holds
/// one.
const SAVE_FENCED: &str = r#"
local fence = tonumber(ARGV[1])
if fence == 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
else
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if fence < newest then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
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
    pub async fn connect(redis_url: &str) -> Result<RedisStore, String> {
        let link = RedisLink::new(redis_url).map_err(|e| e.to_string())?;
        let _: String = link.query(&redis::cmd("PING")).await.map_err(|e| {
            format!(
                "cannot reach redis at {}: {e}",
                crate::redis::shown_url(redis_url)
            )
        })?;
        Ok(RedisStore { link })
    }

    /// The link, for the other shared state.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }
}

impl CredentialStore for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async move {
            let value: Option<String> = self
                .link
                .query(redis::cmd("GET").arg(key))
                .await
                .map_err(|e| e.to_string())?;
            value
                .map(|v| serde_json::from_str(&v).map_err(|e| e.to_string()))
                .transpose()
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        fence: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(credential).map_err(|e| e.to_string())?;
            let ttl = (credential.expires_at - wxgate_client::clock::now()).max(1);
            let source = Script::new(SAVE_FENCED);
            let mut script = source.prepare_invoke();
            script
                .key(key)
                .key(format!("{key}:fence"))
                .key(format!("{key}:lease"))
                .arg(if fence == u64::MAX { 0 } else { fence })
                .arg(json)
                .arg(ttl);
            let written: i64 = self.link.invoke(&script).await.map_err(|e| e.to_string())?;
            if written == 0 && fence != u64::MAX {
                return Err(format!(
                    "lease {fence} was superseded by a newer refresh; the newer token stays"
                ));
            }
            Ok(())
        })
    }

    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let source = Script::new(LOCK);
            let mut script = source.prepare_invoke();
            script
                .key(format!("{key}:lease"))
                .key(format!("{key}:fence"))
                .arg(ttl.as_millis() as u64);
            let fence: u64 = self.link.invoke(&script).await.map_err(|e| e.to_string())?;
            Ok((fence != 0).then_some(fence))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, fence: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let source = Script::new(UNLOCK);
            let mut script = source.prepare_invoke();
            script.key(format!("{key}:lease")).arg(fence);
            let _: i64 = self.link.invoke(&script).await.map_err(|e| e.to_string())?;
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
