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
pub fn to_plain(ms: EpochMs) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
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
}
