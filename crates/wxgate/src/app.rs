//! The composition root: [`AppState`] opens the stores (redb, Redis), the credential
//! center, the inbox and the forwarder from a validated [`Config`], once, and hands
//! them to the HTTP layer. Nothing below this module opens a store or spawns a
//! long-lived task on its own.

use std::collections::HashMap;
use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialStore, MemoryStore,
    TokenSource,
};

use crate::config::{Config, ForwardConfig, HttpConfig};
use crate::credentials::redb::RedbStore;
use crate::credentials::redis::RedisStore;
use crate::forward::Forwarder;
use crate::gateway::account::Account;
use crate::gateway::log_limit::LogLimit;
use crate::links::count::Counter;
use crate::links::LinkService;
use crate::metrics::Metrics;
use crate::oauth::OAuthMemory;
use crate::pipeline::Pipeline;
use crate::redis::SharedSeen;
use crate::storage::Db;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub(crate) accounts: HashMap<String, Arc<Account>>,
    /// Request counters and latency.
    pub metrics: Metrics,
    pub(crate) max_body_bytes: usize,
    pub(crate) center: Arc<CredentialCenter>,
    admin_token: SecretString,
    public_url: Option<String>,
    open_base: String,
    oauth_memory: OAuthMemory,
    pub(crate) forwarder: Option<Arc<Forwarder>>,
    pub(crate) shared: Option<SharedSeen>,
    pub(crate) http: HttpConfig,
    pub(crate) log_limit: LogLimit,
    db: Option<Arc<Db>>,
    verify_files: HashMap<String, bytes::Bytes>,
    pub(crate) links: Option<Arc<LinkService>>,
    pub(crate) console: crate::console::Console,
}

/// The link service of a configuration, over the credential center's `store`; `None`
/// when no account has a `[[account.link]]`.
fn link_service(
    config: &Config,
    center: &Arc<CredentialCenter>,
    store: Arc<dyn CredentialStore>,
    shared: Option<&SharedSeen>,
) -> Option<Arc<LinkService>> {
    config
        .accounts
        .iter()
        .any(|a| !a.links.is_empty())
        .then(|| {
            Arc::new(LinkService::new(
                &config.accounts,
                config.links,
                center.clone(),
                store,
                Counter::new(shared.map(SharedSeen::link)),
            ))
        })
}

/// The credential center a configuration describes, over `store`.
pub fn credential_center(
    config: &Config,
    store: Arc<dyn CredentialStore>,
) -> Arc<CredentialCenter> {
    let accounts = config
        .accounts
        .iter()
        .filter(|a| !a.app_secret.expose_secret().is_empty())
        .filter_map(|a| {
            Some(AccountSecrets {
                name: a.name.clone(),
                app_id: a.app_id.clone(),
                secret: a.app_secret.clone(),
                source: token_source(a)?,
            })
        })
        .collect();
    CredentialCenter::new(
        Client::new(&config.api_base),
        store,
        CenterConfig {
            endpoint: config.token_endpoint,
            daily_quota: config.daily_token_quota,
            qyapi_base: config.qyapi_base.clone(),
            ..CenterConfig::default()
        },
        accounts,
    )
}

/// Where an account's token comes from: a WeCom application's from `gettoken` on
/// `qyapi_base`, every other kind's from `api_base`. `None` for a WeCom application
/// without agent_id, which the config refuses with a corp_secret.
fn token_source(account: &crate::config::AccountConfig) -> Option<TokenSource> {
    match account.kind {
        crate::config::AccountKind::WeCom => account
            .agent_id
            .map(|agent_id| TokenSource::WeCom { agent_id }),
        _ => Some(TokenSource::WeChat),
    }
}

/// The OAuth memory's budgets a configuration states: `peak_sign_ins_per_s ×
/// state_ttl_s` for each account with `[account.oauth]`.
fn oauth_memory(config: &Config) -> OAuthMemory {
    OAuthMemory::new(config.accounts.iter().filter_map(|account| {
        let oauth = account.oauth.as_ref()?;
        Some((account.name.clone(), oauth.state_budget()))
    }))
}

impl AppState {
    /// Builds the state from a validated configuration, with credentials in memory and
    /// the configured admin token (or a random one).
    pub fn new(config: &Config) -> Self {
        let center = credential_center(config, Arc::new(MemoryStore::default()));
        let admin_token = config
            .admin_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_else(|| {
                Alphanumeric.sample_string(&mut rand::rand_core::UnwrapErr(rand::rngs::SysRng), 32)
            });
        AppState::with_center(config, center, admin_token)
    }

    /// Builds the state around an existing credential center.
    pub fn with_center(
        config: &Config,
        center: Arc<CredentialCenter>,
        admin_token: String,
    ) -> Self {
        let names = config.accounts.iter().map(|a| a.name.clone()).collect();
        let links = link_service(config, &center, Arc::new(MemoryStore::default()), None);
        AppState {
            links,
            console: crate::console::Console::new(config),
            accounts: config
                .accounts
                .iter()
                .map(|a| (a.name.clone(), Arc::new(Account::new(a.clone()))))
                .collect(),
            metrics: Metrics::new(names),
            max_body_bytes: config.max_body_bytes,
            center,
            admin_token: SecretString::from(admin_token),
            public_url: config.public_url.clone(),
            open_base: config.open_base.clone(),
            oauth_memory: oauth_memory(config),
            forwarder: None,
            shared: None,
            http: config.http,
            log_limit: LogLimit::new(config.accounts.len()),
            db: None,
            verify_files: (config.verify_files.iter())
                .map(|f| (f.path.clone(), bytes::Bytes::from(f.content.clone())))
                .collect(),
        }
    }

    /// Opens `data_dir/wxgate.redb` (and Redis, with `[storage] backend = "redis"`) and
    /// builds the full state: credentials, the inbox and the forwarder, the admin
    /// token. Spawns the credential refresher and the delivery worker.
    ///
    /// # Errors
    /// The database or Redis cannot be opened.
    pub async fn open(config: &Config, admin_token: String) -> anyhow::Result<AppState> {
        let db = Db::open(&config.data_dir.join("wxgate.redb"))?;
        let (store, shared): (Arc<dyn CredentialStore>, _) = match &config.redis_url {
            Some(url) => {
                let redis = RedisStore::connect(url.expose_secret()).await?;
                let shared = SharedSeen::new(redis.link());
                (Arc::new(redis), Some(shared))
            }
            None => (Arc::new(RedbStore::new(db.clone())?), None),
        };
        let center = credential_center(config, store.clone());
        center.spawn_refresher();
        let mut state = AppState::with_center(config, center.clone(), admin_token);
        state.links = link_service(config, &center, store, shared.as_ref());
        state.shared = shared;
        state.db = Some(db.clone());
        let forwards: HashMap<String, ForwardConfig> = config
            .accounts
            .iter()
            .filter_map(|a| a.forward.clone().map(|f| (a.name.clone(), f)))
            .collect();
        // The inbox also keeps the rule replies that go out through the
        // customer-service API until they are sent.
        if !forwards.is_empty() || config.accounts.iter().any(|a| a.replies_through_api()) {
            let inbox = crate::inbox::open(config, db, state.shared.as_ref()).await?;
            let kinds = config.accounts.iter().map(|a| (a.name.clone(), a.kind));
            let kinds = kinds.collect();
            let forwarder =
                Forwarder::new(inbox, center, forwards, kinds, config.keep_delivered_days);
            forwarder.spawn_worker();
            state.forwarder = Some(forwarder);
        }
        Ok(state)
    }

    /// Stops the delivery worker and commits the inbox durably (after the server has
    /// stopped), so a restart repeats no finished delivery.
    pub async fn shutdown(&self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.shutdown().await;
        }
    }

    /// The process's database, when it was opened.
    pub fn database(&self) -> Option<&Arc<Db>> {
        self.db.as_ref()
    }

    /// The state shared with other instances (Redis), when configured.
    pub fn shared(&self) -> Option<&SharedSeen> {
        self.shared.as_ref()
    }

    /// The forwarder, when an account forwards.
    pub fn forwarder(&self) -> Option<&Arc<Forwarder>> {
        self.forwarder.as_ref()
    }

    /// The steps of a push, over this state's shared memory, forwarder and
    /// credential center.
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            shared: self.shared.as_ref(),
            forwarder: self.forwarder.as_ref(),
        }
    }

    /// The credential center.
    pub fn center(&self) -> &CredentialCenter {
        &self.center
    }

    /// The bearer token of the admin API.
    pub fn admin_token(&self) -> &str {
        self.admin_token.expose_secret()
    }

    /// The public base URL, for OAuth callbacks.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The base of WeChat's authorization pages.
    pub fn open_base(&self) -> &str {
        &self.open_base
    }

    /// Used OAuth states and exchanged codes.
    pub fn oauth_memory(&self) -> &OAuthMemory {
        &self.oauth_memory
    }

    /// The accounts, sorted by name.
    pub fn accounts(&self) -> Vec<&Arc<Account>> {
        let mut accounts: Vec<&Arc<Account>> = self.accounts.values().collect();
        accounts.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        accounts
    }

    /// The link service, when an account has links.
    pub fn links(&self) -> Option<&Arc<LinkService>> {
        self.links.as_ref()
    }

    /// The content of the `[[verify_file]]` at exactly `path`.
    pub fn verify_file(&self, path: &str) -> Option<bytes::Bytes> {
        self.verify_files.get(path).cloned()
    }

    /// The web console's state.
    pub fn console(&self) -> &crate::console::Console {
        &self.console
    }

    /// The account served at `/wx/{name}`.
    pub fn account(&self, name: &str) -> Option<&Arc<Account>> {
        self.accounts.get(name)
    }
}
