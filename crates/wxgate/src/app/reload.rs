//! Live reload (SIGHUP, `wxgate reload`, `POST /api/reload`): the file is read and
//! checked again; a valid one replaces the [`Live`] snapshot at once, an invalid one
//! changes nothing. Settings that belong to what was opened at start-up (the socket,
//! the stores, the credential center's secrets) are reported as needing a restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;
use wxgate_client::MemoryStore;

use super::{link_service, oauth_memory_budgets, AppState, Live, StoreHandle};
use crate::config::{self, Config, ConfigError};

/// Where the running configuration came from, so that a reload reads it again.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file `serve` loaded.
    pub path: PathBuf,
    /// `serve --listen`, which overrides the file's `listen`.
    pub listen: Option<SocketAddr>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `serve` runs the embedded demo.
    #[error(
        "the embedded demo has no file to reload: start `wxgate serve --config FILE` to reload it"
    )]
    NoFile,
    /// The file cannot be read, or holds errors (each `file:line: key: problem`).
    #[error("the new configuration is refused; the running one stays:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl From<ConfigError> for ReloadError {
    fn from(error: ConfigError) -> Self {
        ReloadError::Invalid(vec![error.to_string()])
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    /// The accounts now served.
    pub accounts: Vec<String>,
    /// Accounts the new file added.
    pub added: Vec<String>,
    /// Accounts the new file removed (what their inbox holds is still delivered).
    pub removed: Vec<String>,
    /// Settings that changed in the file but take effect only after a restart.
    pub needs_restart: Vec<String>,
}

impl AppState {
    /// Reads the configuration file again and applies it (see [`AppState::reload`]).
    ///
    /// # Errors
    /// [`ReloadError`]: the running configuration stays.
    pub fn reload_from_file(&self) -> Result<Reloaded, ReloadError> {
        let source = self.source.as_ref().ok_or(ReloadError::NoFile)?;
        let errors = config::errors(&source.path);
        if !errors.is_empty() {
            return Err(ReloadError::Invalid(errors));
        }
        let mut config = Config::load(&source.path)?;
        if let Some(listen) = source.listen {
            config.listen = listen;
        }
        Ok(self.reload(config))
    }

    /// Applies a validated configuration: the accounts, their rules, OAuth settings
    /// and forwarding, the links and the verification files are swapped at once
    /// (requests in flight finish on the snapshot they started with).
    pub fn reload(&self, config: Config) -> Reloaded {
        let old = self.live();
        let mut needs_restart = restart_only(&old.config, &config);
        let left = self
            .metrics
            .register(config.accounts.iter().map(|a| a.name.as_str()));
        if !left.is_empty() {
            tracing::warn!(
                "accounts {} are counted under account=\"\" in /metrics: more than {} account names since start-up",
                left.join(", "),
                crate::metrics::ACCOUNT_SLOTS
            );
        }
        self.oauth_memory.set_budgets(oauth_memory_budgets(&config));
        let forwards: HashMap<_, _> = (config.accounts.iter())
            .filter_map(|a| a.forward.clone().map(|f| (a.name.clone(), f)))
            .collect();
        match &self.forwarder {
            Some(forwarder) => {
                let kinds = config.accounts.iter().map(|a| (a.name.clone(), a.kind));
                forwarder.set_routes(forwards, kinds.collect());
            }
            None if !forwards.is_empty() => needs_restart.push(
                "[account.forward] (no account forwarded at start-up, so the inbox is not open)"
                    .into(),
            ),
            None => {}
        }
        let store =
            (self.store.clone()).unwrap_or_else(|| StoreHandle(Arc::new(MemoryStore::default())));
        let links = link_service(&config, &self.center, store.0, self.shared.as_ref());
        let config = Arc::new(config);
        let live = Live::new(Arc::clone(&config), links, Some(&old));
        self.live.store(Arc::new(live));
        let names =
            |c: &Config| -> Vec<String> { c.accounts.iter().map(|a| a.name.clone()).collect() };
        let (before, now) = (names(&old.config), names(&config));
        let reloaded = Reloaded {
            added: now
                .iter()
                .filter(|n| !before.contains(n))
                .cloned()
                .collect(),
            removed: before
                .iter()
                .filter(|n| !now.contains(n))
                .cloned()
                .collect(),
            accounts: now,
            needs_restart,
        };
        tracing::info!(
            "configuration reloaded: {} account(s){}{}{}",
            reloaded.accounts.len(),
            listed(" added", &reloaded.added),
            listed(" removed", &reloaded.removed),
            listed("; needs a restart to take effect", &reloaded.needs_restart)
        );
        reloaded
    }
}

fn listed(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("{what}: {}", items.join(", "))
    }
}

/// The settings that differ between `old` and `new` and apply only at start-up.
fn restart_only(old: &Config, new: &Config) -> Vec<String> {
    let secret =
        |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    let checks = [
        ("listen", old.listen != new.listen),
        ("data_dir", old.data_dir != new.data_dir),
        (
            "admin_token",
            secret(&old.admin_token) != secret(&new.admin_token),
        ),
        (
            "[storage]",
            secret(&old.redis_url) != secret(&new.redis_url)
                || old.reclaim_after_s != new.reclaim_after_s,
        ),
        (
            "[inbox] keep_delivered_days",
            old.keep_delivered_days != new.keep_delivered_days,
        ),
        ("[http]", old.http != new.http),
        (
            "[tls] (the files themselves reload on SIGHUP)",
            old.tls != new.tls,
        ),
        ("api_base", old.api_base != new.api_base),
        ("qyapi_base", old.qyapi_base != new.qyapi_base),
        ("token_endpoint", old.token_endpoint != new.token_endpoint),
        (
            "daily_token_quota",
            old.daily_token_quota != new.daily_token_quota,
        ),
    ];
    let mut changed: Vec<String> = checks
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name.to_owned())
        .collect();
    let credentials = |c: &Config| -> Vec<(String, String, String, Option<u64>)> {
        let mut list: Vec<_> = (c.accounts.iter())
            .filter(|a| !a.app_secret.expose_secret().is_empty())
            .map(|a| {
                let secret = a.app_secret.expose_secret().to_owned();
                (a.name.clone(), a.app_id.clone(), secret, a.agent_id)
            })
            .collect();
        list.sort();
        list
    };
    // A platform's secrets, keys, rules and forward (its Debug shows all but the
    // secrets, which are compared as well).
    let components = |c: &Config| -> Vec<String> {
        (c.components.iter())
            .map(|p| {
                let secrets = (p.app_secret.expose_secret(), p.token.expose_secret());
                format!("{p:?}{secrets:?}")
            })
            .collect()
    };
    if components(old) != components(new) {
        changed.push("[[component]] (third-party platforms are set up at start-up)".into());
    }
    if credentials(old) != credentials(new) {
        changed.push(
            "the accounts' API credentials (app_secret, corp_secret, agent_id, or an account with one added or removed): the credential center keeps the ones it started with".into(),
        );
    }
    changed
}
