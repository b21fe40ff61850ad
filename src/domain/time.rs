//! Time as the database stores it: whole seconds since the Unix epoch, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z.
pub type UnixTime = i64;

/// The current time. Code that checks expiry takes `now` as an argument and
/// calls this only at the edge, so tests can pass fixed instants.
pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD` of a Unix time, for pages ("member since").
pub fn format_date(at: UnixTime) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = at.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM` of a Unix time, in UTC, for listings.
pub fn format_time(at: UnixTime) -> String {
    let seconds = at.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        format_date(at),
        seconds / 3_600,
        seconds % 3_600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_iso_calendar_days() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_796_083_200), "2026-12-01");
        assert_eq!(
            format_time(1_796_083_200 + 13 * 3_600 + 7 * 60 + 59),
            "2026-12-01 13:07"
        );
        assert_eq!(format_time(-1), "1969-12-31 23:59");
    }
}
