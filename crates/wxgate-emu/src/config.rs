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

/// One WeCom application (企业微信 自建应用) known to the emulator.
#[derive(Debug, Clone)]
pub struct WeComApp {
    /// CorpID.
    pub corp_id: String,
    /// AgentID.
    pub agent_id: u64,
    /// The application's Secret.
    pub secret: String,
    /// The members (UserIDs) in its visible range; `None` accepts every UserID.
    pub users: Option<Vec<String>>,
    /// Its trusted IPs (企业可信IP); `None` accepts every caller. A call with its token
    /// from another address gets 60020 (`gettoken` itself is not restricted).
    pub trusted_ips: Option<Vec<IpAddr>>,
}

impl WeComApp {
    /// An application that accepts every UserID and every caller.
    pub fn new(corp_id: &str, agent_id: u64, secret: &str) -> WeComApp {
        WeComApp {
            corp_id: corp_id.to_owned(),
            agent_id,
            secret: secret.to_owned(),
            users: None,
            trusted_ips: None,
        }
    }
}

/// An Open Platform third-party platform (开放平台 第三方平台) known to the emulator.
#[derive(Debug, Clone)]
pub struct Component {
    /// The platform's AppID (the trailer of every notify).
    pub app_id: String,
    /// Its AppSecret.
    pub secret: String,
    /// The Token of its notify and message URLs.
    pub token: String,
    /// Its EncodingAESKey.
    pub encoding_aes_key: String,
    /// Whether `api_authorizer_token` hands out a new refresh token each time (the old
    /// one then stops working), or keeps the same one.
    pub rotate_refresh_tokens: bool,
    /// Lifetime of the authorizers' access tokens, seconds; `None`: the config's
    /// `token_ttl_s` (WeChat: 7200).
    pub authorizer_token_ttl_s: Option<i64>,
    /// How long `api_authorizer_token` waits before it looks at the request (a slow
    /// WeChat); a caller that hangs up meanwhile has its request dropped unprocessed.
    pub authorizer_token_delay: std::time::Duration,
}

impl Component {
    /// A platform whose refresh tokens stay the same.
    pub fn new(app_id: &str, secret: &str, token: &str, encoding_aes_key: &str) -> Component {
        Component {
            app_id: app_id.to_owned(),
            secret: secret.to_owned(),
            token: token.to_owned(),
            encoding_aes_key: encoding_aes_key.to_owned(),
            rotate_refresh_tokens: false,
            authorizer_token_ttl_s: None,
            authorizer_token_delay: std::time::Duration::ZERO,
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
    /// Known WeCom applications (served at `/cgi-bin/gettoken` and
    /// `/cgi-bin/message/send`).
    pub wecom_apps: Vec<WeComApp>,
    /// In its last this-many seconds, `gettoken` hands out a new WeCom token (the old one
    /// stays valid until it expires); before, the current one. 0: the current one until
    /// it expires, as WeCom's documentation says (有效期内重复获取返回相同结果).
    pub wecom_renew_window_s: i64,
    /// Schemes and URL Links generated per app per day, together (WeChat: 500,000);
    /// past it, 45009.
    pub link_daily_quota: u32,
    /// `getwxacodeunlimit` calls per app per minute (WeChat: 5000); past it, 45009.
    pub wxacode_minute_quota: u32,
    /// The published pages (`pages/index/index`); `None` accepts every page. Another
    /// path is 40165 for a scheme or URL Link, 41030 for a code.
    pub published_pages: Option<Vec<String>>,
    /// Known third-party platforms (the `/cgi-bin/component/…` routes).
    pub components: Vec<Component>,
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
            wecom_apps: Vec::new(),
            wecom_renew_window_s: 300,
            link_daily_quota: 500_000,
            wxacode_minute_quota: 5000,
            published_pages: None,
            components: Vec::new(),
        }
    }

    /// Adds a third-party platform.
    pub fn with_component(mut self, component: Component) -> EmulatorConfig {
        self.components.push(component);
        self
    }

    /// Adds a WeCom application.
    pub fn with_wecom_app(mut self, app: WeComApp) -> EmulatorConfig {
        self.wecom_apps.push(app);
        self
    }
}
