//! Which new messages a request is storing right now, so the worker leaves them alone.
//!
//! A record becomes visible to the worker's `due` read when its commit does, a moment
//! before the request that stored it can start its first attempt (the one whose reply
//! WeChat is waiting for). Without a claim, a worker round in that moment takes the
//! record, and its reply goes out late (or not at all for an Official Account's
//! passive reply). The request claims the message's key before the commit and lets go
//! after its attempt is in `in_flight`; the worker skips a never attempted record whose
//! key is claimed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The keys (account and dedup key) being stored by requests, with how many requests
/// store each (WeChat's retries of one message may overlap).
#[derive(Debug, Default)]
pub(super) struct Accepting {
    keys: Mutex<HashMap<(String, String), usize>>,
}

impl Accepting {
    /// Claims a message's key until the returned guard is dropped.
    pub(super) fn claim(self: &Arc<Self>, account: &str, dedup_key: &str) -> Claim {
        let key = (account.to_owned(), dedup_key.to_owned());
        *self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default() += 1;
        Claim {
            accepting: Arc::clone(self),
            key,
        }
    }

    /// Whether a request is storing this message now.
    pub(super) fn is_claimed(&self, account: &str, dedup_key: &str) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(account.to_owned(), dedup_key.to_owned()))
    }
}

/// A request's claim on a message's key; dropped when its first attempt has started
/// (or the message turned out to be a retry, or storing it failed).
#[derive(Debug)]
pub(super) struct Claim {
    accepting: Arc<Accepting>,
    key: (String, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = self
            .accepting
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = keys.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                keys.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_claimed_while_any_of_its_claims_lives() {
        let accepting = Arc::new(Accepting::default());
        let first = accepting.claim("acme", "m1");
        let second = accepting.claim("acme", "m1");
        assert!(accepting.is_claimed("acme", "m1"));
        assert!(!accepting.is_claimed("acme", "m2"));
        assert!(!accepting.is_claimed("other", "m1"));
        drop(first);
        assert!(accepting.is_claimed("acme", "m1"));
        drop(second);
        assert!(!accepting.is_claimed("acme", "m1"));
        assert!(accepting.keys.lock().unwrap().is_empty());
    }
}
