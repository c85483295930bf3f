//! Why the inbox cannot do what was asked, for the redb inbox and the Redis queue
//! alike.

use std::sync::Arc;

use crate::redis::RedisError;
use crate::storage::StoreError;

/// Why the inbox cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The database refused to read (or, for a purge, to commit).
    #[error("{0}")]
    Storage(#[from] StoreError),
    /// The database refused the commit of a batch of acceptances and updates (every
    /// caller of the batch gets the same error).
    #[error("the inbox cannot commit: {0}")]
    Commit(Arc<StoreError>),
    /// The committer thread is gone (the process is stopping).
    #[error("the inbox committer stopped")]
    Stopped,
    /// The committer thread could not be started.
    #[error("cannot start the inbox committer thread: {0}")]
    Thread(std::io::Error),
    /// A read or purge on a blocking thread did not finish (the runtime is stopping).
    #[error("the inbox's storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Redis (the shared queue) failed.
    #[error("{0}")]
    Redis(#[from] RedisError),
    /// A record in Redis is not what wxgate wrote.
    #[error("unreadable inbox record in Redis: {0}")]
    Unreadable(serde_json::Error),
    /// A record could not be written as JSON (for Redis).
    #[error("cannot write an inbox record as JSON: {0}")]
    Unwritable(serde_json::Error),
    /// No record has this id.
    #[error("no delivery {0}")]
    NotFound(u64),
    /// The record is pending on another instance of the shared queue.
    #[error("delivery {id} is pending on another instance, which retries it on its own schedule (next attempt at {next_attempt_at}); if that instance is gone, a survivor takes it over after reclaim_after_s")]
    HeldElsewhere {
        /// The delivery.
        id: u64,
        /// Its next attempt there, Unix seconds.
        next_attempt_at: i64,
    },
    /// Switching to the Redis backend with deliveries left in the redb inbox.
    #[error("{left} deliveries are still pending in {path} from the redb backend: run once more with [storage] backend = \"redb\" until `wxgate inbox list --state pending` is empty, then switch to Redis")]
    LeftInRedb {
        /// How many.
        left: usize,
        /// The database file.
        path: String,
    },
}

impl InboxError {
    /// The storage cannot serve now (the database cannot commit or is reopening, Redis
    /// does not answer, the process is stopping): try again later. A caller answers
    /// 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            InboxError::Storage(error) => error.is_storage_failure(),
            InboxError::Commit(error) => error.is_storage_failure(),
            InboxError::Redis(error) => error.is_unavailable(),
            InboxError::Stopped | InboxError::Thread(_) | InboxError::Task(_) => true,
            InboxError::Unreadable(_)
            | InboxError::Unwritable(_)
            | InboxError::NotFound(_)
            | InboxError::HeldElsewhere { .. }
            | InboxError::LeftInRedb { .. } => false,
        }
    }

    /// No record has the id asked for. A caller answers 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, InboxError::NotFound(_))
    }

    /// The record is held by another instance, which delivers it. A caller answers
    /// 409.
    pub fn is_held_elsewhere(&self) -> bool {
        matches!(self, InboxError::HeldElsewhere { .. })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// What the admin API answers from: an outage (503), a missing record (404), a
    /// record another instance holds (409), anything else (400).
    #[test]
    fn an_outage_is_told_from_a_missing_record() {
        let timeout = RedisError::Timeout {
            what: "HGET".to_owned(),
            after: Duration::from_millis(300),
        };
        let reopening = StoreError::Reopening {
            path: "wxgate.redb".to_owned(),
            reason: "No space left on device".to_owned(),
        };
        let unreadable = serde_json::from_str::<u64>("x").unwrap_err();
        for (error, unavailable, not_found, held) in [
            (InboxError::Redis(timeout), true, false, false),
            (InboxError::Storage(reopening), true, false, false),
            (InboxError::Stopped, true, false, false),
            (InboxError::NotFound(7), false, true, false),
            (
                InboxError::HeldElsewhere {
                    id: 7,
                    next_attempt_at: 0,
                },
                false,
                false,
                true,
            ),
            (InboxError::Unreadable(unreadable), false, false, false),
        ] {
            assert_eq!(error.is_unavailable(), unavailable, "{error}");
            assert_eq!(error.is_not_found(), not_found, "{error}");
            assert_eq!(error.is_held_elsewhere(), held, "{error}");
        }
        assert_eq!(InboxError::NotFound(7).to_string(), "no delivery 7");
    }
}
