//! The connection to Redis that every shared part uses (credentials, the inbox queue,
//! the seen pushes, OAuth memory), with every step bounded by a deadline.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

use super::error::RedisError;

/// Longest wait for Redis on the callback path: past it, the instance answers from its
/// own memory instead of making WeChat wait.
pub const REDIS_DEADLINE: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs a Redis step with [`REDIS_DEADLINE`].
///
/// # Errors
/// The step's error, or [`RedisError::Timeout`].
pub async fn bounded<T>(
    what: &str,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisError> {
    bounded_by(what, REDIS_DEADLINE, command).await
}

/// Runs a Redis step with `deadline`; `what` names it in a timeout.
///
/// # Errors
/// The step's error, or [`RedisError::Timeout`].
pub async fn bounded_by<T>(
    what: &str,
    deadline: std::time::Duration,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(deadline, command).await {
        Ok(result) => result.map_err(RedisError::of_step),
        Err(_) => Err(RedisError::Timeout {
            what: what.to_owned(),
            after: deadline,
        }),
    }
}

/// A command's name (`GET`, `SET`…), to say what timed out.
fn command_name(command: &redis::Cmd) -> String {
    match command.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).into_owned(),
        _ => "a command".to_owned(),
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
    pub fn new(redis_url: &str) -> Result<RedisLink, RedisError> {
        let client = redis::Client::open(redis_url).map_err(|source| RedisError::BadUrl {
            url: shown_url(redis_url),
            source,
        })?;
        Ok(RedisLink {
            client,
            cached: Arc::default(),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut cached = self.cached.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        // Whatever fails while connecting (refused, reset, a wrong password) leaves
        // Redis out of reach.
        // Our deadlines bound every step; redis's own defaults (1 s to connect, 500 ms
        // per answer) would cut the longer ones short.
        let unbounded = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let opening = self
            .client
            .get_multiplexed_async_connection_with_config(&unbounded);
        let connection = bounded("connecting", opening)
            .await
            .map_err(|error| match error {
                RedisError::Command(error) => RedisError::Unreachable(error),
                other => other,
            })?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// Runs one command; on failure the connection is dropped and reopened next time.
    ///
    /// # Errors
    /// Connection or command errors, or the deadline.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        let result = bounded("a command", command.query_async(&mut connection))
            .await
            .map_err(|error| match error {
                RedisError::Timeout { after, .. } => RedisError::Timeout {
                    what: command_name(command),
                    after,
                },
                other => other,
            });
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
    ) -> Result<T, RedisError> {
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
    ) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        let result = bounded_by("a script", deadline, script.invoke_async(&mut connection)).await;
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
