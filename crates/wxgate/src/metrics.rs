//! Prometheus metrics, kept in atomics: no lock on the request path.
//!
//! * `wxgate_requests_total{account, method, outcome}`: counter.
//! * `wxgate_request_duration_seconds{method}`: histogram.
//! * `wxgate_dedup_entries{account}`: gauge, filled at scrape time by the caller.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a request ended. The label values are stable: dashboards rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verification echoed, or message answered.
    Ok,
    /// A retry answered from the dedup cache.
    Duplicate,
    /// Handling failed inside wxgate; `success` was answered.
    InternalError,
    /// `signature` or `msg_signature` missing or wrong.
    BadSignature,
    /// Timestamp outside the window.
    StaleTimestamp,
    /// Plaintext request to a safe-mode account, or encrypted to a keyless one.
    WrongMode,
    /// Malformed XML or JSON, DOCTYPE, missing parameter or field.
    BadRequest,
    /// Decryption or AppID check failed.
    DecryptFailed,
    /// Body over the limit.
    TooLarge,
    /// No such account.
    UnknownAccount,
}

const OUTCOMES: [Outcome; 10] = [
    Outcome::Ok,
    Outcome::Duplicate,
    Outcome::InternalError,
    Outcome::BadSignature,
    Outcome::StaleTimestamp,
    Outcome::WrongMode,
    Outcome::BadRequest,
    Outcome::DecryptFailed,
    Outcome::TooLarge,
    Outcome::UnknownAccount,
];

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Duplicate => "duplicate",
            Outcome::InternalError => "internal_error",
            Outcome::BadSignature => "bad_signature",
            Outcome::StaleTimestamp => "stale_timestamp",
            Outcome::WrongMode => "wrong_mode",
            Outcome::BadRequest => "bad_request",
            Outcome::DecryptFailed => "decrypt_failed",
            Outcome::TooLarge => "too_large",
            Outcome::UnknownAccount => "unknown_account",
        }
    }

    /// Its position among the outcomes, below [`OUTCOME_COUNT`].
    pub fn index(self) -> usize {
        OUTCOMES.iter().position(|o| *o == self).expect("listed")
    }
}

/// How many outcomes there are.
pub const OUTCOME_COUNT: usize = OUTCOMES.len();

/// Request method, as far as metrics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// URL verification.
    Get,
    /// Message push.
    Post,
}

impl Method {
    fn index(self) -> usize {
        match self {
            Method::Get => 0,
            Method::Post => 1,
        }
    }
    fn as_str(self) -> &'static str {
        ["GET", "POST"][self.index()]
    }
}

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// All counters. Accounts are fixed at start-up; requests for unknown accounts are
/// counted under the label `account=""`.
#[derive(Debug)]
pub struct Metrics {
    accounts: Vec<String>,
    /// [account slot][method][outcome]; the last slot is the unknown account.
    requests: Vec<[[AtomicU64; OUTCOMES.len()]; 2]>,
    latency: [Histogram; 2],
}

impl Metrics {
    /// Counters for these account names.
    pub fn new(accounts: Vec<String>) -> Self {
        let slots = accounts.len() + 1;
        Metrics {
            accounts,
            requests: (0..slots).map(|_| Default::default()).collect(),
            latency: Default::default(),
        }
    }

    /// The slot of an account name (the unknown slot when not configured).
    pub fn slot(&self, account: &str) -> usize {
        self.accounts
            .iter()
            .position(|a| a == account)
            .unwrap_or(self.accounts.len())
    }

    /// Counts one finished request.
    pub fn record(&self, slot: usize, method: Method, outcome: Outcome, elapsed: Duration) {
        let slot = slot.min(self.accounts.len());
        self.requests[slot][method.index()][outcome.index()].fetch_add(1, Ordering::Relaxed);
        let histogram = &self.latency[method.index()];
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram.sum_ns.fetch_add(
            elapsed.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// The count for one label set (for tests).
    pub fn count(&self, account: &str, method: Method, outcome: Outcome) -> u64 {
        self.requests[self.slot(account)][method.index()][outcome.index()].load(Ordering::Relaxed)
    }

    /// Prometheus text exposition; `extra` is appended (gauges owned elsewhere).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP wxgate_requests_total Callback requests by account, method and outcome.\n",
        );
        out.push_str("# TYPE wxgate_requests_total counter\n");
        for (slot, per_method) in self.requests.iter().enumerate() {
            let account = self.accounts.get(slot).map(String::as_str).unwrap_or("");
            for method in [Method::Get, Method::Post] {
                for outcome in OUTCOMES {
                    let n = per_method[method.index()][outcome.index()].load(Ordering::Relaxed);
                    if n > 0 || (slot < self.accounts.len() && outcome == Outcome::Ok) {
                        let _ = writeln!(
                            out,
                            "wxgate_requests_total{{account=\"{account}\",method=\"{}\",outcome=\"{}\"}} {n}",
                            method.as_str(),
                            outcome.as_str()
                        );
                    }
                }
            }
        }
        out.push_str(
            "# HELP wxgate_request_duration_seconds Time from request head to response.\n",
        );
        out.push_str("# TYPE wxgate_request_duration_seconds histogram\n");
        for method in [Method::Get, Method::Post] {
            let histogram = &self.latency[method.index()];
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "wxgate_request_duration_seconds_bucket{{method=\"{}\",le=\"{bound}\"}} {cumulative}",
                    method.as_str()
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "wxgate_request_duration_seconds_bucket{{method=\"{}\",le=\"+Inf\"}} {count}",
                method.as_str()
            );
            let _ = writeln!(
                out,
                "wxgate_request_duration_seconds_sum{{method=\"{}\"}} {}",
                method.as_str(),
                histogram.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "wxgate_request_duration_seconds_count{{method=\"{}\"}} {count}",
                method.as_str()
            );
        }
        out.push_str(extra);
        out
    }
}
