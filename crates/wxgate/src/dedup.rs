//! Remembers the answer given to each recent push, so a WeChat retry (same `MsgId`, or
//! same sender + `CreateTime` + event for events) gets the same answer without running
//! the rules twice.
//!
//! Memory is bounded: at most `capacity` entries per account, each kept `ttl_s` seconds
//! (WeChat retries three times within about 15 s; the default keeps 60 s).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Default entries kept per account.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default seconds an answer is kept.
pub const DEFAULT_TTL_S: i64 = 60;

/// The answer remembered for a push: the plaintext reply XML, or `None` for `success`.
pub type Remembered = Option<Arc<str>>;

/// A bounded, expiring map from dedup key to answer.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    ttl_s: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    answers: HashMap<String, (i64, Remembered)>,
    order: VecDeque<(i64, String)>,
}

impl Dedup {
    /// A cache of at most `capacity` entries kept `ttl_s` seconds.
    pub fn new(capacity: usize, ttl_s: i64) -> Self {
        Dedup {
            capacity: capacity.max(1),
            ttl_s,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The answer given to `key` within the last `ttl_s` seconds.
    pub fn get(&self, key: &str, now: i64) -> Option<Remembered> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.answers.get(key) {
            Some((expires, answer)) if *expires > now => Some(answer.clone()),
            _ => None,
        }
    }

    /// Remembers the answer given to `key`.
    pub fn put(&self, key: String, answer: Remembered, now: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { answers, order } = &mut *inner;
        while let Some((expires, _)) = order.front() {
            if *expires > now && order.len() < self.capacity {
                break;
            }
            let (expires, old) = order.pop_front().expect("front exists");
            // Only drop the map entry if it was not refreshed by a later put.
            if answers.get(&old).is_some_and(|(e, _)| *e == expires) {
                answers.remove(&old);
            }
        }
        let expires = now + self.ttl_s;
        order.push_back((expires, key.clone()));
        answers.insert(key, (expires, answer));
    }

    /// Entries currently held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .answers
            .len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry() {
        let dedup = Dedup::new(10, 60);
        dedup.put("a".into(), Some("<xml/>".into()), 100);
        assert_eq!(dedup.get("a", 159), Some(Some("<xml/>".into())));
        assert_eq!(dedup.get("a", 160), None);
        assert_eq!(dedup.get("b", 100), None);
        dedup.put("b".into(), None, 100);
        assert_eq!(dedup.get("b", 100), Some(None));
    }

    #[test]
    fn memory_is_bounded() {
        let dedup = Dedup::new(100, 60);
        for i in 0..10_000 {
            dedup.put(format!("k{i}"), None, 100);
        }
        assert!(dedup.len() <= 100, "{} entries", dedup.len());
        assert_eq!(dedup.get("k9999", 100), Some(None));
        assert_eq!(dedup.get("k0", 100), None);
    }

    #[test]
    fn expired_entries_are_dropped_on_insert() {
        let dedup = Dedup::new(1000, 10);
        for i in 0..50 {
            dedup.put(format!("k{i}"), None, i);
        }
        dedup.put("late".into(), None, 100);
        assert_eq!(dedup.len(), 1);
    }

    #[test]
    fn refreshed_key_survives_its_old_slot() {
        let dedup = Dedup::new(1000, 10);
        dedup.put("a".into(), None, 0);
        dedup.put("a".into(), Some("x".into()), 5);
        dedup.put("b".into(), None, 12);
        assert_eq!(dedup.get("a", 12), Some(Some("x".into())));
    }
}
