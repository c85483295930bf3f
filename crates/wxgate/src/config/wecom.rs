//! The identity of an `[[account]]` by kind: an AppID (and AppSecret) for Official
//! Accounts, mini-programs and mini-games; a CorpID, AgentID and application Secret for
//! a WeCom application (企业微信 自建应用), whose callbacks are always encrypted.

use secrecy::SecretString;
use toml::Spanned;
use wxgate_proto::console::{self, Mode, Severity};

use super::raw::RawAccount;
use super::validate::Validator;
use super::AccountKind;

/// CorpIDs that are placeholders (`wxgate init` writes the first), never a real corp's.
const PLACEHOLDER_CORP_IDS: [&str; 4] = [
    "ww0000000000000000",
    "wx0000000000000000",
    "ww1234567890abcdef",
    "wwabcdef1234567890",
];

/// Who an account is, as its ciphertexts and the credential center know it.
pub(super) struct Identity {
    /// The AppID, or a WeCom application's CorpID: the trailer of its ciphertexts.
    pub(super) receive_id: String,
    /// A WeCom application's AgentID.
    pub(super) agent_id: Option<u64>,
    /// A WeCom application's Secret (`corp_secret`); `None` for the other kinds, whose
    /// `app_secret` is read as before.
    pub(super) secret: Option<SecretString>,
}

impl Validator<'_> {
    /// The AppID, or for a WeCom application the CorpID, AgentID and Secret; each key
    /// that belongs to the other kind of account is an error that says which to use.
    pub(super) fn identity(
        &mut self,
        index: usize,
        kind: AccountKind,
        raw: &RawAccount,
    ) -> Identity {
        let key = |field: &str| format!("account[{index}].{field}");
        if kind != AccountKind::WeCom {
            for (field, span) in [
                ("corp_id", raw.corp_id.as_ref().map(Spanned::span)),
                ("agent_id", raw.agent_id.as_ref().map(Spanned::span)),
                ("corp_secret", raw.corp_secret.as_ref().map(Spanned::span)),
            ] {
                if span.is_some() {
                    self.push(
                        Severity::Error,
                        span,
                        key(field),
                        format!("{field} belongs to WeCom applications"),
                        "set kind = \"wecom\", or remove it (an Official Account or a mini-program has app_id and app_secret)",
                    );
                }
            }
            let receive_id = match &raw.app_id {
                Some(app_id) => {
                    self.app_id(app_id, key("app_id"));
                    app_id.get_ref().clone()
                }
                None => {
                    self.push(
                        Severity::Error,
                        Some(raw.name.span()),
                        key("app_id"),
                        "app_id is missing",
                        "copy the AppID (开发者ID) from 开发 → 基本配置 (a WeCom application has kind = \"wecom\" and corp_id instead)",
                    );
                    String::new()
                }
            };
            return Identity {
                receive_id,
                agent_id: None,
                secret: None,
            };
        }
        self.wecom_identity(index, raw)
    }

    fn wecom_identity(&mut self, index: usize, raw: &RawAccount) -> Identity {
        let key = |field: &str| format!("account[{index}].{field}");
        if let Some(app_id) = &raw.app_id {
            self.push(
                Severity::Error,
                Some(app_id.span()),
                key("app_id"),
                "a WeCom application has no app_id",
                "write its CorpID (企业ID) as corp_id, and its Secret as corp_secret",
            );
        }
        if !raw.app_secret.is_empty() {
            self.push(
                Severity::Error,
                Some(raw.name.span()),
                key("app_secret"),
                "a WeCom application has no app_secret",
                "write the application's Secret (应用管理 → 应用 → Secret) as corp_secret",
            );
        }
        let receive_id = self.wecom_corp_id(index, raw);
        let agent_id = self.wecom_agent_id(index, raw);
        let secret = self.wecom_secret(index, raw, agent_id);
        Identity {
            receive_id,
            agent_id,
            secret: Some(secret),
        }
    }

    /// The CorpID: the trailer of the application's ciphertexts.
    fn wecom_corp_id(&mut self, index: usize, raw: &RawAccount) -> String {
        let key = |field: &str| format!("account[{index}].{field}");
        match &raw.corp_id {
            Some(corp_id) => {
                let well_formed = self.console(
                    corp_id.span(),
                    key("corp_id"),
                    console::check_corp_id(corp_id.get_ref()),
                );
                if well_formed && PLACEHOLDER_CORP_IDS.contains(&corp_id.get_ref().as_str()) {
                    self.push(
                        Severity::Warning,
                        Some(corp_id.span()),
                        key("corp_id"),
                        format!("CorpID {:?} is a placeholder: WeCom's ciphertexts end with the real one, so every push would fail to decrypt", corp_id.get_ref()),
                        "replace it with the CorpID (企业ID) from 我的企业 → 企业信息",
                    );
                }
                corp_id.get_ref().clone()
            }
            None => {
                self.push(
                    Severity::Error,
                    Some(raw.name.span()),
                    key("corp_id"),
                    "a WeCom application needs corp_id: the trailer of its ciphertexts",
                    "copy the CorpID (企业ID) from 我的企业 → 企业信息",
                );
                String::new()
            }
        }
    }

    /// The AgentID, when given and a positive number.
    fn wecom_agent_id(&mut self, index: usize, raw: &RawAccount) -> Option<u64> {
        let key = |field: &str| format!("account[{index}].{field}");
        raw.agent_id.as_ref().and_then(|agent_id| {
            let value = u64::try_from(*agent_id.get_ref()).ok().filter(|v| *v > 0);
            if value.is_none() {
                self.error(
                    Some(agent_id.span()),
                    key("agent_id"),
                    "agent_id is the application's AgentID, a positive number (应用管理 → 应用)",
                );
            }
            value
        })
    }

    /// The application's Secret (empty when not given), and what is missing around it.
    fn wecom_secret(
        &mut self,
        index: usize,
        raw: &RawAccount,
        agent_id: Option<u64>,
    ) -> SecretString {
        let key = |field: &str| format!("account[{index}].{field}");
        let secret_given = raw
            .corp_secret
            .as_ref()
            .is_some_and(|s| !s.get_ref().is_empty());
        // With a Secret, a missing agent_id is an error (below); without, a warning.
        if agent_id.is_none() && raw.agent_id.is_none() && !secret_given {
            self.push(
                Severity::Warning,
                Some(raw.name.span()),
                key("agent_id"),
                "agent_id is missing: every push of the application carries its AgentId, and a message sent through WeCom's API (message/send) needs it",
                "set agent_id to the application's AgentId (应用管理 → 应用 → AgentId)",
            );
        }
        let secret_text = raw
            .corp_secret
            .as_ref()
            .map_or("", |s| s.get_ref().as_str());
        if secret_text.is_empty() {
            self.push(
                Severity::Warning,
                Some(raw.corp_secret.as_ref().map_or(raw.name.span(), Spanned::span)),
                key("corp_secret"),
                "corp_secret is empty: without the application's Secret wxgate cannot get its access token (gettoken), so no reply can be sent later through message/send",
                "copy the Secret from 应用管理 → 应用 → Secret into corp_secret (leave it empty only if every reply is passive)",
            );
        } else if let (Some(corp_secret), None) = (&raw.corp_secret, &raw.agent_id) {
            self.push(
                Severity::Error,
                Some(corp_secret.span()),
                key("agent_id"),
                "corp_secret needs agent_id: a Secret belongs to one application, whose token wxgate keeps apart from the corp's other applications and whose messages (message/send) name it",
                "copy the AgentId from 应用管理 → 应用 → (the application), next to its Secret",
            );
        }
        SecretString::from(secret_text)
    }

    /// A WeCom application is always encrypted: safe mode, with a key.
    pub(super) fn wecom_mode(
        &mut self,
        index: usize,
        kind: AccountKind,
        (mode, mode_span): (Mode, std::ops::Range<usize>),
        has_key: bool,
    ) {
        if kind != AccountKind::WeCom {
            return;
        }
        if !has_key {
            self.push(
                Severity::Error,
                None,
                format!("account[{index}].encoding_aes_key"),
                "a WeCom application always encrypts its callbacks, so it needs encoding_aes_key",
                "copy EncodingAESKey from 应用管理 → 应用 → 接收消息 → 设置API接收 (随机获取)",
            );
        } else if mode != Mode::Safe {
            self.push(
                Severity::Error,
                Some(mode_span),
                format!("account[{index}].mode"),
                format!(
                    "mode = \"{}\": a WeCom application always encrypts",
                    mode.as_str()
                ),
                "set mode = \"safe\" or leave it out",
            );
        }
    }
}
