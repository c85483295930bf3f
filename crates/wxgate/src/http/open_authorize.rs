//! A third-party platform's authorization page, with the allow-list and the signed,
//! single-use state of OAuth:
//! * `GET /open/{name}/authorize?redirect=APP_URL`: a small page on `public_url`'s
//!   host (the platform's 发起页域名, from which WeChat requires its page be opened)
//!   with a link to WeChat's authorization page, a fresh pre-authorization code and a
//!   `redirect_uri` that carries the app URL and the signed state;
//! * `GET /open/{name}/authorized?to=APP_URL&state=…&auth_code=…`: WeChat's return;
//!   the app URL and the state are checked (and the state used up) before the merchant
//!   is sent back to the app with `wxgate_authorized=1`. The code itself is exchanged
//!   by the `authorized` notify, which WeChat sends at the same time (one exchange).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use secrecy::ExposeSecret;
use url::Url;
use wxgate_client::clock::now;
use wxgate_proto::urls::{component_login_url, encode_component, MP_BASE};

use super::error::{text, HttpError, Plain};
use crate::app::AppState;
use crate::component::center_name;
use crate::config::AuthorizePage;
use crate::oauth::{redirect, sign_state, verify_state};

/// The scope the state is signed for: a platform's authorization, not a sign-in.
const SCOPE: &str = "component_authorization";

fn page_of<'a>(state: &'a AppState, name: &str) -> Result<&'a AuthorizePage, Plain> {
    (state.component(name))
        .and_then(|component| component.config.authorize.as_ref())
        .ok_or_else(|| {
            Plain(HttpError::NotFound(format!(
                "no [[component]] {name:?} with redirect_allow and signing_key"
            )))
        })
}

fn app_url(name: &str, page: &AuthorizePage, to: &str) -> Result<Url, Plain> {
    redirect::check(&page.redirect_allow, to).map_err(|error| {
        tracing::warn!(component = %name, "refused authorization redirect: {error}");
        Plain(HttpError::BadRequest(error.to_string()))
    })
}

/// `&`, `<`, `>` and `"` escaped, for an HTML attribute or text.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /open/{name}/authorize?redirect=APP_URL`
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let page = match page_of(&state, &name) {
        Ok(page) => page,
        Err(refused) => return refused.into_response(),
    };
    let Some(to) = query.get("redirect").filter(|r| !r.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing ?redirect=APP_URL: where to send the merchant after the authorization",
        );
    };
    let target = match app_url(&name, page, to) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let platform = center_name(&name);
    let now = now();
    let expires_at = now + page.state_ttl_s as i64;
    if let Err(error) = state.oauth_memory().reserve(&platform, expires_at, now) {
        return Plain(HttpError::Unavailable(error.to_string())).into_response();
    }
    let signed = sign_state(
        page.signing_key.expose_secret(),
        &platform,
        target.as_str(),
        SCOPE,
        expires_at,
        rand::rng().next_u64(),
    );
    let public_url = state.public_url().unwrap_or_default();
    let back = format!(
        "{public_url}/open/{name}/authorized?to={}&state={signed}",
        encode_component(target.as_str())
    );
    let Some(component) = state.component(&name) else {
        return text(StatusCode::NOT_FOUND, "unknown platform");
    };
    let app_id = component.config.app_id.clone();
    let center = state.center();
    let code = center
        .with_access_token(&platform, |token| {
            let app_id = &app_id;
            async move { center.client().create_preauthcode(&token, app_id).await }
        })
        .await;
    let code = match code {
        Ok(code) => code,
        Err(error) => return Plain(HttpError::Client(error)).into_response(),
    };
    match component_login_url(MP_BASE, &app_id, &code.value, &back) {
        Ok(url) => page_html(&url),
        Err(error) => text(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

fn page_html(url: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>授权</title></head>\n<body><p><a id=\"authorize\" href=\"{}\">前往微信授权 / Authorize on WeChat</a></p></body></html>\n",
        html_escape(url)
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `GET /open/{name}/authorized?to=APP_URL&state=…&auth_code=…`
pub async fn authorized(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let page = match page_of(&state, &name) {
        Ok(page) => page,
        Err(refused) => return refused.into_response(),
    };
    let to = query.get("to").map(String::as_str).unwrap_or_default();
    let target = match app_url(&name, page, to) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let platform = center_name(&name);
    let given = query.get("state").map(String::as_str).unwrap_or_default();
    let now = now();
    let key = page.signing_key.expose_secret();
    let expires_at = match verify_state(key, &platform, target.as_str(), SCOPE, given, now) {
        Ok(expires_at) => expires_at,
        Err(error) => {
            tracing::warn!(component = %name, "refused authorization return: {error}");
            return Plain(HttpError::BadRequest(error.to_string())).into_response();
        }
    };
    let memory = state.oauth_memory();
    match memory
        .use_state(state.shared(), &platform, given, expires_at, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return text(
                StatusCode::BAD_REQUEST,
                "this authorization link was already used: start again",
            );
        }
        Err(error) => return Plain(HttpError::Unavailable(error.to_string())).into_response(),
    }
    let location = match query.get("auth_code").filter(|c| !c.is_empty()) {
        Some(_) => redirect::with_param(&target, "wxgate_authorized", "1"),
        None => redirect::with_param(&target, "wxgate_error", "access_denied"),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the app URL cannot be sent as a Location header",
        ),
    }
}
