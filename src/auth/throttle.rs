//! Sign-in throttling policy: after a few failures a key (a username, or a
//! client address) is locked for a time that doubles with each further
//! failure, up to a cap. The arithmetic is here, pure; the counters live in
//! the database so every instance sees the same ones.

use std::net::{IpAddr, Ipv6Addr};

use crate::config::ThrottleSettings;
use crate::domain::{TokenDigest, UnixTime};
use crate::storage::throttles::ThrottleRecord;

/// The counters a sign-in attempt touches.
#[derive(Debug, Clone)]
pub struct ThrottleKeys {
    /// `account:<name>` for an unknown browser, or `browser:<digest>` for a
    /// browser that signed in to this account before (LG-02).
    pub account: String,
    pub ip: String,
}

impl ThrottleKeys {
    pub fn for_attempt(normalised_username: &str, client_ip: &str) -> Self {
        Self {
            account: format!("account:{normalised_username}"),
            ip: format!("ip:{}", address_key(client_ip)),
        }
    }

    /// The same attempt from a known browser: its own counter replaces the
    /// account-wide one; the address counter stays.
    pub fn for_known_browser(self, browser: &TokenDigest) -> Self {
        Self {
            account: format!("browser:{}", browser.as_str()),
            ip: self.ip,
        }
    }
}

/// The part of a client address a throttle counts by: an IPv4 address as
/// is; an IPv6 address aggregated to its /64 (one subscriber's usual
/// allocation, so rotating the interface id does not buy fresh counters);
/// an IPv4-mapped IPv6 address as the IPv4 address. Anything unparseable
/// (`unknown`) is its own key.
pub fn address_key(client_ip: &str) -> String {
    match client_ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
        Err(_) => client_ip.to_owned(),
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

    #[test]
    fn addresses_aggregate_ipv6_to_the_64_and_leave_ipv4_alone() {
        for (address, key) in [
            ("203.0.113.7", "203.0.113.7"),
            ("127.0.0.1", "127.0.0.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:0db8:0001:0002::", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "::/64"),
            ("fe80::1", "fe80::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("unknown", "unknown"),
        ] {
            assert_eq!(address_key(address), key, "{address}");
        }
    }

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            account_max_failures: 5,
            ip_max_failures: 20,
            window_secs: 900,
            base_lock_secs: 30,
            max_lock_secs: 900,
            parked_requests_per_ip: 300,
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
