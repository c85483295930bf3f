//! Reading a request body within its bounds: `max_body_bytes`, and the connection
//! layer's body deadline.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::metrics::Outcome;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unread {
    #[error("body over max_body_bytes = {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body did not arrive within body_timeout_s")]
    TimedOut,
    #[error("could not read the body: the connection failed")]
    Broken,
}

impl Unread {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Unread::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Unread::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Unread::Broken => StatusCode::BAD_REQUEST,
        }
    }

    pub(super) fn outcome(&self) -> Outcome {
        match self {
            Unread::TooLarge { .. } => Outcome::TooLarge,
            Unread::TimedOut | Unread::Broken => Outcome::BadRequest,
        }
    }
}

/// Reads a request body of at most `max_body_bytes` (a larger declared length is
/// refused before reading); the connection layer's body deadline ends a slow one.
pub(super) async fn read_body(
    limit: usize,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Unread> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Unread::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Unread::TooLarge { limit })
        }
        Err(err) if super::conn::is_body_timeout(err.as_ref()) => Err(Unread::TimedOut),
        Err(_) => Err(Unread::Broken),
    }
}
