//! What a 429 body says about when to retry: Google's `google.rpc.RetryInfo` and
//! `google.rpc.ErrorInfo` details, read into the [`Outcome::RateLimited`] the policy bans by.
//!
//! Real bodies carry sub-second delays (`"quotaResetDelay": "479.417207ms"`). A parser that reads
//! `(\d+)m` as minutes bans an account for about 290 days, so delays are parsed as Go durations
//! (`ms` before `m`, several units in a row as in `"1h2m3.5s"`) and `retryDelay` as a protobuf
//! Duration (`"12.5s"`). Sub-millisecond remainders round *up*: a client must never retry before
//! the delay the server asked for.
//!
//! Pure: the body's bytes and "now" in, an outcome out. Both the HTTP client of real-mode runs and
//! the mock upstream's conformance tests use this one parser.

use super::change::Outcome;
use super::time::{from_rfc3339, EpochMs};
use serde_json::Value;

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The outcome of a 429 whose body is `body`: a reset instant from `quotaResetTimeStamp`, a delay
/// from `retryDelay` (preferred) or `quotaResetDelay`. Neither (or a body that is not Google's
/// error JSON) gives `RateLimited { reset_at: None, retry_delay_ms: None }`, so the policy's
/// default ban applies. `_now` is unused today; it is here so a parser of relative-only bodies can
/// never be called without it by mistake.
pub fn parse_429(body: &[u8], _now: EpochMs) -> Outcome {
    let mut reset_at = None;
    let mut retry_info_ms = None;
    let mut reset_delay_ms = None;
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let details = v["error"]["details"].as_array().map(Vec::as_slice).unwrap_or_default();
        for d in details {
            match d["@type"].as_str() {
                Some(RETRY_INFO) => {
                    retry_info_ms = retry_info_ms.or(d["retryDelay"].as_str().and_then(parse_proto_duration_ms));
                }
                Some(ERROR_INFO) => {
                    let meta = &d["metadata"];
                    reset_delay_ms = reset_delay_ms.or(meta["quotaResetDelay"].as_str().and_then(parse_go_duration_ms));
                    reset_at = reset_at.or(meta["quotaResetTimeStamp"].as_str().and_then(from_rfc3339));
                }
                _ => {}
            }
        }
    }
    Outcome::RateLimited {
        reset_at,
        retry_delay_ms: retry_info_ms.or(reset_delay_ms),
    }
}

/// A protobuf `Duration` in its JSON form: decimal seconds with an `s` suffix (`"3.5s"`), in
/// whole milliseconds rounded up.
pub fn parse_proto_duration_ms(text: &str) -> Option<i64> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| ceil_ms(secs * 1e3))
}

/// A Go `time.Duration` string (`"479.417207ms"`, `"1h2m3.5s"`, `"30s"`, `"250us"`), in whole
/// milliseconds rounded up. `None` for anything else, including a bare number.
pub fn parse_go_duration_ms(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total_ms = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // Longest unit first: `ms` must not be read as `m` followed by garbage.
        let (unit_ms, len) = [
            ("ns", 1e-6),
            ("us", 1e-3),
            ("µs", 1e-3),
            ("ms", 1.0),
            ("s", 1e3),
            ("m", 60e3),
            ("h", 3_600e3),
        ]
        .iter()
        .find(|(u, _)| rest.starts_with(u))
        .map(|(u, ms)| (*ms, u.len()))?;
        total_ms += value * unit_ms;
        rest = &rest[len..];
    }
    total_ms.is_finite().then(|| ceil_ms(total_ms))
}

/// Whole milliseconds, rounded up, tolerating float noise of a nanosecond (`0.3s` is 300 ms).
fn ceil_ms(ms: f64) -> i64 {
    (ms - 1e-6).ceil().max(0.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_ms_before_minutes() {
        assert_eq!(parse_go_duration_ms("479.417207ms"), Some(480));
        assert_eq!(parse_go_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_go_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_go_duration_ms("250us"), Some(1));
        assert_eq!(parse_go_duration_ms("0"), Some(0));
        assert_eq!(parse_go_duration_ms("30"), None);
        assert_eq!(parse_go_duration_ms("5 parsecs"), None);
        assert_eq!(parse_go_duration_ms(""), None);
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration_ms("0.3s"), Some(300));
        assert_eq!(parse_proto_duration_ms("12s"), Some(12_000));
        assert_eq!(parse_proto_duration_ms("0.479417207s"), Some(480));
        assert_eq!(parse_proto_duration_ms("-1s"), None);
        assert_eq!(parse_proto_duration_ms("12"), None);
    }

    #[test]
    fn bodies_without_details_fall_back_to_the_default_ban() {
        let none = Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms: None,
        };
        assert_eq!(parse_429(b"not json", 0), none);
        assert_eq!(
            parse_429(br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#, 0),
            none
        );
        // A detail whose @type is not one of the two is ignored, even with a retryDelay key.
        assert_eq!(parse_429(br#"{"error":{"details":[{"retryDelay":"3s"}]}}"#, 0), none);
    }
}
