//! `wxgate.toml`: plain structs deserialized from TOML, validated once into [`Config`].
//!
//! Every error names the file, the line and the key, and says how to fix it. After
//! [`Config::load`] nothing re-reads or re-checks the configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use toml::Spanned;
use url::Url;
use wxgate_proto::console::{self, Mode, Severity};
use wxgate_proto::EncodingAesKey;

use crate::rules::{self, Rule};

mod kinds;

pub use kinds::AccountKind;
pub use wxgate_proto::Format;

/// Default body limit: 1 MiB (compat mode roughly triples a message; WeChat's are small).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default timestamp window, seconds.
pub const DEFAULT_TIMESTAMP_WINDOW_S: u64 = 300;

/// A configuration problem, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (or `<demo>` for the embedded demo).
    pub file: String,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `account[0].token`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The file as written (no `Debug`: it holds the secrets as plain strings).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    listen: Option<Spanned<String>>,
    data_dir: Option<String>,
    max_body_bytes: Option<usize>,
    admin_token: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    api_base: Option<Spanned<String>>,
    open_base: Option<String>,
    token_endpoint: Option<Spanned<String>>,
    daily_token_quota: Option<u32>,
    storage: Option<RawStorage>,
    inbox: Option<RawInbox>,
    http: Option<RawHttp>,
    #[serde(default)]
    account: Vec<RawAccount>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    header_timeout_s: Option<Spanned<u64>>,
    body_timeout_s: Option<Spanned<u64>>,
    idle_timeout_s: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    shutdown_grace_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInbox {
    keep_delivered_days: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    backend: Spanned<String>,
    redis_url: Option<Spanned<String>>,
    reclaim_after_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    domain: Spanned<String>,
    #[serde(default)]
    redirect_allow: Vec<Spanned<String>>,
    signing_key: Spanned<String>,
    identity_ttl_s: Option<u64>,
    state_ttl_s: Option<u64>,
    peak_sign_ins_per_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Spanned<String>,
    app_id: Spanned<String>,
    #[serde(default)]
    app_secret: String,
    token: Spanned<String>,
    #[serde(default)]
    encoding_aes_key: Option<Spanned<String>>,
    #[serde(default)]
    previous_encoding_aes_key: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    timestamp_window_s: Option<u64>,
    dedup: Option<bool>,
    #[serde(default)]
    rule: Vec<Spanned<rules::RawRule>>,
    oauth: Option<Spanned<RawOAuth>>,
    forward: Option<Spanned<RawForward>>,
    kind: Option<Spanned<String>>,
    data_format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    url: Spanned<String>,
    secret: Spanned<String>,
    timeout_ms: Option<u64>,
    max_age_s: Option<u64>,
    max_reply_bytes: Option<Spanned<u64>>,
    attempt_timeout_ms: Option<Spanned<u64>>,
    max_in_flight: Option<Spanned<u64>>,
    max_backoff_s: Option<Spanned<u64>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// Directory for persistent state.
    pub data_dir: PathBuf,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The accounts, in file order.
    pub accounts: Vec<AccountConfig>,
    /// Bearer token of the admin API; `None` lets `serve` generate one.
    pub admin_token: Option<SecretString>,
    /// The public base URL of this server (for OAuth callbacks), without a trailing '/'.
    pub public_url: Option<String>,
    /// The WeChat API base URL (the emulator's in tests).
    pub api_base: String,
    /// The base of WeChat's authorization pages (the emulator's in tests).
    pub open_base: String,
    /// How access tokens are fetched.
    pub token_endpoint: wxgate_client::TokenEndpoint,
    /// Token fetches allowed per day per account (a warning at 80 %).
    pub daily_token_quota: u32,
    /// Where credentials live: `None` for redb under data_dir, or a Redis URL shared by
    /// several instances (secret: it may carry a password).
    pub redis_url: Option<SecretString>,
    /// With Redis: how long a delivery may sit unheard-of with its instance before
    /// another instance takes it over (`[storage] reclaim_after_s`).
    pub reclaim_after_s: u64,
    /// Delivered inbox records older than this many days are deleted by the worker;
    /// 0 keeps them (`[inbox] keep_delivered_days`). Dead letters are never deleted
    /// automatically.
    pub keep_delivered_days: u64,
    /// `[http]`: the connection layer's deadlines and cap.
    pub http: HttpConfig,
}

/// `[http]`: bounds of the connection layer, for a server that faces the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Deadline for a request's whole header block, seconds (default 10).
    pub header_timeout_s: u64,
    /// Deadline for a request body after its headers, seconds (default 10; WeChat
    /// itself gives up after 5).
    pub body_timeout_s: u64,
    /// A kept-alive connection without a request is closed after this, seconds (default 30).
    pub idle_timeout_s: u64,
    /// Concurrent connections (default 4096, lowered to fit the open-file limit).
    pub max_connections: u64,
    /// How long shutdown waits for requests in progress, seconds (default 10).
    pub shutdown_grace_s: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_s: 10,
            body_timeout_s: 10,
            idle_timeout_s: 30,
            max_connections: 4096,
            shutdown_grace_s: 10,
        }
    }
}

/// OAuth settings of an account (`[account.oauth]`).
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The 网页授权域名: host only.
    pub domain: String,
    /// Where the app may be sent back to after sign-in.
    pub redirect_allow: Vec<crate::oauth::AllowEntry>,
    /// Key that signs the identity token handed to the app (shared with the app).
    pub signing_key: SecretString,
    /// Lifetime of the identity token, seconds.
    pub identity_ttl_s: u64,
    /// How long a sign-in may take from authorize to callback, seconds.
    pub state_ttl_s: u64,
    /// The sign-in rate the memory of states is sized for: each instance takes at most
    /// `peak_sign_ins_per_s × state_ttl_s` unexpired states per account.
    pub peak_sign_ins_per_s: u64,
}

impl OAuthConfig {
    /// How many unexpired states this instance takes for the account; past it, new
    /// authorizations get 503.
    pub fn state_budget(&self) -> usize {
        usize::try_from(self.peak_sign_ins_per_s.saturating_mul(self.state_ttl_s))
            .unwrap_or(usize::MAX)
    }
}

/// One validated account.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// URL path segment: `/wx/{name}`.
    pub name: String,
    /// AppID (also the trailer of encrypted messages).
    pub app_id: String,
    /// AppSecret, for the API client (empty: none); never logged.
    pub app_secret: SecretString,
    /// The console Token.
    pub token: SecretString,
    /// The current EncodingAESKey.
    pub aes_key: Option<EncodingAesKey>,
    /// The key before the last rotation, tried when the current one fails.
    pub previous_aes_key: Option<EncodingAesKey>,
    /// Security mode.
    pub mode: Mode,
    /// Accepted clock skew in seconds; 0 turns the check off.
    pub timestamp_window_s: u64,
    /// Whether retries are deduplicated.
    pub dedup: bool,
    /// Auto-reply rules, in order.
    pub rules: Vec<Rule>,
    /// OAuth web authorization, when configured.
    pub oauth: Option<OAuthConfig>,
    /// Forwarding to the owner's service, when configured.
    pub forward: Option<ForwardConfig>,
    /// Official Account, mini-program or mini-game.
    pub kind: AccountKind,
    /// The format the console is set to (数据格式; mini-programs and mini-games).
    /// Pushes are read in the format they come in; a push in the other one is logged.
    pub data_format: Format,
}

/// `[account.forward]`: where messages no rule answered are delivered.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The service's URL (POST JSON).
    pub url: String,
    /// HMAC-SHA256 key of the `X-Wxgate-Signature` header (shared with the service).
    pub secret: SecretString,
    /// How long to wait for a passive reply, ms (default 4000, under WeChat's 5 s).
    pub timeout_ms: u64,
    /// Retry a failing delivery for this long, then dead-letter it (default 1 day).
    pub max_age_s: u64,
    /// The largest answer read from the service (default 64 KiB); a larger one is a
    /// failed attempt.
    pub max_reply_bytes: usize,
    /// How long one delivery attempt may take in all, ms (default 30000).
    pub attempt_timeout_ms: u64,
    /// Delivery attempts to this service at once (default 32); the others wait.
    pub max_in_flight: usize,
    /// The longest wait between two attempts of a failing delivery, s (default 300;
    /// the backoff doubles from 1 s up to it).
    pub max_backoff_s: u64,
}

/// One problem found in a configuration file, by [`lint`] or on the way to a [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigFinding {
    /// `error` stops `serve`; `warning` is reported.
    #[serde(serialize_with = "severity_name")]
    pub severity: Severity,
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

fn severity_name<S: serde::Serializer>(
    severity: &Severity,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    })
}

impl From<ConfigFinding> for ConfigError {
    fn from(finding: ConfigFinding) -> Self {
        ConfigError {
            file: finding.file,
            line: finding.line,
            key: finding.key,
            message: if finding.fix.is_empty() {
                finding.problem
            } else {
                format!("{}; {}", finding.problem, finding.fix)
            },
        }
    }
}

impl Config {
    /// Reads and validates a file.
    ///
    /// # Errors
    /// A [`ConfigError`] locating the first problem.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = read(path)?;
        Config::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] locating the first problem.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let (config, findings) = check(text, file)?;
        for finding in &findings {
            if finding.severity == Severity::Warning {
                tracing::warn!(
                    "{}{}: {}: {}; {}",
                    finding.file,
                    finding.line.map(|l| format!(":{l}")).unwrap_or_default(),
                    finding.key,
                    finding.problem,
                    finding.fix
                );
            }
        }
        Self::first_error(config, findings)
    }

    /// The embedded demo. Its secrets are public on purpose, so the placeholder
    /// warnings that `parse` logs for a real file are not logged.
    ///
    /// # Errors
    /// Only if the embedded file is broken (a test checks it is not).
    pub fn demo() -> Result<Config, ConfigError> {
        let (config, findings) = check(DEMO_TOML, "<embedded demo>")?;
        Self::first_error(config, findings)
    }

    fn first_error(
        config: Option<Config>,
        findings: Vec<ConfigFinding>,
    ) -> Result<Config, ConfigError> {
        config.ok_or_else(|| {
            findings
                .into_iter()
                .find(|f| f.severity == Severity::Error)
                .expect("no config means an error was found")
                .into()
        })
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })
}

/// Every problem in a configuration file, errors and warnings, in file order.
///
/// # Errors
/// A [`ConfigError`] when the file cannot be read or is not valid TOML for wxgate.
pub fn lint(path: &Path) -> Result<Vec<ConfigFinding>, ConfigError> {
    let text = read(path)?;
    Ok(check(&text, &path.display().to_string())?.1)
}

/// Parses, checks every rule, and builds the config when there is no error.
fn check(text: &str, file: &str) -> Result<(Option<Config>, Vec<ConfigFinding>), ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        file: file.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        key: "(syntax)".into(),
        message: e.message().to_owned(),
    })?;
    let mut validator = Validator {
        text,
        file,
        findings: Vec::new(),
    };
    let config = validator.config(raw);
    let has_error = validator
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
    Ok((config.filter(|_| !has_error), validator.findings))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Tokens that are examples, demos or placeholders, never real secrets (compared
/// case-insensitively), and prefixes that mark one.
const PLACEHOLDER_TOKENS: [&str; 9] = [
    "token",
    "mytoken",
    "yourtoken",
    "wxgatedemotoken",
    "weixin",
    "wechat",
    "test",
    "123456",
    "abc123",
];
const PLACEHOLDER_PREFIXES: [&str; 5] = ["your", "replace", "example", "changeme", "placeholder"];
const KNOWN_PUBLIC_KEYS: [&str; 2] = [
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "Nr8OKuMPaz3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI",
];
const PLACEHOLDER_APP_IDS: [&str; 3] = [
    "wx1234567890abcdef",
    "wx0000000000000000",
    "wxabcdef1234567890",
];

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    findings: Vec<ConfigFinding>,
}

type Span = Option<std::ops::Range<usize>>;

impl Validator<'_> {
    fn push(
        &mut self,
        severity: Severity,
        span: Span,
        key: String,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(ConfigFinding {
            severity,
            file: self.file.to_owned(),
            line: span.map(|s| line_of(self.text, s.start)),
            key,
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn error(&mut self, span: Span, key: String, problem: impl Into<String>) {
        self.push(Severity::Error, span, key, problem, "");
    }

    fn console(
        &mut self,
        span: std::ops::Range<usize>,
        key: String,
        findings: Vec<console::Finding>,
    ) -> bool {
        let ok = findings.iter().all(|f| f.severity != Severity::Error);
        for f in findings {
            self.push(
                f.severity,
                Some(span.clone()),
                key.clone(),
                f.problem,
                f.fix,
            );
        }
        ok
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let listen = match &raw.listen {
            Some(listen) => match listen.get_ref().parse::<SocketAddr>() {
                Ok(addr) => addr,
                Err(e) => {
                    let problem = format!(
                        "{:?} is not an address:port ({e}); e.g. \"127.0.0.1:8080\"",
                        listen.get_ref()
                    );
                    self.error(Some(listen.span()), "listen".into(), problem);
                    SocketAddr::from(([127, 0, 0, 1], 8080))
                }
            },
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            self.error(None, "max_body_bytes".into(), "must be at least 1024");
        }
        if raw.account.is_empty() {
            self.error(
                None,
                "account".into(),
                "no [[account]] configured; add one (see wxgate.example.toml) or run `wxgate init`",
            );
        }
        let mut names = HashSet::new();
        let mut accounts = Vec::new();
        for (index, account) in raw.account.into_iter().enumerate() {
            let name = account.name.get_ref().clone();
            if !names.insert(name.clone()) {
                self.error(
                    Some(account.name.span()),
                    format!("account[{index}].name"),
                    format!("account name {name:?} is used twice; each account needs its own callback path"),
                );
            }
            accounts.extend(self.account(index, account));
        }
        let admin_token = raw
            .admin_token
            .as_ref()
            .map(|t| SecretString::from(t.get_ref().as_str()));
        if let Some(token) = &raw.admin_token {
            if token.get_ref().len() < 16 {
                self.error(Some(token.span()), "admin_token".into(), "admin_token must have at least 16 characters (use a random string, e.g. `openssl rand -hex 24`)");
            }
        } else if !listen.ip().is_loopback() {
            self.error(
                raw.listen.as_ref().map(Spanned::span),
                "admin_token".into(),
                format!("listen = {listen} is reachable from other machines, so the admin API (/api, access tokens) needs admin_token = \"<random string>\""),
            );
        }
        let public_url = raw
            .public_url
            .as_ref()
            .map(|u| u.get_ref().trim_end_matches('/').to_owned());
        if let Some(url) = &raw.public_url {
            if let Err(problem) = base_url(url.get_ref()) {
                self.error(Some(url.span()), "public_url".into(), format!("{problem}: public_url must be the absolute http(s) URL WeChat and browsers reach this server at, e.g. https://wx.example.com"));
            }
        }
        if accounts.iter().any(|a| a.oauth.is_some()) && public_url.is_none() {
            self.error(
                None,
                "public_url".into(),
                "[account.oauth] needs public_url, the base of the OAuth callback URL",
            );
        }
        let api_base = raw
            .api_base
            .as_ref()
            .map(|b| b.get_ref().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| wxgate_client::DEFAULT_API_BASE.to_owned());
        let token_endpoint = match raw
            .token_endpoint
            .as_ref()
            .map(|e| (e.get_ref().as_str(), e.span()))
        {
            None | Some(("stable", _)) => wxgate_client::TokenEndpoint::Stable,
            Some(("classic", _)) => wxgate_client::TokenEndpoint::Classic,
            Some((other, span)) => {
                self.error(
                    Some(span),
                    "token_endpoint".into(),
                    format!("{other:?}: use \"stable\" (recommended) or \"classic\""),
                );
                wxgate_client::TokenEndpoint::Stable
            }
        };
        let redis_url = match &raw.storage {
            None => None,
            Some(storage) => match storage.backend.get_ref().as_str() {
                "redb" => None,
                "redis" => match &storage.redis_url {
                    Some(url)
                        if Url::parse(url.get_ref())
                            .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss")) =>
                    {
                        Some(SecretString::from(url.get_ref().as_str()))
                    }
                    Some(url) => {
                        self.error(
                            Some(url.span()),
                            "storage.redis_url".into(),
                            "redis_url must look like redis://127.0.0.1:6379/0",
                        );
                        None
                    }
                    None => {
                        self.error(
                            Some(storage.backend.span()),
                            "storage.redis_url".into(),
                            "backend = \"redis\" needs redis_url = \"redis://host:6379/0\"",
                        );
                        None
                    }
                },
                other => {
                    let problem = format!("{other:?}: use \"redb\" (one instance, the default) or \"redis\" (several instances)");
                    self.error(
                        Some(storage.backend.span()),
                        "storage.backend".into(),
                        problem,
                    );
                    None
                }
            },
        };
        let reclaim_after_s = match raw
            .storage
            .as_ref()
            .and_then(|s| s.reclaim_after_s.as_ref())
        {
            None => 30,
            Some(value) if (1..=3600).contains(value.get_ref()) => *value.get_ref(),
            Some(value) => {
                self.error(
                    Some(value.span()),
                    "storage.reclaim_after_s".into(),
                    "reclaim_after_s must be between 1 and 3600 seconds (default 30)",
                );
                30
            }
        };
        let keep_delivered_days = match raw
            .inbox
            .as_ref()
            .and_then(|i| i.keep_delivered_days.as_ref())
        {
            None => 7,
            Some(days) if *days.get_ref() <= 3650 => *days.get_ref(),
            Some(days) => {
                self.error(
                    Some(days.span()),
                    "inbox.keep_delivered_days".into(),
                    "keep_delivered_days must be at most 3650 (0 keeps delivered records forever; default 7)",
                );
                7
            }
        };
        let http = self.http(raw.http.unwrap_or_default());
        Some(Config {
            listen,
            http,
            redis_url,
            reclaim_after_s,
            keep_delivered_days,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "wxgate-data".into())),
            max_body_bytes,
            accounts,
            admin_token,
            public_url,
            api_base,
            open_base: raw
                .open_base
                .map(|b| b.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| wxgate_proto::urls::OPEN_BASE.to_owned()),
            token_endpoint,
            daily_token_quota: raw.daily_token_quota.unwrap_or(2000),
        })
    }

    /// `[http]`, each key within its range.
    fn http(&mut self, raw: RawHttp) -> HttpConfig {
        let d = HttpConfig::default();
        HttpConfig {
            header_timeout_s: self.bounded(
                raw.header_timeout_s,
                "http.header_timeout_s",
                d.header_timeout_s,
                1..=300,
            ),
            body_timeout_s: self.bounded(
                raw.body_timeout_s,
                "http.body_timeout_s",
                d.body_timeout_s,
                1..=300,
            ),
            idle_timeout_s: self.bounded(
                raw.idle_timeout_s,
                "http.idle_timeout_s",
                d.idle_timeout_s,
                1..=3600,
            ),
            max_connections: self.bounded(
                raw.max_connections,
                "http.max_connections",
                d.max_connections,
                16..=1_000_000,
            ),
            shutdown_grace_s: self.bounded(
                raw.shutdown_grace_s,
                "http.shutdown_grace_s",
                d.shutdown_grace_s,
                0..=3600,
            ),
        }
    }

    /// A number within `range`, or `default` when absent; out of range is an error
    /// that names `key` and the range.
    fn bounded(
        &mut self,
        value: Option<Spanned<u64>>,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        match value {
            None => default,
            Some(v) if range.contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                let name = key.rsplit('.').next().unwrap_or(key);
                let problem = format!(
                    "{name} must be between {} and {} (default {default})",
                    range.start(),
                    range.end()
                );
                self.error(Some(v.span()), key.to_owned(), problem);
                default
            }
        }
    }

    fn aes_key(&mut self, key: String, value: &Option<Spanned<String>>) -> Option<EncodingAesKey> {
        let text = value.as_ref().filter(|t| !t.get_ref().is_empty())?;
        match EncodingAesKey::parse(text.get_ref()) {
            Ok(parsed) => {
                if KNOWN_PUBLIC_KEYS.contains(&text.get_ref().as_str()) {
                    self.push(
                        Severity::Warning,
                        Some(text.span()),
                        key,
                        "this EncodingAESKey is a published example, not a secret",
                        "press 随机生成 in the console (or run `wxgate init`) and use that key",
                    );
                }
                Some(parsed)
            }
            Err(e) => {
                let problem = e.to_string();
                self.error(Some(text.span()), key, problem);
                None
            }
        }
    }

    fn account(&mut self, index: usize, raw: RawAccount) -> Option<AccountConfig> {
        let key = |field: &str| format!("account[{index}].{field}");
        let errors_before = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let name = raw.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                Some(raw.name.span()),
                key("name"),
                format!("{name:?}: the name is the callback path /wx/{{name}}; use letters, digits, '-' and '_'"),
            );
        }
        let app_id = raw.app_id.get_ref();
        if self.console(
            raw.app_id.span(),
            key("app_id"),
            console::check_app_id(app_id),
        ) && PLACEHOLDER_APP_IDS.contains(&app_id.as_str())
        {
            self.push(
                Severity::Warning,
                Some(raw.app_id.span()),
                key("app_id"),
                format!("AppID {app_id:?} looks like a placeholder"),
                "copy the AppID (开发者ID) from 开发 → 基本配置",
            );
        }
        let token = raw.token.get_ref();
        if self.console(raw.token.span(), key("token"), console::check_token(token)) {
            let lower = token.to_ascii_lowercase();
            if PLACEHOLDER_TOKENS.contains(&lower.as_str())
                || PLACEHOLDER_PREFIXES.iter().any(|p| lower.starts_with(p))
            {
                self.push(
                    Severity::Warning,
                    Some(raw.token.span()),
                    key("token"),
                    "the Token looks like a placeholder",
                    "use a random Token (`wxgate init` makes one) and paste the same one into the console",
                );
            }
        }
        let secret_ok =
            raw.app_secret.len() == 32 && raw.app_secret.bytes().all(|b| b.is_ascii_hexdigit());
        let app_secret = SecretString::from(raw.app_secret);
        if !app_secret.expose_secret().is_empty() && !secret_ok {
            self.push(
                Severity::Warning,
                None,
                key("app_secret"),
                "the AppSecret is not 32 hex digits",
                "copy the AppSecret (开发者密码) from 开发 → 基本配置, or reset it there",
            );
        }
        let aes_key = self.aes_key(key("encoding_aes_key"), &raw.encoding_aes_key);
        let previous_aes_key = self.aes_key(
            key("previous_encoding_aes_key"),
            &raw.previous_encoding_aes_key,
        );
        let mode = match &raw.mode {
            Some(mode) => match Mode::parse(mode.get_ref()) {
                Some(parsed) => parsed,
                None => {
                    let problem = format!(
                        "{:?} is not a mode; use \"plain\", \"compat\" or \"safe\"",
                        mode.get_ref()
                    );
                    self.error(Some(mode.span()), key("mode"), problem);
                    Mode::Plain
                }
            },
            None if aes_key.is_some() => Mode::Safe,
            None => Mode::Plain,
        };
        let has_key = aes_key.is_some()
            || raw
                .encoding_aes_key
                .as_ref()
                .is_some_and(|k| !k.get_ref().is_empty());
        let mode_span = raw
            .mode
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(raw.name.span());
        self.console(mode_span, key("mode"), console::check_mode(mode, has_key));
        let (kind, data_format) =
            self.kind_and_format(index, raw.kind.as_ref(), raw.data_format.as_ref());
        let mut rules = Vec::new();
        let mut rule_spans = Vec::new();
        for (rule_index, rule) in raw.rule.into_iter().enumerate() {
            let span = rule.span();
            match Rule::compile(rule.into_inner()) {
                Ok(rule) => {
                    rules.push(rule);
                    rule_spans.push((rule_index, span));
                }
                Err(message) => self.error(
                    Some(span),
                    format!("account[{index}].rule[{rule_index}]"),
                    message,
                ),
            }
        }
        self.customer_service_rules(
            index,
            kind,
            (&rules, &rule_spans),
            !app_secret.expose_secret().is_empty(),
            raw.forward.is_some(),
        );
        let oauth = raw.oauth.map(|oauth| {
            let span = oauth.span();
            let oauth = oauth.into_inner();
            self.oauth(index, span, oauth, app_secret.expose_secret().is_empty())
        });
        let forward = raw.forward.map(|forward| {
            let forward = forward.into_inner();
            let key = |field: &str| format!("account[{index}].forward.{field}");
            let url = forward.url.get_ref();
            if let Err(problem) = http_url(url) {
                self.error(Some(forward.url.span()), key("url"), format!("{problem}: it must be the absolute http(s) URL of your service"));
            }
            if forward.secret.get_ref().len() < 16 {
                self.error(Some(forward.secret.span()), key("secret"), "secret must have at least 16 characters (random, shared with your service)");
            }
            let timeout_ms = forward.timeout_ms.unwrap_or(4000);
            if timeout_ms >= 5000 {
                self.push(
                    Severity::Warning,
                    None,
                    key("timeout_ms"),
                    format!("timeout_ms = {timeout_ms} leaves no margin under WeChat's 5 s"),
                    "use 4000 or less: a slower answer is sent later through the customer-service API",
                );
            }
            let max_reply_bytes = self.bounded(forward.max_reply_bytes, &key("max_reply_bytes"), 64 * 1024, 1024..=16 * 1024 * 1024);
            let attempt_timeout_ms = self.bounded(forward.attempt_timeout_ms, &key("attempt_timeout_ms"), 30_000, 1000..=600_000);
            let max_in_flight = self.bounded(forward.max_in_flight, &key("max_in_flight"), 32, 1..=10_000);
            let max_backoff_s = self.bounded(forward.max_backoff_s, &key("max_backoff_s"), 300, 1..=3600);
            ForwardConfig {
                url: forward.url.into_inner(),
                secret: SecretString::from(forward.secret.into_inner()),
                timeout_ms,
                max_age_s: forward.max_age_s.unwrap_or(86_400),
                max_reply_bytes: max_reply_bytes as usize,
                attempt_timeout_ms,
                max_in_flight: max_in_flight as usize,
                max_backoff_s,
            }
        });
        let errors_after = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        (errors_after == errors_before).then(|| AccountConfig {
            name: name.clone(),
            app_id: raw.app_id.into_inner(),
            app_secret,
            token: SecretString::from(raw.token.into_inner()),
            aes_key,
            previous_aes_key,
            mode,
            timestamp_window_s: raw.timestamp_window_s.unwrap_or(DEFAULT_TIMESTAMP_WINDOW_S),
            dedup: raw.dedup.unwrap_or(true),
            rules,
            oauth,
            forward,
            kind,
            data_format,
        })
    }
}

/// Checks an absolute http(s) URL (which has a host), as the `url` crate, the
/// browsers' parser, reads it.
///
/// # Errors
/// What is wrong, quoting the text.
pub fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not http:// or https://"));
    }
    Ok(url)
}

/// Checks a base URL: [`http_url`] without user info, query or fragment.
///
/// # Errors
/// What is wrong, quoting the text.
pub fn base_url(text: &str) -> Result<Url, String> {
    let url = http_url(text)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} carries a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} has a ?query or #fragment"));
    }
    Ok(url)
}

/// The embedded demo configuration used by `wxgate serve` when there is no config file.
pub const DEMO_TOML: &str = include_str!("demo.toml");

mod oauth;

#[cfg(test)]
mod tests;
