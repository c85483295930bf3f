//! OAuth2 web authorization (网页授权) done for the app:
//!
//! ```text
//! app ──▶ GET /oauth/{name}/authorize?redirect=APP_URL&scope=snsapi_base|snsapi_userinfo
//!     ◀── 302 WeChat authorize URL (redirect_uri = public_url/oauth/{name}/callback?to=APP_URL,
//!                                   state = expiry + nonce + HMAC, single use)
//! WeChat ─▶ GET /oauth/{name}/callback?to=APP_URL&code=…&state=…
//!     ◀── 302 APP_URL?wxgate_identity=TOKEN     (TOKEN: signed, expiring; see README)
//! ```
//!
//! The redirect target must be on the account's allow-list (no open redirect). The
//! redirect_uri is checked against the 网页授权域名 (host only) before WeChat sees it and
//! is encoded once. A code that arrives twice gets the first exchange's result instead of
//! WeChat's 40163.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wxgate_proto::urls::{encode_component, oauth_authorize_url_at, Scope};

use crate::config::OAuthConfig;
use crate::http::{now, AppState};
use crate::shared::SharedSeen;

type HmacSha256 = Hmac<Sha256>;

/// How long used states and exchanged codes are remembered, seconds.
const MEMORY_TTL_S: i64 = 3600;

fn mac(key: &str, parts: &[&str]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.finalize().into_bytes().into()
}

/// A `state` for WeChat: `{expiry:10}{nonce:16 hex}{mac:32 hex}`, letters and digits only,
/// binding the account, the app URL and the scope.
pub fn sign_state(
    key: &str,
    account: &str,
    to: &str,
    scope: &str,
    expires_at: i64,
    nonce: u64,
) -> String {
    let expires = format!("{expires_at:010}");
    let nonce = format!("{nonce:016x}");
    let tag = mac(key, &["state", account, to, scope, &expires, &nonce]);
    format!("{expires}{nonce}{}", hex_lower(&tag[..16]))
}

/// Why a `state` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not produced by this server for this account, URL and scope.
    Tampered,
    /// Older than its expiry.
    Expired,
}

/// Checks a `state` made by [`sign_state`].
///
/// # Errors
/// [`StateError`].
pub fn verify_state(
    key: &str,
    account: &str,
    to: &str,
    scope: &str,
    state: &str,
    now: i64,
) -> Result<(), StateError> {
    if state.len() != 10 + 16 + 32 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StateError::Tampered);
    }
    let (expires, rest) = state.split_at(10);
    let (nonce, tag) = rest.split_at(16);
    let expected = mac(key, &["state", account, to, scope, expires, nonce]);
    if !bool::from(hex_lower(&expected[..16]).as_bytes().ct_eq(tag.as_bytes())) {
        return Err(StateError::Tampered);
    }
    let expires_at: i64 = expires.parse().map_err(|_| StateError::Tampered)?;
    if expires_at < now {
        return Err(StateError::Expired);
    }
    Ok(())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity token handed to the app: `v1.{base64url(JSON)}.{base64url(HMAC-SHA256)}`,
/// the MAC over `v1.{base64url(JSON)}` with the account's `signing_key`.
pub fn sign_identity(key: &str, claims: &serde_json::Value) -> String {
    let payload = format!("v1.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(payload.as_bytes());
    format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Verifies an identity token and returns its claims when valid and unexpired.
pub fn verify_identity(key: &str, token: &str, now: i64) -> Option<serde_json::Value> {
    let (payload, signature) = token.rsplit_once('.')?;
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
        .ok()?;
    let json = URL_SAFE_NO_PAD.decode(payload.strip_prefix("v1.")?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    (claims["exp"].as_i64()? > now).then_some(claims)
}

/// Remembers used states and the outcome of each code for 10 minutes (bounded).
#[derive(Debug, Default)]
pub struct OAuthMemory {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    used_states: HashMap<String, i64>,
    codes: HashMap<String, (String, String, i64)>,
}

const MEMORY_CAP: usize = 100_000;

impl OAuthMemory {
    /// Marks a state used; false when it was used before (here, or on another instance
    /// through Redis).
    pub async fn use_state(
        &self,
        shared: Option<&SharedSeen>,
        given_state: &str,
        now: i64,
    ) -> bool {
        if let Some(shared) = shared {
            match shared
                .claim_raw(
                    &format!("wxgate:oauth:state:{given_state}"),
                    "1",
                    MEMORY_TTL_S as u64,
                )
                .await
            {
                Ok(first) => return first,
                Err(error) => tracing::warn!(
                    "shared OAuth memory unavailable ({error}); this instance's memory is used"
                ),
            }
        }
        let mut memory = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Self::sweep(&mut memory, now);
        memory
            .used_states
            .insert(given_state.to_owned(), now)
            .is_none()
    }

    /// The state and redirect of a code already exchanged.
    pub async fn code_result(
        &self,
        shared: Option<&SharedSeen>,
        code: &str,
    ) -> Option<(String, String)> {
        if let Some(shared) = shared {
            match shared.get_raw(&format!("wxgate:oauth:code:{code}")).await {
                Ok(value) => return value.and_then(|v| serde_json::from_str(&v).ok()),
                Err(error) => tracing::warn!(
                    "shared OAuth memory unavailable ({error}); this instance's memory is used"
                ),
            }
        }
        let memory = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        memory
            .codes
            .get(code)
            .map(|(state, location, _)| (state.clone(), location.clone()))
    }

    /// Remembers the outcome of a code's exchange.
    pub async fn remember_code(
        &self,
        shared: Option<&SharedSeen>,
        code: &str,
        given_state: &str,
        location: &str,
        now: i64,
    ) {
        if let Some(shared) = shared {
            let value = serde_json::json!([given_state, location]).to_string();
            match shared
                .put_raw(
                    &format!("wxgate:oauth:code:{code}"),
                    &value,
                    MEMORY_TTL_S as u64,
                )
                .await
            {
                Ok(()) => return,
                Err(error) => tracing::warn!(
                    "shared OAuth memory unavailable ({error}); this instance's memory is used"
                ),
            }
        }
        let mut memory = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        memory.codes.insert(
            code.to_owned(),
            (given_state.to_owned(), location.to_owned(), now),
        );
    }

    fn sweep(inner: &mut MemoryInner, now: i64) {
        if inner.used_states.len() + inner.codes.len() > MEMORY_CAP / 2 {
            inner.used_states.retain(|_, at| now - *at < MEMORY_TTL_S);
            inner.codes.retain(|_, (_, _, at)| now - *at < MEMORY_TTL_S);
        }
        if inner.used_states.len() > MEMORY_CAP {
            inner.used_states.clear();
        }
        if inner.codes.len() > MEMORY_CAP {
            inner.codes.clear();
        }
    }
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

fn account_oauth<'a>(state: &'a AppState, name: &str) -> Option<&'a OAuthConfig> {
    state
        .account(name)
        .and_then(|account| account.config.oauth.as_ref())
}

fn no_oauth(name: &str) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("account {name:?} has no [account.oauth] configured"),
    )
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
    if !oauth
        .redirect_allow
        .iter()
        .any(|prefix| to.starts_with(prefix.as_str()))
    {
        tracing::warn!(account = %name, "refused OAuth redirect to a URL off the allow-list");
        return text(
            StatusCode::BAD_REQUEST,
            "redirect target is not on this account's oauth.redirect_allow list",
        );
    }
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
        encode_component(to)
    );
    if host_of(&callback) != oauth.domain {
        tracing::error!(account = %name, "public_url host {:?} is not the OAuth domain {:?}: WeChat would answer 10003", host_of(&callback), oauth.domain);
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the callback host {:?} is not the 网页授权域名 {:?}: WeChat would answer error 10003; make public_url's host equal oauth.domain",
                host_of(&callback),
                oauth.domain
            ),
        );
    }
    let app_id = state.center().app_id(&name).unwrap_or_default();
    let signed = sign_state(
        &oauth.signing_key,
        &name,
        to,
        scope.as_str(),
        now() + oauth.state_ttl_s as i64,
        rand::thread_rng().next_u64(),
    );
    match oauth_authorize_url_at(state.open_base(), app_id, &callback, scope, &signed) {
        Ok(url) => redirect(&url),
        Err(err) => text(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

/// `GET /oauth/{name}/callback?to=APP_URL&code=…&state=…`
pub async fn callback(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = account_oauth(&state, &name).cloned() else {
        return no_oauth(&name);
    };
    let to = query.get("to").cloned().unwrap_or_default();
    let given_state = query.get("state").cloned().unwrap_or_default();
    if !oauth
        .redirect_allow
        .iter()
        .any(|prefix| to.starts_with(prefix.as_str()))
    {
        return text(
            StatusCode::BAD_REQUEST,
            "redirect target is not on this account's oauth.redirect_allow list",
        );
    }
    let separator = if to.contains('?') { '&' } else { '?' };
    let now = now();
    let Some(code) = query.get("code").filter(|c| !c.is_empty()).cloned() else {
        // The user refused; WeChat appends only the state.
        return redirect(&format!("{to}{separator}wxgate_error=access_denied"));
    };
    // A code seen before (back button, double redirect): the first result again.
    if let Some((cached_state, location)) = state
        .oauth_memory()
        .code_result(state.shared(), &code)
        .await
    {
        if cached_state == given_state {
            return redirect(&location);
        }
    }
    let scope_checked = ["snsapi_base", "snsapi_userinfo"]
        .into_iter()
        .map(|scope| {
            (
                scope,
                verify_state(&oauth.signing_key, &name, &to, scope, &given_state, now),
            )
        })
        .find(|(_, result)| result != &Err(StateError::Tampered));
    let scope = match scope_checked {
        Some((scope, Ok(()))) => scope,
        Some((_, Err(_))) => {
            tracing::warn!(account = %name, "refused OAuth callback: expired state");
            return text(StatusCode::BAD_REQUEST, "sign-in link expired: start again");
        }
        None => {
            tracing::warn!(account = %name, "refused OAuth callback: state not signed by this server");
            return text(
                StatusCode::BAD_REQUEST,
                "invalid state: the sign-in did not start here (CSRF?)",
            );
        }
    };
    if !state
        .oauth_memory()
        .use_state(state.shared(), &given_state, now)
        .await
    {
        tracing::warn!(account = %name, "refused OAuth callback: replayed state");
        return text(
            StatusCode::BAD_REQUEST,
            "this sign-in link was already used: start again",
        );
    }
    let center = state.center();
    let app_id = center.app_id(&name).unwrap_or_default().to_owned();
    let secret = center.secret(&name).unwrap_or_default().to_owned();
    let token = match center
        .client()
        .oauth_exchange(&app_id, &secret, &code)
        .await
    {
        Ok(token) => token,
        Err(err) => {
            tracing::warn!(account = %name, "OAuth code exchange failed: {err}");
            return text(StatusCode::BAD_GATEWAY, format!("sign-in failed: {err}"));
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
    let identity = sign_identity(&oauth.signing_key, &claims);
    let location = format!("{to}{separator}wxgate_identity={identity}");
    state
        .oauth_memory()
        .remember_code(state.shared(), &code, &given_state, &location, now)
        .await;
    redirect(&location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_refusals() {
        let state = sign_state(
            "k".repeat(32).as_str(),
            "main",
            "https://app/x",
            "snsapi_base",
            2000,
            7,
        );
        assert_eq!(state.len(), 58);
        assert!(
            state.bytes().all(|b| b.is_ascii_alphanumeric()),
            "WeChat allows [A-Za-z0-9] only"
        );
        let key = "k".repeat(32);
        assert_eq!(
            verify_state(&key, "main", "https://app/x", "snsapi_base", &state, 1999),
            Ok(())
        );
        assert_eq!(
            verify_state(&key, "main", "https://app/x", "snsapi_base", &state, 2001),
            Err(StateError::Expired)
        );
        assert_eq!(
            verify_state(&key, "main", "https://evil/x", "snsapi_base", &state, 1999),
            Err(StateError::Tampered)
        );
        assert_eq!(
            verify_state(&key, "other", "https://app/x", "snsapi_base", &state, 1999),
            Err(StateError::Tampered)
        );
        let mut tampered = state.clone().into_bytes();
        tampered[0] = if tampered[0] == b'9' { b'8' } else { b'9' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            verify_state(
                &key,
                "main",
                "https://app/x",
                "snsapi_base",
                &tampered,
                1999
            ),
            Err(StateError::Tampered)
        );
    }

    #[test]
    fn identity_round_trip() {
        let key = "s".repeat(32);
        let token = sign_identity(&key, &json!({ "openid": "o1", "exp": 100 }));
        assert_eq!(verify_identity(&key, &token, 99).unwrap()["openid"], "o1");
        assert!(verify_identity(&key, &token, 100).is_none(), "expired");
        assert!(
            verify_identity(&"x".repeat(32), &token, 99).is_none(),
            "wrong key"
        );
        assert!(
            verify_identity(&key, &token.replace("v1.", "v1.e"), 99).is_none(),
            "tampered"
        );
    }
}
