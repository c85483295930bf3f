//! What the OAuth flow remembers: used states, until they expire, and the result of each
//! code already exchanged.
//!
//! Each instance has a budget per account of `peak_sign_ins_per_s × state_ttl_s`
//! states: every authorization reserves a place until its state expires, and past the
//! budget new authorizations are refused with 503. Without Redis, used states live in
//! that budget, so none is ever forgotten. With Redis, they live there
//! (`wxgate:oauth:state:…`, `wxgate:oauth:code:…`, expiring with the state), the budget
//! bounds how many keys an instance can make Redis hold, and a Redis that does not
//! answer stops callbacks (503) rather than let another instance accept a state twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::redis::SharedSeen;

/// Why the memory cannot take a sign-in now.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The account's budget of unexpired states is used up.
    #[error("too many sign-ins in progress for account {account}: this instance holds at most {capacity} unexpired states (oauth.peak_sign_ins_per_s × state_ttl_s) and refuses new sign-ins rather than forget a used state; try again when older sign-in links expire, or raise peak_sign_ins_per_s")]
    Full {
        /// The account.
        account: String,
        /// Its budget.
        capacity: usize,
    },
    /// Redis is configured but does not answer.
    #[error("the shared OAuth memory (Redis) is unavailable ({0}); sign-in waits until Redis answers, so that no instance accepts a used state again")]
    Shared(crate::redis::RedisError),
}

/// A map whose entries expire, swept in order of expiry (no full scan per request).
#[derive(Debug)]
struct Expiring<V> {
    entries: HashMap<String, (V, i64)>,
    by_expiry: BTreeMap<i64, Vec<String>>,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Expiring {
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
        }
    }
}

impl<V> Expiring<V> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(value, _)| value)
    }

    fn insert(&mut self, key: &str, value: V, expires_at: i64) {
        self.entries.insert(key.to_owned(), (value, expires_at));
        self.by_expiry
            .entry(expires_at)
            .or_default()
            .push(key.to_owned());
    }

    /// Drops the entries whose expiry is before `now`.
    fn sweep(&mut self, now: i64) {
        let live = self.by_expiry.split_off(&now);
        for (at, keys) in std::mem::replace(&mut self.by_expiry, live) {
            for key in keys {
                if self.entries.get(&key).is_some_and(|(_, exp)| *exp == at) {
                    self.entries.remove(&key);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct AccountMemory {
    capacity: usize,
    /// Unexpired authorizations, counted by the second their state expires.
    reserved: BTreeMap<i64, usize>,
    reserved_total: usize,
    /// Used states, until their expiry.
    used: Expiring<()>,
    /// Code → (state, location), until the state's expiry.
    codes: Expiring<(String, String)>,
}

impl AccountMemory {
    fn sweep(&mut self, now: i64) {
        let live = self.reserved.split_off(&now);
        for (_, count) in std::mem::replace(&mut self.reserved, live) {
            self.reserved_total -= count;
        }
        self.used.sweep(now);
        self.codes.sweep(now);
    }
}

/// Used states and exchanged codes, per account.
pub struct OAuthMemory {
    /// Accounts are added (or their budget changed) by a reload, never removed: a used
    /// state stays remembered until its expiry.
    accounts: std::sync::RwLock<HashMap<String, std::sync::Arc<Mutex<AccountMemory>>>>,
}

impl std::fmt::Debug for OAuthMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthMemory")
            .field(
                "accounts",
                &self.accounts.read().map(|a| a.len()).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

/// Redis keys live at least a second, and until the state's expiry.
fn ttl_s(expires_at: i64, now: i64) -> u64 {
    (expires_at - now + 1).max(1) as u64
}

impl OAuthMemory {
    /// A memory holding at most `capacity` unexpired states for each named account.
    pub fn new(budgets: impl IntoIterator<Item = (String, usize)>) -> OAuthMemory {
        let memory = OAuthMemory {
            accounts: std::sync::RwLock::default(),
        };
        memory.set_budgets(budgets);
        memory
    }

    /// Sets each named account's capacity (a reload): a new account starts empty, a
    /// known one keeps what it remembers.
    pub fn set_budgets(&self, budgets: impl IntoIterator<Item = (String, usize)>) {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        for (name, capacity) in budgets {
            let memory = accounts.entry(name).or_default();
            memory.lock().unwrap_or_else(|e| e.into_inner()).capacity = capacity;
        }
    }

    fn with<T>(
        &self,
        account: &str,
        now: i64,
        f: impl FnOnce(&mut AccountMemory) -> Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let memory = self
            .accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned();
        let Some(memory) = memory else {
            return Err(MemoryError::Full {
                account: account.to_owned(),
                capacity: 0,
            });
        };
        let mut memory = memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.sweep(now);
        f(&mut memory)
    }

    /// Reserves room for a new authorization whose state expires at `expires_at`.
    ///
    /// # Errors
    /// [`MemoryError::Full`] when the account's budget is used up.
    pub fn reserve(&self, account: &str, expires_at: i64, now: i64) -> Result<(), MemoryError> {
        self.with(account, now, |memory| {
            if memory.reserved_total >= memory.capacity {
                return Err(MemoryError::Full {
                    account: account.to_owned(),
                    capacity: memory.capacity,
                });
            }
            *memory.reserved.entry(expires_at).or_default() += 1;
            memory.reserved_total += 1;
            Ok(())
        })
    }

    /// Marks a state used until `expires_at`: `Ok(true)` the first time, `Ok(false)` when
    /// it was used before (here, or on another instance through Redis).
    ///
    /// # Errors
    /// Redis unavailable, or (without Redis) a budget already full of used states.
    pub async fn use_state(
        &self,
        shared: Option<&SharedSeen>,
        account: &str,
        state: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, MemoryError> {
        if let Some(shared) = shared {
            return shared
                .claim_raw(
                    &format!("wxgate:oauth:state:{state}"),
                    "1",
                    ttl_s(expires_at, now),
                )
                .await
                .map_err(MemoryError::Shared);
        }
        self.with(account, now, |memory| {
            if memory.used.get(state).is_some() {
                return Ok(false);
            }
            // Only a state this process did not reserve (issued before a restart) can
            // find the memory full: refusing it forgets nothing.
            if memory.used.len() >= memory.capacity {
                return Err(MemoryError::Full {
                    account: account.to_owned(),
                    capacity: memory.capacity,
                });
            }
            memory.used.insert(state, (), expires_at);
            Ok(true)
        })
    }

    /// The state and redirect of a code already exchanged.
    pub async fn code_result(
        &self,
        shared: Option<&SharedSeen>,
        account: &str,
        code: &str,
        now: i64,
    ) -> Option<(String, String)> {
        if let Some(shared) = shared {
            return match shared.get_raw(&format!("wxgate:oauth:code:{code}")).await {
                Ok(value) => value.and_then(|v| serde_json::from_str(&v).ok()),
                Err(error) => {
                    tracing::warn!("shared OAuth memory unavailable ({error})");
                    None
                }
            };
        }
        self.with(account, now, |memory| Ok(memory.codes.get(code).cloned()))
            .ok()
            .flatten()
    }

    /// Remembers the outcome of a code's exchange until the state expires (a cache: at
    /// most one per used state).
    #[allow(clippy::too_many_arguments)]
    pub async fn remember_code(
        &self,
        shared: Option<&SharedSeen>,
        account: &str,
        code: &str,
        state: &str,
        location: &str,
        expires_at: i64,
        now: i64,
    ) {
        if let Some(shared) = shared {
            let value = serde_json::json!([state, location]).to_string();
            let key = format!("wxgate:oauth:code:{code}");
            if let Err(error) = shared.put_raw(&key, &value, ttl_s(expires_at, now)).await {
                tracing::warn!("shared OAuth memory unavailable ({error}); a second arrival of this code will get WeChat's 40163");
            }
            return;
        }
        let _ = self.with(account, now, |memory| {
            if memory.codes.len() < memory.capacity {
                let entry = (state.to_owned(), location.to_owned());
                memory.codes.insert(code, entry, expires_at);
            }
            Ok(())
        });
    }

    /// Unexpired reservations and used states of an account (for tests and metrics).
    pub fn held(&self, account: &str, now: i64) -> (usize, usize) {
        self.with(account, now, |memory| {
            Ok((memory.reserved_total, memory.used.len()))
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// The memory is filled to its budget: the victim's used state is still refused,
    /// and new authorizations are refused rather than anything being forgotten.
    #[test]
    fn a_full_memory_refuses_new_sign_ins_and_forgets_no_used_state() {
        let memory = OAuthMemory::new([("main".to_owned(), 3)]);
        let (now, expires) = (1000, 1600);
        memory.reserve("main", expires, now).unwrap();
        assert!(matches!(
            block_on(memory.use_state(None, "main", "victim", expires, now)),
            Ok(true)
        ));
        for _ in 0..2 {
            memory.reserve("main", expires, now).unwrap();
        }
        let full = memory.reserve("main", expires, now).unwrap_err();
        assert!(full.to_string().contains("peak_sign_ins_per_s"), "{full}");
        // Used states of states this process never reserved (a restart) fill it too.
        for attacker in ["a1", "a2"] {
            assert!(matches!(
                block_on(memory.use_state(None, "main", attacker, expires, now + 1)),
                Ok(true)
            ));
        }
        assert!(matches!(
            block_on(memory.use_state(None, "main", "a3", expires, now + 2)),
            Err(MemoryError::Full { capacity: 3, .. })
        ));
        assert!(
            matches!(
                block_on(memory.use_state(None, "main", "victim", expires, now + 3)),
                Ok(false)
            ),
            "the victim's state is still remembered"
        );
        assert_eq!(memory.held("main", expires), (3, 3));
        // After the states expire (verify_state refuses them from then on), room again.
        assert_eq!(memory.held("main", expires + 1), (0, 0));
        memory.reserve("main", expires + 600, expires + 1).unwrap();
    }

    #[test]
    fn budgets_are_per_account() {
        let memory = OAuthMemory::new([("a".to_owned(), 1), ("b".to_owned(), 1)]);
        memory.reserve("a", 10, 0).unwrap();
        assert!(memory.reserve("a", 10, 0).is_err());
        memory.reserve("b", 10, 0).unwrap();
        assert!(memory.reserve("unknown", 10, 0).is_err());
    }
}
