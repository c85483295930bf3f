//! The checks of a whole file: [`Validator`] gathers every finding (errors and
//! warnings, each with its line) on the way from [`RawConfig`] to [`Config`]. The
//! checks of one `[[account]]` are in [`super::account`], of its kind in
//! [`super::kinds`], of its OAuth table in [`super::oauth`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use toml::Spanned;
use url::Url;
use wxgate_client::TokenEndpoint;
use wxgate_proto::console::{self, Severity};

use super::raw::{RawAccount, RawConfig, RawHttp, RawInbox, RawStorage, RawTls};
use super::urls::base_url;
use super::{
    line_of, AccountConfig, Config, ConfigFinding, HttpConfig, TlsConfig, DEFAULT_MAX_BODY_BYTES,
};

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    pub(super) findings: Vec<ConfigFinding>,
}

pub(super) type Span = Option<std::ops::Range<usize>>;

impl Validator<'_> {
    pub(super) fn push(
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

    pub(super) fn error(&mut self, span: Span, key: String, problem: impl Into<String>) {
        self.push(Severity::Error, span, key, problem, "");
    }

    pub(super) fn console(
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

    /// The whole file: top-level keys, then each `[[account]]`, then the tables.
    pub(super) fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let listen = self.listen(raw.listen.as_ref());
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            self.error(None, "max_body_bytes".into(), "must be at least 1024");
        }
        let has_components = !raw.component.is_empty();
        let accounts = self.accounts(raw.account, has_components);
        let components = self.components(raw.component);
        let admin_token = self.admin_token(raw.admin_token.as_ref(), raw.listen.as_ref(), listen);
        let public_url = self.public_url(raw.public_url.as_ref());
        if components.iter().any(|c| c.authorize.is_some()) && public_url.is_none() {
            self.error(
                None,
                "public_url".into(),
                "a [[component]] with redirect_allow needs public_url: the authorization page is served on its host (the platform's 发起页域名)",
            );
        }
        if accounts.iter().any(|a| a.oauth.is_some()) && public_url.is_none() {
            self.error(
                None,
                "public_url".into(),
                "[account.oauth] needs public_url, the base of the OAuth callback URL",
            );
        }
        let api_base = self.api_base(
            "api_base",
            raw.api_base.as_ref(),
            wxgate_client::DEFAULT_API_BASE,
        );
        let qyapi_base = self.api_base(
            "qyapi_base",
            raw.qyapi_base.as_ref(),
            wxgate_client::DEFAULT_QYAPI_BASE,
        );
        let token_endpoint = self.token_endpoint(raw.token_endpoint.as_ref());
        let redis_url = raw.storage.as_ref().and_then(|s| self.redis_url(s));
        let reclaim_after_s = self.reclaim_after_s(raw.storage.as_ref());
        let keep_delivered_days = self.keep_delivered_days(raw.inbox.as_ref());
        let http = self.http(raw.http.unwrap_or_default());
        let tls = raw.tls.as_ref().and_then(|tls| self.tls(tls));
        let verify_files = self.verify_files(raw.verify_file);
        let links = self.links_section(raw.links.unwrap_or_default());
        Some(Config {
            links,
            verify_files,
            listen,
            http,
            tls,
            redis_url,
            reclaim_after_s,
            keep_delivered_days,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "wxgate-data".into())),
            max_body_bytes,
            accounts,
            components,
            admin_token,
            public_url,
            api_base,
            qyapi_base,
            open_base: raw
                .open_base
                .map(|b| b.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| wxgate_proto::urls::OPEN_BASE.to_owned()),
            token_endpoint,
            daily_token_quota: raw.daily_token_quota.unwrap_or(2000),
        })
    }

    fn listen(&mut self, listen: Option<&Spanned<String>>) -> SocketAddr {
        let default = SocketAddr::from(([127, 0, 0, 1], 8080));
        let Some(listen) = listen else {
            return default;
        };
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(e) => {
                let problem = format!(
                    "{:?} is not an address:port ({e}); e.g. \"127.0.0.1:8080\"",
                    listen.get_ref()
                );
                self.error(Some(listen.span()), "listen".into(), problem);
                default
            }
        }
    }

    /// Every `[[account]]`, each name once.
    fn accounts(&mut self, raw: Vec<RawAccount>, has_components: bool) -> Vec<AccountConfig> {
        if raw.is_empty() && !has_components {
            self.error(
                None,
                "account".into(),
                "no [[account]] or [[component]] configured; add one (see wxgate.example.toml) or run `wxgate init`",
            );
        }
        let mut names = HashSet::new();
        let mut accounts = Vec::new();
        for (index, account) in raw.into_iter().enumerate() {
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
        accounts
    }

    fn admin_token(
        &mut self,
        token: Option<&Spanned<String>>,
        listen_span: Option<&Spanned<String>>,
        listen: SocketAddr,
    ) -> Option<SecretString> {
        if let Some(token) = token {
            if token.get_ref().len() < 16 {
                self.error(Some(token.span()), "admin_token".into(), "admin_token must have at least 16 characters (use a random string, e.g. `openssl rand -hex 24`)");
            }
            self.placeholder_secret(token, "admin_token".into(), "admin_token");
        } else if !listen.ip().is_loopback() {
            self.error(
                listen_span.map(Spanned::span),
                "admin_token".into(),
                format!("listen = {listen} is reachable from other machines, so the admin API (/api, access tokens) needs admin_token = \"<random string>\""),
            );
        }
        token.map(|t| SecretString::from(t.get_ref().as_str()))
    }

    fn public_url(&mut self, url: Option<&Spanned<String>>) -> Option<String> {
        let url = url?;
        if let Err(problem) = base_url(url.get_ref()) {
            self.error(Some(url.span()), "public_url".into(), format!("{problem}: public_url must be the absolute http(s) URL WeChat and browsers reach this server at, e.g. https://wx.example.com"));
        }
        Some(url.get_ref().trim_end_matches('/').to_owned())
    }

    /// `api_base` or `qyapi_base`: an absolute http(s) base URL, kept without its
    /// trailing '/'.
    fn api_base(&mut self, key: &str, base: Option<&Spanned<String>>, default: &str) -> String {
        let Some(base) = base else {
            return default.to_owned();
        };
        if let Err(problem) = base_url(base.get_ref()) {
            self.error(
                Some(base.span()),
                key.into(),
                format!("{problem}: {key} must be an absolute http(s) base URL, {default} (the default) or an emulator's http://127.0.0.1:PORT"),
            );
        }
        base.get_ref().trim_end_matches('/').to_owned()
    }

    fn token_endpoint(&mut self, endpoint: Option<&Spanned<String>>) -> TokenEndpoint {
        match endpoint.map(|e| (e.get_ref().as_str(), e.span())) {
            None | Some(("stable", _)) => TokenEndpoint::Stable,
            Some(("classic", _)) => TokenEndpoint::Classic,
            Some((other, span)) => {
                self.error(
                    Some(span),
                    "token_endpoint".into(),
                    format!("{other:?}: use \"stable\" (recommended) or \"classic\""),
                );
                TokenEndpoint::Stable
            }
        }
    }

    /// `[storage]`: the Redis URL when the backend is Redis.
    fn redis_url(&mut self, storage: &RawStorage) -> Option<SecretString> {
        match storage.backend.get_ref().as_str() {
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
        }
    }

    fn reclaim_after_s(&mut self, storage: Option<&RawStorage>) -> u64 {
        match storage.and_then(|s| s.reclaim_after_s.as_ref()) {
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
        }
    }

    fn keep_delivered_days(&mut self, inbox: Option<&RawInbox>) -> u64 {
        match inbox.and_then(|i| i.keep_delivered_days.as_ref()) {
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
        }
    }

    /// `[tls]`: two file paths (read and checked by `serve`).
    fn tls(&mut self, raw: &RawTls) -> Option<TlsConfig> {
        let mut path = |value: &Spanned<String>, key: &str, example: &str| {
            if value.get_ref().trim().is_empty() {
                self.error(
                    Some(value.span()),
                    format!("tls.{key}"),
                    format!("tls.{key} is empty: give the path of the PEM file, e.g. {key} = \"{example}\""),
                );
                return None;
            }
            Some(PathBuf::from(value.get_ref()))
        };
        let cert = path(
            &raw.cert,
            "cert",
            "/etc/letsencrypt/live/wx.example.com/fullchain.pem",
        );
        let key = path(
            &raw.key,
            "key",
            "/etc/letsencrypt/live/wx.example.com/privkey.pem",
        );
        Some(TlsConfig {
            cert: cert?,
            key: key?,
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
    pub(super) fn bounded(
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
}
