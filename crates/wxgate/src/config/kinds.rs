//! `kind` and `data_format` of an `[[account]]`: which kind of WeChat account pushes
//! to it, and what follows from that (the data format of its pushes, which passive
//! replies reach the user, the trailer of its ciphertexts).

use std::ops::Range;

use toml::Spanned;
use wxgate_proto::console::Severity;
use wxgate_proto::Format;

use super::validate::Validator;
use super::AccountConfig;
use crate::rules::Rule;

/// What kind of account pushes to `/wx/{name}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountKind {
    /// An Official Account (公众号/服务号/订阅号): XML pushes, every passive reply.
    #[default]
    OfficialAccount,
    /// A mini-program (小程序) with 消息推送: XML or JSON pushes, and only
    /// `transfer_customer_service` as a passive reply.
    MiniProgram,
    /// A mini-game (小游戏): as a mini-program.
    MiniGame,
    /// A WeCom (企业微信) application: always encrypted XML, with a CorpID as the
    /// trailer, and verification by `msg_signature` over an encrypted echostr.
    WeCom,
}

impl AccountKind {
    /// Reads the configuration's spelling.
    pub fn parse(text: &str) -> Option<AccountKind> {
        match text {
            "official_account" => Some(AccountKind::OfficialAccount),
            "miniprogram" => Some(AccountKind::MiniProgram),
            "minigame" => Some(AccountKind::MiniGame),
            "wecom" => Some(AccountKind::WeCom),
            _ => None,
        }
    }

    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::OfficialAccount => "official_account",
            AccountKind::MiniProgram => "miniprogram",
            AccountKind::MiniGame => "minigame",
            AccountKind::WeCom => "wecom",
        }
    }

    /// Whether WeChat shows the user a passive reply other than
    /// `transfer_customer_service`. A mini-program's or mini-game's does not (WeChat's
    /// docs): wxgate answers `success` and sends the reply through the
    /// customer-service message API instead.
    pub fn shows_passive_replies(self) -> bool {
        matches!(self, AccountKind::OfficialAccount | AccountKind::WeCom)
    }

    /// Whether the console offers 数据格式 (XML or JSON).
    pub fn has_data_format(self) -> bool {
        matches!(self, AccountKind::MiniProgram | AccountKind::MiniGame)
    }
}

impl AccountConfig {
    /// The receive id that closes every ciphertext of this account (the trailer that
    /// decryption checks and encryption writes): the AppID, or a WeCom application's
    /// CorpID.
    pub fn receive_id(&self) -> &str {
        &self.app_id
    }
}

/// Replies that a mini-program's customer-service message API cannot carry (it sends
/// text, image, link and miniprogrampage).
const NOT_SENDABLE: [&str; 3] = ["voice", "video", "music"];

impl Validator<'_> {
    /// `kind` and `data_format`, each checked; the defaults when absent.
    pub(super) fn kind_and_format(
        &mut self,
        index: usize,
        kind: Option<&Spanned<String>>,
        data_format: Option<&Spanned<String>>,
    ) -> (AccountKind, Format) {
        let key = |field: &str| format!("account[{index}].{field}");
        let parsed = match kind {
            None => AccountKind::OfficialAccount,
            Some(text) => match AccountKind::parse(text.get_ref()) {
                Some(kind) => kind,
                None => {
                    let problem = format!(
                        "{:?} is not a kind; use \"official_account\" (the default), \"miniprogram\", \"minigame\" or \"wecom\"",
                        text.get_ref()
                    );
                    self.error(Some(text.span()), key("kind"), problem);
                    AccountKind::OfficialAccount
                }
            },
        };
        let Some(text) = data_format else {
            return (parsed, Format::Xml);
        };
        if !parsed.has_data_format() {
            self.push(
                Severity::Error,
                Some(text.span()),
                key("data_format"),
                "data_format applies to mini-programs and mini-games only; an Official Account always pushes XML",
                "remove data_format, or set kind = \"miniprogram\" or \"minigame\"",
            );
            return (parsed, Format::Xml);
        }
        match Format::parse_name(text.get_ref()) {
            Some(format) => (parsed, format),
            None => {
                let problem = format!(
                    "{:?} is not a data format; use \"xml\" (the default) or \"json\", as set in the console (数据格式)",
                    text.get_ref()
                );
                self.error(Some(text.span()), key("data_format"), problem);
                (parsed, Format::Xml)
            }
        }
    }

    /// On a mini-program or mini-game, every rule whose reply the user would not see
    /// as a passive reply: a warning each (it goes out through the customer-service
    /// message API), an error for what that API cannot send, and an error when the
    /// account has no `app_secret` to call it with (a warning when only forwarding
    /// would need it).
    pub(super) fn customer_service_rules(
        &mut self,
        index: usize,
        kind: AccountKind,
        (rules, places): (&[Rule], &[(usize, Range<usize>)]),
        has_secret: bool,
        forwards: bool,
    ) {
        if kind.shows_passive_replies() {
            return;
        }
        if forwards && !has_secret {
            self.push(
                Severity::Warning,
                None,
                format!("account[{index}].app_secret"),
                format!(
                    "this {} forwards to a service, but a reply from the service other than transfer_customer_service can only reach the user through the customer-service message API, which needs app_secret",
                    kind.as_str()
                ),
                "set app_secret (开发 → 开发管理 → 开发设置 → AppSecret) if the service replies",
            );
        }
        let mut needing_secret = Vec::new();
        for (rule, (rule_index, span)) in rules.iter().zip(places) {
            let key = format!("account[{index}].rule[{rule_index}]");
            let Some(reply) = rule.reply_type() else {
                continue;
            };
            if reply == "transfer_customer_service" {
                continue;
            }
            if NOT_SENDABLE.contains(&reply) {
                let problem = format!(
                    "a {reply} reply cannot reach a {} user: it ignores passive replies other than transfer_customer_service, and its customer-service message API sends text, image and link cards only",
                    kind.as_str()
                );
                self.error(Some(span.clone()), key, problem);
                continue;
            }
            needing_secret.push((*rule_index, span.clone()));
            let how = if reply == "news" {
                " as a link card (its first article)"
            } else {
                ""
            };
            self.push(
                Severity::Warning,
                Some(span.clone()),
                key,
                format!(
                    "a {} shows no passive {reply} reply (WeChat's docs: only transfer_customer_service); wxgate answers `success` and sends this reply{how} through the customer-service message API, within 48 h of the user's last message",
                    kind.as_str()
                ),
                "nothing to do if that is what you want; `reply = { transfer_customer_service = {} }` hands the user to the customer-service tools instead",
            );
        }
        if let (false, Some((_, first))) = (has_secret, needing_secret.first()) {
            let span = first.clone();
            let rules_named: Vec<String> = needing_secret
                .iter()
                .map(|(i, _)| format!("rule[{i}]"))
                .collect();
            self.push(
                Severity::Error,
                Some(span),
                format!("account[{index}].app_secret"),
                format!(
                    "{} of this {} can only be sent through the customer-service message API, which needs the account's app_secret",
                    rules_named.join(", "),
                    kind.as_str()
                ),
                "set app_secret (开发 → 开发管理 → 开发设置 → AppSecret), or make those rules `success = true` or `transfer_customer_service`",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, Config, ConfigFinding};
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn account(extra: &str) -> String {
        format!("[[account]]\nname = \"m\"\napp_id = \"wx5d3c9a1b2e4f6071\"\ntoken = \"tok123Random\"\n{extra}\n")
    }

    fn findings(text: &str) -> Vec<ConfigFinding> {
        check(text, "wxgate.toml").unwrap().1
    }

    #[track_caller]
    fn check_finding(text: &str, severity: Severity, key: &str, needle: &str) {
        let all = findings(text);
        assert!(
            all.iter().any(|f| f.severity == severity
                && f.key == key
                && f.problem.contains(needle)
                && f.line.is_some()),
            "no {severity:?} at {key} mentioning {needle:?} in {all:#?}"
        );
    }

    #[test]
    fn kind_and_data_format_default_and_parse() {
        let config = Config::parse(&account(""), "t").unwrap();
        assert_eq!(config.accounts[0].kind, AccountKind::OfficialAccount);
        assert_eq!(config.accounts[0].data_format, Format::Xml);
        assert_eq!(config.accounts[0].receive_id(), "wx5d3c9a1b2e4f6071");
        for (kind, format, want_kind, want_format) in [
            (
                "miniprogram",
                "json",
                AccountKind::MiniProgram,
                Format::Json,
            ),
            ("minigame", "xml", AccountKind::MiniGame, Format::Xml),
            (
                "official_account",
                "",
                AccountKind::OfficialAccount,
                Format::Xml,
            ),
        ] {
            let format_line = if format.is_empty() {
                String::new()
            } else {
                format!("data_format = \"{format}\"")
            };
            let text = account(&format!("kind = \"{kind}\"\n{format_line}"));
            let config = Config::parse(&text, "t").unwrap();
            assert_eq!(config.accounts[0].kind, want_kind);
            assert_eq!(config.accounts[0].data_format, want_format);
            assert_eq!(want_kind.as_str(), kind);
        }
    }

    #[test]
    fn bad_kinds_and_formats_are_errors_with_their_line() {
        check_finding(
            &account("kind = \"shop\""),
            Severity::Error,
            "account[0].kind",
            "\"miniprogram\"",
        );
        check_finding(
            &account("kind = \"wecom\""),
            Severity::Error,
            "account[0].app_id",
            "no app_id",
        );
        check_finding(
            &account("data_format = \"json\""),
            Severity::Error,
            "account[0].data_format",
            "mini-programs and mini-games only",
        );
        check_finding(
            &account("kind = \"miniprogram\"\ndata_format = \"JSON\""),
            Severity::Error,
            "account[0].data_format",
            "\"xml\"",
        );
    }

    #[test]
    fn mini_program_rules_that_need_the_customer_service_api() {
        let rules = "[[account.rule]]\nwhen = { msg_type = \"text\" }\nreply = { text = \"hi {content}\" }\n\
                     [[account.rule]]\nwhen = { event = \"user_enter_tempsession\" }\nreply = { transfer_customer_service = {} }\n\
                     [[account.rule]]\nwhen = { msg_type = \"image\" }\nreply = { success = true }\n\
                     [[account.rule]]\nreply = { news = [{ title = \"t\", url = \"https://example.com\" }] }\n";
        let with_secret = account(&format!(
            "kind = \"miniprogram\"\napp_secret = \"{SECRET}\"\n{rules}"
        ));
        let found = findings(&with_secret);
        let warned: Vec<&str> = found
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| f.key.as_str())
            .collect();
        assert_eq!(
            warned,
            ["account[0].rule[0]", "account[0].rule[3]"],
            "{found:#?}"
        );
        assert!(found.iter().all(|f| f.severity == Severity::Warning));
        assert!(found[1].problem.contains("link card"));
        assert!(Config::parse(&with_secret, "t").is_ok());

        let without_secret = account(&format!("kind = \"minigame\"\n{rules}"));
        check_finding(
            &without_secret,
            Severity::Error,
            "account[0].app_secret",
            "rule[0], rule[3]",
        );
        let official = account(rules);
        assert_eq!(
            findings(&official),
            [],
            "an Official Account shows them all"
        );
    }

    #[test]
    fn replies_the_api_cannot_send_are_errors() {
        for reply in [
            "voice = \"media\"",
            "video = { media_id = \"m\" }",
            "music = { thumb_media_id = \"t\" }",
        ] {
            let text = account(&format!(
                "kind = \"miniprogram\"\napp_secret = \"{SECRET}\"\n[[account.rule]]\nreply = {{ {reply} }}\n"
            ));
            check_finding(&text, Severity::Error, "account[0].rule[0]", "cannot reach");
        }
    }

    #[test]
    fn forwarding_mini_program_without_secret_is_warned() {
        let text = account(
            "kind = \"miniprogram\"\n[account.forward]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdefXYZ\"\n",
        );
        let found = findings(&text);
        assert!(
            found.iter().any(|f| f.severity == Severity::Warning
                && f.key == "account[0].app_secret"
                && f.problem.contains("forwards")),
            "{found:#?}"
        );
        assert!(Config::parse(&text, "t").is_ok());
    }
}
