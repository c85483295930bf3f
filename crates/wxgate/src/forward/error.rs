//! Why a message could not be stored for forwarding, or why one delivery attempt
//! failed (the text of the latter is kept as the record's `last_error`).

use reqwest::StatusCode;

use crate::inbox::InboxError;

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The inbox could not store the message: it must not be acknowledged to WeChat.
    #[error("{0}")]
    Inbox(#[from] InboxError),
    /// The task that stores the message ended without an answer (the runtime is
    /// stopping).
    #[error("the inbox task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// An account forwards, but the process opened no inbox.
    #[error("forwarding is configured but no inbox is open")]
    NotOpen,
    /// The record's account no longer forwards.
    #[error("account {0} has no [account.forward] any more")]
    NotForwarded(String),
    /// The service could not be reached (DNS, connect, TLS, the request broke).
    #[error("cannot reach {url}: {}", crate::text::error_chain(.cause))]
    Unreachable {
        /// `[account.forward] url`.
        url: String,
        /// The HTTP client's error.
        cause: reqwest::Error,
    },
    /// The service answered with a redirect, which is never followed.
    #[error("the service answered HTTP {status} with Location: {location:?}; redirects are not followed: set [account.forward] url to the final address")]
    Redirect {
        /// The 3xx status.
        status: StatusCode,
        /// Its `Location`, or `(none)`.
        location: String,
    },
    /// The service answered with a status other than 2xx or 3xx.
    #[error("the service answered HTTP {0}")]
    Status(StatusCode),
    /// The answer is longer than `max_reply_bytes`; it was not read further.
    #[error("the service's answer is over max_reply_bytes = {0}")]
    TooLarge(usize),
    /// The answer's body broke off.
    #[error("the service's answer broke off: {}", crate::text::error_chain(.0))]
    BrokeOff(reqwest::Error),
    /// The reply could not be sent through the customer-service API this time.
    #[error("the reply was not sent (customer-service API, or WeCom's message/send): {0}")]
    ReplyNotSent(#[source] crate::customer_service::SendError),
    /// No answer within `attempt_timeout_ms`.
    #[error("the service took longer than attempt_timeout_ms = {0}")]
    Timeout(u64),
}

impl ForwardError {
    /// The message was not stored because the storage cannot serve now (see
    /// [`InboxError::is_unavailable`]), or the process is stopping.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ForwardError::Inbox(error) => error.is_unavailable(),
            ForwardError::Task(_) => true,
            _ => false,
        }
    }
}
