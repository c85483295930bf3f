//! The domain verification files (`[[verify_file]]`): served from the router's
//! fallback, so a configured path never becomes a route of its own (the config refuses
//! the paths of wxgate's routes). The answer is the configured bytes as `text/plain`,
//! with nothing added: the consoles compare the file byte for byte.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// The fallback: a verification file at this exact path, or the 404 of the router.
pub(super) async fn fallback(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
) -> Response {
    let Some(content) = state.verify_file(uri.path()) else {
        return (
            StatusCode::NOT_FOUND,
            "not found: WeChat callbacks are served at /wx/{account}\n",
        )
            .into_response();
    };
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "a verification file answers GET and HEAD only\n",
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        content,
    )
        .into_response()
}
