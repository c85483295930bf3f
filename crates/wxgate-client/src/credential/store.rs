//! Where credentials live between processes and restarts: the [`CredentialStore`] trait,
//! its refresh lease ([`Fence`]), its errors, and the in-memory store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::Credential;

/// The fencing token of one grant of a store's refresh lease. A shared store numbers
/// its grants from 1 upwards, so a later grant has a greater fence, and a write made
/// under an older grant can be told apart from one made under the newest.
///
/// A refresh that has no lease (the store refused it or could not be reached) holds no
/// `Fence` at all: it passes `None` where a lease is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence(u64);

impl Fence {
    /// The fence numbered `number` by the store.
    pub fn new(number: u64) -> Fence {
        Fence(number)
    }

    /// Its number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a credential store call failed. The credential center logs it and counts it; a
/// fetched credential is used even when it cannot be stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached, did not answer in time, or failed to read or write
    /// (a Redis outage, a full disk). The outcome of a write is unknown.
    #[error("{0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered, but the stored value is not a credential.
    #[error("the stored credential is not valid JSON ({0}); it was written by something other than wxgate: delete it and wxgate fetches a new one")]
    Corrupt(#[source] serde_json::Error),
    /// The write was made under a lease that a newer refresh has since been granted.
    #[error("lease {fence} was superseded by a newer refresh; the newer token stays")]
    Superseded {
        /// The lease this write was made under.
        fence: Fence,
    },
}

impl StoreError {
    /// A store that cannot be reached or failed, for this reason.
    pub fn unavailable(reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError::Unavailable(reason.into())
    }
}

/// A boxed store future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where credentials live between processes and restarts.
///
/// Keys look like `wxgate:cred:{app_id}:{kind}`. `try_lock` is the refresh lease: a
/// store shared by several instances grants it to one at a time and returns a
/// [`Fence`] that increases with every grant; `save` refuses a write whose fence is
/// older than the newest grant ([`StoreError::Superseded`]). In-process stores grant
/// every lock (the center's own single-flight already serialises refreshes).
pub trait CredentialStore: Send + Sync + 'static {
    /// The stored credential, if any.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>>;
    /// Stores a credential fetched under `lease`, or without a lease (`None`: the lease
    /// was held by another instance past the wait, or the store could not grant it). A
    /// write without a lease is skipped, without an error, while another instance holds
    /// the lease: that holder stores the newer credential.
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        lease: Option<Fence>,
    ) -> StoreFuture<'a, ()>;
    /// Tries to take the refresh lease for `key` for `ttl`: `Some(fence)` when taken,
    /// `None` while another instance holds it.
    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Fence>>;
    /// Releases the lease taken with `fence`.
    fn unlock<'a>(&'a self, key: &'a str, fence: Fence) -> StoreFuture<'a, ()>;
    /// A short name for logs and `/healthz` (`memory`, `redb`, `redis`).
    fn name(&self) -> &'static str;
    /// True for a store several instances share: without its lease, a classic-endpoint
    /// refresh would invalidate the other instances' token, so it is refused.
    fn shared(&self) -> bool;
}

/// The refresh lease of a store that one process alone uses: always granted (the
/// center's single flight already serialises the refreshes of the process), each grant
/// numbered.
#[derive(Debug, Default)]
pub struct LocalLease {
    granted: AtomicU64,
}

impl LocalLease {
    /// A new grant, numbered after the last one.
    pub fn grant(&self) -> Fence {
        Fence::new(self.granted.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Credentials in process memory: lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Credential>>,
    lease: LocalLease,
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
        _lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), credential.clone());
        Box::pin(async { Ok(()) })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        let fence = self.lease.grant();
        Box::pin(async move { Ok(Some(fence)) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, _fence: Fence) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "memory"
    }
    fn shared(&self) -> bool {
        false
    }
}
