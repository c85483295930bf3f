//! [`NotifyError`]: why a notify was not acknowledged.

use crate::gateway::account::Refusal;
use crate::storage::StoreError;

/// Why a third-party platform's notify got no `success`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The request failed a check (signature, timestamp, decryption, format).
    #[error("{}", .0.reason())]
    Refused(Refusal),
    /// It opened with this platform's key but names another platform in `AppId`.
    #[error("the notify names another platform ({}) in AppId; it was not for this one", named.as_deref().unwrap_or("not an AppID"))]
    OtherComponent {
        /// The AppId it names, when shaped like an AppID.
        named: Option<String>,
    },
    /// The durable record could not be written (WeChat pushes again; it is retried).
    #[error("the notify could not be stored: {0}")]
    Store(#[from] StoreError),
    /// The credential center could not store the ticket.
    #[error("the ticket could not be stored: {0}")]
    Center(#[from] wxgate_client::Error),
}

impl From<Refusal> for NotifyError {
    fn from(refusal: Refusal) -> NotifyError {
        NotifyError::Refused(refusal)
    }
}
