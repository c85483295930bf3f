//! The callback routes, `GET` and `POST /wx/{account}`: read the request, run the
//! account's protocol ([`crate::gateway`]), and answer. Every refusal is logged (at a
//! bounded rate) and counted here.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wxgate_client::clock::now;

use super::body::{read_body, Unread};
use super::error::text;
use crate::app::AppState;
use crate::gateway::account::{Answer, CallbackQuery, Refusal};
use crate::metrics::{Method, Outcome};
use crate::pipeline::{Handled, PushError};

fn refuse(
    state: &AppState,
    account: &str,
    method: Method,
    refusal: Refusal,
    started: Instant,
) -> Response {
    let reason = refusal.reason();
    let slot = state.metrics.slot(account);
    if let Some(note) = state.log_limit.check(slot, refusal.outcome()) {
        tracing::warn!(account, method = ?method, outcome = refusal.outcome().as_str(), "refused: {reason}{note}");
    }
    state
        .metrics
        .record(slot, method, refusal.outcome(), started.elapsed());
    note(
        state,
        account,
        method,
        refusal.outcome(),
        started,
        Some(reason),
        None,
    );
    super::error::refusal(&refusal)
}

fn unknown_account(state: &AppState, name: &str, method: Method, started: Instant) -> Response {
    let slot = state.metrics.slot("");
    if let Some(note) = state.log_limit.check(slot, Outcome::UnknownAccount) {
        let live = state.live();
        let mut known: Vec<&str> = live.accounts.keys().map(String::as_str).collect();
        known.sort_unstable();
        tracing::warn!(
            account = name,
            outcome = "unknown_account",
            "refused: no account named {name:?} (configured: {}); check the URL path in the console (服务器地址) against [[account]] name{note}",
            known.join(", ")
        );
    }
    state
        .metrics
        .record(slot, method, Outcome::UnknownAccount, started.elapsed());
    text(StatusCode::NOT_FOUND, format!("unknown account {name:?}"))
}

fn bad_query(
    state: &AppState,
    account: &str,
    method: Method,
    rejection: &QueryRejection,
    started: Instant,
) -> Response {
    let slot = state.metrics.slot(account);
    if let Some(note) = state.log_limit.check(slot, Outcome::BadRequest) {
        tracing::warn!(
            account,
            outcome = "bad_request",
            "refused: unreadable query string: {rejection}{note}"
        );
    }
    state
        .metrics
        .record(slot, method, Outcome::BadRequest, started.elapsed());
    let reason = format!("unreadable query string: {rejection}");
    note(
        state,
        account,
        method,
        Outcome::BadRequest,
        started,
        Some(reason),
        None,
    );
    text(
        StatusCode::BAD_REQUEST,
        format!("unreadable query string: {rejection}"),
    )
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let Some(account) = state.account(&name) else {
        return unknown_account(&state, &name, Method::Get, started);
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&state, &name, Method::Get, &rejection, started),
    };
    match account.verify_url(&query, now()) {
        Ok(echostr) => {
            tracing::debug!(account = %name, "URL verification passed");
            state.metrics.record(
                state.metrics.slot(&name),
                Method::Get,
                Outcome::Ok,
                started.elapsed(),
            );
            note(&state, &name, Method::Get, Outcome::Ok, started, None, None);
            super::error::echo(echostr)
        }
        Err(refusal) => refuse(&state, &name, Method::Get, refusal, started),
    }
}

/// A body that could not be read within its bounds (too large, too slow, cut off).
fn refuse_unread(state: &AppState, name: &str, unread: &Unread, started: Instant) -> Response {
    let slot = state.metrics.slot(name);
    if let Some(note) = state.log_limit.check(slot, unread.outcome()) {
        tracing::warn!(account = %name, outcome = unread.outcome().as_str(), "refused: {unread}{note}");
    }
    state
        .metrics
        .record(slot, Method::Post, unread.outcome(), started.elapsed());
    let reason = Some(unread.to_string());
    note(
        state,
        name,
        Method::Post,
        unread.outcome(),
        started,
        reason,
        None,
    );
    text(unread.status(), format!("{unread}\n"))
}

/// A message that must be stored before it is acknowledged, and could not be: a 503,
/// so that WeChat pushes it again.
fn unstored(state: &AppState, name: &str, error: &PushError, started: Instant) -> Response {
    tracing::error!(account = %name, "{error}");
    let slot = state.metrics.slot(name);
    state.metrics.record(
        slot,
        Method::Post,
        Outcome::InternalError,
        started.elapsed(),
    );
    let reason = Some(error.to_string());
    note(
        state,
        name,
        Method::Post,
        Outcome::InternalError,
        started,
        reason,
        None,
    );
    text(StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable; retry")
}

pub async fn message(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    // One snapshot for the whole request: a reload meanwhile does not change it.
    let live = state.live();
    let Some(account) = live.account(&name).cloned() else {
        return unknown_account(&state, &name, Method::Post, started);
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&state, &name, Method::Post, &rejection, started),
    };
    // `signature` covers only the query: check it before reading a byte of the body.
    let now = now();
    let admitted = match account.admit(&query, now) {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(&state, &name, Method::Post, refusal, started),
    };
    let bytes = match read_body(live.max_body_bytes, &headers, body).await {
        Ok(bytes) => bytes,
        Err(unread) => return refuse_unread(&state, &name, &unread, started),
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        let refusal = Refusal::Malformed(wxgate_proto::Error::MalformedXml {
            reason: "body is not UTF-8 (WeChat sends UTF-8)".into(),
        });
        return refuse(&state, &name, Method::Post, refusal, started);
    };
    let pipeline = state.pipeline();
    let handled = pipeline
        .handle(&account, admitted, &query, body, now, rand::rng)
        .await;
    let Handled {
        answer,
        outcome,
        message,
    } = match handled {
        Ok(handled) => handled,
        Err(PushError::Refused(refusal)) => {
            return refuse(&state, &name, Method::Post, refusal, started)
        }
        Err(error @ PushError::Unstored(_)) => return unstored(&state, &name, &error, started),
    };
    log_handled(&state, &name, &message.msg_type, outcome);
    state.metrics.record(
        state.metrics.slot(&name),
        Method::Post,
        outcome,
        started.elapsed(),
    );
    note(
        &state,
        &name,
        Method::Post,
        outcome,
        started,
        None,
        Some(&message),
    );
    let content_type = answer.content_type();
    match answer {
        Answer::Success => text(StatusCode::OK, "success"),
        Answer::Xml(body) | Answer::Json(body) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

/// The log line of a handled push: at info for one answered from the dedup cache (seen
/// before: WeChat's retry, or a message sent again by hand with the same MsgId, which
/// gets the first answer whatever its content now says), within the log's rate like
/// the refusals, so a replayed push cannot flood it; at debug otherwise.
fn log_handled(state: &AppState, name: &str, msg_type: &str, outcome: Outcome) {
    if outcome != Outcome::Duplicate {
        tracing::debug!(account = %name, msg_type, outcome = outcome.as_str(), "message handled");
        return;
    }
    let slot = state.metrics.slot(name);
    if state.log_limit.check(slot, outcome).is_some() {
        tracing::info!(account = %name, msg_type, "answered from the dedup cache: this message (same MsgId, or sender and CreateTime) was answered before, so it gets that answer again; send a new MsgId to try a changed message");
    }
}

/// Adds a finished callback to the console's ring of recent callbacks: its kind and
/// message type, outcome, latency and refusal reason, and the message's text.
fn note(
    state: &AppState,
    account: &str,
    method: Method,
    outcome: Outcome,
    started: Instant,
    reason: Option<String>,
    message: Option<&wxgate_proto::Message>,
) {
    let event = message.and_then(|m| m.event());
    let msg_type = match (message, event) {
        (_, Some(event)) => format!("event/{event}"),
        (Some(message), None) => message.msg_type.clone(),
        (None, None) => String::new(),
    };
    state.console.recent.record(crate::console::ring::Call {
        account,
        kind: match (method, event) {
            (Method::Get, _) => "verify",
            (Method::Post, Some(_)) => "event",
            (Method::Post, None) => "message",
        },
        msg_type: &msg_type,
        outcome,
        latency: started.elapsed(),
        reason,
        content: message.and_then(|m| m.content().or_else(|| m.event_key())),
    });
}
