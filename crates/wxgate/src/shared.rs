//! What several instances share besides credentials and the inbox: the pushes they
//! have answered from the rules, so a WeChat retry that lands on another instance is
//! recognised and gets the same reply. (Forwarded pushes are recognised by the Redis
//! inbox itself.)
//!
//! Keys: `wxgate:seen:{account}:{dedup_key}` → the plain reply XML ("" for `success`),
//! expiring after [`SEEN_TTL_S`]. Redis down: each call fails; the caller logs it and
//! falls back to its own memory (retries that cross instances may then run twice).

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

/// How long an answered push is remembered across instances (WeChat retries within
/// about 15 s; forwarded messages may take longer).
pub const SEEN_TTL_S: u64 = 300;

/// Longest wait for Redis on the callback path: past it, the instance answers from its
/// own memory instead of making WeChat wait.
pub const REDIS_DEADLINE: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs a Redis command with [`REDIS_DEADLINE`].
///
/// # Errors
/// The command's error, or a timeout.
pub async fn bounded<T>(
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    bounded_by(REDIS_DEADLINE, command).await
}

/// Runs a Redis command with `deadline`.
///
/// # Errors
/// The command's error, or a timeout.
pub async fn bounded_by<T>(
    deadline: std::time::Duration,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, command).await {
        Ok(result) => result.map_err(|e| format!("redis: {e}")),
        Err(_) => Err(format!(
            "redis did not answer within {} ms",
            deadline.as_millis()
        )),
    }
}

/// What to tell the operator about Redis's persistence, with the Redis backend (the
/// forwarding queue lives there), or `None` when nothing is lost on a Redis crash.
pub fn persistence_warning(appendonly: &str, appendfsync: &str) -> Option<String> {
    match (appendonly, appendfsync) {
        ("yes", "always") => None,
        ("yes", other) => Some(format!(
            "Redis runs with appendfsync {other}: a Redis crash can lose up to a second of acknowledged messages; set appendfsync always to lose none"
        )),
        _ => Some(
            "Redis runs without appendonly: a Redis restart loses every queued delivery and inbox record; set appendonly yes and appendfsync always"
                .to_owned(),
        ),
    }
}

/// A Redis URL as it may be shown in a log line or an error: its password replaced
/// by `***`.
pub fn shown_url(redis_url: &str) -> String {
    match url::Url::parse(redis_url) {
        Ok(url) => wxgate_client::redact_url(&url),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

/// A Redis connection that is opened on first use and reopened after any failure,
/// every step bounded by [`REDIS_DEADLINE`]: a dead Redis costs each caller at most
/// one deadline, never a hang.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    cached: Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLink")
    }
}

impl RedisLink {
    /// A link to `redis_url`, not yet connected.
    ///
    /// # Errors
    /// An invalid URL.
    pub fn new(redis_url: &str) -> Result<RedisLink, String> {
        let client = redis::Client::open(redis_url)
            .map_err(|e| format!("redis_url {:?}: {e}", shown_url(redis_url)))?;
        Ok(RedisLink {
            client,
            cached: Arc::default(),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut cached = self.cached.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        let connection = bounded(self.client.get_multiplexed_async_connection()).await?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// Runs one command; on failure the connection is dropped and reopened next time.
    ///
    /// # Errors
    /// Connection or command errors, or the deadline.
    pub async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.connection().await?;
        let result = bounded(command.query_async(&mut connection)).await;
        if result.is_err() {
            *self.cached.lock().await = None;
        }
        result
    }

    /// Runs one Lua script invocation, like [`RedisLink::query`].
    ///
    /// # Errors
    /// As [`RedisLink::query`].
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        self.invoke_within(REDIS_DEADLINE, script).await
    }

    /// Runs one Lua script invocation with its own deadline (after connecting within
    /// [`REDIS_DEADLINE`]), for a step whose timeout leaves its outcome unknown.
    ///
    /// # Errors
    /// As [`RedisLink::query`].
    pub async fn invoke_within<T: redis::FromRedisValue>(
        &self,
        deadline: std::time::Duration,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut connection = self.connection().await?;
        let result = bounded_by(deadline, script.invoke_async(&mut connection)).await;
        if result.is_err() {
            *self.cached.lock().await = None;
        }
        result
    }
}

/// The shared memory of answered pushes.
#[derive(Clone)]
pub struct SharedSeen {
    link: RedisLink,
}

impl std::fmt::Debug for SharedSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSeen")
    }
}

fn key(account: &str, dedup_key: &str) -> String {
    format!("wxgate:seen:{account}:{dedup_key}")
}

impl SharedSeen {
    /// Shares the link of the credential store.
    pub fn new(link: RedisLink) -> SharedSeen {
        SharedSeen { link }
    }

    /// The link, for the inbox's queue.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }

    /// Checks that Redis answers.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn ping(&self) -> Result<(), String> {
        let _: String = self.link.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    /// Redis's `appendonly` and `appendfsync` settings, when `CONFIG GET` is allowed
    /// (managed Redis services often rename or forbid it).
    ///
    /// # Errors
    /// Redis errors, or CONFIG refused.
    pub async fn persistence(&self) -> Result<(String, String), String> {
        let get = |name: &'static str| async move {
            let pair: Vec<String> = self
                .link
                .query(redis::cmd("CONFIG").arg("GET").arg(name))
                .await?;
            pair.get(1)
                .cloned()
                .ok_or_else(|| format!("CONFIG GET {name} gave no value"))
        };
        Ok((get("appendonly").await?, get("appendfsync").await?))
    }

    /// A push answered from the rules, with other instances: a retry that another
    /// instance already answered gets that answer (and counts as a duplicate);
    /// otherwise this answer is recorded for the others, in the same round trip. When
    /// Redis cannot be reached, this instance's own memory answers alone.
    pub async fn answer_once(
        &self,
        name: &str,
        dedup_key: &str,
        plain: Option<String>,
    ) -> (Option<String>, crate::metrics::Outcome) {
        use crate::metrics::Outcome;
        let answer = plain.as_deref().unwrap_or_default();
        match self.first_answer(name, dedup_key, answer).await {
            Ok(Some(earlier)) => ((!earlier.is_empty()).then_some(earlier), Outcome::Duplicate),
            Ok(None) => (plain, Outcome::Ok),
            Err(error) => {
                tracing::warn!(account = %name, "shared dedup unavailable ({error}); this instance's own memory is used");
                (plain, Outcome::Ok)
            }
        }
    }

    /// Records `answer` for a push unless another instance answered it first, in one
    /// round trip (`SET NX GET`, Redis 7). Returns that earlier answer, or `None` when
    /// this one was recorded. Older Redis: `GET`, then `SET NX`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn first_answer(
        &self,
        account: &str,
        dedup_key: &str,
        answer: &str,
    ) -> Result<Option<String>, String> {
        let key = key(account, dedup_key);
        let earlier: Result<Option<String>, String> = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(answer)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(SEEN_TTL_S),
            )
            .await;
        match earlier {
            // Redis before 7.0 refuses NX with GET. (The tests run Redis 7, so this
            // branch is not exercised by them.)
            Err(error) if error.contains("syntax") => {
                if let Some(earlier) = self.get_raw(&key).await? {
                    return Ok(Some(earlier));
                }
                self.claim_raw(&key, answer, SEEN_TTL_S).await?;
                Ok(None)
            }
            other => other,
        }
    }

    /// `GET key`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn get_raw(&self, key: &str) -> Result<Option<String>, String> {
        self.link.query(redis::cmd("GET").arg(key)).await
    }

    /// `SET key value NX EX ttl`: true when this call set it.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn claim_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<bool, String> {
        let set: Option<String> = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl_s),
            )
            .await?;
        Ok(set.is_some())
    }

    /// `SET key value EX ttl`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn put_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<(), String> {
        self.link
            .query(redis::cmd("SET").arg(key).arg(value).arg("EX").arg(ttl_s))
            .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn persistence_warnings() {
        for (appendonly, appendfsync, warns_about) in [
            ("yes", "always", None),
            ("yes", "everysec", Some("appendfsync always")),
            ("yes", "no", Some("appendfsync always")),
            ("no", "always", Some("appendonly yes")),
            ("no", "everysec", Some("appendonly yes")),
        ] {
            let warning = super::persistence_warning(appendonly, appendfsync);
            match warns_about {
                None => assert_eq!(warning, None),
                Some(fix) => assert!(
                    warning.as_deref().is_some_and(|w| w.contains(fix)),
                    "{appendonly}/{appendfsync}: {warning:?}"
                ),
            }
        }
    }
}
