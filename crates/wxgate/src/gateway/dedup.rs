//! Remembers the answer given to each recent push, so a WeChat retry (same `MsgId`, or
//! same sender + `CreateTime` + event for events) gets the same answer without running
//! the rules twice.
//!
//! Memory is bounded twice per account: at most `capacity` entries, and at most
//! `max_bytes` for the keys and the remembered answers together (an echo of a 64 KiB
//! text is a 64 KiB answer, so a count alone does not bound memory). Each entry is kept
//! `ttl_s` seconds (WeChat retries three times within about 15 s; the default keeps
//! 60 s); when a bound is reached the oldest entries go first, so at worst a retry runs
//! the rules again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Default entries kept per account.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default bytes of keys and answers kept per account.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Default seconds an answer is kept.
pub const DEFAULT_TTL_S: i64 = 60;
/// What one entry costs besides its key and answer: the map slot, the queue slot and
/// the allocations' headers, rounded up.
pub const ENTRY_OVERHEAD: usize = 128;

/// The answer remembered for a push: the plaintext reply XML, or `None` for `success`.
pub type Remembered = Option<Arc<str>>;

/// A bounded, expiring map from dedup key to answer.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    max_bytes: usize,
    ttl_s: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    answers: HashMap<Arc<str>, (i64, Remembered)>,
    /// Insertion order; a key put again is queued again, and its older slot is skipped
    /// when it comes out.
    order: VecDeque<(i64, Arc<str>)>,
    /// Bytes held: every queued key (shared with the map), every answer, and
    /// [`ENTRY_OVERHEAD`] per queue slot.
    bytes: usize,
}

fn answer_bytes(answer: &Remembered) -> usize {
    answer.as_ref().map_or(0, |a| a.len())
}

impl Dedup {
    /// A cache of at most `capacity` entries and `max_bytes` bytes, kept `ttl_s` seconds.
    pub fn new(capacity: usize, max_bytes: usize, ttl_s: i64) -> Self {
        Dedup {
            capacity: capacity.max(1),
            max_bytes,
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

    /// Remembers the answer given to `key`. An entry larger than the whole budget is
    /// not kept.
    pub fn put(&self, key: String, answer: Remembered, now: i64) {
        let cost = key.len() + answer_bytes(&answer) + ENTRY_OVERHEAD;
        if cost > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner {
            answers,
            order,
            bytes,
        } = &mut *inner;
        while let Some((expires, _)) = order.front() {
            let fits = order.len() < self.capacity && *bytes + cost <= self.max_bytes;
            if *expires > now && fits {
                break;
            }
            let (expires, old) = order.pop_front().expect("front exists");
            *bytes -= old.len() + ENTRY_OVERHEAD;
            // Only drop the map entry if it was not refreshed by a later put.
            if answers.get(&old).is_some_and(|(e, _)| *e == expires) {
                if let Some((_, answer)) = answers.remove(&old) {
                    *bytes -= answer_bytes(&answer);
                }
            }
        }
        let key: Arc<str> = Arc::from(key);
        let expires = now + self.ttl_s;
        *bytes += cost;
        order.push_back((expires, key.clone()));
        if let Some((_, replaced)) = answers.insert(key, (expires, answer)) {
            *bytes -= answer_bytes(&replaced);
        }
    }

    /// Entries currently held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .answers
            .len()
    }

    /// Bytes currently held: keys, answers and [`ENTRY_OVERHEAD`] per entry. Never more
    /// than the budget given to [`Dedup::new`].
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The Prometheus gauges `wxgate_dedup_entries{account}` and `wxgate_dedup_bytes{account}`
/// for these caches.
pub fn gauges<'a>(caches: impl Iterator<Item = (&'a str, &'a Dedup)> + Clone) -> String {
    use std::fmt::Write;
    let mut out = String::from("# HELP wxgate_dedup_entries Answers held for WeChat retries.\n# TYPE wxgate_dedup_entries gauge\n");
    for (name, dedup) in caches.clone() {
        let _ = writeln!(
            out,
            "wxgate_dedup_entries{{account=\"{name}\"}} {}",
            dedup.len()
        );
    }
    out.push_str("# HELP wxgate_dedup_bytes Bytes of keys and answers held for WeChat retries (at most 16 MiB per account).\n# TYPE wxgate_dedup_bytes gauge\n");
    for (name, dedup) in caches {
        let _ = writeln!(
            out,
            "wxgate_dedup_bytes{{account=\"{name}\"}} {}",
            dedup.bytes()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry() {
        let dedup = Dedup::new(10, DEFAULT_MAX_BYTES, 60);
        dedup.put("a".into(), Some("<xml/>".into()), 100);
        assert_eq!(dedup.get("a", 159), Some(Some("<xml/>".into())));
        assert_eq!(dedup.get("a", 160), None);
        assert_eq!(dedup.get("b", 100), None);
        dedup.put("b".into(), None, 100);
        assert_eq!(dedup.get("b", 100), Some(None));
    }

    #[test]
    fn memory_is_bounded() {
        let dedup = Dedup::new(100, DEFAULT_MAX_BYTES, 60);
        for i in 0..10_000 {
            dedup.put(format!("k{i}"), None, 100);
        }
        assert!(dedup.len() <= 100, "{} entries", dedup.len());
        assert_eq!(dedup.get("k9999", 100), Some(None));
        assert_eq!(dedup.get("k0", 100), None);
    }

    #[test]
    fn expired_entries_are_dropped_on_insert() {
        let dedup = Dedup::new(1000, DEFAULT_MAX_BYTES, 10);
        for i in 0..50 {
            dedup.put(format!("k{i}"), None, i);
        }
        dedup.put("late".into(), None, 100);
        assert_eq!(dedup.len(), 1);
    }

    #[test]
    fn refreshed_key_survives_its_old_slot() {
        let dedup = Dedup::new(1000, DEFAULT_MAX_BYTES, 10);
        dedup.put("a".into(), None, 0);
        dedup.put("a".into(), Some("x".into()), 5);
        dedup.put("b".into(), None, 12);
        assert_eq!(dedup.get("a", 12), Some(Some("x".into())));
    }

    #[test]
    fn large_answers_stay_under_the_byte_budget() {
        let budget = 1024 * 1024;
        let dedup = Dedup::new(10_000, budget, 60);
        let answer: Arc<str> = Arc::from("x".repeat(64 * 1024));
        for i in 0..1000 {
            dedup.put(format!("m:{i}"), Some(answer.clone()), 100);
            assert!(dedup.bytes() <= budget, "{} bytes after {i}", dedup.bytes());
        }
        // The newest entries are kept, as many as fit.
        assert_eq!(dedup.get("m:999", 100), Some(Some(answer.clone())));
        assert_eq!(dedup.get("m:0", 100), None);
        assert_eq!(dedup.len(), budget / (64 * 1024 + 5 + ENTRY_OVERHEAD));
    }

    #[test]
    fn byte_count_follows_refreshes_and_expiry() {
        let dedup = Dedup::new(1000, DEFAULT_MAX_BYTES, 10);
        dedup.put("a".into(), Some("12345".into()), 0);
        assert_eq!(dedup.bytes(), 1 + 5 + ENTRY_OVERHEAD);
        // Put again: the older queue slot still counts until it comes out.
        dedup.put("a".into(), Some("1".into()), 5);
        assert_eq!(dedup.bytes(), 2 * (1 + ENTRY_OVERHEAD) + 1);
        dedup.put("b".into(), None, 12);
        assert_eq!(dedup.bytes(), (1 + ENTRY_OVERHEAD) * 2 + 1);
        dedup.put("c".into(), None, 100);
        assert_eq!(dedup.bytes(), 1 + ENTRY_OVERHEAD);
        assert_eq!(dedup.len(), 1);
    }

    #[test]
    fn an_answer_over_the_budget_is_not_kept() {
        let dedup = Dedup::new(10, 1000, 60);
        dedup.put("small".into(), None, 0);
        dedup.put("big".into(), Some("x".repeat(2000).into()), 0);
        assert_eq!(dedup.get("big", 0), None);
        assert_eq!(dedup.get("small", 0), Some(None), "nothing evicted for it");
    }
}
