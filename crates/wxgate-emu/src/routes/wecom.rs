//! WeCom (企业微信) on the emulator: an application's access_token (`/cgi-bin/gettoken`)
//! and its application messages (`/cgi-bin/message/send`), with WeCom's error codes
//! and its message form (`…, hint: [rid], from ip: IP, more info at …`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{json, Value};

use super::{respond, Params};
use crate::ids::random;
use crate::state::{WeComSent, WeComToken};
use crate::Emulator;

/// WeCom's error answer: its message names the request id and the caller's IP.
fn wecom_error(errcode: i64, errmsg: &str, peer: IpAddr) -> Value {
    json!({
        "errcode": errcode,
        "errmsg": format!(
            "{errmsg}, hint: [{}_{}], from ip: {peer}, more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}",
            crate::unix_now(),
            random(12).to_ascii_lowercase()
        ),
    })
}

impl Emulator {
    /// The token `gettoken` hands out for an application: the current one, or a new one
    /// when there is none or it is in its last `wecom_renew_window_s`.
    fn wecom_token(&self, corp_id: &str, agent_id: u64) -> (String, i64) {
        let now = self.now();
        let window = self.config.wecom_renew_window_s;
        let mut inner = self.lock();
        let key = (corp_id.to_owned(), agent_id);
        let current = (inner.wecom_current.get(&key))
            .and_then(|token| Some((token.clone(), inner.wecom_tokens.get(token)?.expires_at)));
        if let Some((token, expires_at)) = current {
            if expires_at - now > window.max(0) {
                return (token, expires_at - now);
            }
        }
        let token = format!("WECOM_{}", random(100));
        let ttl = self.config.token_ttl_s;
        inner.wecom_tokens.insert(
            token.clone(),
            WeComToken {
                corp_id: corp_id.to_owned(),
                agent_id,
                expires_at: now + ttl,
            },
        );
        inner.wecom_current.insert(key, token.clone());
        (token, ttl)
    }

    /// Resolves a WeCom `access_token` to its application, or WeCom's error.
    fn check_wecom_token(&self, token: Option<&String>, peer: IpAddr) -> Result<WeComToken, Value> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(wecom_error(41001, "access_token missing", peer));
        };
        let now = self.now();
        let inner = self.lock();
        match inner.wecom_tokens.get(token) {
            Some(info) if info.expires_at > now => Ok(info.clone()),
            Some(_) => Err(wecom_error(42001, "access_token expired", peer)),
            None => Err(wecom_error(40014, "invalid access_token", peer)),
        }
    }
}

pub(super) async fn gettoken(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let peer = peer.ip();
    let corp_id = q.get("corpid").map(String::as_str).unwrap_or_default();
    let secret = q.get("corpsecret").map(String::as_str).unwrap_or_default();
    let apps = &emu.config.wecom_apps;
    let answer = if corp_id.is_empty() {
        wecom_error(41002, "corpid missing", peer)
    } else if !apps.iter().any(|a| a.corp_id == corp_id) {
        wecom_error(40013, "invalid corpid", peer)
    } else if secret.is_empty() {
        wecom_error(41004, "corpsecret missing", peer)
    } else {
        match apps
            .iter()
            .find(|a| a.corp_id == corp_id && a.secret == secret)
        {
            None => wecom_error(40001, "invalid secret", peer),
            Some(app) => {
                let (token, expires_in) = emu.wecom_token(corp_id, app.agent_id);
                json!({ "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in })
            }
        }
    };
    let query = uri.query().unwrap_or_default();
    respond(&emu, "GET", uri.path(), query, "", answer)
}

pub(super) async fn message_send(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    let peer = peer.ip();
    let answer = match emu.check_wecom_token(q.get("access_token"), peer) {
        Err(err) => err,
        Ok(owner) => match serde_json::from_str::<Value>(&body) {
            Err(_) => wecom_error(40058, "invalid json", peer),
            Ok(request) => emu.accept_message(&owner, &request, peer),
        },
    };
    let query = uri.query().unwrap_or_default();
    respond(&emu, "POST", uri.path(), query, &body, answer)
}

impl Emulator {
    /// `message/send` with a valid token: the trusted IPs, the agentid, the visible
    /// range and the message type, then the message is recorded.
    fn accept_message(&self, owner: &WeComToken, request: &Value, peer: IpAddr) -> Value {
        let Some(app) = self.wecom_app(&owner.corp_id, owner.agent_id) else {
            return wecom_error(40014, "invalid access_token", peer);
        };
        if app
            .trusted_ips
            .as_ref()
            .is_some_and(|ips| !ips.contains(&peer))
        {
            return wecom_error(60020, "not allow to access from your ip", peer);
        }
        if request["agentid"].as_u64() != Some(owner.agent_id) {
            return wecom_error(
                301002,
                "not allow operate another agent with this accesstoken",
                peer,
            );
        }
        let touser = request["touser"].as_str().unwrap_or_default();
        let known = |user: &str| {
            app.users
                .as_ref()
                .is_none_or(|users| users.iter().any(|u| u == user))
        };
        if touser.is_empty() || !touser.split('|').any(known) {
            return wecom_error(81013, "user & party & tag all invalid", peer);
        }
        let msgtype = request["msgtype"].as_str().unwrap_or_default();
        let content = match msgtype {
            "text" => request["text"]["content"].as_str(),
            "image" => request["image"]["media_id"].as_str(),
            "news" => request["news"]["articles"][0]["title"].as_str(),
            _ => return wecom_error(40008, "invalid message type", peer),
        };
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return wecom_error(44004, "empty content", peer);
        };
        let invalid: Vec<&str> = touser.split('|').filter(|u| !known(u)).collect();
        self.lock().wecom_sent.push(WeComSent {
            corp_id: owner.corp_id.clone(),
            agent_id: owner.agent_id,
            touser: touser.to_owned(),
            msgtype: msgtype.to_owned(),
            content: content.to_owned(),
        });
        json!({
            "errcode": 0, "errmsg": "ok", "invaliduser": invalid.join("|"),
            "msgid": format!("{}", rand::random::<u32>()),
        })
    }
}
