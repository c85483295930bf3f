//! Credentials in Redis, shared by several wxgate instances.
//!
//! * `load`/`save`: the credential as JSON under its key, expiring with it.
//! * `try_lock`: the refresh lease. `INCR {key}:fence` numbers every grant;
//!   `SET {key}:lease <fence> NX PX ttl` grants it to one instance at a time.
//! * `save` is fenced: a Lua script writes only if the caller's fence is still the
//!   newest grant, so an instance that paused past its lease (GC, swap, a stopped VM)
//!   cannot overwrite the token a newer lease holder stored.
//!
//! Redis down: every call fails with a clear error; the credential center then keeps
//! serving the token it has in memory and refreshes without the lease (see
//! `CredentialCenter`), and the connection manager reconnects by itself.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use wxgate_client::credential::StoreFuture;
use wxgate_client::{Credential, CredentialStore};

/// A [`CredentialStore`] on Redis.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
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

fn describe(err: redis::RedisError) -> String {
    format!("redis: {err}")
}

impl RedisStore {
    /// Connects to `redis_url` (`redis://host:port/db`).
    ///
    /// # Errors
    /// An invalid URL or an unreachable server.
    pub async fn connect(redis_url: &str) -> Result<RedisStore, String> {
        let client =
            redis::Client::open(redis_url).map_err(|e| format!("redis_url {redis_url:?}: {e}"))?;
        let connection =
            tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
                .await
                .map_err(|_| format!("redis at {redis_url} did not answer within 5 s"))?
                .map_err(|e| format!("cannot connect to redis at {redis_url}: {e}"))?;
        Ok(RedisStore { connection })
    }

    /// The connection, for the other shared state.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

impl CredentialStore for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut connection)
                .await
                .map_err(describe)?;
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
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let json = serde_json::to_string(credential).map_err(|e| e.to_string())?;
            let ttl = (credential.expires_at - crate::http::now()).max(1);
            let written: i64 = Script::new(SAVE_FENCED)
                .key(key)
                .key(format!("{key}:fence"))
                .key(format!("{key}:lease"))
                .arg(if fence == u64::MAX { 0 } else { fence })
                .arg(json)
                .arg(ttl)
                .invoke_async(&mut connection)
                .await
                .map_err(describe)?;
            if written == 0 && fence != u64::MAX {
                return Err(format!(
                    "lease {fence} was superseded by a newer refresh; the newer token stays"
                ));
            }
            Ok(())
        })
    }

    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let fence: u64 = Script::new(LOCK)
                .key(format!("{key}:lease"))
                .key(format!("{key}:fence"))
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut connection)
                .await
                .map_err(describe)?;
            Ok((fence != 0).then_some(fence))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, fence: u64) -> StoreFuture<'a, ()> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let _: i64 = Script::new(UNLOCK)
                .key(format!("{key}:lease"))
                .arg(fence)
                .invoke_async(&mut connection)
                .await
                .map_err(describe)?;
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
