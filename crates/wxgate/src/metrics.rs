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

/// Account slots of the counters (and of the log limiter): the accounts of every
/// configuration loaded since start-up, up to this many; more are counted under the
/// unknown account's label.
pub const ACCOUNT_SLOTS: usize = 2048;

/// All counters. Accounts get a slot when a configuration names them (at start-up or a
/// reload) and keep it, so counters never go back; requests for unknown accounts are
/// counted under the label `account=""`.
#[derive(Debug)]
pub struct Metrics {
    accounts: std::sync::RwLock<Vec<String>>,
    /// [account slot][method][outcome]; the last slot is the unknown account.
    requests: Vec<[[AtomicU64; OUTCOMES.len()]; 2]>,
    latency: [Histogram; 2],
}

impl Metrics {
    /// Counters for these account names.
    pub fn new(accounts: Vec<String>) -> Self {
        let metrics = Metrics {
            accounts: std::sync::RwLock::new(Vec::new()),
            requests: (0..=ACCOUNT_SLOTS).map(|_| Default::default()).collect(),
            latency: Default::default(),
        };
        metrics.register(accounts.iter().map(String::as_str));
        metrics
    }

    /// Gives each new name a slot; returns the names left without one (past
    /// [`ACCOUNT_SLOTS`]).
    pub fn register<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let mut left = Vec::new();
        for name in names {
            if accounts.iter().any(|a| a == name) {
                continue;
            }
            if accounts.len() < ACCOUNT_SLOTS {
                accounts.push(name.to_owned());
            } else {
                left.push(name.to_owned());
            }
        }
        left
    }

    /// The slot of an account name (the unknown slot when it has none).
    pub fn slot(&self, account: &str) -> usize {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|a| a == account)
            .unwrap_or(ACCOUNT_SLOTS)
    }

    /// Counts one finished request.
    pub fn record(&self, slot: usize, method: Method, outcome: Outcome, elapsed: Duration) {
        let slot = slot.min(ACCOUNT_SLOTS);
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
        let accounts = self
            .accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let labelled =
            (accounts.iter().map(String::as_str).enumerate()).chain([(ACCOUNT_SLOTS, "")]);
        for (slot, account) in labelled {
            let per_method = &self.requests[slot];
            for method in [Method::Get, Method::Post] {
                for outcome in OUTCOMES {
                    let n = per_method[method.index()][outcome.index()].load(Ordering::Relaxed);
                    if n > 0 || (slot < ACCOUNT_SLOTS && outcome == Outcome::Ok) {
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
