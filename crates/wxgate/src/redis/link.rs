//! The connection to Redis that every shared part uses (credentials, the inbox queue,
//! the seen pushes, OAuth memory), with every step bounded by a deadline.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

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
