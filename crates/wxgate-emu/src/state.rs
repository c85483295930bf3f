//! What the emulator remembers (tokens, tickets, OAuth codes, menus, interactions) and
//! records (every call), and WeChat's error answer.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::ids::random;
use crate::{App, Emulator, WeComApp};

/// A recorded API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/cgi-bin/stable_token`.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Body (JSON text), empty for GET.
    pub body: String,
    /// The errcode answered (0 for success).
    pub errcode: i64,
}

/// A valid access token: its app and expiry.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub(crate) app_id: String,
    pub(crate) expires_at: i64,
}

/// A valid WeCom access token: its application and expiry.
#[derive(Debug, Clone)]
pub(crate) struct WeComToken {
    pub(crate) corp_id: String,
    pub(crate) agent_id: u64,
    pub(crate) expires_at: i64,
}

/// A message WeCom's `message/send` accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeComSent {
    /// The CorpID of the token's application.
    pub corp_id: String,
    /// The `agentid` of the request (the token's application).
    pub agent_id: u64,
    /// `touser`.
    pub touser: String,
    /// `msgtype`.
    pub msgtype: String,
    /// The text's `content`, or the image's `media_id`, or the first article's title.
    pub content: String,
}

/// An OAuth code handed out by the consent page.
#[derive(Debug, Clone)]
pub(crate) struct OAuthCode {
    pub(crate) app_id: String,
    pub(crate) scope: String,
    pub(crate) created_at: i64,
    pub(crate) used: bool,
}

/// Everything the emulator remembers, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) now_offset_s: i64,
    pub(crate) calls: Vec<Call>,
    /// Valid global access tokens.
    pub(crate) tokens: HashMap<String, TokenInfo>,
    /// Latest classic token per app.
    pub(crate) classic: HashMap<String, String>,
    /// Current stable token per app.
    pub(crate) stable: HashMap<String, String>,
    /// Token fetches per app (for the daily quota).
    pub(crate) fetches: HashMap<String, u32>,
    pub(crate) tickets: HashMap<String, (String, i64)>,
    pub(crate) codes: HashMap<String, OAuthCode>,
    pub(crate) oauth_tokens: HashMap<String, (String, String, i64)>,
    pub(crate) refresh_tokens: HashMap<String, (String, String)>,
    pub(crate) interactions: HashMap<String, i64>,
    pub(crate) menus: HashMap<String, Value>,
    pub(crate) invalid_tokens: HashSet<String>,
    /// Valid WeCom tokens (a WeChat token is not one, and the other way round).
    pub(crate) wecom_tokens: HashMap<String, WeComToken>,
    /// The token `gettoken` hands out per (CorpID, AgentID).
    pub(crate) wecom_current: HashMap<(String, u64), String>,
    /// What `message/send` accepted, in order.
    pub(crate) wecom_sent: Vec<WeComSent>,
    /// Schemes and URL Links generated per (AppID, day in UTC+8).
    pub(crate) link_generations: HashMap<(String, i64), u32>,
    /// Every scheme and URL Link generated, in order.
    pub(crate) links: Vec<crate::GeneratedLink>,
    /// `getwxacodeunlimit` calls per (AppID, minute).
    pub(crate) wxacode_calls: HashMap<(String, i64), u32>,
    /// Third-party platforms' state (`routes::component`).
    pub(crate) component: crate::component::ComponentState,
}

fn rid() -> String {
    format!("rid: {}-{}-{}", random(8), random(8), random(8)).to_ascii_lowercase()
}

/// WeChat's error answer, its message ending with a request id as WeChat's does.
pub(crate) fn error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": format!("{errmsg} {}", rid()) })
}

impl Emulator {
    /// The emulator's memory.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call and its answer.
    pub(crate) fn record(&self, method: &str, path: &str, query: &str, body: &str, answer: &Value) {
        let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        self.lock().calls.push(Call {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: body.to_owned(),
            errcode,
        });
    }

    /// The WeCom application of this corp with this AgentID.
    pub(crate) fn wecom_app(&self, corp_id: &str, agent_id: u64) -> Option<&WeComApp> {
        (self.config.wecom_apps.iter()).find(|a| a.corp_id == corp_id && a.agent_id == agent_id)
    }

    /// The third-party platform with this AppID.
    pub(crate) fn component_config(&self, app_id: &str) -> Option<&crate::Component> {
        self.config.components.iter().find(|c| c.app_id == app_id)
    }

    /// The app with this AppID.
    pub(crate) fn app(&self, app_id: &str) -> Option<&App> {
        self.config.apps.iter().find(|a| a.app_id == app_id)
    }
}
