//! `POST /open/{name}/notify`: a third-party platform's 授权事件接收URL. The query is
//! checked before the body is read (as for `/wx/{account}`), the body within
//! `max_body_bytes`, then [`Component::receive`](crate::component::Component::receive)
//! opens and stores the notify; `success` only once it is stored.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wxgate_client::clock::now;

use super::body::read_body;
use super::error::{notify_error, text};
use crate::app::AppState;
use crate::component::{center_name, NotifyError};
use crate::gateway::account::{CallbackQuery, Refusal};
use crate::metrics::{Method, Outcome};

fn answer(state: &AppState, name: &str, outcome: Outcome, started: Instant) {
    let slot = state.metrics.slot(&center_name(name));
    state
        .metrics
        .record(slot, Method::Post, outcome, started.elapsed());
}

fn refused(state: &AppState, name: &str, error: NotifyError, started: Instant) -> Response {
    let outcome = match &error {
        NotifyError::Refused(refusal) => refusal.outcome(),
        NotifyError::OtherComponent { .. } => Outcome::BadRequest,
        NotifyError::Store(_) | NotifyError::Center(_) => Outcome::InternalError,
    };
    let slot = state.metrics.slot(&center_name(name));
    if let Some(note) = state.log_limit.check(slot, outcome) {
        tracing::warn!(
            component = name,
            outcome = outcome.as_str(),
            "notify refused: {error}{note}"
        );
    }
    answer(state, name, outcome, started);
    notify_error(&error)
}

/// The notify route.
pub async fn notify(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(component) = state.component(&name).cloned() else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown third-party platform {name:?}"),
        );
    };
    let Ok(Query(query)) = query else {
        let refusal = Refusal::MissingParameter("timestamp");
        return refused(&state, &name, refusal.into(), started);
    };
    match component.gateway.admit(&query, now()) {
        Ok(admitted) if admitted.encrypted() => {}
        Ok(_) => return refused(&state, &name, Refusal::PlaintextInSafeMode.into(), started),
        Err(refusal) => return refused(&state, &name, refusal.into(), started),
    }
    let bytes = match read_body(state.max_body_bytes(), &headers, body).await {
        Ok(bytes) => bytes,
        Err(unread) => {
            answer(&state, &name, unread.outcome(), started);
            return text(unread.status(), format!("{unread}\n"));
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        let refusal = Refusal::Malformed(wxgate_proto::Error::MalformedXml {
            reason: "body is not UTF-8 (WeChat sends UTF-8)".into(),
        });
        return refused(&state, &name, refusal.into(), started);
    };
    let store = state.component_store();
    match component.receive(&query, body, state.center(), store).await {
        Ok(received) => {
            tracing::info!(
                component = %name,
                info_type = %received.info_type,
                ticket = ?received.ticket,
                "notify stored"
            );
            answer(&state, &name, Outcome::Ok, started);
            text(StatusCode::OK, "success")
        }
        Err(error) => refused(&state, &name, error, started),
    }
}
