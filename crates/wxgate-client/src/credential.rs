//! The credential center (中控服务器): one holder of every account's access_token and
//! jsapi_ticket.
//!
//! * Reads are lock-free (`ArcSwap`); a valid credential never waits on a refresh.
//! * Refresh is single-flight: one refresh in flight per account and credential, however
//!   many callers; waiting callers get its result.
//! * [`CredentialCenter::spawn_refresher`] refreshes ahead of expiry in the background
//!   (at min(300 s, a quarter of the lifetime) before it).
//! * A rejected token (40001/40014/42001) is expired only if it is still the current one
//!   (compare-and-expire), then the call is retried once. A rejection of a token that
//!   wxgate did not replace and that had not expired means another system is refreshing
//!   this AppID: it is logged and counted.
//! * Failed refreshes back off exponentially (1 s … 60 s). A fetched credential is used
//!   even when storing it fails. Fetches are counted per day against the quota.
//! * Storage is behind [`CredentialStore`]: in memory here, redb and Redis elsewhere.
//!   Its `try_lock` returns a fencing token, so a distributed store can make one instance
//!   refresh while the others wait and then read the result.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api::{Client, Fetched};
use crate::Error;

/// Which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The global access_token.
    AccessToken,
    /// The JS-SDK jsapi_ticket.
    JsapiTicket,
}

impl CredentialKind {
    /// `access_token` or `jsapi_ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessToken => "access_token",
            CredentialKind::JsapiTicket => "jsapi_ticket",
        }
    }

    fn index(self) -> usize {
        match self {
            CredentialKind::AccessToken => 0,
            CredentialKind::JsapiTicket => 1,
        }
    }
}

/// A credential with its validity. Serialised by stores.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The token or ticket.
    pub value: String,
    /// Unix seconds after which WeChat rejects it.
    pub expires_at: i64,
    /// Unix seconds when it was fetched.
    pub fetched_at: i64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

impl Credential {
    /// Seconds before expiry at which it is refreshed: min(300, a quarter of its life).
    pub fn refresh_margin(&self) -> i64 {
        ((self.expires_at - self.fetched_at) / 4).clamp(0, 300)
    }

    /// Whether it can still be handed out at `now`.
    pub fn is_valid(&self, now: i64) -> bool {
        self.expires_at > now
    }

    /// Whether the refresher should replace it at `now`.
    pub fn is_due(&self, now: i64) -> bool {
        self.expires_at - now <= self.refresh_margin()
    }
}

/// A boxed store future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where credentials live between processes and restarts.
///
/// Keys look like `wxgate:cred:{app_id}:{kind}`. `try_lock` is the refresh lease: a
/// store shared by several instances grants it to one at a time and returns a fencing
/// token that increases with every grant; `save_fenced` refuses a write whose fence is
/// older than the newest grant. In-process stores grant every lock (the center's own
/// single-flight already serialises refreshes).
pub trait CredentialStore: Send + Sync + 'static {
    /// The stored credential, if any.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>>;
    /// Stores a credential fetched under lease `fence`.
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        fence: u64,
    ) -> StoreFuture<'a, ()>;
    /// Tries to take the refresh lease for `key` for `ttl`; `Some(fence)` when taken.
    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>>;
    /// Releases the lease taken with `fence`.
    fn unlock<'a>(&'a self, key: &'a str, fence: u64) -> StoreFuture<'a, ()>;
    /// A short name for logs and `/healthz` (`memory`, `redb`, `redis`).
    fn name(&self) -> &'static str;
    /// True for a store several instances share: without its lease, a classic-endpoint
    /// refresh would invalidate the other instances' token, so it is refused.
    fn shared(&self) -> bool;
}

/// Credentials in process memory: lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Credential>>,
    fence: AtomicU64,
}

impl CredentialStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let value = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        Box::pin(async move { Ok(value) })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        _fence: u64,
    ) -> StoreFuture<'a, ()> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), credential.clone());
        Box::pin(async { Ok(()) })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        let fence = self.fence.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Ok(Some(fence)) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, _fence: u64) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "memory"
    }
    fn shared(&self) -> bool {
        false
    }
}

/// How access tokens are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// `/cgi-bin/stable_token` (default): does not invalidate other holders' tokens.
    Stable,
    /// `/cgi-bin/token`: every fetch invalidates the previous token.
    Classic,
}

/// One account's API credentials.
#[derive(Debug, Clone)]
pub struct AccountSecrets {
    /// The name used by callers.
    pub name: String,
    /// AppID.
    pub app_id: String,
    /// AppSecret (never logged; `Debug` prints a placeholder).
    pub secret: SecretString,
}

/// Settings of the center.
#[derive(Debug, Clone)]
pub struct CenterConfig {
    /// How to fetch access tokens.
    pub endpoint: TokenEndpoint,
    /// Token fetches allowed per day; a warning is logged at 80 %.
    pub daily_quota: u32,
    /// How often the refresher looks for credentials due for refresh.
    pub refresh_tick: Duration,
}

impl Default for CenterConfig {
    fn default() -> Self {
        CenterConfig {
            endpoint: TokenEndpoint::Stable,
            daily_quota: 2000,
            refresh_tick: Duration::from_secs(1),
        }
    }
}

/// Counters, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CenterStats {
    /// Credentials fetched from WeChat.
    pub fetches: u64,
    /// Refreshes that failed.
    pub failures: u64,
    /// Tokens rejected although wxgate had not replaced them: another system refreshes.
    pub foreign_refreshes: u64,
    /// Store reads or writes that failed.
    pub store_failures: u64,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: i64,
    last: String,
}

#[derive(Debug, Default)]
struct Slot {
    current: ArcSwapOption<Credential>,
    gate: tokio::sync::Mutex<Backoff>,
    /// The value last rejected by WeChat: never reused from the store.
    rejected: Mutex<Option<String>>,
    /// (day number, fetches that day).
    fetches_today: Mutex<(i64, u32)>,
}

#[derive(Debug)]
struct AccountState {
    secrets: AccountSecrets,
    slots: [Slot; 2],
}

/// The credential center.
pub struct CredentialCenter {
    client: Client,
    store: Arc<dyn CredentialStore>,
    config: CenterConfig,
    accounts: HashMap<String, AccountState>,
    fetches: AtomicU64,
    failures: AtomicU64,
    foreign: AtomicU64,
    store_failures: AtomicU64,
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

/// Quota days follow Beijing time (UTC+8), when WeChat resets quotas.
fn quota_day(now: i64) -> i64 {
    (now + 8 * 3600).div_euclid(86_400)
}

impl CredentialCenter {
    /// A center for these accounts.
    pub fn new(
        client: Client,
        store: Arc<dyn CredentialStore>,
        config: CenterConfig,
        accounts: Vec<AccountSecrets>,
    ) -> Arc<Self> {
        Arc::new(CredentialCenter {
            client,
            store,
            config,
            accounts: accounts
                .into_iter()
                .map(|secrets| {
                    (
                        secrets.name.clone(),
                        AccountState {
                            secrets,
                            slots: Default::default(),
                        },
                    )
                })
                .collect(),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            store_failures: AtomicU64::new(0),
            clock_offset: AtomicI64::new(0),
        })
    }

    /// The API client (for calls that take a token).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The store's name.
    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// The AppID of an account.
    pub fn app_id(&self, account: &str) -> Option<&str> {
        self.accounts
            .get(account)
            .map(|a| a.secrets.app_id.as_str())
    }

    /// The AppSecret of an account (for OAuth exchanges; never log it).
    pub fn secret(&self, account: &str) -> Option<&str> {
        self.accounts
            .get(account)
            .map(|a| a.secrets.secret.expose_secret())
    }

    /// Counters so far.
    pub fn stats(&self) -> CenterStats {
        CenterStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            foreign_refreshes: self.foreign.load(Ordering::Relaxed),
            store_failures: self.store_failures.load(Ordering::Relaxed),
        }
    }

    /// Fetches today for an account's credential.
    pub fn fetches_today(&self, account: &str, kind: CredentialKind) -> u32 {
        self.accounts
            .get(account)
            .map(|a| {
                a.slots[kind.index()]
                    .fetches_today
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .1
            })
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

    fn account(&self, name: &str) -> Result<&AccountState, Error> {
        self.accounts
            .get(name)
            .ok_or_else(|| Error::UnknownAccount(name.to_owned()))
    }

    fn key(account: &AccountState, kind: CredentialKind) -> String {
        format!("wxgate:cred:{}:{}", account.secrets.app_id, kind.as_str())
    }

    /// The cached credential, without any I/O (`None` when absent or expired).
    pub fn cached(&self, account: &str, kind: CredentialKind) -> Option<Arc<Credential>> {
        let now = self.now();
        self.accounts.get(account)?.slots[kind.index()]
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
        let slot = &state.slots[kind.index()];
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
            self.foreign.fetch_add(1, Ordering::Relaxed);
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

    /// Refreshes, single-flight. With `ahead`, a still-valid credential that is due is
    /// replaced (the refresher); without, a valid one is returned as is.
    fn refresh<'a>(
        &'a self,
        account: &'a str,
        kind: CredentialKind,
        ahead: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Credential>, Error>> + Send + 'a>> {
        Box::pin(async move {
            let state = self.account(account)?;
            let slot = &state.slots[kind.index()];
            let mut backoff = slot.gate.lock().await;
            let now = self.now();
            let current = slot.current.load_full().filter(|c| c.is_valid(now));
            if let Some(credential) = &current {
                if !ahead || !credential.is_due(now) {
                    return Ok(credential.clone());
                }
            }
            if backoff.until > now {
                return match current {
                    Some(credential) => Ok(credential),
                    None => Err(Error::Backoff {
                        account: account.to_owned(),
                        what: kind.as_str(),
                        last: backoff.last.clone(),
                        retry_in_s: backoff.until - now,
                    }),
                };
            }
            let key = Self::key(state, kind);
            // Another instance, or this one before a restart, may hold a newer credential.
            let rejected = slot
                .rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match self.store.load(&key).await {
                Ok(Some(stored))
                    if stored.is_valid(now)
                        && !(ahead && stored.is_due(now))
                        && Some(&stored.value) != rejected.as_ref()
                        && current.as_ref().map(|c| &c.value) != Some(&stored.value) =>
                {
                    let stored = Arc::new(stored);
                    slot.current.store(Some(stored.clone()));
                    return Ok(stored);
                }
                Ok(_) => {}
                Err(err) => {
                    self.store_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        account,
                        "credential store {} read failed: {err}; fetching from WeChat",
                        self.store.name()
                    );
                }
            }
            let fence = match self.store.try_lock(&key, Duration::from_secs(15)).await {
                Ok(Some(fence)) => fence,
                Ok(None) => {
                    // Another instance refreshes: wait for its result.
                    for _ in 0..50 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if let Ok(Some(stored)) = self.store.load(&key).await {
                            if stored.is_valid(self.now())
                                && Some(&stored.value) != rejected.as_ref()
                                && !(ahead && stored.is_due(self.now()))
                            {
                                let stored = Arc::new(stored);
                                slot.current.store(Some(stored.clone()));
                                return Ok(stored);
                            }
                        }
                    }
                    0
                }
                Err(err) => {
                    self.store_failures.fetch_add(1, Ordering::Relaxed);
                    if self.store.shared()
                        && kind == CredentialKind::AccessToken
                        && self.config.endpoint == TokenEndpoint::Classic
                    {
                        if let Some(credential) = current.filter(|c| c.is_valid(now)) {
                            return Ok(credential);
                        }
                        let refused = Error::SharedStoreUnavailable {
                            account: account.to_owned(),
                            store: self.store.name(),
                            reason: err,
                        };
                        tracing::error!(account, "{refused}");
                        return Err(refused);
                    }
                    tracing::warn!(
                        account,
                        "credential store {} lock failed: {err}; refreshing without the lease",
                        self.store.name()
                    );
                    0
                }
            };
            let fetched = self.fetch(state, kind).await;
            if fence != 0 {
                let _ = self.store.unlock(&key, fence).await;
            }
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(err) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    backoff.failures += 1;
                    let delay = 1i64 << (backoff.failures - 1).min(6);
                    backoff.until = now + delay.min(60);
                    backoff.last = err.to_string();
                    tracing::error!(
                        account,
                        credential = kind.as_str(),
                        "refresh failed: {err}; next attempt in {}s",
                        delay.min(60)
                    );
                    return match current {
                        Some(credential) => Ok(credential),
                        None => Err(err),
                    };
                }
            };
            *backoff = Backoff::default();
            let now = self.now();
            let credential = Arc::new(Credential {
                value: fetched.value,
                expires_at: now + fetched.expires_in,
                fetched_at: now,
            });
            self.count_fetch(account, slot, kind, now);
            // Use it even if it cannot be stored: a store outage must not burn the quota.
            let fence_for_save = if fence == 0 { u64::MAX } else { fence };
            if let Err(err) = self.store.save(&key, &credential, fence_for_save).await {
                self.store_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    account,
                    "credential store {} write failed: {err}; the fetched {} is used anyway",
                    self.store.name(),
                    kind.as_str()
                );
            }
            slot.current.store(Some(credential.clone()));
            tracing::info!(
                account,
                credential = kind.as_str(),
                expires_in = fetched.expires_in,
                "fetched a new {}",
                kind.as_str()
            );
            Ok(credential)
        })
    }

    async fn fetch(&self, state: &AccountState, kind: CredentialKind) -> Result<Fetched, Error> {
        let secrets = &state.secrets;
        match kind {
            CredentialKind::AccessToken => match self.config.endpoint {
                TokenEndpoint::Stable => {
                    self.client
                        .stable_token(&secrets.app_id, secrets.secret.expose_secret(), false)
                        .await
                }
                TokenEndpoint::Classic => {
                    self.client
                        .classic_token(&secrets.app_id, secrets.secret.expose_secret())
                        .await
                }
            },
            CredentialKind::JsapiTicket => {
                self.with_access_token(&secrets.name, |token| async move {
                    self.client.jsapi_ticket(&token).await
                })
                .await
            }
        }
    }

    fn count_fetch(&self, account: &str, slot: &Slot, kind: CredentialKind, now: i64) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut today = slot.fetches_today.lock().unwrap_or_else(|e| e.into_inner());
        let day = quota_day(now);
        if today.0 != day {
            *today = (day, 0);
        }
        today.1 += 1;
        let warn_at = (self.config.daily_quota as u64 * 8 / 10) as u32;
        if kind == CredentialKind::AccessToken && today.1 >= warn_at && today.1 % 10 == warn_at % 10
        {
            tracing::warn!(
                account,
                fetches = today.1,
                quota = self.config.daily_quota,
                "{} access_token fetches today, {}% of the daily quota: look for another system refreshing this AppID",
                today.1,
                today.1 as u64 * 100 / self.config.daily_quota.max(1) as u64
            );
        }
    }

    /// Refreshes every credential that is due, once. The refresher calls this each tick.
    pub async fn refresh_due(&self) {
        let now = self.now();
        for (name, state) in &self.accounts {
            for kind in [CredentialKind::AccessToken, CredentialKind::JsapiTicket] {
                let due = state.slots[kind.index()]
                    .current
                    .load_full()
                    .is_some_and(|c| c.is_due(now));
                if due {
                    let _ = self.refresh(name, kind, true).await;
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
