//! What the credential center is given: the accounts' secrets and its settings.

use std::time::Duration;

use secrecy::SecretString;

/// How access tokens are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// `/cgi-bin/stable_token` (default): does not invalidate other holders' tokens.
    Stable,
    /// `/cgi-bin/token`: every fetch invalidates the previous token.
    Classic,
}

/// Where an account's access_token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// An Official Account, mini-program or mini-game: `app_id` and the AppSecret on
    /// `api_base` (`stable_token` or `token`, as [`CenterConfig::endpoint`] says). It
    /// has a jsapi_ticket too.
    WeChat,
    /// A WeCom application (企业微信 自建应用): `app_id` is the CorpID, the secret the
    /// application's Secret, and the token comes from `gettoken` on
    /// [`CenterConfig::qyapi_base`]. It has no jsapi_ticket here.
    WeCom {
        /// The application's AgentID: part of the store key (two applications of one
        /// corp have two tokens), and the sender of `message/send`.
        agent_id: u64,
    },
    /// An Open Platform third-party platform (开放平台 第三方平台): `app_id` is the
    /// platform's AppID, the secret its AppSecret, and its access token is the
    /// `component_access_token` from `api_component_token` on `api_base`, with the
    /// latest `component_verify_ticket` WeChat pushed (kept in the store under
    /// [`AccountSecrets::ticket_key`]). It has no jsapi_ticket.
    Component,
    /// A merchant's account that authorized a third-party platform: `app_id` is the
    /// authorizer's AppID, and its `authorizer_access_token` comes from
    /// `api_authorizer_token` with its refresh token and the platform's token. The
    /// center learns these at run time (`CredentialCenter::authorize`).
    Authorizer,
}

/// One account's API credentials.
#[derive(Debug, Clone)]
pub struct AccountSecrets {
    /// The name used by callers.
    pub name: String,
    /// AppID; a WeCom application's CorpID.
    pub app_id: String,
    /// AppSecret, or a WeCom application's Secret (never logged; `Debug` prints a
    /// placeholder).
    pub secret: SecretString,
    /// Where its token comes from.
    pub source: TokenSource,
}

impl AccountSecrets {
    /// The store key of one of its credentials: `wxgate:cred:{app_id}:{kind}`, and
    /// `wxgate:cred:wecom:{corp_id}:{agent_id}:{kind}` for a WeCom application, whose
    /// token belongs to the application, not to the corp. (A CorpID may start with
    /// `wx` like an AppID; the `wecom:` segment keeps the two apart.) A third-party
    /// platform's is `wxgate:cred:component:{app_id}:{kind}`.
    pub fn store_key(&self, kind: super::CredentialKind) -> String {
        match self.source {
            TokenSource::WeChat => format!("wxgate:cred:{}:{}", self.app_id, kind.as_str()),
            TokenSource::WeCom { agent_id } => format!(
                "wxgate:cred:wecom:{}:{agent_id}:{}",
                self.app_id,
                kind.as_str()
            ),
            TokenSource::Component => {
                format!("wxgate:cred:component:{}:{}", self.app_id, kind.as_str())
            }
            // The center keys an authorizer by its platform too (`AccountState::store_key`).
            TokenSource::Authorizer => {
                format!("wxgate:cred:authorizer:{}:{}", self.app_id, kind.as_str())
            }
        }
    }

    /// A third-party platform's latest `component_verify_ticket`:
    /// `wxgate:cred:component:{app_id}:verify_ticket`.
    pub fn ticket_key(&self) -> String {
        format!("wxgate:cred:component:{}:verify_ticket", self.app_id)
    }

    /// When a third-party platform last asked WeChat to push a ticket:
    /// `wxgate:cred:component:{app_id}:ticket_asked`.
    pub fn ticket_asked_key(&self) -> String {
        format!("wxgate:cred:component:{}:ticket_asked", self.app_id)
    }
}

/// Settings of the center.
#[derive(Debug, Clone)]
pub struct CenterConfig {
    /// How to fetch access tokens.
    pub endpoint: TokenEndpoint,
    /// Token fetches allowed per day; a warning is logged at 80 %.
    pub daily_quota: u32,
    /// How often the refresher looks for credentials due for refresh.
    pub refresh_tick: Duration,
    /// WeCom's API base URL, for [`TokenSource::WeCom`] accounts.
    pub qyapi_base: String,
}

impl Default for CenterConfig {
    fn default() -> Self {
        CenterConfig {
            endpoint: TokenEndpoint::Stable,
            daily_quota: 2000,
            refresh_tick: Duration::from_secs(1),
            qyapi_base: crate::wecom::DEFAULT_QYAPI_BASE.to_owned(),
        }
    }
}
