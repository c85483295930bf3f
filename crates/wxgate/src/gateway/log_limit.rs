//! Rate limits for refusal log lines.
//!
//! A refusal is logged so that the person setting up an account sees why WeChat's
//! request failed; an attacker who sends a million refused requests must not turn that
//! into a million lines (1.33 M requests to unknown accounts once wrote 432 MB in
//! 20 s). Each bucket, one per account and refusal outcome, logs at most
//! [`LINES_PER_WINDOW`] lines per [`WINDOW`]; the next line it logs says how many were
//! suppressed since the one before. Requests for unknown accounts share one bucket,
//! whatever name they use: the attacker chooses the names. The metrics still count
//! every request.
//!
//! The check is three relaxed atomic operations on the bucket, without a lock: it runs
//! on every refused request.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::metrics::{Outcome, OUTCOME_COUNT};

/// The length of a bucket's window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines a bucket logs per window.
pub const LINES_PER_WINDOW: u64 = 5;

#[derive(Debug, Default)]
struct Bucket {
    /// Milliseconds since the limiter started, when the current window began.
    window_start_ms: AtomicU64,
    /// Lines logged (or attempted) in the current window.
    logged: AtomicU64,
    /// Lines suppressed since the last logged one.
    suppressed: AtomicU64,
    /// When the last line was logged.
    last_logged_ms: AtomicU64,
}

/// The limiter: one bucket per account slot (as in [`crate::metrics::Metrics::slot`],
/// the last slot standing for every unknown account) and outcome.
#[derive(Debug)]
pub struct LogLimit {
    started: Instant,
    window_ms: u64,
    lines: u64,
    slots: usize,
    buckets: Box<[Bucket]>,
}

/// Permission to log one line, with what was suppressed before it. Its `Display` is
/// empty when nothing was, else ` (N similar refusals suppressed in the last S s)`, to
/// append to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// Lines of this bucket suppressed since its previous line.
    pub suppressed: u64,
    /// Time since that previous line.
    pub since: Duration,
}

impl fmt::Display for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.suppressed == 0 {
            return Ok(());
        }
        write!(
            f,
            " ({} similar refusal{} suppressed in the last {} s)",
            self.suppressed,
            if self.suppressed == 1 { "" } else { "s" },
            self.since.as_secs().max(1)
        )
    }
}

impl LogLimit {
    /// A limiter for `accounts` configured accounts (plus the unknown slot), with the
    /// default window and rate.
    pub fn new(accounts: usize) -> Self {
        LogLimit::with_rate(accounts, WINDOW, LINES_PER_WINDOW)
    }

    /// A limiter that lets each bucket log `lines` lines per `window`.
    pub fn with_rate(accounts: usize, window: Duration, lines: u64) -> Self {
        let slots = accounts + 1;
        LogLimit {
            started: Instant::now(),
            window_ms: (window.as_millis() as u64).max(1),
            lines,
            slots,
            buckets: (0..slots * OUTCOME_COUNT)
                .map(|_| Bucket::default())
                .collect(),
        }
    }

    /// Whether a refusal of the account in `slot` with `outcome` may be logged now.
    /// `None`: suppress it (it is counted, and the bucket's next line reports it).
    pub fn check(&self, slot: usize, outcome: Outcome) -> Option<Permit> {
        let slot = slot.min(self.slots - 1);
        let bucket = &self.buckets[slot * OUTCOME_COUNT + outcome.index()];
        let now = self.started.elapsed().as_millis() as u64;
        let start = bucket.window_start_ms.load(Relaxed);
        if now.saturating_sub(start) >= self.window_ms
            && bucket
                .window_start_ms
                .compare_exchange(start, now, Relaxed, Relaxed)
                .is_ok()
        {
            bucket.logged.store(0, Relaxed);
        }
        if bucket.logged.fetch_add(1, Relaxed) >= self.lines {
            bucket.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        let last = bucket.last_logged_ms.swap(now, Relaxed);
        Some(Permit {
            suppressed: bucket.suppressed.swap(0, Relaxed),
            since: Duration::from_millis(now.saturating_sub(last)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_a_few_lines_then_reports_what_it_suppressed() {
        let limit = LogLimit::with_rate(2, Duration::from_millis(200), 3);
        let logged = (0..10_000)
            .filter(|_| limit.check(2, Outcome::UnknownAccount).is_some())
            .count();
        assert_eq!(logged, 3);
        std::thread::sleep(Duration::from_millis(250));
        let permit = limit
            .check(2, Outcome::UnknownAccount)
            .expect("a new window");
        assert_eq!(permit.suppressed, 9_997);
        assert!(permit.since >= Duration::from_millis(200), "{permit:?}");
        assert!(permit
            .to_string()
            .starts_with(" (9997 similar refusals suppressed in the last "));
        // Reported once only.
        assert_eq!(
            limit.check(2, Outcome::UnknownAccount).unwrap().suppressed,
            0
        );
    }

    #[test]
    fn buckets_are_per_account_and_outcome() {
        let limit = LogLimit::with_rate(2, Duration::from_secs(60), 1);
        assert!(limit.check(0, Outcome::BadSignature).is_some());
        assert!(limit.check(0, Outcome::BadSignature).is_none());
        assert!(limit.check(1, Outcome::BadSignature).is_some());
        assert!(limit.check(0, Outcome::StaleTimestamp).is_some());
        // Every slot past the configured accounts is the one unknown slot.
        assert!(limit.check(2, Outcome::UnknownAccount).is_some());
        assert!(limit.check(7, Outcome::UnknownAccount).is_none());
    }

    #[test]
    fn permit_without_suppression_adds_nothing() {
        let permit = Permit {
            suppressed: 0,
            since: Duration::ZERO,
        };
        assert_eq!(permit.to_string(), "");
        let one = Permit {
            suppressed: 1,
            since: Duration::from_millis(10),
        };
        assert_eq!(
            one.to_string(),
            " (1 similar refusal suppressed in the last 1 s)"
        );
    }

    #[test]
    fn concurrent_checks_stay_within_the_rate() {
        let limit = std::sync::Arc::new(LogLimit::with_rate(0, Duration::from_secs(60), 5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    (0..5_000)
                        .filter(|_| limit.check(0, Outcome::BadRequest).is_some())
                        .count()
                })
            })
            .collect();
        let logged: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(logged, 5);
    }
}
