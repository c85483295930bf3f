//! `GET|POST /open/{name}/{appid}/callback`: a third-party platform's 消息与事件接收URL,
//! where WeChat puts the authorizer's AppID in the path. The authorizer must be one the
//! credential center holds (or one of WeChat's release-test accounts), else 404 before
//! the body is read; then the push goes through the same steps as an account's
//! (`admit`, the body within its bound, [`crate::pipeline`]: decryption with the
//! platform's key and AppID, rules, forwarding), under the authorizer's name
//! `open/{name}/{appid}`. The release test's two cases are answered here
//! ([`crate::component::release`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wxgate_client::clock::now;
use wxgate_client::credential::authorizer_name;
use wxgate_client::CustomMessage;
use wxgate_proto::reply::Reply;

use super::body::read_body;
use super::error::{refusal, text, HttpError, Plain};
use crate::app::AppState;
use crate::component::center_name;
use crate::component::release::{is_release_test_account, release_case, ReleaseCase};
use crate::gateway::account::{Account, Answer, CallbackQuery, Refusal};
use crate::metrics::{Method, Outcome};
use crate::pipeline::PushError;

/// The authorizer's account, or the 404.
fn authorizer(state: &AppState, name: &str, app_id: &str) -> Result<Arc<Account>, Plain> {
    let Some(component) = state.component(name) else {
        return Err(Plain(HttpError::NotFound(format!(
            "unknown third-party platform {name:?}"
        ))));
    };
    let held = state.center().authorizers(&center_name(name));
    if !held.iter().any(|a| a == app_id) && !is_release_test_account(app_id) {
        return Err(Plain(HttpError::NotFound(format!(
            "{app_id:?} has not authorized platform {name:?}"
        ))));
    }
    Ok(component.messages(app_id))
}

fn record(state: &AppState, name: &str, method: Method, outcome: Outcome, started: Instant) {
    let slot = state.metrics.slot(&center_name(name));
    state
        .metrics
        .record(slot, method, outcome, started.elapsed());
}

fn refused(
    state: &AppState,
    name: &str,
    method: Method,
    why: Refusal,
    started: Instant,
) -> Response {
    let slot = state.metrics.slot(&center_name(name));
    if let Some(note) = state.log_limit.check(slot, why.outcome()) {
        tracing::warn!(
            component = name,
            outcome = why.outcome().as_str(),
            "authorizer push refused: {}{note}",
            why.reason()
        );
    }
    record(state, name, method, why.outcome(), started);
    refusal(&why)
}

/// `GET /open/{name}/{appid}/callback`: the URL verification, as an account's.
pub async fn verify(
    State(state): State<Arc<AppState>>,
    Path((name, app_id)): Path<(String, String)>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let account = match authorizer(&state, &name, &app_id) {
        Ok(account) => account,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Query(query)) = query else {
        return refused(
            &state,
            &name,
            Method::Get,
            Refusal::MissingParameter("signature"),
            started,
        );
    };
    match account.verify_url(&query, now()) {
        Ok(echostr) => {
            record(&state, &name, Method::Get, Outcome::Ok, started);
            super::error::echo(echostr)
        }
        Err(why) => refused(&state, &name, Method::Get, why, started),
    }
}

/// `POST /open/{name}/{appid}/callback`
pub async fn message(
    State(state): State<Arc<AppState>>,
    Path((name, app_id)): Path<(String, String)>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let account = match authorizer(&state, &name, &app_id) {
        Ok(account) => account,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Query(query)) = query else {
        return refused(
            &state,
            &name,
            Method::Post,
            Refusal::MissingParameter("signature"),
            started,
        );
    };
    let now = now();
    let admitted = match account.admit(&query, now) {
        Ok(admitted) => admitted,
        Err(why) => return refused(&state, &name, Method::Post, why, started),
    };
    let bytes = match read_body(state.max_body_bytes(), &headers, body).await {
        Ok(bytes) => bytes,
        Err(unread) => {
            record(&state, &name, Method::Post, unread.outcome(), started);
            return text(unread.status(), format!("{unread}\n"));
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        let why = Refusal::Malformed(wxgate_proto::Error::MalformedXml {
            reason: "body is not UTF-8 (WeChat sends UTF-8)".into(),
        });
        return refused(&state, &name, Method::Post, why, started);
    };
    if is_release_test_account(&app_id) {
        let push = Push {
            account: &account,
            admitted,
            query: &query,
            body,
            now,
        };
        if let Some(answer) = release_test(&state, &name, &app_id, push) {
            record(&state, &name, Method::Post, Outcome::Ok, started);
            return answer;
        }
    }
    let handled = state
        .pipeline()
        .handle(&account, admitted, &query, body, now, rand::rng)
        .await;
    match handled {
        Ok(handled) => {
            record(&state, &name, Method::Post, handled.outcome, started);
            answer(handled.answer)
        }
        Err(PushError::Refused(why)) => refused(&state, &name, Method::Post, why, started),
        Err(error @ PushError::Unstored(_)) => {
            tracing::error!(component = %name, authorizer = %app_id, "{error}");
            record(&state, &name, Method::Post, Outcome::InternalError, started);
            text(StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable; retry")
        }
    }
}

/// An admitted push, read.
struct Push<'a> {
    account: &'a Account,
    admitted: crate::gateway::account::Admitted,
    query: &'a CallbackQuery,
    body: &'a str,
    now: i64,
}

fn answer(answer: Answer) -> Response {
    let content_type = answer.content_type();
    match answer {
        Answer::Success => text(StatusCode::OK, "success"),
        Answer::Xml(body) | Answer::Json(body) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

/// The release test's answer for a release-test account's message, when it is one of
/// the two cases; `None` sends it through the pipeline. A push that does not open is
/// left to the pipeline too, which refuses it as usual.
fn release_test(
    state: &Arc<AppState>,
    name: &str,
    app_id: &str,
    push: Push<'_>,
) -> Option<Response> {
    let Push {
        account,
        admitted,
        query,
        body,
        now,
    } = push;
    let opened = account.open_admitted(admitted, query, body).ok()?;
    match release_case(app_id, &opened.message)? {
        ReleaseCase::Reply(content) => {
            let reply = Reply::Text { content };
            let plain = reply.render_for(&opened.message, now);
            let sealed = account.seal(
                Some(&plain),
                opened.crypt,
                opened.format,
                now,
                &mut rand::rng(),
            );
            Some(answer(sealed))
        }
        ReleaseCase::QueryAuthCode(code) => {
            let (state, name) = (Arc::clone(state), name.to_owned());
            let openid = opened.message.from_user_name.clone();
            tokio::spawn(async move { query_auth_case(&state, &name, &code, &openid).await });
            Some(text(StatusCode::OK, "success"))
        }
    }
}

/// The second case, after `success`: exchange the code, then send `{code}_from_api`
/// with the authorizer's token.
async fn query_auth_case(state: &AppState, name: &str, code: &str, openid: &str) {
    let platform = center_name(name);
    let center = state.center();
    let authorizer = match center.authorize(&platform, code).await {
        Ok(authorizer) => authorizer,
        Err(err) => {
            tracing::error!(
                component = name,
                "release test: the code could not be exchanged: {err}"
            );
            return;
        }
    };
    let held = authorizer_name(&platform, &authorizer);
    let message = CustomMessage::Text(format!("{code}_from_api"));
    let sent = center
        .with_access_token(&held, |token| {
            let message = &message;
            async move { center.client().custom_send(&token, openid, message).await }
        })
        .await;
    match sent {
        Ok(()) => {
            tracing::info!(component = name, authorizer = %authorizer, "release test: {code}_from_api sent")
        }
        Err(err) => {
            tracing::error!(component = name, authorizer = %authorizer, "release test: the text could not be sent: {err}")
        }
    }
}
