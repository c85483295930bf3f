//! The wall clock, in one place: Unix seconds, as WeChat's timestamps, expiries and
//! quotas count them. Code that must be testable takes `now` as a parameter instead.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 if the system clock is before 1970).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
