//! The running configuration as the console shows it: what each account does and how
//! the server runs, never a secret (no token, key, AppSecret, forward secret, Redis
//! URL or admin token; URLs without their user, password or query).

use serde_json::{json, Value};

use crate::config::Config;
use crate::text::url_without_query;

/// The summary of `config`.
pub fn summary(config: &Config) -> Value {
    let accounts: Vec<Value> = config
        .accounts
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "kind": a.kind.as_str(),
                "app_id": a.app_id,
                "mode": a.mode.as_str(),
                "data_format": a.data_format.as_str(),
                "rules": a.rules.len(),
                "dedup": a.dedup,
                "timestamp_window_s": a.timestamp_window_s,
                "forward": a.forward.as_ref().map(|f| json!({
                    "url": url_without_query(&f.url),
                    "timeout_ms": f.timeout_ms,
                    "max_age_s": f.max_age_s,
                })),
                "oauth": a.oauth.is_some(),
                "links": a.links.len(),
                "managed_credentials": !secrecy::ExposeSecret::expose_secret(&a.app_secret).is_empty(),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": config.listen.to_string(),
        "tls": config.tls.is_some(),
        "storage": if config.redis_url.is_some() { "redis" } else { "redb" },
        "admin_token": if config.admin_token.is_some() { "configured" } else { "generated (data_dir/admin_token)" },
        "public_url": config.public_url.as_deref().map(url_without_query),
        "api_base": url_without_query(&config.api_base),
        "max_body_bytes": config.max_body_bytes,
        "daily_token_quota": config.daily_token_quota,
        "keep_delivered_days": config.keep_delivered_days,
        "http": {
            "header_timeout_s": config.http.header_timeout_s,
            "body_timeout_s": config.http.body_timeout_s,
            "idle_timeout_s": config.http.idle_timeout_s,
            "max_connections": config.http.max_connections,
            "shutdown_grace_s": config.http.shutdown_grace_s,
        },
        "verify_files": config.verify_files.len(),
        "accounts": accounts,
    })
}
