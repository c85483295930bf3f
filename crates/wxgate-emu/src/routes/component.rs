//! A third-party platform's endpoints (`/cgi-bin/component/…`), with WeChat's error
//! codes. The codes come from WeChat's Open Platform return-code page (返回码说明,
//! developers.weixin.qq.com/doc/oplatform/Return_codes/Return_code_descriptions_new.html)
//! and the errmsg texts WeChat sends with them:
//! * 61005 `component ticket is expired`: a ticket issued more than 12 hours ago;
//! * 61006 `component ticket is invalid`: a ticket never issued (or empty);
//! * 61023 `refresh_token is invalid`: a refresh token that is not the current one;
//! * 40001 `invalid credential, access_token is invalid or not latest` and 42001
//!   `access_token expired` for a component_access_token, as for any token; 41001 when
//!   it is missing (WeChat names `access_token` in these messages too);
//! * 40013 `invalid appid`, 40125 `invalid appsecret`, 47001 `data format error`.
//!
//! An authorization code never issued (or another platform's) gets 61009 `code is
//! invalid`; one used already or past its hour, 61010 `code is expired` (the answers
//! WeChat gives in its developer community for api_query_auth).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{json, Value};

use super::{respond, Params};
use crate::ids::random;
use crate::state::{error, TokenInfo};
use crate::Emulator;

impl Emulator {
    /// Resolves a `component_access_token` query parameter to its platform.
    fn check_component_token(&self, q: &HashMap<String, String>) -> Result<String, Value> {
        let Some(token) = q.get("component_access_token").filter(|t| !t.is_empty()) else {
            return Err(error(41001, "access_token missing"));
        };
        let now = self.now();
        match self.lock().component.tokens.get(token) {
            Some((app_id, expires_at)) if *expires_at > now => Ok(app_id.clone()),
            Some(_) => Err(error(42001, "access_token expired")),
            None => Err(error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
        }
    }

    /// The platform named in a body, with its secret checked when `secret_field` is set.
    fn admit_component(
        &self,
        request: &Value,
        secret_field: Option<&str>,
    ) -> Result<String, Value> {
        let app_id = request["component_appid"].as_str().unwrap_or_default();
        let Some(component) = self.component_config(app_id) else {
            return Err(error(40013, "invalid appid"));
        };
        if let Some(field) = secret_field {
            if request[field].as_str() != Some(component.secret.as_str()) {
                return Err(error(40125, "invalid appsecret"));
            }
        }
        Ok(app_id.to_owned())
    }

    /// A new authorizer access token, valid for the global token's lifetime, usable on
    /// every route that takes an `access_token`.
    fn issue_authorizer_token(&self, component: &str, authorizer: &str) -> (String, i64) {
        let token = format!("EMU_AUTHORIZER_{}", random(80));
        let ttl = (self.component_config(component))
            .and_then(|c| c.authorizer_token_ttl_s)
            .unwrap_or(self.config.token_ttl_s);
        let expires_at = self.now() + ttl;
        let info = TokenInfo {
            app_id: authorizer.to_owned(),
            expires_at,
        };
        self.lock().tokens.insert(token.clone(), info);
        (token, ttl)
    }
}

/// Runs `handler` on a POST's JSON body and records the call.
fn post_json(
    emu: &Emulator,
    uri: &Uri,
    body: &str,
    handler: impl FnOnce(&Value) -> Result<Value, Value>,
) -> Response {
    let answer = match serde_json::from_str::<Value>(body) {
        Ok(request) => handler(&request).unwrap_or_else(|err| err),
        Err(_) => error(47001, "data format error"),
    };
    let query = uri.query().unwrap_or_default();
    respond(emu, "POST", uri.path(), query, body, answer)
}

pub(super) async fn component_token(
    State(emu): State<Emulator>,
    uri: Uri,
    body: String,
) -> Response {
    post_json(&emu, &uri, &body, |request| {
        let app_id = emu.admit_component(request, Some("component_appsecret"))?;
        let ticket = request["component_verify_ticket"]
            .as_str()
            .unwrap_or_default();
        let now = emu.now();
        let issued = (emu.lock().component.tickets.get(&app_id))
            .and_then(|tickets| tickets.get(ticket).copied());
        match issued {
            None => return Err(error(61006, "component ticket is invalid")),
            Some(expires_at) if expires_at <= now => {
                return Err(error(61005, "component ticket is expired"))
            }
            Some(_) => {}
        }
        let token = format!("EMU_COMPONENT_{}", random(80));
        let expires_at = now + emu.config.token_ttl_s;
        (emu.lock().component.tokens).insert(token.clone(), (app_id, expires_at));
        Ok(json!({ "component_access_token": token, "expires_in": emu.config.token_ttl_s }))
    })
}

pub(super) async fn start_push_ticket(
    State(emu): State<Emulator>,
    uri: Uri,
    body: String,
) -> Response {
    post_json(&emu, &uri, &body, |request| {
        let app_id = emu.admit_component(request, Some("component_secret"))?;
        // WeChat pushes a little later, to the 授权事件接收URL.
        emu.push_ticket_soon(&app_id);
        Ok(json!({ "errcode": 0, "errmsg": "ok" }))
    })
}

pub(super) async fn create_preauthcode(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    post_json(&emu, &uri, &body, |request| {
        let owner = emu.check_component_token(&q)?;
        if emu.admit_component(request, None)? != owner {
            return Err(error(61014, "must use component token for component api"));
        }
        let code = format!("preauthcode@@@{}", random(64));
        Ok(json!({ "pre_auth_code": code, "expires_in": 1800 }))
    })
}

pub(super) async fn query_auth(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    post_json(&emu, &uri, &body, |request| {
        let owner = emu.check_component_token(&q)?;
        let code = request["authorization_code"].as_str().unwrap_or_default();
        let now = emu.now();
        let authorizer = {
            let mut inner = emu.lock();
            match inner.component.auth_codes.get_mut(code) {
                Some(c) if c.component != owner => return Err(error(61009, "code is invalid")),
                Some(c) if !c.used && c.expires_at > now => {
                    c.used = true;
                    c.authorizer.clone()
                }
                Some(_) => return Err(error(61010, "code is expired")),
                None => return Err(error(61009, "code is invalid")),
            }
        };
        let (access, ttl) = emu.issue_authorizer_token(&owner, &authorizer);
        // A new authorization replaces the refresh token of the previous one.
        let refresh = format!("refreshtoken@@@{}", random(64));
        (emu.lock().component.refresh).insert((owner, authorizer.clone()), refresh.clone());
        Ok(json!({ "authorization_info": {
            "authorizer_appid": authorizer,
            "authorizer_access_token": access,
            "expires_in": ttl,
            "authorizer_refresh_token": refresh,
            "func_info": [],
        }}))
    })
}

/// Counts a request in its delay, also when the delay is dropped with it.
struct Waiting(Emulator);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.lock().component.refreshes_waiting -= 1;
    }
}

pub(super) async fn authorizer_token(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    let delay = (emu.config.components.iter())
        .map(|c| c.authorizer_token_delay)
        .max()
        .unwrap_or_default();
    if !delay.is_zero() {
        emu.lock().component.refreshes_waiting += 1;
        let _waiting = Waiting(emu.clone());
        tokio::time::sleep(delay).await;
    }
    post_json(&emu, &uri, &body, |request| {
        let owner = emu.check_component_token(&q)?;
        let authorizer = request["authorizer_appid"].as_str().unwrap_or_default();
        let presented = request["authorizer_refresh_token"]
            .as_str()
            .unwrap_or_default();
        let rotate = emu
            .component_config(&owner)
            .is_some_and(|c| c.rotate_refresh_tokens);
        let key = (owner.clone(), authorizer.to_owned());
        let next = {
            let mut inner = emu.lock();
            *inner
                .component
                .refresh_uses
                .entry(presented.to_owned())
                .or_default() += 1;
            if inner.component.refresh.get(&key).map(String::as_str) != Some(presented) {
                return Err(error(61023, "refresh_token is invalid"));
            }
            let next = if rotate {
                format!("refreshtoken@@@{}", random(64))
            } else {
                presented.to_owned()
            };
            inner.component.refresh.insert(key, next.clone());
            next
        };
        let (access, ttl) = emu.issue_authorizer_token(&owner, authorizer);
        Ok(json!({
            "authorizer_access_token": access,
            "expires_in": ttl,
            "authorizer_refresh_token": next,
        }))
    })
}
