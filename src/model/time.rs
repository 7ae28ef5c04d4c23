//! Wall-clock instants as the accounts file writes them.
//!
//! The pure model takes "now" as an argument (epoch milliseconds) instead of reading a clock, so
//! the same transitions run under tokio's paused clock, the wall clock, proptest and loom.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;

/// `2025-11-29T19:46:46.123456+00:00`, the form the proxy writes for ban deadlines.
pub fn to_rfc3339(ms: EpochMs) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, false))
        .unwrap_or_default()
}

/// Parses an RFC 3339 instant into epoch milliseconds.
pub fn from_rfc3339(text: &str) -> Option<EpochMs> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// `2025-11-29 13:58:41`, the form the proxy writes for `last_success` and `last_used`.
///
/// Every recorded success writes one, so it is computed and written directly: chrono's `format`
/// parses its pattern on every call, and that was 41% of `group_commit`'s CPU time with 256
/// writers (about 3,600 instructions per update; callgrind on `benches/store.rs`), and chrono's
/// calendar arithmetic cost 630 more. Instants outside years 0..=9999, which chrono writes with a
/// sign (or not at all), go through chrono.
pub fn to_plain(ms: EpochMs) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (year, month, day) = civil_date(ms.div_euclid(DAY_MS));
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return chrono_plain(ms);
    };
    let second_of_day = (ms.rem_euclid(DAY_MS) / 1000) as u32;
    let mut text = *b"0000-00-00 00:00:00";
    for (at, width, value) in [
        (0, 4, year),
        (5, 2, month),
        (8, 2, day),
        (11, 2, second_of_day / 3600),
        (14, 2, second_of_day / 60 % 60),
        (17, 2, second_of_day % 60),
    ] {
        let mut value = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // ASCII digits and separators only: always valid UTF-8.
    String::from(std::str::from_utf8(&text).unwrap_or_default())
}

/// [`to_plain`]'s format as chrono writes it (with a sign outside years 0..=9999, empty where
/// chrono has no such instant): the slow way, for the instants the fast way does not cover.
fn chrono_plain(ms: EpochMs) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01: whole 400-year
/// eras of 146,097 days, then the year within the era counted from March, so that the leap day
/// is the era-year's last and the month lengths repeat in a fixed 153-day pattern of five.
fn civil_date(days: i64) -> (i64, u32, u32) {
    // Days from 0000-03-01, the start of an era, to 1970-01-01.
    let from_era_start = days + 719_468;
    let era = from_era_start.div_euclid(146_097);
    let day_of_era = from_era_start.rem_euclid(146_097); // 0..=146_096
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365, from March 1st
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_to_the_millisecond() {
        let ms = 1_764_445_606_123;
        let s = to_rfc3339(ms);
        assert_eq!(s, "2025-11-29T19:46:46.123000+00:00");
        assert_eq!(from_rfc3339(&s), Some(ms));
        assert_eq!(from_rfc3339(""), None);
    }

    #[test]
    fn plain_times_are_what_chronos_pattern_writes() {
        assert_eq!(to_plain(1_764_424_721_999), "2025-11-29 13:58:41");
        let year_10000 = 253_402_300_800_000;
        for ms in [
            0,
            -1,
            -62_167_219_200_000, // 0000-01-01 00:00:00
            -62_167_219_200_001, // one millisecond into year -1
            year_10000 - 1,
            year_10000,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(to_plain(ms), chrono_plain(ms), "{ms}");
        }
        // Every day from 1600 to 2500 (leap rules of all three kinds), at a time that varies.
        let day_ms = 86_400_000_i64;
        for day in -135_140..194_000_i64 {
            let ms = day * day_ms + (day * 7_777_777).rem_euclid(day_ms);
            assert_eq!(to_plain(ms), chrono_plain(ms), "{ms}");
        }
        // A pseudo-random walk over four centuries.
        let mut ms: EpochMs = 946_684_800_000;
        for i in 0..20_000_i64 {
            ms = ms.wrapping_add((i * 7_919_993 + 1) * 65_537 % 1_000_000_000_000);
            assert_eq!(to_plain(ms), chrono_plain(ms), "{ms}");
        }
    }
}
