//! Sign-in throttling policy: after a few failures a key (a username, or a
//! client address) is locked for a time that doubles with each further
//! failure, up to a cap. The arithmetic is here, pure; the counters live in
//! the database so every instance sees the same ones.

use crate::config::ThrottleSettings;
use crate::domain::UnixTime;
use crate::storage::throttles::ThrottleRecord;

/// The counters a sign-in attempt touches.
#[derive(Debug, Clone)]
pub struct ThrottleKeys {
    pub account: String,
    pub ip: String,
}

impl ThrottleKeys {
    pub fn for_attempt(normalised_username: &str, client_ip: &str) -> Self {
        Self {
            account: format!("account:{normalised_username}"),
            ip: format!("ip:{client_ip}"),
        }
    }
}

/// How long `record` keeps its key locked after `now`, if at all.
pub fn lock_remaining(
    record: &ThrottleRecord,
    max_failures: u32,
    settings: &ThrottleSettings,
    now: UnixTime,
) -> Option<i64> {
    if record.window_started_at < now - settings.window_secs || record.failures < max_failures {
        return None;
    }
    let doublings = (record.failures - max_failures).min(20);
    let lock = settings
        .base_lock_secs
        .saturating_mul(1_i64 << doublings)
        .min(settings.max_lock_secs);
    let until = record.last_failure_at.saturating_add(lock);
    (until > now).then(|| until - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            account_max_failures: 5,
            ip_max_failures: 20,
            window_secs: 900,
            base_lock_secs: 30,
            max_lock_secs: 900,
        }
    }

    fn record(failures: u32, last_failure_at: i64) -> ThrottleRecord {
        ThrottleRecord {
            failures,
            window_started_at: 1_000,
            last_failure_at,
        }
    }

    #[test]
    fn below_the_limit_nothing_is_locked() {
        assert_eq!(
            lock_remaining(&record(4, 1_010), 5, &settings(), 1_010),
            None
        );
    }

    #[test]
    fn the_lock_doubles_per_failure_up_to_the_cap() {
        let s = settings();
        assert_eq!(lock_remaining(&record(5, 1_010), 5, &s, 1_010), Some(30));
        assert_eq!(lock_remaining(&record(6, 1_010), 5, &s, 1_010), Some(60));
        assert_eq!(lock_remaining(&record(7, 1_010), 5, &s, 1_010), Some(120));
        assert_eq!(lock_remaining(&record(40, 1_010), 5, &s, 1_010), Some(900));
    }

    #[test]
    fn the_lock_ends_when_its_time_has_passed_or_the_window_is_over() {
        let s = settings();
        assert_eq!(lock_remaining(&record(5, 1_010), 5, &s, 1_040), None);
        assert_eq!(lock_remaining(&record(50, 1_890), 5, &s, 1_901), None);
    }
}
