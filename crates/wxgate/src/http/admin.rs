//! The credential center's HTTP API (`/api/accounts/{name}/…`), behind a bearer token.
//!
//! Every route takes the managed access_token from [`CredentialCenter`], retries once
//! when WeChat rejects it, and maps errors to JSON in one place ([`HttpError`]). A
//! WeCom application gets its access_token here; the routes that call WeChat's API on
//! `api_base` refuse it ([`wechat_only`]).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use wxgate_client::{CredentialKind, Error as ClientError, Scene, TokenSource};
use wxgate_proto::signature::wx_config;

use super::error::HttpError;
use crate::app::AppState;

/// The admin routes, with the bearer check in front.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let accounts = Router::new()
        .route("/api/accounts/{name}/access_token", get(access_token))
        .route("/api/accounts/{name}/jsapi_ticket", get(jsapi_ticket))
        .route("/api/accounts/{name}/jssdk_config", post(jssdk_config))
        .route("/api/accounts/{name}/qrcode", post(qrcode))
        .route("/api/accounts/{name}/scheme", post(forward_scheme))
        .route("/api/accounts/{name}/urllink", post(forward_urllink))
        .route(
            "/api/accounts/{name}/custom_send",
            post(forward_custom_send),
        )
        .route(
            "/api/accounts/{name}/template_send",
            post(forward_template_send),
        )
        .route(
            "/api/accounts/{name}/menu",
            post(menu_create).get(menu_get).delete(menu_delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_account,
        ));
    Router::new()
        .merge(accounts)
        .route("/api/status", get(status))
        .route("/api/reload", post(reload))
        .route("/api/inbox", get(inbox_list).delete(inbox_purge))
        .route("/api/inbox/{id}", get(inbox_show))
        .route("/api/inbox/{id}/retry", post(inbox_retry))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// `POST /api/reload`: reads the configuration file again and applies it; a file
/// with errors is a 400 listing them, and the running configuration stays.
async fn reload(
    State(state): State<Arc<AppState>>,
) -> Result<Json<crate::app::Reloaded>, HttpError> {
    let reloaded = tokio::task::spawn_blocking(move || state.reload_from_file())
        .await
        .map_err(|e| HttpError::Internal(format!("the reload stopped: {e}")))??;
    Ok(Json(reloaded))
}

/// `/api/accounts/{name}/…` serves configured `[[account]]`s only: the credential
/// center also holds third-party platforms and their authorizers, under names with a
/// '/' that a percent-encoded path segment could spell.
async fn require_account(
    State(state): State<Arc<AppState>>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    match params.get("name") {
        Some(name) if state.account(name).is_some() => next.run(request).await,
        other => HttpError::Client(ClientError::UnknownAccount(
            other.cloned().unwrap_or_default(),
        ))
        .into_response(),
    }
}

pub(super) async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.admin_token().as_bytes();
    if given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected)) {
        next.run(request).await
    } else {
        tracing::warn!(path = %request.uri().path(), "refused admin API call: missing or wrong bearer token");
        HttpError::Unauthorized.into_response()
    }
}

async fn access_token(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let credential = state
        .center()
        .get(&name, CredentialKind::AccessToken)
        .await?;
    Ok(Json(
        json!({ "access_token": credential.value, "expires_at": credential.expires_at }),
    ))
}

/// Refuses a WeCom application on a route that calls WeChat's API on `api_base`: its
/// token would be refused there (and expired and fetched again for nothing).
fn wechat_only(state: &AppState, name: &str) -> Result<(), HttpError> {
    match state.center().token_source(name) {
        Some(TokenSource::WeCom { .. }) => Err(HttpError::BadRequest(format!(
            "account {name} is a WeCom application: this route calls WeChat's API (api_base); call WeCom's API (qyapi_base) with the token from /api/accounts/{name}/access_token"
        ))),
        _ => Ok(()),
    }
}

async fn jsapi_ticket(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let credential = state
        .center()
        .get(&name, CredentialKind::JsapiTicket)
        .await?;
    Ok(Json(
        json!({ "ticket": credential.value, "expires_at": credential.expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
struct JsSdkRequest {
    url: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct DebugFlag {
    debug: Option<String>,
}

async fn jssdk_config(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(flag): Query<DebugFlag>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    let app_id = (state.center().app_id(&name))
        .ok_or_else(|| ClientError::UnknownAccount(name.clone()))?
        .to_owned();
    signed_config(&state, &name, &app_id, flag, &body).await
}

/// The JS-SDK config of `app_id` for the page in `body`, with the jsapi_ticket of
/// `center_name` (an account's, or an authorizer's).
pub(super) async fn signed_config(
    state: &AppState,
    center_name: &str,
    app_id: &str,
    flag: DebugFlag,
    body: &str,
) -> Result<Json<Value>, HttpError> {
    let request: JsSdkRequest = serde_json::from_str(body).map_err(|e| {
        HttpError::BadRequest(format!("body must be JSON {{\"url\": \"https://…\"}}: {e}"))
    })?;
    if crate::config::http_url(&request.url).is_err() {
        return Err(HttpError::BadRequest(
            "url must be the page's absolute URL, location.href.split('#')[0]".into(),
        ));
    }
    let ticket = (state.center())
        .get(center_name, CredentialKind::JsapiTicket)
        .await?;
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 16);
    let config = wx_config(
        app_id,
        &ticket.value,
        &nonce,
        wxgate_client::clock::now(),
        &request.url,
    );
    let signed = &config.signed;
    let mut answer = json!({
        "appId": config.app_id,
        "timestamp": config.timestamp,
        "nonceStr": config.nonce_str,
        "signature": signed.signature.to_hex(),
    });
    if flag
        .debug
        .as_deref()
        .is_some_and(|d| d == "1" || d == "true")
    {
        let masked = crate::text::mask(&ticket.value);
        answer["debug"] = json!({
            "signed_url": signed.url,
            "signed_string": signed.string1.replacen(&ticket.value, &masked, 1),
            "note": "the page must call wx.config with exactly this timestamp and nonceStr, from a page whose location.href.split('#')[0] equals signed_url",
        });
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
struct QrRequest {
    scene_id: Option<u32>,
    scene_str: Option<String>,
    expire_seconds: Option<u32>,
}

async fn qrcode(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    let request: QrRequest = serde_json::from_str(&body).map_err(|e| {
        HttpError::BadRequest(format!("body must be JSON with scene_id or scene_str, and expire_seconds for a temporary code: {e}"))
    })?;
    let scene = match (request.scene_id, request.scene_str) {
        (Some(id), None) => Scene::Id(id),
        (None, Some(text)) if (1..=64).contains(&text.len()) => Scene::Str(text),
        (None, Some(_)) => {
            return Err(HttpError::BadRequest(
                "scene_str must have 1 to 64 characters".into(),
            ))
        }
        _ => {
            return Err(HttpError::BadRequest(
                "give exactly one of scene_id and scene_str".into(),
            ))
        }
    };
    wechat_only(&state, &name)?;
    let center = state.center();
    let ticket = center
        .with_access_token(&name, |token| {
            let scene = scene.clone();
            async move {
                center
                    .client()
                    .qrcode_create(&token, &scene, request.expire_seconds)
                    .await
            }
        })
        .await?;
    Ok(Json(json!({
        "ticket": ticket.ticket,
        "expire_seconds": ticket.expire_seconds,
        "url": ticket.url,
        "image_url": wxgate_proto::urls::showqrcode_url(&ticket.ticket),
    })))
}

/// POSTs `body` to a WeChat API path with the managed token and returns WeChat's JSON.
async fn forward(
    state: &AppState,
    name: &str,
    path: &'static str,
    body: &str,
) -> Result<Json<Value>, HttpError> {
    wechat_only(state, name)?;
    let body: Value = serde_json::from_str(body)
        .map_err(|e| HttpError::BadRequest(format!("body must be JSON: {e}")))?;
    let center = state.center();
    let answer = center
        .with_access_token(name, |token| {
            let body = body.clone();
            async move {
                center
                    .client()
                    .post(path, &[("access_token", &token)], &body)
                    .await
            }
        })
        .await?;
    Ok(Json(answer))
}

async fn forward_scheme(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    forward(&state, &name, "/wxa/generatescheme", &body).await
}

async fn forward_urllink(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    forward(&state, &name, "/wxa/generate_urllink", &body).await
}

async fn forward_custom_send(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    forward(&state, &name, "/cgi-bin/message/custom/send", &body).await
}

async fn forward_template_send(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    forward(&state, &name, "/cgi-bin/message/template/send", &body).await
}

async fn menu_create(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    forward(&state, &name, "/cgi-bin/menu/create", &body).await
}

async fn menu_get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    wechat_only(&state, &name)?;
    let center = state.center();
    let answer = center
        .with_access_token(&name, |token| async move {
            center.client().menu_get(&token).await
        })
        .await?;
    Ok(Json(answer))
}

async fn menu_delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    wechat_only(&state, &name)?;
    let center = state.center();
    center
        .with_access_token(&name, |token| async move {
            center.client().menu_delete(&token).await
        })
        .await?;
    Ok(Json(json!({ "errcode": 0, "errmsg": "ok" })))
}

/// What this instance runs with and how it stands: storage (and whether Redis
/// answers), the queue, each account's credentials (never their values) and the inbox.
async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let center = state.center();
    let accounts = account_status(&state);
    let redis = redis_status(&state).await;
    let stats = center.stats();
    let mut body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "storage": {
            "backend": if state.shared().is_some() { "redis" } else { "redb" },
            "credential_store": center.store_name(),
            "redis": redis,
        },
        "credentials": {
            "fetches": stats.fetches,
            "failures": stats.failures,
            "foreign_refreshes": stats.foreign_refreshes,
            "store_failures": stats.store_failures,
        },
        "accounts": accounts,
    });
    add_inbox_status(&state, &mut body).await;
    Json(body)
}

/// Each account: its kind of credentials, cached or not, and its fetches today.
pub(super) fn account_status(state: &AppState) -> Vec<Value> {
    let center = state.center();
    let now = center.now();
    state
        .accounts()
        .into_iter()
        .map(|account| {
            let config = &account.config;
            let credential = |kind: CredentialKind| match center.cached(&config.name, kind) {
                Some(c) => json!({
                    "cached": c.is_valid(now),
                    "expires_in_s": (c.expires_at - now).max(0),
                    "fetches_today": center.fetches_today(&config.name, kind),
                }),
                None => json!({
                    "cached": false,
                    "fetches_today": center.fetches_today(&config.name, kind),
                }),
            };
            let managed = center.app_id(&config.name).is_some();
            let wecom = matches!(
                center.token_source(&config.name),
                Some(TokenSource::WeCom { .. })
            );
            json!({
                "name": config.name,
                "app_id": config.app_id,
                "mode": config.mode.as_str(),
                "rules": config.rules.len(),
                "forward": config.forward.as_ref().map(|f| f.url.clone()),
                "credentials": if wecom {
                    json!({ "access_token": credential(CredentialKind::AccessToken) })
                } else if managed {
                    json!({
                        "access_token": credential(CredentialKind::AccessToken),
                        "jsapi_ticket": credential(CredentialKind::JsapiTicket),
                    })
                } else {
                    json!("not managed: the account has no app_secret (corp_secret and agent_id for WeCom)")
                },
            })
        })
        .collect()
}

/// Redis, when configured: reachable, and persistent the way the queue needs.
async fn redis_status(state: &AppState) -> Value {
    match state.shared() {
        None => Value::Null,
        Some(shared) => match shared.ping().await {
            Ok(()) => match shared.persistence().await {
                Ok((appendonly, appendfsync)) => json!({
                    "reachable": true,
                    "appendonly": appendonly,
                    "appendfsync": appendfsync,
                    "warning": crate::redis::persistence_warning(&appendonly, &appendfsync),
                }),
                Err(error) => json!({ "reachable": true, "persistence": error.to_string() }),
            },
            Err(error) => json!({ "reachable": false, "error": error.to_string() }),
        },
    }
}

/// The inbox's counts and this instance's part of the Redis queue, into `body`.
pub(super) async fn add_inbox_status(state: &AppState, body: &mut Value) {
    if let Some(forwarder) = state.forwarder() {
        let inbox = forwarder.inbox();
        body["inbox"] = match inbox.counts().await {
            Ok((pending, delivered, dead)) => {
                json!({ "pending": pending, "delivered": delivered, "dead": dead })
            }
            Err(error) => json!({ "error": error.to_string() }),
        };
        if let Some(queue) = inbox.queue() {
            body["queue"] = json!({
                "consumer": queue.consumer(),
                "held": queue.held(),
                "reclaimed": queue.reclaimed.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
    }
}

fn forwarder(state: &AppState) -> Result<&Arc<crate::forward::Forwarder>, HttpError> {
    state.forwarder().ok_or_else(|| {
        HttpError::BadRequest("no account has [account.forward]: the inbox is empty".into())
    })
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    state: Option<String>,
    limit: Option<usize>,
    older_than_s: Option<i64>,
}

async fn inbox_list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Value>, HttpError> {
    let filter = match query.state.as_deref() {
        None => None,
        Some(text) => Some(crate::inbox::DeliveryState::parse(text).ok_or_else(|| {
            HttpError::BadRequest("state must be pending, delivered or dead".into())
        })?),
    };
    let forwarder = forwarder(&state)?;
    let records = forwarder
        .inbox()
        .list(filter, query.limit.unwrap_or(50).min(1000))
        .await?;
    let (pending, delivered, dead) = forwarder.inbox().counts().await?;
    Ok(Json(
        json!({ "counts": { "pending": pending, "delivered": delivered, "dead": dead }, "records": records }),
    ))
}

async fn inbox_show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Response, HttpError> {
    match forwarder(&state)?.inbox().get(id).await? {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(HttpError::NotFound(format!("no delivery {id}"))),
    }
}

async fn inbox_retry(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, HttpError> {
    let record = forwarder(&state)?.retry(id).await?;
    Ok(Json(json!({ "retrying": record.id })))
}

async fn inbox_purge(
    State(state): State<Arc<AppState>>,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Value>, HttpError> {
    let older = query.older_than_s.ok_or_else(|| {
        HttpError::BadRequest(
            "older_than_s is required (delivered and dead records older than this are deleted)"
                .into(),
        )
    })?;
    let purged = forwarder(&state)?
        .inbox()
        .purge(
            wxgate_client::clock::now() - older,
            &[
                crate::inbox::DeliveryState::Delivered,
                crate::inbox::DeliveryState::Dead,
            ],
        )
        .await?;
    Ok(Json(json!({ "purged": purged })))
}
