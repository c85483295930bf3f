//! The file as written: what serde reads from TOML before [`super::validate`] checks
//! it. Spans are kept so that every finding can name its line.

use serde::Deserialize;
use toml::Spanned;

use crate::rules;

/// The file as written (no `Debug`: it holds the secrets as plain strings).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) data_dir: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) admin_token: Option<Spanned<String>>,
    pub(super) public_url: Option<Spanned<String>>,
    pub(super) api_base: Option<Spanned<String>>,
    pub(super) qyapi_base: Option<Spanned<String>>,
    pub(super) open_base: Option<String>,
    pub(super) token_endpoint: Option<Spanned<String>>,
    pub(super) daily_token_quota: Option<u32>,
    pub(super) storage: Option<RawStorage>,
    pub(super) inbox: Option<RawInbox>,
    pub(super) http: Option<RawHttp>,
    pub(super) tls: Option<RawTls>,
    #[serde(default)]
    pub(super) account: Vec<RawAccount>,
    #[serde(default)]
    pub(super) verify_file: Vec<Spanned<RawVerifyFile>>,
    pub(super) links: Option<RawLinks>,
    #[serde(default)]
    pub(super) component: Vec<RawComponent>,
}

/// `[[component]]`: an Open Platform third-party platform.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub(super) name: Spanned<String>,
    pub(super) app_id: Spanned<String>,
    pub(super) app_secret: Spanned<String>,
    pub(super) token: Spanned<String>,
    pub(super) encoding_aes_key: Spanned<String>,
    pub(super) previous_encoding_aes_key: Option<Spanned<String>>,
    pub(super) timestamp_window_s: Option<u64>,
    #[serde(default)]
    pub(super) redirect_allow: Vec<Spanned<String>>,
    pub(super) signing_key: Option<Spanned<String>>,
    pub(super) state_ttl_s: Option<u64>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<rules::RawRule>>,
    pub(super) forward: Option<Spanned<RawForward>>,
    #[serde(default)]
    pub(super) authorizer: Vec<RawAuthorizer>,
}

/// `[[component.authorizer]]`: one authorizer's own rules or forward.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorizer {
    pub(super) app_id: Spanned<String>,
    pub(super) kind: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<rules::RawRule>>,
    pub(super) forward: Option<Spanned<RawForward>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) header_timeout_s: Option<Spanned<u64>>,
    pub(super) body_timeout_s: Option<Spanned<u64>>,
    pub(super) idle_timeout_s: Option<Spanned<u64>>,
    pub(super) max_connections: Option<Spanned<u64>>,
    pub(super) shutdown_grace_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: Spanned<String>,
    pub(super) key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInbox {
    pub(super) keep_delivered_days: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) backend: Spanned<String>,
    pub(super) redis_url: Option<Spanned<String>>,
    pub(super) reclaim_after_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    pub(super) domain: Spanned<String>,
    #[serde(default)]
    pub(super) redirect_allow: Vec<Spanned<String>>,
    pub(super) signing_key: Spanned<String>,
    pub(super) identity_ttl_s: Option<u64>,
    pub(super) state_ttl_s: Option<u64>,
    pub(super) peak_sign_ins_per_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) name: Spanned<String>,
    pub(super) app_id: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) app_secret: String,
    pub(super) corp_id: Option<Spanned<String>>,
    pub(super) agent_id: Option<Spanned<i64>>,
    pub(super) corp_secret: Option<Spanned<String>>,
    pub(super) token: Spanned<String>,
    #[serde(default)]
    pub(super) encoding_aes_key: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) previous_encoding_aes_key: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) timestamp_window_s: Option<u64>,
    pub(super) dedup: Option<bool>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<rules::RawRule>>,
    pub(super) oauth: Option<Spanned<RawOAuth>>,
    pub(super) forward: Option<Spanned<RawForward>>,
    pub(super) kind: Option<Spanned<String>>,
    pub(super) data_format: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) link: Vec<Spanned<RawLink>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    pub(super) url: Spanned<String>,
    pub(super) secret: Spanned<String>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_age_s: Option<u64>,
    pub(super) max_reply_bytes: Option<Spanned<u64>>,
    pub(super) attempt_timeout_ms: Option<Spanned<u64>>,
    pub(super) max_in_flight: Option<Spanned<u64>>,
    pub(super) max_backoff_s: Option<Spanned<u64>>,
}

/// One `[[verify_file]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerifyFile {
    pub(super) path: Spanned<String>,
    pub(super) content: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    pub(super) name: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) query: Option<Spanned<String>>,
    pub(super) env_version: Option<Spanned<String>>,
    pub(super) prefer: Option<Spanned<String>>,
    pub(super) plain_fallback: Option<bool>,
    pub(super) mini_program_code: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLinks {
    pub(super) ttl_s: Option<Spanned<u64>>,
    pub(super) renew_before_s: Option<Spanned<u64>>,
    pub(super) daily_cap: Option<Spanned<u64>>,
}
