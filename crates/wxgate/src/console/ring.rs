//! The ring of recent callbacks the console shows: bounded by entries and by bytes,
//! fed by the callback handler where it counts an outcome. It keeps a message's text
//! (bounded) but never a secret: no query string, no signature, no key.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::metrics::Outcome;

/// The most entries the ring keeps.
pub const MAX_ENTRIES: usize = 1000;
/// The most bytes (of text held by entries, plus a fixed cost each) the ring keeps.
pub const MAX_BYTES: usize = 512 << 10;
/// The longest message text kept, in bytes (cut at a character boundary).
pub const MAX_CONTENT_BYTES: usize = 512;
const MAX_REASON_BYTES: usize = 300;
const ENTRY_OVERHEAD: usize = 96;

/// One finished callback, as the handler saw it.
#[derive(Debug)]
pub struct Call<'a> {
    /// The account's name.
    pub account: &'a str,
    /// `verify` (the GET), `message` or `event`.
    pub kind: &'static str,
    /// The message type (`text`, `event/subscribe`…), empty when unknown.
    pub msg_type: &'a str,
    /// How it ended.
    pub outcome: Outcome,
    /// Time from request head to answer.
    pub latency: Duration,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The message's text (a text's content, an event's key).
    pub content: Option<&'a str>,
}

/// One entry of the ring.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Increases by one per entry; the console polls for those after the last it saw.
    pub seq: u64,
    /// Unix milliseconds (UTC).
    pub at_ms: u64,
    /// The account's name.
    pub account: String,
    /// `verify`, `message` or `event`.
    pub kind: &'static str,
    /// The message type.
    pub msg_type: String,
    /// The outcome's metric label.
    pub outcome: &'static str,
    /// Milliseconds.
    pub latency_ms: f64,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The text, bounded; shown masked unless asked.
    #[serde(skip)]
    content: Option<String>,
}

impl Entry {
    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD
            + self.account.len()
            + self.msg_type.len()
            + self.reason.as_ref().map_or(0, String::len)
            + self.content.as_ref().map_or(0, String::len)
    }

    /// The text as shown: as received when `unmask`, else only its length.
    pub fn content(&self, unmask: bool) -> Option<String> {
        let content = self.content.as_ref()?;
        Some(if unmask {
            content.clone()
        } else {
            format!("<{} chars hidden>", content.chars().count())
        })
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Entry>,
    bytes: usize,
    next_seq: u64,
}

/// The recent callbacks. `Debug` shows only their number and size.
#[derive(Default)]
pub struct Recent {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Recent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.size();
        f.debug_struct("Recent")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

impl Recent {
    /// Adds a finished callback, dropping the oldest entries beyond the bounds.
    pub fn record(&self, call: Call<'_>) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut entry = Entry {
            seq: 0,
            at_ms,
            account: bounded(call.account, 64),
            kind: call.kind,
            msg_type: bounded(call.msg_type, 64),
            outcome: call.outcome.as_str(),
            latency_ms: (call.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            reason: call.reason.map(|r| bounded(&r, MAX_REASON_BYTES)),
            content: call.content.map(|c| bounded(c, MAX_CONTENT_BYTES)),
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        inner.bytes += entry.bytes();
        inner.entries.push_back(entry);
        while inner.entries.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            let Some(old) = inner.entries.pop_front() else {
                break;
            };
            inner.bytes -= old.bytes();
        }
    }

    /// The entries after `seq`, oldest first, at most `limit`.
    pub fn after(&self, seq: u64, limit: usize) -> Vec<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let newer: Vec<&Entry> = inner.entries.iter().filter(|e| e.seq > seq).collect();
        let skip = newer.len().saturating_sub(limit);
        newer.into_iter().skip(skip).cloned().collect()
    }

    /// How many entries and bytes the ring holds.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(content: &'a str) -> Call<'a> {
        Call {
            account: "shop",
            kind: "message",
            msg_type: "text",
            outcome: Outcome::Ok,
            latency: Duration::from_micros(1500),
            reason: None,
            content: Some(content),
        }
    }

    #[test]
    fn the_ring_is_bounded_by_entries_and_bytes() {
        let recent = Recent::default();
        for _ in 0..MAX_ENTRIES + 10 {
            recent.record(call("hi"));
        }
        assert_eq!(recent.size().0, MAX_ENTRIES);
        assert_eq!(recent.after(0, usize::MAX)[0].seq, 11);
        let big = "x".repeat(10_000);
        for _ in 0..MAX_ENTRIES {
            recent.record(call(&big));
        }
        let (entries, bytes) = recent.size();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes");
        assert_eq!(
            entries,
            MAX_BYTES / (ENTRY_OVERHEAD + 4 + 4 + MAX_CONTENT_BYTES + 3)
        );
    }

    #[test]
    fn content_is_cut_and_masked_unless_asked() {
        let recent = Recent::default();
        recent.record(call(&"消息".repeat(200)));
        let entry = &recent.after(0, 10)[0];
        let shown = entry.content(true).unwrap();
        assert!(shown.len() <= MAX_CONTENT_BYTES + 3 && shown.ends_with('…'));
        assert_eq!(entry.content(false).unwrap(), "<171 chars hidden>");
        assert_eq!(entry.latency_ms, 1.5);
        assert_eq!(recent.after(1, 10).len(), 0);
        assert!(
            !format!("{recent:?}").contains("消息"),
            "Debug shows no content"
        );
    }
}
