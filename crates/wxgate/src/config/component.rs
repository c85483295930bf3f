//! The checks of one `[[component]]`, an Open Platform third-party platform (开放平台
//! 第三方平台): its name (the path `/open/{name}/…`), AppID, AppSecret, Token and
//! EncodingAESKey. WeChat always encrypts a platform's pushes, so the key is required.

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};
use wxgate_proto::EncodingAesKey;

use super::raw::{RawAuthorizer, RawComponent};
use super::validate::Validator;
use super::DEFAULT_TIMESTAMP_WINDOW_S;

/// One validated `[[component]]`.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// URL path segment: `/open/{name}/notify`.
    pub name: String,
    /// The platform's AppID (the trailer of every push it receives).
    pub app_id: String,
    /// The platform's AppSecret (never logged).
    pub app_secret: SecretString,
    /// The Token of its notify and message URLs.
    pub token: SecretString,
    /// Its EncodingAESKey.
    pub aes_key: EncodingAesKey,
    /// The key before the last rotation, tried when the current one fails.
    pub previous_aes_key: Option<EncodingAesKey>,
    /// Accepted clock skew in seconds; 0 turns the check off.
    pub timestamp_window_s: u64,
    /// The authorization page (`/open/{name}/authorize`), when configured.
    pub authorize: Option<AuthorizePage>,
    /// `[[component.rule]]`: the rules of every authorizer's messages.
    pub rules: Vec<crate::rules::Rule>,
    /// `[component.forward]`: where the authorizers' messages no rule answered go.
    pub forward: Option<super::ForwardConfig>,
    /// `[[component.authorizer]]`: authorizers with rules or a forward of their own.
    pub authorizers: Vec<AuthorizerOverride>,
}

/// One authorizer's own rules or forward, in place of the platform's.
#[derive(Debug, Clone)]
pub struct AuthorizerOverride {
    /// The authorizer's AppID.
    pub app_id: String,
    /// Its rules; when it has none, the platform's apply.
    pub rules: Vec<crate::rules::Rule>,
    /// Its forward; when it has none, the platform's applies.
    pub forward: Option<super::ForwardConfig>,
    /// What it is: an Official Account (the default), or a mini-program or mini-game,
    /// whose rule replies other than `transfer_customer_service` go out through the
    /// customer-service API.
    pub kind: super::AccountKind,
}

/// Where `/open/{name}/authorize` may send a merchant back to, and its signed state.
#[derive(Debug, Clone)]
pub struct AuthorizePage {
    /// The app URLs allowed after the authorization (as `[account.oauth]`'s).
    pub redirect_allow: Vec<crate::oauth::AllowEntry>,
    /// The key that signs the state.
    pub signing_key: SecretString,
    /// How long an authorization may take, seconds (default 600).
    pub state_ttl_s: u64,
}

impl Validator<'_> {
    /// Every `[[component]]`, each name once; `account_names` are the accounts' names,
    /// which a platform's name may repeat (the paths differ), listed for the message.
    pub(super) fn components(&mut self, raw: Vec<RawComponent>) -> Vec<ComponentConfig> {
        let mut names = HashSet::new();
        let mut components = Vec::new();
        for (index, component) in raw.into_iter().enumerate() {
            let name = component.name.get_ref().clone();
            if !names.insert(name.clone()) {
                self.error(
                    Some(component.name.span()),
                    format!("component[{index}].name"),
                    format!("component name {name:?} is used twice; each platform needs its own path /open/{{name}}"),
                );
            }
            components.extend(self.component(index, component));
        }
        components
    }

    fn component(&mut self, index: usize, raw: RawComponent) -> Option<ComponentConfig> {
        let key = |field: &str| format!("component[{index}].{field}");
        let errors_before = self.error_count();
        self.name(&raw.name, key("name"));
        self.app_id(&raw.app_id, key("app_id"));
        self.token(&raw.token, key("token"));
        let app_secret = self.app_secret(raw.app_secret.get_ref().clone(), key("app_secret"));
        if app_secret.expose_secret().is_empty() {
            self.error(
                Some(raw.app_secret.span()),
                key("app_secret"),
                "a third-party platform needs its AppSecret for component_access_token; copy it from 开放平台 → 管理中心 → 第三方平台 → 详情",
            );
        }
        let aes_key = self.aes_key(key("encoding_aes_key"), &Some(raw.encoding_aes_key.clone()));
        if aes_key.is_none() && raw.encoding_aes_key.get_ref().is_empty() {
            self.error(
                Some(raw.encoding_aes_key.span()),
                key("encoding_aes_key"),
                "WeChat encrypts every push to a third-party platform: copy the 消息加解密Key from 开发资料 → 开发配置",
            );
        }
        let previous_aes_key = self.aes_key(
            key("previous_encoding_aes_key"),
            &raw.previous_encoding_aes_key,
        );
        let authorize = self.authorize_page(index, &raw);
        let (rules, _) = self.rules(&format!("component[{index}]"), raw.rule);
        let forward = (raw.forward)
            .map(|forward| self.forward(&format!("component[{index}]"), forward.into_inner()));
        let authorizers = self.authorizer_overrides(index, raw.authorizer);
        let aes_key = aes_key?;
        (self.error_count() == errors_before).then(|| ComponentConfig {
            name: raw.name.into_inner(),
            app_id: raw.app_id.into_inner(),
            app_secret,
            token: SecretString::from(raw.token.into_inner()),
            aes_key,
            previous_aes_key,
            timestamp_window_s: raw.timestamp_window_s.unwrap_or(DEFAULT_TIMESTAMP_WINDOW_S),
            authorize,
            rules,
            forward,
            authorizers,
        })
    }

    /// `[[component.authorizer]]`: each AppID once, well formed.
    fn authorizer_overrides(
        &mut self,
        index: usize,
        raw: Vec<RawAuthorizer>,
    ) -> Vec<AuthorizerOverride> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, authorizer) in raw.into_iter().enumerate() {
            let prefix = format!("component[{index}].authorizer[{i}]");
            self.app_id(&authorizer.app_id, format!("{prefix}.app_id"));
            if !seen.insert(authorizer.app_id.get_ref().clone()) {
                self.error(
                    Some(authorizer.app_id.span()),
                    format!("{prefix}.app_id"),
                    "this authorizer is configured twice; merge its rules into one [[component.authorizer]]",
                );
            }
            let kind = match &authorizer.kind {
                None => super::AccountKind::OfficialAccount,
                Some(kind) => match super::AccountKind::parse(kind.get_ref()) {
                    Some(
                        kind @ (super::AccountKind::OfficialAccount
                        | super::AccountKind::MiniProgram
                        | super::AccountKind::MiniGame),
                    ) => kind,
                    _ => {
                        self.error(
                            Some(kind.span()),
                            format!("{prefix}.kind"),
                            format!("{:?}: an authorizer is \"official_account\", \"miniprogram\" or \"minigame\"", kind.get_ref()),
                        );
                        super::AccountKind::OfficialAccount
                    }
                },
            };
            let (rules, _) = self.rules(&prefix, authorizer.rule);
            let forward = (authorizer.forward).map(|f| self.forward(&prefix, f.into_inner()));
            out.push(AuthorizerOverride {
                app_id: authorizer.app_id.into_inner(),
                rules,
                forward,
                kind,
            });
        }
        out
    }

    /// `redirect_allow` and `signing_key`: both or neither.
    fn authorize_page(&mut self, index: usize, raw: &RawComponent) -> Option<AuthorizePage> {
        let key = |field: &str| format!("component[{index}].{field}");
        let Some(signing_key) = &raw.signing_key else {
            if !raw.redirect_allow.is_empty() {
                self.error(None, key("signing_key"), "redirect_allow needs signing_key, the key that signs the authorization's state (a random string of 32 or more characters)");
            }
            return None;
        };
        if signing_key.get_ref().len() < 32 {
            self.error(
                Some(signing_key.span()),
                key("signing_key"),
                "signing_key must have at least 32 characters (e.g. `openssl rand -hex 32`)",
            );
        }
        self.placeholder_secret(signing_key, key("signing_key"), "signing_key");
        if raw.redirect_allow.is_empty() {
            self.error(Some(signing_key.span()), key("redirect_allow"), "the authorization page needs redirect_allow, the app URLs a merchant may be sent back to");
        }
        let mut allow = Vec::new();
        for (i, entry) in raw.redirect_allow.iter().enumerate() {
            match crate::oauth::AllowEntry::parse(entry.get_ref()) {
                Ok(parsed) => allow.push(parsed),
                Err(e) => self.error(
                    Some(entry.span()),
                    key(&format!("redirect_allow[{i}]")),
                    e.to_string(),
                ),
            }
        }
        Some(AuthorizePage {
            redirect_allow: allow,
            signing_key: SecretString::from(signing_key.get_ref().clone()),
            state_ttl_s: raw.state_ttl_s.unwrap_or(600).clamp(60, 3600),
        })
    }
}
