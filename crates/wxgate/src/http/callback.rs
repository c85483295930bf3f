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

use super::body::read_body;
use crate::app::AppState;
use crate::forward::{ForwardError, Forwarded};
use crate::gateway::account::{Answer, CallbackQuery, Decided, Refusal};
use crate::metrics::{Method, Outcome};

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

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
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, refusal.answer())
}

fn unknown_account(state: &AppState, name: &str, method: Method, started: Instant) -> Response {
    let slot = state.metrics.slot("");
    if let Some(note) = state.log_limit.check(slot, Outcome::UnknownAccount) {
        let mut known: Vec<&str> = state.accounts.keys().map(String::as_str).collect();
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
            // The signature does not cover echostr: never let a browser sniff it as HTML.
            let mut response = text(StatusCode::OK, echostr);
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(refusal) => refuse(&state, &name, Method::Get, refusal, started),
    }
}

pub async fn message(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(account) = state.account(&name).cloned() else {
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
    let bytes = match read_body(state.max_body_bytes, &headers, body).await {
        Ok(bytes) => bytes,
        Err(unread) => {
            let slot = state.metrics.slot(&name);
            if let Some(note) = state.log_limit.check(slot, unread.outcome()) {
                tracing::warn!(account = %name, outcome = unread.outcome().as_str(), "refused: {unread}{note}");
            }
            state
                .metrics
                .record(slot, Method::Post, unread.outcome(), started.elapsed());
            return text(unread.status(), format!("{unread}\n"));
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        let refusal = Refusal::Malformed(wxgate_proto::Error::MalformedXml {
            reason: "body is not UTF-8 (WeChat sends UTF-8)".into(),
        });
        return refuse(&state, &name, Method::Post, refusal, started);
    };
    let opened = match account.open_admitted(admitted, &query, body) {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&state, &name, Method::Post, refusal, started),
    };
    if let Some(note) = account.format_note(opened.format, now) {
        tracing::warn!(account = %name, "{note}");
    }
    let shared = state.shared.as_ref().filter(|_| account.config.dedup);
    let key = || opened.message.dedup_key();
    let (plain, outcome) = match account.decide(&opened.message, opened.format, now) {
        Decided::Answer { plain, outcome } => {
            let plain = plain.as_deref().map(str::to_owned);
            match shared {
                Some(shared) if outcome == Outcome::Ok => {
                    shared.answer_once(&name, &key(), plain).await
                }
                _ => (plain, outcome),
            }
        }
        Decided::CustomerService(reply) => {
            let (_, outcome) = match shared {
                Some(shared) => shared.answer_once(&name, &key(), None).await,
                None => (None, Outcome::Ok),
            };
            let (kind, openid) = (account.config.kind, &opened.message.from_user_name);
            if outcome == Outcome::Ok {
                let center = state.center.clone();
                crate::customer_service::spawn_rule_reply(center, &name, kind, openid, reply);
            }
            (None, outcome)
        }
        // The inbox recognises WeChat's retries itself (in Redis across instances), so
        // nothing is claimed before the message is stored: a request cancelled in
        // between must not turn the retry into a `success` for a lost message.
        Decided::Forward => match forward(&state, &name, &opened, now).await {
            Ok(forwarded) => forwarded,
            Err(error) => {
                // Not stored, so not acknowledged: WeChat retries, nothing is lost.
                tracing::error!(account = %name, "cannot store the message in the inbox: {error}; answered 503 so WeChat retries");
                state.metrics.record(
                    state.metrics.slot(&name),
                    Method::Post,
                    Outcome::InternalError,
                    started.elapsed(),
                );
                return text(StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable; retry");
            }
        },
    };
    tracing::debug!(account = %name, msg_type = %opened.message.msg_type, outcome = outcome.as_str(), "message handled");
    let mut rng = rand::thread_rng();
    let answer = account.seal(plain.as_deref(), opened.crypt, opened.format, now, &mut rng);
    state.metrics.record(
        state.metrics.slot(&name),
        Method::Post,
        outcome,
        started.elapsed(),
    );
    let content_type = answer.content_type();
    match answer {
        Answer::Success => text(StatusCode::OK, "success"),
        Answer::Xml(body) | Answer::Json(body) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

/// Commits a message to the inbox and waits for the service's reply within the
/// account's timeout; returns the plain reply in the push's format (or `None` for
/// `success`).
async fn forward(
    state: &AppState,
    name: &str,
    opened: &crate::gateway::account::Opened<'_>,
    now: i64,
) -> Result<(Option<String>, Outcome), ForwardError> {
    let (message, format) = (&opened.message, opened.format);
    let Some(forwarder) = state.forwarder.as_ref() else {
        return Err(ForwardError::NotOpen);
    };
    match forwarder.forward(name, message, now).await? {
        Forwarded::Duplicate(record) => {
            // A retry: the reply given the first time, if it was passive; never a second delivery.
            let reply = match &record.reply_outcome {
                Some(outcome) if outcome == "passive" => crate::forward::stored_reply(&record),
                _ => None,
            };
            Ok((
                reply.map(|r| r.render_for_in(format, message, now)),
                Outcome::Duplicate,
            ))
        }
        Forwarded::New(reply) => Ok((
            reply.map(|r| r.render_for_in(format, message, wxgate_client::clock::now())),
            Outcome::Ok,
        )),
    }
}
