//! The composition root: [`AppState`] opens the stores (redb, Redis), the credential
//! center, the inbox and the forwarder from a validated [`Config`], once, and hands
//! them to the HTTP layer. Nothing below this module opens a store or spawns a
//! long-lived task on its own.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialStore, MemoryStore,
    TokenSource,
};

use crate::component::{Component, ComponentStore};
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

mod reload;
pub use reload::{ConfigSource, ReloadError, Reloaded};

/// Everything the handlers share. What a configuration decides for requests (the
/// accounts, their rules and forwarding, the links, the verification files) is one
/// [`Live`] snapshot, swapped whole by [`AppState::reload`]; the rest (stores, the
/// credential center, the inbox, counters) lives as long as the process.
#[derive(Debug)]
pub struct AppState {
    live: ArcSwap<Live>,
    /// The web console's sessions and its ring of recent callbacks.
    pub(crate) console: crate::console::Console,
    components: HashMap<String, Arc<Component>>,
    component_store: Option<ComponentStore>,
    /// Request counters and latency.
    pub metrics: Metrics,
    pub(crate) center: Arc<CredentialCenter>,
    admin_token: SecretString,
    oauth_memory: OAuthMemory,
    pub(crate) forwarder: Option<Arc<Forwarder>>,
    pub(crate) shared: Option<SharedSeen>,
    pub(crate) http: HttpConfig,
    pub(crate) log_limit: LogLimit,
    db: Option<Arc<Db>>,
    /// The file the configuration came from (`None`: the demo, or a test's text).
    source: Option<ConfigSource>,
    /// The credential store, for the link service a reload builds anew.
    #[allow(clippy::struct_field_names)]
    store: Option<StoreHandle>,
}

/// The credential store, shown in `Debug` by its name only.
#[derive(Clone)]
struct StoreHandle(Arc<dyn CredentialStore>);

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

/// What one configuration decides for requests. A request takes the snapshot current
/// when it starts and finishes on it, whatever a reload does meanwhile.
#[derive(Debug)]
pub struct Live {
    /// The configuration itself.
    pub config: Arc<Config>,
    pub(crate) accounts: HashMap<String, Arc<Account>>,
    pub(crate) max_body_bytes: usize,
    public_url: Option<String>,
    open_base: String,
    verify_files: HashMap<String, bytes::Bytes>,
    pub(crate) links: Option<Arc<LinkService>>,
}

impl Live {
    /// The snapshot of `config`; an account of `previous` with the same name keeps its
    /// memory of answers.
    fn new(config: Arc<Config>, links: Option<Arc<LinkService>>, previous: Option<&Live>) -> Live {
        let account = |a: &crate::config::AccountConfig| {
            let before = previous.and_then(|p| p.accounts.get(&a.name));
            Arc::new(match before {
                Some(before) => Account::reloaded(a.clone(), before),
                None => Account::new(a.clone()),
            })
        };
        Live {
            accounts: (config.accounts.iter())
                .map(|a| (a.name.clone(), account(a)))
                .collect(),
            max_body_bytes: config.max_body_bytes,
            public_url: config.public_url.clone(),
            open_base: config.open_base.clone(),
            verify_files: (config.verify_files.iter())
                .map(|f| (f.path.clone(), bytes::Bytes::from(f.content.clone())))
                .collect(),
            links,
            config,
        }
    }

    /// The account served at `/wx/{name}`.
    pub fn account(&self, name: &str) -> Option<&Arc<Account>> {
        self.accounts.get(name)
    }
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
        .chain(config.components.iter().map(|c| AccountSecrets {
            name: crate::component::center_name(&c.name),
            app_id: c.app_id.clone(),
            secret: c.app_secret.clone(),
            source: TokenSource::Component,
        }))
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
fn oauth_memory_budgets(config: &Config) -> Vec<(String, usize)> {
    let accounts = config.accounts.iter().filter_map(|account| {
        let oauth = account.oauth.as_ref()?;
        Some((account.name.clone(), oauth.state_budget()))
    });
    // A platform's authorization page: 10 authorizations a second at most.
    let components = config.components.iter().filter_map(|component| {
        let page = component.authorize.as_ref()?;
        let budget = usize::try_from(page.state_ttl_s * 10).unwrap_or(usize::MAX);
        Some((crate::component::center_name(&component.name), budget))
    });
    accounts.chain(components).collect()
}

fn oauth_memory(config: &Config) -> OAuthMemory {
    OAuthMemory::new(oauth_memory_budgets(config))
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
        let names = (config.accounts.iter().map(|a| a.name.clone()))
            .chain(
                config
                    .components
                    .iter()
                    .map(|c| crate::component::center_name(&c.name)),
            )
            .collect();
        let links = link_service(config, &center, Arc::new(MemoryStore::default()), None);
        AppState {
            live: ArcSwap::from_pointee(Live::new(Arc::new(config.clone()), links, None)),
            components: (config.components.iter())
                .map(|c| (c.name.clone(), Arc::new(Component::new(c.clone()))))
                .collect(),
            component_store: None,
            console: crate::console::Console::new(config),
            metrics: Metrics::new(names),
            center,
            admin_token: SecretString::from(admin_token),
            oauth_memory: oauth_memory(config),
            forwarder: None,
            shared: None,
            http: config.http,
            log_limit: LogLimit::new(crate::metrics::ACCOUNT_SLOTS),
            db: None,
            store: None,
            source: None,
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
        let links = link_service(config, &center, store.clone(), shared.as_ref());
        state.live = ArcSwap::from_pointee(Live::new(Arc::new(config.clone()), links, None));
        state.store = Some(StoreHandle(store));
        if !config.components.is_empty() {
            let store = ComponentStore::new(db.clone())?;
            state.start_components(&store).await;
            state.component_store = Some(store);
        }
        state.shared = shared;
        state.db = Some(db.clone());
        let forwards: HashMap<String, ForwardConfig> = (config.accounts.iter())
            .filter_map(|a| a.forward.clone().map(|f| (a.name.clone(), f)))
            .chain(config.components.iter().filter_map(|c| {
                let forward = c.forward.clone()?;
                Some((crate::component::center_name(&c.name), forward))
            }))
            // An authorizer with a forward of its own (`[[component.authorizer]]`).
            .chain(config.components.iter().flat_map(|c| {
                let platform = crate::component::center_name(&c.name);
                (c.authorizers.iter()).filter_map(move |a| {
                    let name = wxgate_client::credential::authorizer_name(&platform, &a.app_id);
                    Some((name, a.forward.clone()?))
                })
            }))
            .collect();
        // The inbox also keeps the rule replies that go out through the
        // customer-service API until they are sent.
        let authorizers_through_api = (config.components.iter())
            .flat_map(|c| c.authorizers.iter())
            .any(|a| !a.kind.shows_passive_replies());
        if !forwards.is_empty()
            || config.accounts.iter().any(|a| a.replies_through_api())
            || authorizers_through_api
        {
            let inbox = crate::inbox::open(config, db, state.shared.as_ref()).await?;
            let kinds = (config.accounts.iter().map(|a| (a.name.clone(), a.kind))).chain(
                config.components.iter().flat_map(|c| {
                    let platform = crate::component::center_name(&c.name);
                    (c.authorizers.iter()).map(move |a| {
                        let name = wxgate_client::credential::authorizer_name(&platform, &a.app_id);
                        (name, a.kind)
                    })
                }),
            );
            let kinds = kinds.collect();
            let forwarder =
                Forwarder::new(inbox, center, forwards, kinds, config.keep_delivered_days);
            forwarder.spawn_worker();
            state.forwarder = Some(forwarder);
        }
        Ok(state)
    }

    /// Hands each platform's durably stored ticket to the credential center (a Redis
    /// that lost it gets it back; an older one is kept out), then asks WeChat to push a
    /// ticket for each platform that still has none valid (`api_start_push_ticket`, in
    /// the background: at most one instance asks).
    async fn start_components(&self, store: &ComponentStore) {
        for component in self.components.values() {
            let name = component.center_name();
            match store.ticket(&component.config.app_id).await {
                Ok(Some(stored)) => {
                    let offered = (self.center)
                        .offer_verify_ticket(&name, &stored.ticket, stored.create_time)
                        .await;
                    if let Err(err) = offered {
                        tracing::warn!(component = %component.config.name, "the stored ticket could not be handed to the credential store: {err}");
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(component = %component.config.name, "the stored ticket cannot be read: {err}");
                }
            }
            self.hold_authorizers(store, component).await;
            let center = Arc::clone(&self.center);
            tokio::spawn(async move {
                match center.ask_for_ticket(&name).await {
                    Ok(outcome) => tracing::debug!(component = %name, ?outcome, "ticket at start"),
                    Err(err) => {
                        tracing::warn!(component = %name, "could not ask WeChat to push a component_verify_ticket: {err}")
                    }
                }
            });
        }
    }

    /// Holds in the credential center every authorizer whose latest event is an
    /// authorization, so their tokens are refreshed ahead once used.
    async fn hold_authorizers(&self, store: &ComponentStore, component: &Component) {
        let name = component.center_name();
        match store.authorizers(&component.config.app_id).await {
            Ok(list) => {
                for (app_id, event) in list {
                    if event.info_type != "unauthorized" {
                        let _ = self.center.hold_authorizer(&name, &app_id);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(component = %component.config.name, "the authorizers cannot be read: {err}")
            }
        }
    }

    /// The third-party platform served at `/open/{name}/…`.
    pub fn component(&self, name: &str) -> Option<&Arc<Component>> {
        self.components.get(name)
    }

    /// The durable record of platforms' notifies, when the process has a database.
    pub fn component_store(&self) -> Option<&ComponentStore> {
        self.component_store.as_ref()
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

    /// Names the file a reload reads again (`serve` calls this once, before serving).
    pub fn set_source(&mut self, source: ConfigSource) {
        self.source = Some(source);
    }

    /// The snapshot of the configuration in force, for a request that reads several
    /// of its parts.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The largest request body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.live.load().max_body_bytes
    }

    /// The public base URL, for OAuth callbacks.
    pub fn public_url(&self) -> Option<String> {
        self.live.load().public_url.clone()
    }

    /// The base of WeChat's authorization pages.
    pub fn open_base(&self) -> String {
        self.live.load().open_base.clone()
    }

    /// Used OAuth states and exchanged codes.
    pub fn oauth_memory(&self) -> &OAuthMemory {
        &self.oauth_memory
    }

    /// The accounts, sorted by name.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        let mut accounts: Vec<Arc<Account>> = self.live.load().accounts.values().cloned().collect();
        accounts.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        accounts
    }

    /// The link service, when an account has links.
    pub fn links(&self) -> Option<Arc<LinkService>> {
        self.live.load().links.clone()
    }

    /// The content of the `[[verify_file]]` at exactly `path`.
    pub fn verify_file(&self, path: &str) -> Option<bytes::Bytes> {
        self.live.load().verify_files.get(path).cloned()
    }

    /// The web console's state.
    pub fn console(&self) -> &crate::console::Console {
        &self.console
    }

    /// The account served at `/wx/{name}`.
    pub fn account(&self, name: &str) -> Option<Arc<Account>> {
        self.live.load().accounts.get(name).cloned()
    }
}
