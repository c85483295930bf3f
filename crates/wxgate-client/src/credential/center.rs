//! The center itself: its accounts, the lock-free lookups, compare-and-expire on a
//! rejected token, and the background refresher.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;
use secrecy::ExposeSecret;

use super::stats::{Counters, DailyFetches};
use super::{
    AccountSecrets, CenterConfig, CenterStats, Credential, CredentialKind, CredentialStore,
    TokenSource,
};
use crate::api::Client;
use crate::wecom::WeComClient;
use crate::Error;

/// Where a failed refresh left off: the next attempt waits until `until`.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    pub(super) failures: u32,
    pub(super) until: i64,
    pub(super) last: String,
}

/// One account's one credential.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) current: ArcSwapOption<Credential>,
    /// The single-flight gate: held for the whole refresh.
    pub(super) gate: tokio::sync::Mutex<Backoff>,
    /// The value last rejected by WeChat: never reused from the store.
    pub(super) rejected: Mutex<Option<String>>,
    pub(super) fetches_today: DailyFetches,
    /// Unix seconds until which the refresher leaves this credential alone: a refresh
    /// ahead got the same value back (WeCom hands out one token until it expires).
    pub(super) ahead_held_until: AtomicI64,
}

/// The platform an authorizer belongs to.
#[derive(Debug, Clone)]
pub(super) struct Platform {
    /// The platform's name in the center.
    pub(super) name: String,
    /// The platform's AppID.
    pub(super) app_id: String,
}

#[derive(Debug)]
pub(super) struct AccountState {
    pub(super) secrets: AccountSecrets,
    pub(super) slots: [Slot; 2],
    /// An authorizer's platform; `None` for every configured account.
    pub(super) platform: Option<Platform>,
    /// An authorizer's latest refresh token: the one to present next (it outlives the
    /// access token, and a compare-and-expire that drops the access token keeps it).
    pub(super) refresh_token: Mutex<Option<(String, i64)>>,
}

impl AccountState {
    pub(super) fn new(secrets: AccountSecrets, platform: Option<Platform>) -> AccountState {
        AccountState {
            secrets,
            slots: Default::default(),
            platform,
            refresh_token: Mutex::new(None),
        }
    }

    pub(super) fn slot(&self, kind: CredentialKind) -> &Slot {
        &self.slots[kind.index()]
    }

    /// Keeps `credential`'s refresh token in memory when it is newer than the one kept.
    pub(super) fn remember_refresh_token(&self, credential: &Credential) {
        let Some(token) = &credential.refresh_token else {
            return;
        };
        let mut kept = self.refresh_token.lock().unwrap_or_else(|e| e.into_inner());
        if kept
            .as_ref()
            .is_none_or(|(_, at)| *at <= credential.fetched_at)
        {
            *kept = Some((token.clone(), credential.fetched_at));
        }
    }

    /// The store key of one of its credentials; an authorizer's names its platform:
    /// `wxgate:cred:component:{platform}:authorizer:{app_id}:{kind}`.
    pub(super) fn store_key(&self, kind: CredentialKind) -> String {
        match &self.platform {
            Some(platform) => format!(
                "wxgate:cred:component:{}:authorizer:{}:{}",
                platform.app_id,
                self.secrets.app_id,
                kind.as_str()
            ),
            None => self.secrets.store_key(kind),
        }
    }
}

/// The credential center.
pub struct CredentialCenter {
    pub(super) client: Client,
    pub(super) wecom: WeComClient,
    pub(super) store: Arc<dyn CredentialStore>,
    pub(super) config: CenterConfig,
    pub(super) accounts: HashMap<String, Arc<AccountState>>,
    /// Third-party platforms' authorizers, learnt at run time (`credential/authorizer`).
    pub(super) authorizers: RwLock<HashMap<String, Arc<AccountState>>>,
    pub(super) counters: Counters,
    clock_offset: AtomicI64,
}

impl std::fmt::Debug for CredentialCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCenter")
            .field("store", &self.store.name())
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CredentialCenter {
    /// A center for these accounts: WeChat's calls go through `client`, WeCom's to
    /// `config.qyapi_base`.
    pub fn new(
        client: Client,
        store: Arc<dyn CredentialStore>,
        config: CenterConfig,
        accounts: Vec<AccountSecrets>,
    ) -> Arc<Self> {
        Arc::new(CredentialCenter {
            client,
            wecom: WeComClient::new(&config.qyapi_base),
            store,
            config,
            accounts: accounts
                .into_iter()
                .map(|secrets| {
                    (
                        secrets.name.clone(),
                        Arc::new(AccountState::new(secrets, None)),
                    )
                })
                .collect(),
            authorizers: RwLock::default(),
            counters: Counters::default(),
            clock_offset: AtomicI64::new(0),
        })
    }

    /// The API client (for calls that take a token).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The WeCom API client (`qyapi_base`), for calls with a WeCom application's token.
    pub fn wecom(&self) -> &WeComClient {
        &self.wecom
    }

    /// Where an account's token comes from (`None` for an unknown account).
    pub fn token_source(&self, account: &str) -> Option<TokenSource> {
        self.account(account).ok().map(|a| a.secrets.source)
    }

    /// The store's name.
    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// The AppID of a configured account (a WeCom application's CorpID).
    pub fn app_id(&self, account: &str) -> Option<&str> {
        (self.accounts.get(account)).map(|a| a.secrets.app_id.as_str())
    }

    /// The AppSecret of an account (for OAuth exchanges; never log it).
    pub fn secret(&self, account: &str) -> Option<&str> {
        (self.accounts.get(account)).map(|a| a.secrets.secret.expose_secret())
    }

    /// Counters so far.
    pub fn stats(&self) -> CenterStats {
        self.counters.snapshot()
    }

    /// Fetches today for an account's credential.
    pub fn fetches_today(&self, account: &str, kind: CredentialKind) -> u32 {
        (self.account(account).ok())
            .map(|a| a.slot(kind).fetches_today.today())
            .unwrap_or(0)
    }

    /// The center's clock (Unix seconds); tests shift it with [`CredentialCenter::advance_clock`].
    pub fn now(&self) -> i64 {
        crate::clock::now() + self.clock_offset.load(Ordering::Relaxed)
    }

    /// Moves the center's clock (tests of expiry).
    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// A configured account, or an authorizer the center holds.
    pub(super) fn account(&self, name: &str) -> Result<Arc<AccountState>, Error> {
        if let Some(state) = self.accounts.get(name) {
            return Ok(state.clone());
        }
        let authorizers = self.authorizers.read().unwrap_or_else(|e| e.into_inner());
        (authorizers.get(name).cloned()).ok_or_else(|| Error::UnknownAccount(name.to_owned()))
    }

    /// The cached credential, without any I/O (`None` when absent or expired).
    pub fn cached(&self, account: &str, kind: CredentialKind) -> Option<Arc<Credential>> {
        let now = self.now();
        self.account(account)
            .ok()?
            .slot(kind)
            .current
            .load_full()
            .filter(|c| c.is_valid(now))
    }

    /// A valid credential: the cached one without waiting, else a single-flight refresh.
    ///
    /// # Errors
    /// The refresh's error, or [`Error::Backoff`] while a failed refresh waits.
    pub async fn get(&self, account: &str, kind: CredentialKind) -> Result<Arc<Credential>, Error> {
        if let Some(credential) = self.cached(account, kind) {
            return Ok(credential);
        }
        self.refresh(account, kind, false).await
    }

    /// Expires `failed` if it is still the current credential (compare-and-expire).
    /// Returns whether it was current.
    pub fn invalidate(&self, account: &str, kind: CredentialKind, failed: &str) -> bool {
        let Ok(state) = self.account(account) else {
            return false;
        };
        let slot = state.slot(kind);
        let current = slot.current.load_full();
        let Some(current) = current.filter(|c| c.value == failed) else {
            return false;
        };
        let swapped = slot.current.compare_and_swap(&Some(current.clone()), None);
        if swapped.as_ref().map(|c| c.value.as_str()) != Some(failed) {
            return false;
        }
        *slot.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some(failed.to_owned());
        if current.is_valid(self.now()) {
            Counters::bump(&self.counters.foreign);
            if let TokenSource::WeCom { agent_id } = state.secrets.source {
                tracing::warn!(
                    account,
                    corp_id = %state.secrets.app_id,
                    agent_id,
                    "WeCom rejected the access_token before its expiry although wxgate did not replace it: the application's Secret may have been reset, or WeCom revoked the token early; it is fetched again"
                );
                return true;
            }
            tracing::warn!(
                account,
                app_id = %state.secrets.app_id,
                credential = kind.as_str(),
                "WeChat rejected the {} before its expiry although wxgate did not replace it: another system is refreshing this AppID (it invalidates wxgate's token); make wxgate the only holder of this AppID's token",
                kind.as_str()
            );
        }
        true
    }

    /// Runs `call` with the account's access_token; when WeChat rejects the token
    /// (40001, 40014, 42001), expires it (compare-and-expire) and retries once.
    ///
    /// # Errors
    /// The call's error, or the refresh's.
    pub async fn with_access_token<T, F, Fut>(&self, account: &str, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let credential = self.get(account, CredentialKind::AccessToken).await?;
        match call(credential.value.clone()).await {
            Err(err) if err.is_token_rejected() => {
                self.invalidate(account, CredentialKind::AccessToken, &credential.value);
                let fresh = self.get(account, CredentialKind::AccessToken).await?;
                call(fresh.value.clone()).await
            }
            other => other,
        }
    }

    /// Refreshes every credential that is due, once. The refresher calls this each tick.
    pub async fn refresh_due(&self) {
        let now = self.now();
        let authorizers: Vec<(String, Arc<AccountState>)> = {
            let held = self.authorizers.read().unwrap_or_else(|e| e.into_inner());
            held.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let all = (self.accounts.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(authorizers);
        for (name, state) in all {
            for kind in [CredentialKind::AccessToken, CredentialKind::JsapiTicket] {
                let slot = state.slot(kind);
                let due = slot.current.load_full().is_some_and(|c| c.is_due(now))
                    && slot.ahead_held_until.load(Ordering::Relaxed) <= now;
                if due {
                    let _ = self.refresh(&name, kind, true).await;
                }
            }
        }
    }

    /// Spawns the background refresher (refresh ahead of expiry).
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let center = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(center.config.refresh_tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                center.refresh_due().await;
            }
        })
    }
}
