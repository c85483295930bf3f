//! The single-flight refresh, stage by stage: hand out what is cached (or wait out the
//! backoff), adopt a newer credential from the store, take the store's lease (or wait
//! for its holder's result), fetch, store, and release the lease.
//!
//! The lease covers the fetch and the store write: it is released only once the new
//! credential is stored, and whoever takes it next on a shared store reads the store
//! again first. So an instance that read the store just before another one refreshed
//! finds that result under the lease instead of fetching a second time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::center::{AccountState, Backoff, Slot};
use super::stats::Counters;
use super::{
    Credential, CredentialCenter, CredentialKind, Fence, StoreError, TokenEndpoint, TokenSource,
};
use crate::api::Fetched;
use crate::Error;

/// How long a refresh lease lasts if its holder never releases it.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often, and how many times, a refresh polls the store while another instance
/// holds the lease (5 s in all).
const HOLDER_POLL: Duration = Duration::from_millis(100);
const HOLDER_POLLS: u32 = 50;

/// One refresh of one account's credential.
struct Attempt<'a> {
    account: &'a str,
    state: &'a AccountState,
    slot: &'a Slot,
    kind: CredentialKind,
    /// Refreshing ahead of expiry (the refresher): a stored credential that is due too
    /// is not good enough.
    ahead: bool,
    key: String,
    /// The value WeChat last rejected: never taken from the store again.
    rejected: Option<String>,
    /// The current credential, while still valid.
    current: Option<Arc<Credential>>,
}

impl Attempt<'_> {
    /// Whether `stored` can be handed out instead of fetching a new one.
    fn usable(&self, stored: &Credential, now: i64) -> bool {
        stored.is_valid(now)
            && !(self.ahead && stored.is_due(now))
            && Some(&stored.value) != self.rejected.as_ref()
    }

    /// [`Attempt::usable`], and not the credential this refresh replaces.
    fn newer(&self, stored: &Credential, now: i64) -> bool {
        self.usable(stored, now) && self.current.as_ref().map(|c| &c.value) != Some(&stored.value)
    }

    /// Makes `stored` the current credential.
    fn adopt(&self, stored: Credential) -> Arc<Credential> {
        self.state.remember_refresh_token(&stored);
        let stored = Arc::new(stored);
        self.slot.current.store(Some(stored.clone()));
        stored
    }
}

/// A WeCom application and a third-party platform have no jsapi_ticket here.
fn has_kind(account: &str, state: &AccountState, kind: CredentialKind) -> Result<(), Error> {
    if kind != CredentialKind::JsapiTicket {
        return Ok(());
    }
    let (account, what) = (account.to_owned(), kind.as_str());
    match state.secrets.source {
        TokenSource::WeChat | TokenSource::Authorizer => Ok(()),
        TokenSource::WeCom { .. } => Err(Error::NotForWeCom { account, what }),
        TokenSource::Component => Err(Error::NotForComponent { account, what }),
    }
}

/// What the lease stage decided.
enum Leased {
    /// Fetch, under this lease, or without one (`None`).
    Fetch(Option<Fence>),
    /// Hand out this credential instead of fetching.
    Use(Arc<Credential>),
}

impl CredentialCenter {
    /// Refreshes, single-flight. With `ahead`, a still-valid credential that is due is
    /// replaced (the refresher); without, a valid one is returned as is.
    pub(super) fn refresh<'a>(
        &'a self,
        account: &'a str,
        kind: CredentialKind,
        ahead: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Credential>, Error>> + Send + 'a>> {
        Box::pin(async move {
            let state = self.account(account)?;
            let state = &*state;
            has_kind(account, state, kind)?;
            let slot = state.slot(kind);
            let mut backoff = slot.gate.lock().await;
            let now = self.now();
            let current = slot.current.load_full().filter(|c| c.is_valid(now));
            if let Some(credential) = &current {
                if !ahead || !credential.is_due(now) {
                    return Ok(credential.clone());
                }
            }
            if backoff.until > now {
                return current.ok_or_else(|| Error::Backoff {
                    account: account.to_owned(),
                    what: kind.as_str(),
                    last: backoff.last.clone(),
                    retry_in_s: backoff.until - now,
                });
            }
            let attempt = Attempt {
                account,
                state,
                slot,
                kind,
                ahead,
                key: state.store_key(kind),
                rejected: slot
                    .rejected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
                current,
            };
            // Another instance, or this one before a restart, may hold a newer credential.
            if let Some(stored) = self.newer_stored(&attempt, now).await {
                return Ok(stored);
            }
            let lease = match self.take_lease(&attempt, now).await? {
                Leased::Use(credential) => return Ok(credential),
                Leased::Fetch(lease) => lease,
            };
            // The lease is held until the new credential is stored.
            let result = match self.fetch_new(&attempt, &mut backoff).await {
                Ok(credential) => {
                    self.store_new(&attempt, &credential, lease).await;
                    Ok(credential)
                }
                Err(err) => self.fetch_failed(&attempt, &mut backoff, now, err),
            };
            if let Some(fence) = lease {
                let _ = self.store.unlock(&attempt.key, fence).await;
            }
            result
        })
    }

    /// The stored credential when it is newer than the current one and usable.
    async fn newer_stored(&self, attempt: &Attempt<'_>, now: i64) -> Option<Arc<Credential>> {
        match self.store.load(&attempt.key).await {
            Ok(Some(stored)) if attempt.newer(&stored, now) => Some(attempt.adopt(stored)),
            Ok(_) => None,
            Err(err) => {
                Counters::bump(&self.counters.store_failures);
                tracing::warn!(
                    account = attempt.account,
                    "credential store {} read failed: {err}; fetching from WeChat",
                    self.store.name()
                );
                None
            }
        }
    }

    /// Takes the store's refresh lease. When another instance holds it, waits for that
    /// instance's result; when the store cannot grant it, refreshes without it (or
    /// refuses to, see [`CredentialCenter::lock_failed`]).
    async fn take_lease(&self, attempt: &Attempt<'_>, now: i64) -> Result<Leased, Error> {
        match self.store.try_lock(&attempt.key, LEASE_TTL).await {
            Ok(Some(fence)) => {
                // The previous holder may have stored its result after our first read.
                if self.store.shared() {
                    if let Some(stored) = self.newer_stored(attempt, self.now()).await {
                        let _ = self.store.unlock(&attempt.key, fence).await;
                        return Ok(Leased::Use(stored));
                    }
                }
                Ok(Leased::Fetch(Some(fence)))
            }
            Ok(None) => match self.wait_for_holder(attempt).await {
                Some(stored) => Ok(Leased::Use(stored)),
                // An authorizer's refresh token may rotate: a second refresh at once
                // would present a token the first one retires.
                None if attempt.state.secrets.source == TokenSource::Authorizer => {
                    Err(Error::RefreshHeldElsewhere {
                        account: attempt.account.to_owned(),
                    })
                }
                None => Ok(Leased::Fetch(None)),
            },
            Err(err) => self.lock_failed(attempt, now, err),
        }
    }

    /// Polls the store while another instance refreshes under the lease; `None` when
    /// nothing usable appeared within 5 s.
    async fn wait_for_holder(&self, attempt: &Attempt<'_>) -> Option<Arc<Credential>> {
        for _ in 0..HOLDER_POLLS {
            tokio::time::sleep(HOLDER_POLL).await;
            if let Ok(Some(stored)) = self.store.load(&attempt.key).await {
                if attempt.usable(&stored, self.now()) {
                    return Some(attempt.adopt(stored));
                }
            }
        }
        None
    }

    /// The lease could not be taken (the store is unreachable). A classic-endpoint
    /// refresh of a shared store's access_token would invalidate the token the other
    /// instances use, so it is refused (the current token is kept while valid); any
    /// other refresh goes ahead without the lease (WeCom's `gettoken` does not
    /// invalidate the token other holders have).
    fn lock_failed(
        &self,
        attempt: &Attempt<'_>,
        now: i64,
        err: StoreError,
    ) -> Result<Leased, Error> {
        Counters::bump(&self.counters.store_failures);
        let classic = attempt.kind == CredentialKind::AccessToken
            && attempt.state.secrets.source == TokenSource::WeChat
            && self.config.endpoint == TokenEndpoint::Classic;
        let authorizer = attempt.kind == CredentialKind::AccessToken
            && attempt.state.secrets.source == TokenSource::Authorizer;
        if self.store.shared() && (classic || authorizer) {
            if let Some(credential) = attempt.current.clone().filter(|c| c.is_valid(now)) {
                return Ok(Leased::Use(credential));
            }
            let refused = Error::SharedStoreUnavailable {
                account: attempt.account.to_owned(),
                store: self.store.name(),
                reason: err,
            };
            tracing::error!(account = attempt.account, "{refused}");
            return Err(refused);
        }
        tracing::warn!(
            account = attempt.account,
            "credential store {} lock failed: {err}; refreshing without the lease",
            self.store.name()
        );
        Ok(Leased::Fetch(None))
    }

    /// Fetches a new credential from WeChat and counts it; a success ends the backoff.
    async fn fetch_new(
        &self,
        attempt: &Attempt<'_>,
        backoff: &mut Backoff,
    ) -> Result<Arc<Credential>, Error> {
        let (fetched, refresh_token) = self.fetch(attempt.state, attempt.kind).await?;
        *backoff = Backoff::default();
        let now = self.now();
        Counters::bump(&self.counters.fetches);
        (attempt.slot.fetches_today).count(
            attempt.account,
            attempt.kind,
            now,
            self.config.daily_quota,
        );
        // WeCom hands out the same token until it expires (with the seconds it has
        // left): it keeps the time it was first fetched, so its refresh margin stays
        // the one of its whole life. A refresh ahead cannot replace it, so the
        // refresher waits for its expiry instead of asking again every tick.
        let same = (attempt.current.as_ref()).filter(|c| c.value == fetched.value);
        let credential = Arc::new(Credential {
            value: fetched.value,
            expires_at: now + fetched.expires_in,
            fetched_at: same.map_or(now, |c| c.fetched_at),
            refresh_token,
        });
        let held = if attempt.ahead && same.is_some() && credential.is_due(now) {
            tracing::debug!(
                account = attempt.account,
                "the refresh ahead got the same {} back; it is replaced at its expiry",
                attempt.kind.as_str()
            );
            credential.expires_at
        } else {
            0
        };
        attempt.slot.ahead_held_until.store(held, Ordering::Relaxed);
        Ok(credential)
    }

    /// A failed fetch starts or extends the backoff (1 s doubling to 60 s); the current
    /// credential, while valid, is still handed out.
    fn fetch_failed(
        &self,
        attempt: &Attempt<'_>,
        backoff: &mut Backoff,
        now: i64,
        err: Error,
    ) -> Result<Arc<Credential>, Error> {
        Counters::bump(&self.counters.failures);
        backoff.failures += 1;
        let delay = (1i64 << (backoff.failures - 1).min(6)).min(60);
        backoff.until = now + delay;
        backoff.last = err.to_string();
        tracing::error!(
            account = attempt.account,
            credential = attempt.kind.as_str(),
            "refresh failed: {err}; next attempt in {delay}s"
        );
        attempt.current.clone().ok_or(err)
    }

    /// Stores the fetched credential (under `lease`) and makes it the current one. It is
    /// used even if it cannot be stored: a store outage must not burn the quota.
    async fn store_new(
        &self,
        attempt: &Attempt<'_>,
        credential: &Arc<Credential>,
        lease: Option<Fence>,
    ) {
        if let Err(err) = self.store.save(&attempt.key, credential, lease).await {
            Counters::bump(&self.counters.store_failures);
            tracing::warn!(
                account = attempt.account,
                "credential store {} write failed: {err}; the fetched {} is used anyway",
                self.store.name(),
                attempt.kind.as_str()
            );
        }
        attempt.state.remember_refresh_token(credential);
        attempt.slot.current.store(Some(credential.clone()));
        tracing::info!(
            account = attempt.account,
            credential = attempt.kind.as_str(),
            expires_in = credential.expires_at - credential.fetched_at,
            "fetched a new {}",
            attempt.kind.as_str()
        );
    }

    /// A new credential, and an authorizer's refresh token to store with it.
    async fn fetch(
        &self,
        state: &AccountState,
        kind: CredentialKind,
    ) -> Result<(Fetched, Option<String>), Error> {
        if state.secrets.source == TokenSource::Authorizer && kind == CredentialKind::AccessToken {
            let tokens = self.fetch_authorizer_token(state).await?;
            return Ok((tokens.access, Some(tokens.refresh_token)));
        }
        self.fetch_one(state, kind)
            .await
            .map(|fetched| (fetched, None))
    }

    async fn fetch_one(
        &self,
        state: &AccountState,
        kind: CredentialKind,
    ) -> Result<Fetched, Error> {
        let secrets = &state.secrets;
        match secrets.source {
            // `refresh` refuses their jsapi_tickets before it gets here.
            TokenSource::WeCom { .. } => {
                return self
                    .wecom
                    .gettoken(&secrets.app_id, secrets.secret.expose_secret())
                    .await;
            }
            TokenSource::Component => return self.fetch_component_token(state).await,
            TokenSource::WeChat | TokenSource::Authorizer => {}
        }
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
}
