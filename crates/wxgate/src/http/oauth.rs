//! The OAuth routes (`/oauth/{name}/authorize`, `/oauth/{name}/callback`) over
//! [`crate::oauth`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;
use url::Url;
use wxgate_proto::urls::{encode_component, oauth_authorize_url_at, Scope};

use super::error::{text, HttpError, Plain};
use crate::app::AppState;
use crate::config::OAuthConfig;
use wxgate_client::clock::now;

use crate::oauth::{redirect, sign_identity, sign_state, verify_state, MemoryError, StateError};

/// A 302 to `location`; a location that cannot be a header value (it never comes from
/// a parsed URL) is a 500, never a 302 without a Location.
fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the redirect target cannot be sent as a Location header",
        ),
    }
}

fn account_oauth(state: &AppState, name: &str) -> Option<OAuthConfig> {
    state
        .account(name)
        .and_then(|account| account.config.oauth.clone())
}

fn no_oauth(name: &str) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("account {name:?} has no [account.oauth] configured"),
    )
}

/// The app URL, parsed and checked against the allow-list; a refusal is a 400 that
/// says why, and consumes nothing.
fn app_url(name: &str, oauth: &OAuthConfig, to: &str) -> Result<Url, Plain> {
    redirect::check(&oauth.redirect_allow, to).map_err(|error| {
        tracing::warn!(account = %name, "refused OAuth redirect: {error}");
        Plain(HttpError::BadRequest(error.to_string()))
    })
}

fn memory_refusal(name: &str, error: &MemoryError) -> Response {
    tracing::warn!(account = %name, "refused OAuth sign-in: {error}");
    Plain(HttpError::Unavailable(error.to_string())).into_response()
}

/// `GET /oauth/{name}/authorize?redirect=APP_URL&scope=…`
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = account_oauth(&state, &name) else {
        return no_oauth(&name);
    };
    let Some(to) = query.get("redirect").filter(|r| !r.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing ?redirect=APP_URL: where to send the user after sign-in",
        );
    };
    let target = match app_url(&name, &oauth, to) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let scope_text = query
        .get("scope")
        .map(String::as_str)
        .unwrap_or("snsapi_base");
    let scope = match Scope::parse(scope_text) {
        Some(scope @ (Scope::SnsapiBase | Scope::SnsapiUserinfo)) => scope,
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "scope must be snsapi_base or snsapi_userinfo",
            )
        }
    };
    let public_url = state.public_url().unwrap_or_default();
    let callback = format!(
        "{public_url}/oauth/{name}/callback?to={}",
        encode_component(target.as_str())
    );
    let host = Url::parse(&callback)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    if !host.eq_ignore_ascii_case(&oauth.domain) {
        tracing::error!(account = %name, "public_url host {host:?} is not the OAuth domain {:?}: WeChat would answer 10003", oauth.domain);
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the callback host {host:?} is not the 网页授权域名 {:?}: WeChat would answer error 10003; make public_url's host equal oauth.domain",
                oauth.domain
            ),
        );
    }
    let now = now();
    let expires_at = now + oauth.state_ttl_s as i64;
    if let Err(error) = state.oauth_memory().reserve(&name, expires_at, now) {
        return memory_refusal(&name, &error);
    }
    let app_id = state.center().app_id(&name).unwrap_or_default();
    let signed = sign_state(
        oauth.signing_key.expose_secret(),
        &name,
        target.as_str(),
        scope.as_str(),
        expires_at,
        rand::rng().next_u64(),
    );
    match oauth_authorize_url_at(&state.open_base(), app_id, &callback, scope, &signed) {
        Ok(url) => redirect(&url),
        Err(err) => text(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

/// The scope a state was signed for, and its expiry.
fn checked_state(
    name: &str,
    oauth: &OAuthConfig,
    target: &Url,
    given_state: &str,
    now: i64,
) -> Result<(&'static str, i64), Plain> {
    let key = oauth.signing_key.expose_secret();
    let mut last = StateError::Tampered;
    for scope in ["snsapi_base", "snsapi_userinfo"] {
        match verify_state(key, name, target.as_str(), scope, given_state, now) {
            Ok(expires_at) => return Ok((scope, expires_at)),
            Err(StateError::Tampered) => {}
            Err(error) => last = error,
        }
    }
    tracing::warn!(account = %name, "refused OAuth callback: {last}");
    Err(Plain(HttpError::BadRequest(last.to_string())))
}

/// `GET /oauth/{name}/callback?to=APP_URL&code=…&state=…`
///
/// In this order: the app URL (parsed, on the allow-list), the state (signed for that
/// URL, unexpired), then the code. Nothing is remembered and nobody is redirected
/// before the first two pass.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = account_oauth(&state, &name) else {
        return no_oauth(&name);
    };
    let to = query.get("to").map(String::as_str).unwrap_or_default();
    let given_state = query.get("state").map(String::as_str).unwrap_or_default();
    let target = match app_url(&name, &oauth, to) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let now = now();
    let (scope, expires_at) = match checked_state(&name, &oauth, &target, given_state, now) {
        Ok(checked) => checked,
        Err(refused) => return refused.into_response(),
    };
    let memory = state.oauth_memory();
    let code = query.get("code").filter(|c| !c.is_empty()).cloned();
    // A code seen before (back button, double redirect): the first result again.
    if let Some(code) = &code {
        if let Some((cached_state, location)) =
            memory.code_result(state.shared(), &name, code, now).await
        {
            if cached_state == given_state {
                return redirect(&location);
            }
        }
    }
    match memory
        .use_state(state.shared(), &name, given_state, expires_at, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(account = %name, "refused OAuth callback: replayed state");
            return text(
                StatusCode::BAD_REQUEST,
                "this sign-in link was already used: start again",
            );
        }
        Err(error) => return memory_refusal(&name, &error),
    }
    let Some(code) = code else {
        // The user refused; WeChat appends only the state.
        return redirect(&redirect::with_param(
            &target,
            "wxgate_error",
            "access_denied",
        ));
    };
    let location = match exchange(&state, &name, &oauth, scope, &code, now).await {
        Ok(identity) => redirect::with_param(&target, "wxgate_identity", &identity),
        Err(refused) => return refused.into_response(),
    };
    memory
        .remember_code(
            state.shared(),
            &name,
            &code,
            given_state,
            &location,
            expires_at,
            now,
        )
        .await;
    redirect(&location)
}

/// Exchanges the code (and fetches userinfo for `snsapi_userinfo`) and signs the
/// identity token.
async fn exchange(
    state: &AppState,
    name: &str,
    oauth: &OAuthConfig,
    scope: &str,
    code: &str,
    now: i64,
) -> Result<String, Plain> {
    let center = state.center();
    let app_id = center.app_id(name).unwrap_or_default().to_owned();
    let secret = center.secret(name).unwrap_or_default();
    let token = match center.client().oauth_exchange(&app_id, secret, code).await {
        Ok(token) => token,
        Err(err) => {
            tracing::warn!(account = %name, "OAuth code exchange failed: {err}");
            return Err(Plain(HttpError::Upstream(format!("sign-in failed: {err}"))));
        }
    };
    let mut claims = json!({
        "account": name,
        "app_id": app_id,
        "openid": token.openid,
        "unionid": token.unionid,
        "scope": token.scope,
        "iat": now,
        "exp": now + oauth.identity_ttl_s as i64,
    });
    if scope == "snsapi_userinfo" {
        match center
            .client()
            .oauth_userinfo(&token.access_token, &token.openid)
            .await
        {
            Ok(user) => claims["userinfo"] = user,
            Err(err) => tracing::warn!(account = %name, "userinfo failed: {err}"),
        }
    }
    Ok(sign_identity(oauth.signing_key.expose_secret(), &claims))
}
