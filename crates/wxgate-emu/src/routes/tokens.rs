//! Access tokens (classic and stable) and JS-SDK tickets, with WeChat's rules: AppID,
//! secret, IP whitelist, daily quota, expiry and invalidation.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{json, Value};

use super::{respond, respond_get, Params};
use crate::ids::random;
use crate::state::{error, TokenInfo};
use crate::Emulator;

impl Emulator {
    /// Checks AppID, secret, whitelist and quota for a token fetch.
    pub(crate) fn admit_fetch(
        &self,
        app_id: &str,
        secret: &str,
        peer: IpAddr,
    ) -> Result<(), Value> {
        if let Some(list) = &self.config.ip_whitelist {
            if !list.contains(&peer) {
                return Err(error(
                    40164,
                    &format!("invalid ip {peer} ipv6 ::ffff:{peer}, not in whitelist"),
                ));
            }
        }
        let Some(app) = self.app(app_id) else {
            return Err(error(40013, "invalid appid"));
        };
        if app.secret != secret {
            return Err(error(
                40125,
                "invalid appsecret, view more at http://t.cn/RAEkdVq",
            ));
        }
        let mut inner = self.lock();
        let count = inner.fetches.entry(app_id.to_owned()).or_default();
        if *count >= self.config.daily_token_quota {
            return Err(error(45009, "reach max api daily quota limit"));
        }
        *count += 1;
        Ok(())
    }

    pub(crate) fn issue_token(&self, app_id: &str) -> (String, i64) {
        let token = format!("EMU_{}", random(100));
        let expires_at = self.now() + self.config.token_ttl_s;
        self.lock().tokens.insert(
            token.clone(),
            TokenInfo {
                app_id: app_id.to_owned(),
                expires_at,
            },
        );
        (token, expires_at)
    }

    /// Resolves an `access_token` query parameter to its AppID, or WeChat's error.
    pub(crate) fn check_token(&self, token: Option<&String>) -> Result<String, Value> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(error(41001, "access_token missing"));
        };
        let now = self.now();
        let inner = self.lock();
        match inner.tokens.get(token) {
            Some(info) if info.expires_at > now => Ok(info.app_id.clone()),
            Some(_) => Err(error(42001, "access_token expired")),
            None if inner.invalid_tokens.contains(token) => Err(error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
            None => Err(error(40014, "invalid access_token")),
        }
    }
}

pub(super) async fn classic_token(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let query = uri.query().unwrap_or_default();
    let answer = (|| {
        if q.get("grant_type").map(String::as_str) != Some("client_credential") {
            return error(40002, "invalid grant_type");
        }
        let app_id = q.get("appid").cloned().unwrap_or_default();
        if let Err(err) = emu.admit_fetch(
            &app_id,
            q.get("secret").map(String::as_str).unwrap_or(""),
            peer.ip(),
        ) {
            return err;
        }
        let (token, _) = emu.issue_token(&app_id);
        // A new classic token replaces the previous one (after the grace period).
        let grace = emu.config.classic_grace_s;
        let now = emu.now();
        let mut inner = emu.lock();
        if let Some(previous) = inner.classic.insert(app_id, token.clone()) {
            if grace <= 0 {
                inner.tokens.remove(&previous);
                inner.invalid_tokens.insert(previous);
            } else if let Some(info) = inner.tokens.get_mut(&previous) {
                info.expires_at = info.expires_at.min(now + grace);
            }
        }
        json!({ "access_token": token, "expires_in": emu.config.token_ttl_s })
    })();
    respond(&emu, "GET", "/cgi-bin/token", query, "", answer)
}

pub(super) async fn stable_token(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: String,
) -> Response {
    let answer = (|| {
        let Ok(request) = serde_json::from_str::<Value>(&body) else {
            return error(47001, "data format error");
        };
        if request["grant_type"] != "client_credential" {
            return error(40002, "invalid grant_type");
        }
        let app_id = request["appid"].as_str().unwrap_or_default().to_owned();
        let force = request["force_refresh"].as_bool().unwrap_or(false);
        if let Err(err) = emu.admit_fetch(
            &app_id,
            request["secret"].as_str().unwrap_or_default(),
            peer.ip(),
        ) {
            return err;
        }
        let now = emu.now();
        if !force {
            let inner = emu.lock();
            if let Some(current) = inner.stable.get(&app_id) {
                // WeChat renews the stable token itself shortly before expiry (the old one
                // stays valid until it expires).
                let renew_window = (emu.config.token_ttl_s / 4).min(300);
                if let Some(info) = inner
                    .tokens
                    .get(current)
                    .filter(|i| i.expires_at - now > renew_window)
                {
                    return json!({ "access_token": current, "expires_in": info.expires_at - now });
                }
            }
        }
        let (token, _) = emu.issue_token(&app_id);
        let mut inner = emu.lock();
        if let Some(previous) = inner.stable.insert(app_id, token.clone()) {
            if force {
                inner.tokens.remove(&previous);
                inner.invalid_tokens.insert(previous);
            }
        }
        json!({ "access_token": token, "expires_in": emu.config.token_ttl_s })
    })();
    respond(&emu, "POST", "/cgi-bin/stable_token", "", &body, answer)
}

pub(super) async fn ticket(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = match emu.check_token(q.get("access_token")) {
        Err(err) => err,
        Ok(app_id) => {
            let now = emu.now();
            let mut inner = emu.lock();
            let entry = inner
                .tickets
                .entry(app_id)
                .or_insert_with(|| (String::new(), 0));
            if entry.1 <= now {
                *entry = (
                    format!("TICKET_{}", random(60)),
                    now + emu.config.token_ttl_s,
                );
            }
            json!({ "errcode": 0, "errmsg": "ok", "ticket": entry.0, "expires_in": entry.1 - now })
        }
    };
    respond_get(&emu, &uri, answer)
}
