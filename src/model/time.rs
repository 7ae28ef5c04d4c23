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
/// Every recorded success writes one, so it is written digit by digit: chrono's `format` parses
/// its pattern on every call, and that was 41% of `group_commit`'s CPU time with 256 writers
/// (about 3,600 instructions per update; callgrind on `benches/store.rs`). Years outside
/// 0..=9999, which chrono writes with a sign, go through chrono.
pub fn to_plain(ms: EpochMs) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
        return String::new();
    };
    let Ok(year @ 0..=9999) = u32::try_from(t.year()) else {
        return t.format("%Y-%m-%d %H:%M:%S").to_string();
    };
    let mut text = *b"0000-00-00 00:00:00";
    for (at, width, value) in [
        (0, 4, year),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
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
        let chrono_plain = |ms: EpochMs| {
            Utc.timestamp_millis_opt(ms)
                .single()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        };
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
        // A pseudo-random walk over four centuries.
        let mut ms: EpochMs = 946_684_800_000;
        for i in 0..20_000_i64 {
            ms = ms.wrapping_add((i * 7_919_993 + 1) * 65_537 % 1_000_000_000_000);
            assert_eq!(to_plain(ms), chrono_plain(ms), "{ms}");
        }
    }
}
