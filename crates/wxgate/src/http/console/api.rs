//! The console's JSON (`/console/api/…`, behind a session): recent callbacks, the
//! overview (credentials, inbox counts, configuration), the inbox with retry and purge,
//! and "try an account".

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use rand::RngExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use wxgate_proto::push::build;
use wxgate_proto::Message;

use crate::app::AppState;
use crate::http::conn::Peer;
use crate::http::error::HttpError;
use crate::inbox::{DeliveryState, Record};
use crate::probe::{self, judge_reply, Exchange};

/// The most entries one poll returns.
const POLL_LIMIT: usize = 500;
/// The longest text "try an account" sends, in bytes.
const MAX_TRY_BYTES: usize = 2048;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console/api/recent", get(recent))
        .route("/console/api/overview", get(overview))
        .route("/console/api/inbox", get(inbox))
        .route("/console/api/inbox/{id}/retry", post(retry))
        .route("/console/api/inbox/purge", post(purge))
        .route("/console/api/try/{account}", post(try_account))
}

#[derive(Debug, Deserialize)]
struct RecentQuery {
    after: Option<u64>,
    unmask: Option<String>,
}

fn unmasked(flag: Option<&str>) -> bool {
    flag.is_some_and(|f| f == "1" || f == "true")
}

/// Entries after `after`, with their text masked unless `unmask=1`.
async fn recent(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RecentQuery>,
) -> Json<Value> {
    let unmask = unmasked(query.unmask.as_deref());
    let entries: Vec<Value> = (state.console().recent)
        .after(query.after.unwrap_or(0), POLL_LIMIT)
        .into_iter()
        .map(|entry| {
            let content = entry.content(unmask);
            let mut value = json!(entry);
            value["content"] = json!(content);
            value
        })
        .collect();
    Json(json!({ "entries": entries }))
}

/// Credentials (as `/api/status` computes them), the inbox's counts, and the config.
async fn overview(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut body = json!({
        "accounts": crate::http::admin::account_status(&state),
        // The configuration in force, after any reload.
        "config": crate::console::summary::summary(&state.live().config),
    });
    crate::http::admin::add_inbox_status(&state, &mut body).await;
    Json(body)
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    state: Option<String>,
    unmask: Option<String>,
}

/// A record as the console shows it: its message's text masked unless asked.
fn view(record: &Record, unmask: bool) -> Value {
    let message = &record.message;
    let content = message["content"]
        .as_str()
        .or_else(|| message["event_key"].as_str())
        .map(|text| {
            if unmask {
                text.chars().take(512).collect()
            } else {
                format!("<{} chars hidden>", text.chars().count())
            }
        });
    json!({
        "id": record.id,
        "account": record.account,
        "state": record.state.as_str(),
        "received_at": record.received_at,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at,
        "last_error": record.last_error,
        "delivered_at": record.delivered_at,
        "msg_type": message["msg_type"],
        "content": content,
    })
}

async fn inbox(
    State(state): State<Arc<AppState>>,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Value>, HttpError> {
    let filter = match query.state.as_deref() {
        None => None,
        Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
            HttpError::BadRequest("state must be pending, delivered or dead".into())
        })?),
    };
    let Some(forwarder) = state.forwarder() else {
        return Ok(Json(json!({ "enabled": false, "records": [] })));
    };
    let unmask = unmasked(query.unmask.as_deref());
    let records = forwarder.inbox().list(filter, 200).await?;
    let (pending, delivered, dead) = forwarder.inbox().counts().await?;
    let records: Vec<Value> = records.iter().map(|r| view(r, unmask)).collect();
    Ok(Json(json!({
        "enabled": true,
        "counts": { "pending": pending, "delivered": delivered, "dead": dead },
        "records": records,
    })))
}

fn forwarder(state: &AppState) -> Result<&Arc<crate::forward::Forwarder>, HttpError> {
    state.forwarder().ok_or_else(|| {
        HttpError::BadRequest("no account has [account.forward]: the inbox is empty".into())
    })
}

async fn retry(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, HttpError> {
    let record = forwarder(&state)?.retry(id).await?;
    tracing::info!(id = record.id, "console: delivery marked for retry");
    Ok(Json(json!({ "retrying": record.id })))
}

#[derive(Debug, Default, Deserialize)]
struct Purge {
    older_than_s: Option<i64>,
}

/// Deletes delivered and dead records older than `older_than_s` (default 0: all).
async fn purge(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, HttpError> {
    let purge: Purge = if body.is_empty() {
        Purge::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            HttpError::BadRequest(format!("body must be JSON {{\"older_than_s\": N}}: {e}"))
        })?
    };
    let older = purge.older_than_s.unwrap_or(0).max(0);
    let purged = forwarder(&state)?
        .inbox()
        .purge(
            wxgate_client::clock::now() - older,
            &[DeliveryState::Delivered, DeliveryState::Dead],
        )
        .await?;
    tracing::info!(purged, older_than_s = older, "console: inbox purged");
    Ok(Json(json!({ "purged": purged })))
}

#[derive(Debug, Deserialize)]
struct Try {
    text: Option<String>,
}

/// Sends a text to the account as `wxgate sim text` does, through this server's own
/// router (in-process), and judges the reply with sim's checks.
async fn try_account(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    let account = state
        .account(&name)
        .ok_or_else(|| HttpError::NotFound(format!("no account named {name:?}")))?;
    let request: Try = serde_json::from_slice(&body).map_err(|e| {
        HttpError::BadRequest(format!("body must be JSON {{\"text\": \"…\"}}: {e}"))
    })?;
    let text = request.text.unwrap_or_else(|| "hello".to_owned());
    if text.is_empty() || text.len() > MAX_TRY_BYTES {
        return Err(HttpError::BadRequest(format!(
            "text must have 1 to {MAX_TRY_BYTES} bytes"
        )));
    }
    let path = format!("/wx/{name}");
    let target = probe::account_target(&account.config, path.clone());
    let openid = "oConsoleTry00000000000000000";
    let to = probe::push_to(&target, "gh_console");
    let now = wxgate_client::clock::now();
    let msg_id = rand::rng().random_range(1u64 << 60..u64::MAX);
    let xml = build::text(to, openid, now, &text, msg_id);
    let sent = Message::parse(&xml)
        .map_err(|e| HttpError::BadRequest(format!("the text cannot be sent: {e}")))?;
    let push = target.push(&xml, to, openid, now);
    let exchange = send(
        &state,
        &target,
        &format!("{path}?{}", push.query),
        push.body,
    )
    .await;
    let verdict = judge_reply(&target, &sent, target.encrypts(), &exchange, now);
    let reply = match (&verdict.reply, verdict.no_reply) {
        (Some(reply), _) => Some(probe::describe(&reply.reply)),
        (None, true) => Some("(none: success)".to_owned()),
        (None, false) => None,
    };
    let ok = verdict
        .checks
        .iter()
        .all(|c| c.status != probe::Status::Fail);
    Ok(Json(json!({
        "account": name,
        "sent": text,
        "status": exchange.status,
        "elapsed_ms": exchange.elapsed.as_secs_f64() * 1000.0,
        "reply": reply,
        "checks": verdict.checks,
        "ok": ok,
    }))
    .into_response())
}

/// One request to this server's router, as a loopback peer, within WeChat's 5 s.
async fn send(state: &Arc<AppState>, target: &probe::Target, uri: &str, body: String) -> Exchange {
    let started = Instant::now();
    let content_type = if target.format == wxgate_proto::Format::Json {
        "application/json"
    } else {
        "text/xml"
    };
    let mut request = axum::http::Request::post(uri)
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .expect("a path and a body make a request");
    request.extensions_mut().insert(Peer {
        addr: (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        tls: false,
    });
    let router = crate::http::app(state.clone());
    let answer = tokio::time::timeout(Duration::from_secs(5), router.oneshot(request)).await;
    let mut exchange = Exchange {
        status: None,
        body: String::new(),
        content_type: String::new(),
        elapsed: Duration::ZERO,
        error: None,
        refused: false,
    };
    match answer {
        Ok(Ok(response)) => {
            exchange.status = Some(response.status().as_u16());
            exchange.content_type = (response.headers().get(axum::http::header::CONTENT_TYPE))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            match response.into_body().collect().await {
                Ok(body) => exchange.body = String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(error) => exchange.error = Some(error.to_string()),
            }
        }
        Ok(Err(never)) => match never {},
        Err(_) => exchange.error = Some("no answer within 5 s".to_owned()),
    }
    exchange.elapsed = started.elapsed();
    exchange
}
