//! `GET /healthz`: `ok`, or 503 with the reason while wxgate cannot do its work: the
//! database cannot commit (a full disk; it reopens itself, see [`crate::storage::Db`]),
//! or, with the Redis backend, Redis does not answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// Why the gateway cannot do its work, if it cannot.
pub async fn unhealthy(state: &AppState) -> Option<String> {
    if let Some(shared) = state.shared() {
        if let Err(error) = shared.ping().await {
            return Some(format!("Redis does not answer: {error}"));
        }
    }
    let db = state.database()?;
    db.failure().map(|reason| {
        format!(
            "the database {} cannot commit: {reason}",
            db.path().display()
        )
    })
}

/// The `/healthz` handler.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let (status, body) = match unhealthy(&state).await {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
