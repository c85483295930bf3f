//! What the emulator knows and how it behaves: its apps and WeChat's limits.

use std::net::IpAddr;

/// One application known to the emulator.
#[derive(Debug, Clone)]
pub struct App {
    /// AppID.
    pub app_id: String,
    /// AppSecret.
    pub secret: String,
    /// Host allowed in OAuth redirect_uri (网页授权域名); `None` allows any.
    pub oauth_domain: Option<String>,
}

impl App {
    /// An app with any OAuth domain allowed.
    pub fn new(app_id: &str, secret: &str) -> App {
        App {
            app_id: app_id.to_owned(),
            secret: secret.to_owned(),
            oauth_domain: None,
        }
    }
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Known apps.
    pub apps: Vec<App>,
    /// Lifetime of access tokens and tickets, seconds (WeChat: 7200).
    pub token_ttl_s: i64,
    /// How long a token replaced by a new `/cgi-bin/token` call stays valid (0: at once).
    pub classic_grace_s: i64,
    /// `/cgi-bin/token` calls allowed per app per day (WeChat: 2000).
    pub daily_token_quota: u32,
    /// Callers allowed to fetch tokens; `None` allows every caller.
    pub ip_whitelist: Option<Vec<IpAddr>>,
    /// The OpenID the OAuth consent page signs in as.
    pub oauth_openid: String,
}

impl EmulatorConfig {
    /// Defaults like WeChat's, with one app.
    pub fn with_app(app: App) -> EmulatorConfig {
        EmulatorConfig {
            apps: vec![app],
            token_ttl_s: 7200,
            classic_grace_s: 0,
            daily_token_quota: 2000,
            ip_whitelist: None,
            oauth_openid: "oEmulatorUser000000000000000".to_owned(),
        }
    }
}
