//! `wxgate.toml`: plain structs deserialized from TOML, validated once into [`Config`].
//!
//! Every error names the file, the line and the key, and says how to fix it. After
//! [`Config::load`] nothing re-reads or re-checks the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize as _;
use wxgate_proto::console::{Mode, Severity};
use wxgate_proto::EncodingAesKey;

use crate::rules::Rule;
use raw::RawConfig;
use validate::Validator;

mod account;
mod component;
mod env;
mod kinds;
mod links;
mod oauth;
mod placeholder;
mod raw;
mod urls;
mod validate;
mod verify;
mod wecom;

pub use component::{AuthorizePage, AuthorizerOverride, ComponentConfig};
pub use kinds::AccountKind;
pub use links::{query_char, LinkConfig, LinksConfig, Prefer, QUERY_CHARS};
pub use urls::{base_url, http_url, UrlError};
pub use verify::VerifyFile;
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
    /// The third-party platforms (`[[component]]`), in file order.
    pub components: Vec<ComponentConfig>,
    /// Bearer token of the admin API; `None` lets `serve` generate one.
    pub admin_token: Option<SecretString>,
    /// The public base URL of this server (for OAuth callbacks), without a trailing '/'.
    pub public_url: Option<String>,
    /// The WeChat API base URL (the emulator's in tests).
    pub api_base: String,
    /// The WeCom API base URL (`gettoken`, `message/send`; the emulator's in tests).
    pub qyapi_base: String,
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
    /// `[tls]`: serve HTTPS with this certificate and key (none: plain HTTP).
    pub tls: Option<TlsConfig>,
    /// `[[verify_file]]`: the domain verification files served at their paths.
    pub verify_files: Vec<VerifyFile>,
    /// `[links]`: the lifetime, renewal and daily cap of generated links.
    pub links: LinksConfig,
}

/// `[tls]`: the PEM files HTTPS serves, relative paths resolved against the config
/// file's directory (as `data_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (`fullchain.pem`).
    pub cert: PathBuf,
    /// The leaf's private key (`privkey.pem`).
    pub key: PathBuf,
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
    /// AppID (also the trailer of encrypted messages); a WeCom application's CorpID.
    pub app_id: String,
    /// AppSecret, for the API client (empty: none); a WeCom application's Secret;
    /// never logged.
    pub app_secret: SecretString,
    /// A WeCom application's AgentID.
    pub agent_id: Option<u64>,
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
    /// Official Account, mini-program, mini-game or WeCom application.
    pub kind: AccountKind,
    /// The format the console is set to (数据格式; mini-programs and mini-games).
    /// Pushes are read in the format they come in; a push in the other one is logged.
    pub data_format: Format,
    /// `[[account.link]]`: the pages `/go/{account}/{link}` opens (mini-programs).
    pub links: Vec<LinkConfig>,
}

impl AccountConfig {
    /// Whether a rule's reply reaches this account's users only through the
    /// customer-service API (a text, image or news reply on a mini-program or
    /// mini-game): such replies are kept in the inbox until they are sent.
    pub fn replies_through_api(&self) -> bool {
        !self.kind.shows_passive_replies()
            && self.rules.iter().any(|rule| {
                rule.reply_type()
                    .is_some_and(|reply| reply != "transfer_customer_service")
            })
    }
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
        let mut config = Config::parse(&text, &file)?;
        config.data_dir = data_dir_beside(path, &config.data_dir, &file)?;
        if let (Some(tls), Some(base)) = (config.tls.as_mut(), path.parent()) {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        Ok(config)
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

/// A relative `data_dir` is relative to the config file's directory, so a server started
/// from another directory finds the same data. Earlier releases took it relative to the
/// working directory: when the data is there (a `wxgate.redb`) and not beside the
/// config file, starting afresh would lose the tokens, the inbox and the admin token,
/// so this refuses and says how to move it.
///
/// # Errors
/// The data sits where the old rule put it and not where the new one does.
fn data_dir_beside(
    config_file: &Path,
    data_dir: &Path,
    file: &str,
) -> Result<PathBuf, ConfigError> {
    if data_dir.is_absolute() {
        return Ok(data_dir.to_owned());
    }
    let base = config_file.parent().filter(|p| !p.as_os_str().is_empty());
    let resolved = base.map_or_else(|| data_dir.to_owned(), |base| base.join(data_dir));
    let database = "wxgate.redb";
    let old = data_dir.join(database);
    let same_place = match (old.canonicalize(), resolved.join(database).canonicalize()) {
        (Ok(old), Ok(new)) => old == new,
        _ => false,
    };
    if old.exists() && !same_place && !resolved.join(database).exists() {
        return Err(ConfigError {
            file: file.to_owned(),
            line: None,
            key: "data_dir".into(),
            message: format!(
                "data_dir {data_dir:?} is relative to the config file's directory ({resolved}), but this install's data is in {old_dir} (relative to the working directory, as before); move it: `mv {old_dir} {resolved}`, or set data_dir to an absolute path",
                resolved = resolved.display(),
                old_dir = data_dir.display(),
            ),
        });
    }
    Ok(resolved)
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

/// The errors `serve` would refuse the file for, each as `file:line: key: problem;
/// fix` (none: it would start).
pub fn errors(path: &Path) -> Vec<String> {
    match lint(path) {
        Err(error) => vec![error.to_string()],
        Ok(findings) => (findings.into_iter())
            .filter(|f| f.severity == Severity::Error)
            .map(|f| {
                let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                format!("{}{line}: {}: {}; {}", f.file, f.key, f.problem, f.fix)
            })
            .collect(),
    }
}

/// Parses, checks every rule, and builds the config when there is no error.
fn check(text: &str, file: &str) -> Result<(Option<Config>, Vec<ConfigFinding>), ConfigError> {
    check_with(text, file, &|name| std::env::var(name))
}

/// [`check`], reading `"${VAR}"` values through `lookup`.
fn check_with(
    text: &str,
    file: &str,
    lookup: env::Lookup<'_>,
) -> Result<(Option<Config>, Vec<ConfigFinding>), ConfigError> {
    let raw = parse_raw(text, file, lookup)?;
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

/// The file as written, its `"${VAR}"` values read from the environment.
fn parse_raw(text: &str, file: &str, lookup: env::Lookup<'_>) -> Result<RawConfig, ConfigError> {
    let error = |e: toml::de::Error, key: String| ConfigError {
        file: file.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        key,
        message: unknown_key_hint(e.message()).unwrap_or_else(|| e.message().trim_end().to_owned()),
    };
    let mut root = toml::de::DeTable::parse(text).map_err(|e| error(e, "(syntax)".into()))?;
    env::substitute(&mut root, text, file, lookup)?;
    let tree = root.get_ref().clone();
    RawConfig::deserialize(toml::de::Deserializer::from(root)).map_err(|e| {
        let key = e
            .span()
            .map(|span| env::path_at(&tree, span.start))
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| "(syntax)".into());
        error(e, key)
    })
}

/// serde's "unknown field `tokn`, expected one of `name`, …" with a did-you-mean.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let hint = crate::rules::did_you_mean(unknown, &known)
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    Some(format!(
        "unknown key `{unknown}`; {hint}the keys here are {}",
        known.join(", ")
    ))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The embedded demo configuration used by `wxgate serve` when there is no config file.
pub const DEMO_TOML: &str = include_str!("demo.toml");

#[cfg(test)]
mod tests;
