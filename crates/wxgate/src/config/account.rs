//! The checks of one `[[account]]`: its name, AppID, Token, AppSecret, keys and mode,
//! its rules and its `[account.forward]`, with the console's own format rules and the
//! placeholders that published examples use.

use secrecy::{ExposeSecret, SecretString};
use toml::Spanned;
use wxgate_proto::console::{self, Mode, Severity};
use wxgate_proto::EncodingAesKey;

use super::raw::{RawAccount, RawForward};
use super::urls::http_url;
use super::validate::Validator;
use super::{AccountConfig, ForwardConfig, DEFAULT_TIMESTAMP_WINDOW_S};
use crate::rules::{RawRule, Rule};

/// A compiled rule's index in the file and its span, for the findings about it.
type RuleSpan = (usize, std::ops::Range<usize>);

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
const KNOWN_PUBLIC_KEYS: [&str; 2] = [
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "Nr8OKuMPaz3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI",
];
const PLACEHOLDER_APP_IDS: [&str; 3] = [
    "wx1234567890abcdef",
    "wx0000000000000000",
    "wxabcdef1234567890",
];

impl Validator<'_> {
    /// One `[[account]]`, or `None` when it has an error (every finding is kept).
    pub(super) fn account(&mut self, index: usize, raw: RawAccount) -> Option<AccountConfig> {
        let key = |field: &str| format!("account[{index}].{field}");
        let errors_before = self.error_count();
        self.name(&raw.name, key("name"));
        let (kind, data_format) =
            self.kind_and_format(index, raw.kind.as_ref(), raw.data_format.as_ref());
        let identity = self.identity(index, kind, &raw);
        self.token(&raw.token, key("token"));
        let app_secret = match identity.secret {
            Some(secret) => secret,
            None => self.app_secret(raw.app_secret, key("app_secret")),
        };
        let aes_key = self.aes_key(key("encoding_aes_key"), &raw.encoding_aes_key);
        let previous_aes_key = self.aes_key(
            key("previous_encoding_aes_key"),
            &raw.previous_encoding_aes_key,
        );
        let mode_span = raw.mode.as_ref().map_or(raw.name.span(), Spanned::span);
        let key_written = (raw.encoding_aes_key.as_ref()).is_some_and(|k| !k.get_ref().is_empty());
        let has_key = aes_key.is_some() || key_written;
        let mode = self.mode(
            raw.mode.as_ref(),
            mode_span.clone(),
            (aes_key.is_some(), has_key),
            key("mode"),
        );
        self.wecom_mode(index, kind, (mode, mode_span), has_key);
        let (rules, rule_spans) = self.rules(&format!("account[{index}]"), raw.rule);
        for finding in crate::rules::lint(&rules, raw.forward.is_some()) {
            let (rule_index, span) = &rule_spans[finding.rule];
            self.push(
                Severity::Warning,
                Some(span.clone()),
                format!("account[{index}].rule[{rule_index}]"),
                finding.problem,
                finding.fix,
            );
        }
        let has_secret = !app_secret.expose_secret().is_empty();
        self.customer_service_rules(
            index,
            kind,
            (&rules, &rule_spans),
            has_secret,
            raw.forward.is_some(),
        );
        let oauth = raw.oauth.map(|oauth| {
            let span = oauth.span();
            self.oauth(index, span, oauth.into_inner(), !has_secret)
        });
        let forward = raw
            .forward
            .map(|forward| self.forward(&format!("account[{index}]"), forward.into_inner()));
        let links = self.links(index, kind, raw.link);
        (self.error_count() == errors_before).then(|| AccountConfig {
            name: raw.name.into_inner(),
            app_id: identity.receive_id,
            app_secret,
            agent_id: identity.agent_id,
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
            links,
        })
    }

    pub(super) fn aes_key(
        &mut self,
        key: String,
        value: &Option<Spanned<String>>,
    ) -> Option<EncodingAesKey> {
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

    pub(super) fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub(super) fn name(&mut self, name: &Spanned<String>, key: String) {
        let text = name.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                Some(name.span()),
                key,
                format!("{text:?}: the name is the callback path /wx/{{name}}; use letters, digits, '-' and '_'"),
            );
        }
    }

    pub(super) fn app_id(&mut self, app_id: &Spanned<String>, key: String) {
        let text = app_id.get_ref();
        if self.console(app_id.span(), key.clone(), console::check_app_id(text))
            && PLACEHOLDER_APP_IDS.contains(&text.as_str())
        {
            self.push(
                Severity::Warning,
                Some(app_id.span()),
                key,
                format!("AppID {text:?} looks like a placeholder"),
                "copy the AppID (开发者ID) from 开发 → 基本配置",
            );
        }
    }

    pub(super) fn token(&mut self, token: &Spanned<String>, key: String) {
        let text = token.get_ref();
        if self.console(token.span(), key.clone(), console::check_token(text)) {
            let lower = text.to_ascii_lowercase();
            if PLACEHOLDER_TOKENS.contains(&lower.as_str())
                || super::placeholder::is_placeholder(text)
            {
                self.push(
                    Severity::Warning,
                    Some(token.span()),
                    key,
                    "the Token looks like a placeholder",
                    "use a random Token (`wxgate init` makes one) and paste the same one into the console",
                );
            }
        }
    }

    pub(super) fn app_secret(&mut self, secret: String, key: String) -> SecretString {
        let well_formed = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        if !secret.is_empty() && !well_formed {
            self.push(
                Severity::Warning,
                None,
                key,
                "the AppSecret is not 32 hex digits",
                "copy the AppSecret (开发者密码) from 开发 → 基本配置, or reset it there",
            );
        }
        SecretString::from(secret)
    }

    /// The message mode: as written, or safe when a key was read and plain otherwise;
    /// checked against the key (`has_key`: one was written) as the console checks it.
    fn mode(
        &mut self,
        mode: Option<&Spanned<String>>,
        span: std::ops::Range<usize>,
        (key_parsed, has_key): (bool, bool),
        key: String,
    ) -> Mode {
        let mode = match mode {
            Some(mode) => Mode::parse(mode.get_ref()).unwrap_or_else(|| {
                let written = mode.get_ref();
                let modes = ["plain", "compat", "safe"];
                let hint = crate::rules::did_you_mean(&written.to_lowercase(), &modes)
                    .map(|m| format!("did you mean \"{m}\"? (modes are lowercase) "))
                    .unwrap_or_default();
                let problem = format!(
                    "{written:?} is not a mode; {hint}use \"plain\", \"compat\" or \"safe\""
                );
                self.error(Some(mode.span()), key.clone(), problem);
                Mode::Plain
            }),
            None if key_parsed => Mode::Safe,
            None => Mode::Plain,
        };
        self.console(span, key, console::check_mode(mode, has_key));
        mode
    }

    /// The rules that compile, with their index and span (for later findings).
    /// `prefix` is the table's key, `account[0]` or `component[0]`.
    pub(super) fn rules(
        &mut self,
        prefix: &str,
        raw: Vec<Spanned<RawRule>>,
    ) -> (Vec<Rule>, Vec<RuleSpan>) {
        let mut rules = Vec::new();
        let mut rule_spans = Vec::new();
        for (rule_index, rule) in raw.into_iter().enumerate() {
            let span = rule.span();
            match Rule::compile(rule.into_inner()) {
                Ok(rule) => {
                    rules.push(rule);
                    rule_spans.push((rule_index, span));
                }
                Err(error) => self.error(
                    Some(span),
                    format!("{prefix}.rule[{rule_index}]"),
                    error.to_string(),
                ),
            }
        }
        (rules, rule_spans)
    }

    /// `[account.forward]`.
    /// `prefix` is the table's key, `account[0]` or `component[0]`.
    pub(super) fn forward(&mut self, prefix: &str, forward: RawForward) -> ForwardConfig {
        let key = |field: &str| format!("{prefix}.forward.{field}");
        if let Err(problem) = http_url(forward.url.get_ref()) {
            self.error(
                Some(forward.url.span()),
                key("url"),
                format!("{problem}: it must be the absolute http(s) URL of your service"),
            );
        }
        if forward.secret.get_ref().len() < 16 {
            self.error(
                Some(forward.secret.span()),
                key("secret"),
                "secret must have at least 16 characters (random, shared with your service)",
            );
        }
        self.placeholder_secret(&forward.secret, key("secret"), "the forward secret");
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
        let max_reply_bytes = self.bounded(
            forward.max_reply_bytes,
            &key("max_reply_bytes"),
            64 * 1024,
            1024..=16 * 1024 * 1024,
        );
        let attempt_timeout_ms = self.bounded(
            forward.attempt_timeout_ms,
            &key("attempt_timeout_ms"),
            30_000,
            1000..=600_000,
        );
        let max_in_flight =
            self.bounded(forward.max_in_flight, &key("max_in_flight"), 32, 1..=10_000);
        let max_backoff_s =
            self.bounded(forward.max_backoff_s, &key("max_backoff_s"), 300, 1..=3600);
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
    }
}
