//! Why a Redis step failed: Redis did not answer in time, could not be reached, or
//! answered with an error. Callers tell the first two (an outage: answer 503, fall
//! back to local memory) from the last (a refused command) with
//! [`RedisError::is_unavailable`].

use std::time::Duration;

/// Why a Redis step failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// `redis_url` is not a Redis URL (shown without its password).
    #[error("redis_url {url:?}: {source}")]
    BadUrl {
        /// The URL, its password replaced by `***`.
        url: String,
        /// Why the client refused it.
        source: ::redis::RedisError,
    },
    /// Redis did not answer within the deadline (connecting, or running a step).
    #[error("redis did not answer within {} ms ({what}); check that Redis runs and is reachable", after.as_millis())]
    Timeout {
        /// What was waiting: `connecting`, a command's name, or `a script`.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection could not be opened, or broke.
    #[error("redis: {0}")]
    Unreachable(::redis::RedisError),
    /// Redis answered with an error, or with something the caller cannot read.
    #[error("redis: {0}")]
    Command(::redis::RedisError),
    /// Redis answered, but without the value asked for.
    #[error("redis gave no value for {0}")]
    NoValue(String),
}

impl RedisError {
    /// Redis did not answer in time or could not be reached: an outage, not a refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RedisError::Timeout { .. } | RedisError::Unreachable(_)
        )
    }

    /// Redis refused the command's syntax (`ERR syntax error`): an older Redis that
    /// lacks an option.
    pub fn is_syntax_refusal(&self) -> bool {
        match self {
            RedisError::Command(error) => {
                error.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::ResponseError)
                    && error
                        .detail()
                        .is_some_and(|d| d.starts_with("syntax error"))
            }
            _ => false,
        }
    }

    /// Sorts an error of the client after a connection was in hand: a broken
    /// connection, or a Redis that is loading its data or has lost its primary, is
    /// [`RedisError::Unreachable`]; anything else Redis answered is
    /// [`RedisError::Command`].
    pub(crate) fn of_step(error: ::redis::RedisError) -> RedisError {
        use ::redis::ErrorKind::Server;
        use ::redis::ServerErrorKind::{BusyLoading, ClusterDown, MasterDown, TryAgain};
        let passing = matches!(
            error.kind(),
            Server(BusyLoading | ClusterDown | MasterDown | TryAgain)
        );
        if error.is_io_error() || error.is_unrecoverable_error() || passing {
            RedisError::Unreachable(error)
        } else {
            RedisError::Command(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ::redis::{ErrorKind, ServerErrorKind};

    use super::RedisError;

    fn answered(kind: ErrorKind, detail: &str) -> RedisError {
        RedisError::of_step(::redis::RedisError::from((
            kind,
            "An error was signalled by the server",
            detail.to_owned(),
        )))
    }

    #[test]
    fn an_outage_is_told_from_a_refusal() {
        let syntax = answered(
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "syntax error",
        );
        assert!(syntax.is_syntax_refusal() && !syntax.is_unavailable());
        let other = answered(
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "unknown command 'GETEX'",
        );
        assert!(!other.is_syntax_refusal() && !other.is_unavailable());
        let loading = answered(
            ErrorKind::Server(ServerErrorKind::BusyLoading),
            "Redis is loading the dataset in memory",
        );
        assert!(loading.is_unavailable() && !loading.is_syntax_refusal());
        let reset =
            RedisError::of_step(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
        assert!(reset.is_unavailable());
        let late = RedisError::Timeout {
            what: "GET".to_owned(),
            after: Duration::from_millis(300),
        };
        assert!(late.is_unavailable() && !late.is_syntax_refusal());
        assert!(late.to_string().contains("within 300 ms (GET)"), "{late}");
    }
}
