//! Web authorization (网页授权): the consent page, the code exchange, refresh, userinfo
//! and the token check. Codes are single use and live 5 minutes.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{respond_get, Params};
use crate::ids::random;
use crate::state::{error, OAuthCode};
use crate::{unix_now, Emulator};

/// The consent page: signs in as `oauth_openid` and redirects at once with a code.
pub(super) async fn authorize(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let query = uri.query().unwrap_or_default().to_owned();
    let app_id = q.get("appid").cloned().unwrap_or_default();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let scope = q.get("scope").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let refuse = |code: i64, message: &str| {
        let answer = error(code, message);
        emu.record("GET", uri.path(), &query, "", &answer);
        (StatusCode::BAD_REQUEST, format!("{code} {message}")).into_response()
    };
    let Some(app) = emu.app(&app_id) else {
        return refuse(10012, "appid invalid");
    };
    if redirect.is_empty() {
        return refuse(10011, "redirect_uri empty");
    }
    if scope.is_empty() {
        return refuse(10010, "scope empty");
    }
    // WeChat refuses a redirect_uri it cannot read, or one outside 网页授权域名.
    let Ok(mut location) = url::Url::parse(&redirect) else {
        return refuse(10003, "redirect_uri 参数错误");
    };
    if let Some(domain) = &app.oauth_domain {
        if location.host_str() != Some(domain.as_str()) {
            return refuse(10003, "redirect_uri 参数错误");
        }
    }
    let code = random(32);
    let now = emu.now();
    emu.lock().codes.insert(
        code.clone(),
        OAuthCode {
            app_id,
            scope,
            created_at: now,
            used: false,
        },
    );
    emu.record("GET", uri.path(), &query, "", &json!({ "errcode": 0 }));
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let location = String::from(location);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

pub(super) async fn oauth_exchange(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let answer = (|| {
        let app_id = q.get("appid").cloned().unwrap_or_default();
        let Some(app) = emu.app(&app_id) else {
            return error(40013, "invalid appid");
        };
        if q.get("secret") != Some(&app.secret) {
            return error(40125, "invalid appsecret");
        }
        let code = q.get("code").cloned().unwrap_or_default();
        let now = emu.now();
        let mut inner = emu.lock();
        let Some(entry) = inner.codes.get_mut(&code) else {
            return error(40029, "invalid code");
        };
        if entry.app_id != app_id {
            return error(40029, "invalid code");
        }
        if entry.used {
            return error(40163, "code been used");
        }
        if now - entry.created_at > 300 {
            return error(40029, "invalid code, code expired");
        }
        entry.used = true;
        let scope = entry.scope.clone();
        let openid = emu.config.oauth_openid.clone();
        let token = format!("OAUTH_{}", random(60));
        let refresh = format!("REFRESH_{}", random(60));
        inner
            .oauth_tokens
            .insert(token.clone(), (openid.clone(), scope.clone(), now + 7200));
        inner
            .refresh_tokens
            .insert(refresh.clone(), (openid.clone(), scope.clone()));
        json!({
            "access_token": token, "expires_in": 7200, "refresh_token": refresh,
            "openid": openid, "scope": scope, "unionid": format!("u{openid}"),
        })
    })();
    respond_get(&emu, &uri, answer)
}

pub(super) async fn oauth_refresh(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let answer = {
        let mut inner = emu.lock();
        match q
            .get("refresh_token")
            .and_then(|r| inner.refresh_tokens.get(r).cloned())
        {
            None => error(40030, "invalid refresh_token"),
            Some((openid, scope)) => {
                let token = format!("OAUTH_{}", random(60));
                let expires = unix_now() + inner.now_offset_s + 7200;
                inner
                    .oauth_tokens
                    .insert(token.clone(), (openid.clone(), scope.clone(), expires));
                json!({ "access_token": token, "expires_in": 7200, "refresh_token": q["refresh_token"], "openid": openid, "scope": scope })
            }
        }
    };
    respond_get(&emu, &uri, answer)
}

fn oauth_user(emu: &Emulator, q: &HashMap<String, String>) -> Result<(String, String), Value> {
    let now = emu.now();
    let inner = emu.lock();
    match q
        .get("access_token")
        .and_then(|t| inner.oauth_tokens.get(t))
    {
        None => Err(error(40001, "invalid credential")),
        Some((_, _, expires)) if *expires <= now => Err(error(42001, "access_token expired")),
        Some((openid, _, _)) if q.get("openid") != Some(openid) => {
            Err(error(40003, "invalid openid"))
        }
        Some((openid, scope, _)) => Ok((openid.clone(), scope.clone())),
    }
}

pub(super) async fn userinfo(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = match oauth_user(&emu, &q) {
        Err(err) => err,
        Ok((_, scope)) if scope == "snsapi_base" => error(48001, "api unauthorized"),
        Ok((openid, _)) => json!({
            "openid": openid, "nickname": "Emulated User", "sex": 0, "province": "", "city": "",
            "country": "", "headimgurl": "", "privilege": [], "unionid": format!("u{openid}"),
        }),
    };
    respond_get(&emu, &uri, answer)
}

pub(super) async fn oauth_check(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let answer = match oauth_user(&emu, &q) {
        Err(err) => err,
        Ok(_) => json!({ "errcode": 0, "errmsg": "ok" }),
    };
    respond_get(&emu, &uri, answer)
}
