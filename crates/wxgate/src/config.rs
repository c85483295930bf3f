//! `wxgate.toml`: plain structs deserialized from TOML, validated once into [`Config`].
//!
//! Every error names the file, the line and the key, and says how to fix it. After
//! [`Config::load`] nothing re-reads or re-checks the configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use wxgate_proto::console::{self, Mode, Severity};
use wxgate_proto::EncodingAesKey;

use crate::rules::{self, Rule};

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

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    listen: Option<Spanned<String>>,
    data_dir: Option<String>,
    max_body_bytes: Option<usize>,
    #[serde(default)]
    account: Vec<RawAccount>,
}

#[derive(Debug, Deserialize)]
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
}

/// One validated account.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// URL path segment: `/wx/{name}`.
    pub name: String,
    /// AppID (also the trailer of encrypted messages).
    pub app_id: String,
    /// AppSecret, for the API client; never logged.
    pub app_secret: String,
    /// The console Token.
    pub token: String,
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
}

impl Config {
    /// Reads and validates a file.
    ///
    /// # Errors
    /// A [`ConfigError`] locating the first problem.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] locating the first problem.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
            key: "(syntax)".into(),
            message: e.message().to_owned(),
        })?;
        Validator { text, file }.config(raw)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
}

impl Validator<'_> {
    fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: String,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: span.map(|s| line_of(self.text, s.start)),
            key,
            message: message.into(),
        }
    }

    fn findings(
        &self,
        span: std::ops::Range<usize>,
        key: String,
        findings: Vec<console::Finding>,
    ) -> Result<(), ConfigError> {
        match findings.into_iter().find(|f| f.severity == Severity::Error) {
            Some(f) => Err(self.error(Some(span), key, format!("{}; {}", f.problem, f.fix))),
            None => Ok(()),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = match &raw.listen {
            Some(listen) => listen.get_ref().parse().map_err(|e| {
                self.error(
                    Some(listen.span()),
                    "listen".into(),
                    format!(
                        "{:?} is not an address:port ({e}); e.g. \"127.0.0.1:8080\"",
                        listen.get_ref()
                    ),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(self.error(None, "max_body_bytes".into(), "must be at least 1024"));
        }
        if raw.account.is_empty() {
            return Err(self.error(
                None,
                "account".into(),
                "no [[account]] configured; add one (see wxgate.example.toml) or run `wxgate init`",
            ));
        }
        let mut names = HashSet::new();
        let mut accounts = Vec::new();
        for (index, account) in raw.account.into_iter().enumerate() {
            let name = account.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.error(
                    Some(account.name.span()),
                    format!("account[{index}].name"),
                    format!("account name {name:?} is used twice; each account needs its own callback path"),
                ));
            }
            accounts.push(self.account(index, account)?);
        }
        Ok(Config {
            listen,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "wxgate-data".into())),
            max_body_bytes,
            accounts,
        })
    }

    fn account(&self, index: usize, raw: RawAccount) -> Result<AccountConfig, ConfigError> {
        let key = |field: &str| format!("account[{index}].{field}");
        let name = raw.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.error(
                Some(raw.name.span()),
                key("name"),
                format!("{name:?}: the name is the callback path /wx/{{name}}; use letters, digits, '-' and '_'"),
            ));
        }
        self.findings(
            raw.app_id.span(),
            key("app_id"),
            console::check_app_id(raw.app_id.get_ref()),
        )?;
        self.findings(
            raw.token.span(),
            key("token"),
            console::check_token(raw.token.get_ref()),
        )?;
        let parse_key = |field: &str,
                         value: &Option<Spanned<String>>|
         -> Result<Option<EncodingAesKey>, ConfigError> {
            match value {
                Some(text) if !text.get_ref().is_empty() => EncodingAesKey::parse(text.get_ref())
                    .map(Some)
                    .map_err(|e| self.error(Some(text.span()), key(field), e.to_string())),
                _ => Ok(None),
            }
        };
        let aes_key = parse_key("encoding_aes_key", &raw.encoding_aes_key)?;
        let previous_aes_key =
            parse_key("previous_encoding_aes_key", &raw.previous_encoding_aes_key)?;
        let mode = match &raw.mode {
            Some(mode) => Mode::parse(mode.get_ref()).ok_or_else(|| {
                self.error(
                    Some(mode.span()),
                    key("mode"),
                    format!(
                        "{:?} is not a mode; use \"plain\", \"compat\" or \"safe\"",
                        mode.get_ref()
                    ),
                )
            })?,
            None if aes_key.is_some() => Mode::Safe,
            None => Mode::Plain,
        };
        if let Some(finding) = console::check_mode(mode, aes_key.is_some())
            .into_iter()
            .next()
        {
            let span = raw
                .mode
                .as_ref()
                .map(Spanned::span)
                .unwrap_or(raw.name.span());
            return Err(self.error(
                Some(span),
                key("mode"),
                format!("{}; {}", finding.problem, finding.fix),
            ));
        }
        let mut compiled = Vec::new();
        for (rule_index, rule) in raw.rule.into_iter().enumerate() {
            let span = rule.span();
            compiled.push(Rule::compile(rule.into_inner()).map_err(|message| {
                self.error(
                    Some(span),
                    format!("account[{index}].rule[{rule_index}]"),
                    message,
                )
            })?);
        }
        Ok(AccountConfig {
            name: name.clone(),
            app_id: raw.app_id.into_inner(),
            app_secret: raw.app_secret,
            token: raw.token.into_inner(),
            aes_key,
            previous_aes_key,
            mode,
            timestamp_window_s: raw.timestamp_window_s.unwrap_or(DEFAULT_TIMESTAMP_WINDOW_S),
            dedup: raw.dedup.unwrap_or(true),
            rules: compiled,
        })
    }
}

/// The embedded demo configuration used by `wxgate serve` when there is no config file.
pub const DEMO_TOML: &str = include_str!("demo.toml");

#[cfg(test)]
mod tests;
