//! What the credential center counts: fetches, failures, foreign refreshes, store
//! failures, and each credential's fetches per quota day.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::CredentialKind;

/// Counters, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CenterStats {
    /// Credentials fetched from WeChat.
    pub fetches: u64,
    /// Refreshes that failed.
    pub failures: u64,
    /// Tokens rejected although wxgate had not replaced them: another system refreshes.
    pub foreign_refreshes: u64,
    /// Store reads or writes that failed.
    pub store_failures: u64,
    /// `api_start_push_ticket` calls (third-party platforms without a ticket).
    pub ticket_asks: u64,
}

/// The center's running counters.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) fetches: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) foreign: AtomicU64,
    pub(super) store_failures: AtomicU64,
    pub(super) ticket_asks: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> CenterStats {
        CenterStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            foreign_refreshes: self.foreign.load(Ordering::Relaxed),
            store_failures: self.store_failures.load(Ordering::Relaxed),
            ticket_asks: self.ticket_asks.load(Ordering::Relaxed),
        }
    }
}

/// Quota days follow Beijing time (UTC+8), when WeChat resets quotas.
fn quota_day(now: i64) -> i64 {
    (now + 8 * 3600).div_euclid(86_400)
}

/// One credential's fetches in the current quota day.
#[derive(Debug, Default)]
pub(super) struct DailyFetches(Mutex<(i64, u32)>);

impl DailyFetches {
    /// Fetches so far in the last quota day counted.
    pub(super) fn today(&self) -> u32 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Counts one fetch at `now`; warns from 80 % of `daily_quota` (access tokens), every
    /// tenth fetch.
    pub(super) fn count(&self, account: &str, kind: CredentialKind, now: i64, daily_quota: u32) {
        let mut today = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let day = quota_day(now);
        if today.0 != day {
            *today = (day, 0);
        }
        today.1 += 1;
        let warn_at = (daily_quota as u64 * 8 / 10) as u32;
        if kind == CredentialKind::AccessToken && today.1 >= warn_at && today.1 % 10 == warn_at % 10
        {
            tracing::warn!(
                account,
                fetches = today.1,
                quota = daily_quota,
                "{} access_token fetches today, {}% of the daily quota: look for another system refreshing this AppID",
                today.1,
                today.1 as u64 * 100 / daily_quota.max(1) as u64
            );
        }
    }
}
