//! Durations as people write them in scenario files: `"30ms"`, `"1.5s"`, `"5m"`, `"250us"`.
//!
//! Scenario durations are strings with a unit, never bare numbers, so that `30` can never be
//! misread as seconds when milliseconds were meant. Negative, unit-less and absurd values are
//! refused with a sentence saying what is expected (the TOML layer adds file, line and column).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Longest duration a scenario may name: one year. Anything longer is a typo.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A non-negative duration parsed from `"<number><unit>"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl Span {
    pub const ZERO: Span = Span(Duration::ZERO);

    pub fn from_millis(ms: u64) -> Self {
        Span(Duration::from_millis(ms))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0.as_secs_f64() * 1e3
    }
}

impl From<Span> for Duration {
    fn from(s: Span) -> Duration {
        s.0
    }
}

/// Parses `"1.5s"`-style text. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let expected = "expected a duration such as \"30ms\", \"1.5s\", \"5m\" (units: ns, us, ms, s, m, h, d)";
    if t.is_empty() {
        return Err(format!("empty duration: {expected}"));
    }
    if t.starts_with('-') {
        return Err(format!("negative duration {t:?}: durations must be zero or more"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .ok_or_else(|| format!("{t:?} has no unit: {expected}"))?;
    let (num, unit) = t.split_at(split);
    let num: String = num.chars().filter(|c| *c != '_').collect();
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{t:?} does not start with a number: {expected}"))?;
    let nanos_per_unit: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        other => return Err(format!("unknown unit {other:?} in {t:?}: {expected}")),
    };
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos > MAX_DURATION.as_nanos() as f64 {
        return Err(format!("{t:?} is longer than one year: {expected}"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration the way [`parse_duration`] reads it, choosing a readable unit.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0ms".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"30ms\", \"1.5s\" or \"5m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                parse_duration(v).map(Span).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                if v == 0 {
                    Ok(Span::ZERO)
                } else {
                    Err(E::custom(format!(
                        "bare number {v} is ambiguous: write the unit, e.g. \"{v}ms\""
                    )))
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
                Err(E::custom(format!(
                    "bare number {v} is ambiguous: write the unit, e.g. \"{v}ms\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("30ms").unwrap(), Duration::from_millis(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1_000ms").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("0ms").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_bad_forms_with_a_reason() {
        assert!(parse_duration("-5ms").unwrap_err().contains("negative"));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("3 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("9999d").unwrap_err().contains("one year"));
    }

    #[test]
    fn format_round_trips() {
        for ms in [0u64, 1, 30, 1500, 60_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        let d = Duration::from_micros(30);
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }
}
