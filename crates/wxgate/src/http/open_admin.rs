//! The third-party platforms' part of the admin API (behind the same bearer check):
//! * `GET /api/open/{name}/component_access_token`;
//! * `GET /api/open/{name}/authorizers`: the authorizers, with their latest event;
//! * `GET /api/open/{name}/authorizers/{appid}/access_token` and `…/jsapi_ticket`;
//! * `POST /api/open/{name}/authorizers/{appid}/jssdk_config` (`{"url": …}`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use wxgate_client::credential::authorizer_name;
use wxgate_client::CredentialKind;

use super::admin::{signed_config, DebugFlag};
use super::error::HttpError;
use crate::app::AppState;
use crate::component::center_name;

/// The routes (the caller adds the bearer check).
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/open/{name}/component_access_token",
            get(component_access_token),
        )
        .route("/api/open/{name}/authorizers", get(authorizers))
        .route(
            "/api/open/{name}/authorizers/{appid}/access_token",
            get(authorizer_access_token),
        )
        .route(
            "/api/open/{name}/authorizers/{appid}/jsapi_ticket",
            get(authorizer_jsapi_ticket),
        )
        .route(
            "/api/open/{name}/authorizers/{appid}/jssdk_config",
            post(authorizer_jssdk_config),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            super::admin::require_admin,
        ))
}

/// The platform's name in the center, or 404.
fn platform(state: &AppState, name: &str) -> Result<String, HttpError> {
    match state.component(name) {
        Some(_) => Ok(center_name(name)),
        None => Err(HttpError::NotFound(format!(
            "no [[component]] named {name:?}"
        ))),
    }
}

/// The authorizer's name in the center (held from now on), or 404.
fn authorizer(state: &AppState, name: &str, app_id: &str) -> Result<String, HttpError> {
    let platform = platform(state, name)?;
    state
        .center()
        .hold_authorizer(&platform, app_id)
        .map_err(|_| {
            HttpError::NotFound(format!("{app_id:?} is not an AppID (wx + 16 hex digits)"))
        })
}

async fn component_access_token(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let platform = platform(&state, &name)?;
    let credential = (state.center())
        .get(&platform, CredentialKind::AccessToken)
        .await?;
    Ok(Json(json!({
        "component_access_token": credential.value,
        "expires_at": credential.expires_at,
    })))
}

async fn authorizers(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let platform = platform(&state, &name)?;
    let Some(component) = state.component(&name) else {
        return Err(HttpError::NotFound(name));
    };
    let list: Vec<Value> = match state.component_store() {
        Some(store) => (store.authorizers(&component.config.app_id).await)
            .map_err(|e| HttpError::Unavailable(e.to_string()))?
            .into_iter()
            .map(|(app_id, event)| {
                json!({ "app_id": app_id, "event": event.info_type, "at": event.create_time })
            })
            .collect(),
        None => (state.center().authorizers(&platform).into_iter())
            .map(|app_id| json!({ "app_id": app_id }))
            .collect(),
    };
    Ok(Json(json!({ "authorizers": list })))
}

async fn authorizer_access_token(
    State(state): State<Arc<AppState>>,
    Path((name, app_id)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    let held = authorizer(&state, &name, &app_id)?;
    let credential = state
        .center()
        .get(&held, CredentialKind::AccessToken)
        .await?;
    Ok(Json(json!({
        "authorizer_access_token": credential.value,
        "expires_at": credential.expires_at,
    })))
}

async fn authorizer_jsapi_ticket(
    State(state): State<Arc<AppState>>,
    Path((name, app_id)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    let held = authorizer(&state, &name, &app_id)?;
    let credential = state
        .center()
        .get(&held, CredentialKind::JsapiTicket)
        .await?;
    Ok(Json(
        json!({ "ticket": credential.value, "expires_at": credential.expires_at }),
    ))
}

async fn authorizer_jssdk_config(
    State(state): State<Arc<AppState>>,
    Path((name, app_id)): Path<(String, String)>,
    Query(flag): Query<DebugFlag>,
    body: String,
) -> Result<Json<Value>, HttpError> {
    let held = authorizer(&state, &name, &app_id)?;
    debug_assert_eq!(held, authorizer_name(&center_name(&name), &app_id));
    signed_config(&state, &held, &app_id, flag, &body).await
}
