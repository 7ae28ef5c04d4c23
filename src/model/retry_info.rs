//! What a 429 says about when to retry, read from the upstream's error body the way the policy
//! needs it: an absolute reset time and a relative delay ([`Outcome::RateLimited`]).
//!
//! Google's error bodies carry two kinds of detail (both, either, or neither):
//! - `google.rpc.RetryInfo`: `"retryDelay": "0.479417207s"` (a protobuf `Duration` in JSON: seconds
//!   with a fraction, suffix `s`);
//! - `google.rpc.ErrorInfo` `metadata`: `"quotaResetDelay": "479.417207ms"` (a Go duration: one or
//!   more `<number><unit>` runs, units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`) and
//!   `"quotaResetTimeStamp": "2025-11-29T19:46:46Z"` (RFC 3339).
//!
//! The shipped proxy read `quotaResetDelay` with a pattern that takes `(\d+)m` as minutes, so
//! `"479.417207ms"` banned an account for about 290 days (`reference-behaviour.md`). Here a unit
//! is the whole run of letters after a number, so `ms` is never `m`.
//!
//! Pure: bytes in, hints out; nothing here reads a clock.

use super::change::Outcome;
use super::time::{from_rfc3339, EpochMs};

/// When a rate-limited request may be retried, as far as the body says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryHints {
    /// `quotaResetTimeStamp`, epoch ms.
    pub reset_at: Option<EpochMs>,
    /// `RetryInfo.retryDelay`, else `quotaResetDelay`, in ms.
    pub retry_delay_ms: Option<i64>,
}

impl RetryHints {
    /// The outcome a 429 with these hints is.
    pub fn outcome(self) -> Outcome {
        Outcome::RateLimited {
            reset_at: self.reset_at,
            retry_delay_ms: self.retry_delay_ms,
        }
    }
}

/// Reads the hints of a Google error body (`{"error": {"details": [...]}}`). A body that is not
/// JSON, or has no such detail, gives no hints (the policy then bans for its default span).
pub fn parse_retry_hints(body: &serde_json::Value) -> RetryHints {
    let mut hints = RetryHints::default();
    let Some(details) = body.pointer("/error/details").and_then(|d| d.as_array()) else {
        return hints;
    };
    let mut reset_delay = None;
    for detail in details {
        if let Some(delay) = detail.get("retryDelay").and_then(|d| d.as_str()) {
            hints.retry_delay_ms = hints.retry_delay_ms.or(parse_go_duration_ms(delay));
        }
        if let Some(meta) = detail.get("metadata") {
            if let Some(at) = meta.get("quotaResetTimeStamp").and_then(|t| t.as_str()) {
                hints.reset_at = hints.reset_at.or(from_rfc3339(at));
            }
            if let Some(delay) = meta.get("quotaResetDelay").and_then(|d| d.as_str()) {
                reset_delay = reset_delay.or(parse_go_duration_ms(delay));
            }
        }
    }
    hints.retry_delay_ms = hints.retry_delay_ms.or(reset_delay);
    hints
}

/// [`parse_retry_hints`] on raw bytes (what an HTTP client holds).
pub fn parse_retry_hints_bytes(body: &[u8]) -> RetryHints {
    serde_json::from_slice(body)
        .map(|v: serde_json::Value| parse_retry_hints(&v))
        .unwrap_or_default()
}

/// A Go-style duration (`"1h2m3.5s"`, `"479.417207ms"`, `"0.5s"`, `"250us"`) in whole
/// milliseconds, rounded up so that a sub-millisecond delay is not read as none. `None` when
/// the text is not such a duration (empty, negative, a unit it does not know, or absurdly long).
pub fn parse_go_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ns += number * unit_ns;
    }
    let ms = (total_ns / 1e6).ceil();
    // A year is the longest delay anyone means; beyond it the text is corrupt.
    (ms.is_finite() && ms <= 365.0 * 86_400_000.0).then_some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_read_milliseconds_as_milliseconds() {
        assert_eq!(parse_go_duration_ms("479.417207ms"), Some(480));
        assert_eq!(parse_go_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_go_duration_ms("0.479417207s"), Some(480));
        assert_eq!(parse_go_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_go_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_go_duration_ms("250us"), Some(1));
        assert_eq!(parse_go_duration_ms("0s"), Some(0));
        for bad in ["", "ms", "5", "-1s", "5 s", "5d", "1e3s", "9999999h"] {
            assert_eq!(parse_go_duration_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_info_and_error_info_metadata() {
        let both = json!({"error": {"code": 429, "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
             "metadata": {"quotaResetDelay": "479.417207ms", "quotaResetTimeStamp": "2025-11-29T19:46:46Z"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.479417207s"}
        ]}});
        let h = parse_retry_hints(&both);
        assert_eq!(h.retry_delay_ms, Some(480));
        assert_eq!(h.reset_at, from_rfc3339("2025-11-29T19:46:46Z"));

        let delay_only = json!({"error": {"details": [{"metadata": {"quotaResetDelay": "2m"}}]}});
        assert_eq!(
            parse_retry_hints(&delay_only),
            RetryHints {
                reset_at: None,
                retry_delay_ms: Some(120_000)
            }
        );
        // RetryInfo wins over quotaResetDelay when both give a delay.
        let two_delays = json!({"error": {"details": [
            {"metadata": {"quotaResetDelay": "9s"}}, {"retryDelay": "3s"}]}});
        assert_eq!(parse_retry_hints(&two_delays).retry_delay_ms, Some(3000));

        assert_eq!(
            parse_retry_hints(&json!({"error": {"code": 429}})),
            RetryHints::default()
        );
        assert_eq!(parse_retry_hints_bytes(b"<html>quota</html>"), RetryHints::default());
    }
}
