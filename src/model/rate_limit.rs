//! What a 429 body says about when to retry: Google's `RetryInfo` and `ErrorInfo` details, read
//! into the two figures the policy bans a series by.
//!
//! Real 429 bodies come in four shapes, and proxies have been seen to mis-read each of them:
//!
//! ```json
//! {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
//!   {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.479417207s"},
//!   {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
//!    "metadata": {"quotaResetDelay": "479.417207ms",
//!                 "quotaResetTimeStamp": "2025-11-29T19:46:46Z"}}]}}
//! ```
//!
//! with `RetryInfo` only, `ErrorInfo` only, both, or neither. `quotaResetDelay` is a Go duration
//! (`"479.417207ms"`, `"1h2m3.5s"`): the shipped proxy read `(\d+)m` in it as minutes and banned
//! an account for about 290 days. Here every component is read with its own unit, through
//! [`crate::duration::parse_duration`].
//!
//! Which figure wins is the policy's business ([`super::Policy::ban_until`]): an absolute reset
//! time when the body has one, else the relative delay, else the policy's default. This module
//! only reads the body: the same function serves `credpool serve` (a client's completion with the
//! upstream's error body, and its reverse proxy) and the mock upstream's conformance tests, so the
//! bodies the mock emits are read by the code that acts on them.

use super::change::Outcome;
use super::time::{from_rfc3339, EpochMs};
use crate::duration::parse_duration;
use std::time::Duration;

/// The retry figures of one error body. Both `None`: the body said nothing usable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryHint {
    /// `ErrorInfo.metadata.quotaResetTimeStamp`, epoch ms.
    pub reset_at: Option<EpochMs>,
    /// `RetryInfo.retryDelay`, else `ErrorInfo.metadata.quotaResetDelay`, in whole milliseconds
    /// rounded up (a ban never ends before the delay the upstream asked for).
    pub retry_delay_ms: Option<i64>,
    /// `ErrorInfo.metadata.quotaResetDelay` as the body wrote it (`"479.417207ms"`), for a
    /// reader of its own: `as_shipped` replays the shipped proxy's, which misreads it.
    pub quota_reset_delay: Option<String>,
}

impl RetryHint {
    /// The outcome a 429 with this body is to the policy.
    pub fn into_outcome(self) -> Outcome {
        Outcome::RateLimited {
            reset_at: self.reset_at,
            retry_delay_ms: self.retry_delay_ms,
            quota_reset_delay: self.quota_reset_delay,
        }
    }
}

/// Reads the retry figures from an upstream error body. Accepts the Gemini API's
/// `{"error": {...}}` and the Code Assist API's one-element array of it; anything else (not JSON,
/// no details, unknown detail types, unparsable values) yields no figure rather than an error,
/// because a proxy must still record the 429 itself.
pub fn parse_error_body(body: &[u8]) -> RetryHint {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|value| parse_error_value(&value))
        .unwrap_or_default()
}

/// [`parse_error_body`] on a body already parsed (a client's completion carries it as JSON).
pub fn parse_error_value(value: &serde_json::Value) -> RetryHint {
    let error = match value {
        serde_json::Value::Array(items) => items.first().and_then(|item| item.get("error")),
        other => other.get("error"),
    };
    let Some(details) = error.and_then(|e| e.get("details")).and_then(|d| d.as_array()) else {
        return RetryHint::default();
    };
    let mut retry_info_delay = None;
    let mut quota_reset_delay = None;
    let mut reset_at = None;
    let mut quota_reset_text = None;
    // Read by field, whatever a detail's `@type` says: `retryDelay` exists only in RetryInfo and
    // `metadata.quotaReset*` only in ErrorInfo, and bodies relayed by proxies sometimes lose the type.
    for detail in details {
        retry_info_delay = retry_info_delay.or(detail.get("retryDelay").and_then(duration_field));
        let metadata = detail.get("metadata");
        let field = |name: &str| metadata.and_then(|m| m.get(name));
        quota_reset_delay = quota_reset_delay.or(field("quotaResetDelay").and_then(duration_field));
        quota_reset_text = quota_reset_text.or(field("quotaResetDelay").and_then(|t| t.as_str()).map(String::from));
        reset_at = reset_at.or(field("quotaResetTimeStamp")
            .and_then(|t| t.as_str())
            .and_then(from_rfc3339));
    }
    RetryHint {
        reset_at,
        retry_delay_ms: retry_info_delay.or(quota_reset_delay).map(ceil_millis),
        quota_reset_delay: quota_reset_text,
    }
}

/// A protobuf `Duration` in JSON (`"1.5s"`) or a Go duration (`"1h2m3.5s"`, `"479.417207ms"`).
fn duration_field(value: &serde_json::Value) -> Option<Duration> {
    value.as_str().and_then(|text| parse_go_duration(text).ok())
}

/// Parses a Go-style duration: one or more `<number><unit>` components, summed
/// (`"1h2m3.5s"`, `"479.417207ms"`, `"0.5s"`). Each component is read by
/// [`parse_duration`], so the units are the scenario files' (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: expected e.g. \"1.5s\" or \"1h2m3.5s\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        // A component is a number followed by its unit letters; the next number ends it.
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: {rest:?} has no unit"))?;
        let unit_end = rest[number_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |at| number_end + at);
        total += parse_duration(&rest[..unit_end]).map_err(|e| format!("{text:?}: {e}"))?;
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// A delay given as text (`"1.5s"`, `"479.417207ms"`, `"1m30s"`) in whole milliseconds, rounded
/// up: what a client's `retry_delay` says.
pub fn parse_delay_ms(text: &str) -> Result<i64, String> {
    parse_go_duration(text).map(ceil_millis)
}

fn ceil_millis(d: Duration) -> i64 {
    let nanos = d.as_nanos();
    i64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(details: &str) -> Vec<u8> {
        format!(r#"{{"error": {{"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{details}]}}}}"#).into_bytes()
    }

    const RETRY_INFO: &str = r#"{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.479417207s"}"#;
    const ERROR_INFO: &str = r#"{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
        "metadata": {"quotaResetDelay": "479.417207ms", "quotaResetTimeStamp": "2025-11-29T19:46:46Z"}}"#;

    #[test]
    fn the_four_shapes() {
        let reset = from_rfc3339("2025-11-29T19:46:46Z");
        assert_eq!(
            parse_error_body(&body(RETRY_INFO)),
            RetryHint {
                reset_at: None,
                retry_delay_ms: Some(480),
                quota_reset_delay: None,
            }
        );
        assert_eq!(
            parse_error_body(&body(ERROR_INFO)),
            RetryHint {
                reset_at: reset,
                retry_delay_ms: Some(480),
                quota_reset_delay: Some("479.417207ms".into()),
            }
        );
        let both = format!("{RETRY_INFO}, {ERROR_INFO}");
        assert_eq!(
            parse_error_body(&body(&both)),
            RetryHint {
                reset_at: reset,
                retry_delay_ms: Some(480),
                quota_reset_delay: Some("479.417207ms".into()),
            }
        );
        assert_eq!(parse_error_body(&body("")), RetryHint::default());
    }

    #[test]
    fn a_sub_second_delay_is_not_minutes() {
        // The shipped proxy's `(\d+)m` read "479.417207ms" as 417,207 minutes.
        let hint = parse_error_body(&body(
            r#"{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"quotaResetDelay": "479.417207ms"}}"#,
        ));
        assert_eq!(hint.retry_delay_ms, Some(480));
        assert_eq!(hint.reset_at, None);
        assert_eq!(
            hint.quota_reset_delay.as_deref(),
            Some("479.417207ms"),
            "kept as written"
        );
    }

    #[test]
    fn retry_info_wins_over_quota_reset_delay() {
        let details = r#"{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"quotaResetDelay": "9s"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}"#;
        assert_eq!(parse_error_body(&body(details)).retry_delay_ms, Some(2000));
    }

    #[test]
    fn code_assist_array_and_junk() {
        let wrapped = format!("[{}]", String::from_utf8(body(RETRY_INFO)).unwrap());
        assert_eq!(parse_error_body(wrapped.as_bytes()).retry_delay_ms, Some(480));
        assert_eq!(parse_error_body(b"not json"), RetryHint::default());
        assert_eq!(parse_error_body(br#"{"error": "x"}"#), RetryHint::default());
        let bad = body(r#"{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}"#);
        assert_eq!(parse_error_body(&bad), RetryHint::default());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3.5s"), Ok(Duration::from_millis(3_723_500)));
        assert_eq!(parse_go_duration("479.417207ms"), Ok(Duration::from_nanos(479_417_207)));
        assert_eq!(
            parse_go_duration("26h20m43.563s"),
            Ok(Duration::from_millis(94_843_563))
        );
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("12").is_err());
        assert!(parse_go_duration("3x").is_err());
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn into_outcome_feeds_the_policy() {
        let hint = parse_error_body(&body(RETRY_INFO));
        assert_eq!(
            hint.into_outcome(),
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: Some(480),
                quota_reset_delay: None,
            }
        );
    }
}
