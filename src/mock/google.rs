//! Google's JSON shapes, as the mock writes them: the API's error object (`error.code`,
//! `message`, `status`, `details` with `@type` `type.googleapis.com/google.rpc.*`), the four 429
//! bodies, `generateContent` answers and stream chunks, the Code Assist `{"response": ...}`
//! wrapper, and the OAuth token endpoint's answers.
//!
//! Bodies are built as bytes once per answer; nothing here knows about requests or time beyond
//! the arguments it is given.

use crate::model::time::to_rfc3339;
use crate::model::EpochMs;
use crate::secret::Secret;
use crate::upstream::faults::RateLimitBody;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Duration;

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The scope every issued token carries.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

fn bytes(v: Value) -> Bytes {
    Bytes::from(v.to_string())
}

/// `{"error": {"code", "message", "status"[, "details"]}}`.
pub fn error(code: u16, status: &str, message: &str, details: Option<Value>) -> Bytes {
    let mut e = json!({"code": code, "message": message, "status": status});
    if let Some(d) = details {
        e["details"] = d;
    }
    bytes(json!({ "error": e }))
}

/// 401 for an access token that is expired, revoked or unknown. An expired token's body names
/// the reason (`ACCESS_TOKEN_EXPIRED`), as Google's does.
pub fn unauthenticated(expired: bool) -> Bytes {
    let details = expired.then(|| {
        json!([{
            "@type": ERROR_INFO,
            "reason": "ACCESS_TOKEN_EXPIRED",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }])
    });
    error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        details,
    )
}

/// 403 `PERMISSION_DENIED`.
pub fn permission_denied() -> Bytes {
    error(403, "PERMISSION_DENIED", "The caller does not have permission", None)
}

/// 503 `UNAVAILABLE` (any 5xx the upstream model draws is answered as this).
pub fn unavailable() -> Bytes {
    error(
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        None,
    )
}

/// 404 `NOT_FOUND` for a path the mock does not serve.
pub fn not_found() -> Bytes {
    error(404, "NOT_FOUND", "Requested entity was not found.", None)
}

/// 400 `INVALID_ARGUMENT` (a Code Assist body without a model).
pub fn invalid_argument(message: &str) -> Bytes {
    error(400, "INVALID_ARGUMENT", message, None)
}

/// The 429 body in `variant`: `retryDelay` (`RetryInfo`), `quotaResetDelay` and
/// `quotaResetTimeStamp` (`ErrorInfo` metadata, the reset `now_ms + delay`), both, neither, or
/// `quotaResetDelay` alone.
pub fn rate_limited(variant: RateLimitBody, delay: Duration, now_ms: EpochMs, model: &str) -> Bytes {
    let retry_info = json!({"@type": RETRY_INFO, "retryDelay": proto_duration(delay)});
    let error_info = json!({
        "@type": ERROR_INFO,
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": {
            "model": model,
            "quotaResetDelay": go_duration(delay),
            "quotaResetTimeStamp": to_rfc3339(now_ms + delay.as_millis() as i64),
        }
    });
    let delay_only = json!({
        "@type": ERROR_INFO,
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": {"model": model, "quotaResetDelay": go_duration(delay)}
    });
    let details = match variant {
        RateLimitBody::RetryInfo => Some(json!([retry_info])),
        RateLimitBody::QuotaResetDelay => Some(json!([delay_only])),
        RateLimitBody::ErrorInfo => Some(json!([error_info])),
        RateLimitBody::Both => Some(json!([error_info, retry_info])),
        RateLimitBody::Neither => None,
    };
    error(
        429,
        "RESOURCE_EXHAUSTED",
        "You have exhausted your capacity on this model.",
        details,
    )
}

/// A protobuf Duration in JSON: decimal seconds, at most nine decimals, `s` suffix (`"0.479417207s"`).
pub fn proto_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return format!("{}s", d.as_secs());
    }
    let s = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
    format!("{}s", s.trim_end_matches('0'))
}

/// A Go `time.Duration` string as Go prints it: `"479.417207ms"` below a second, `"1m2.5s"` above.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let decimal = |whole: u128, frac: u128, digits: usize, unit: &str| {
        if frac == 0 {
            format!("{whole}{unit}")
        } else {
            let f = format!("{frac:0digits$}");
            format!("{whole}.{}{unit}", f.trim_end_matches('0'))
        }
    };
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => decimal(ns / 1_000, ns % 1_000, 3, "µs"),
        1_000_000..=999_999_999 => decimal(ns / 1_000_000, ns % 1_000_000, 6, "ms"),
        _ => {
            let secs = ns / 1_000_000_000;
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            let tail = decimal(s, ns % 1_000_000_000, 9, "s");
            match (h, m) {
                (0, 0) => tail,
                (0, m) => format!("{m}m{tail}"),
                (h, m) => format!("{h}h{m}m{tail}"),
            }
        }
    }
}

/// A `generateContent` answer (also each stream chunk's shape): `text` from the model, the finish
/// reason and usage on the last piece only.
pub fn content(model: &str, text: &str, last: bool) -> Value {
    let mut candidate = json!({
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0
    });
    let mut v = json!({"candidates": [], "modelVersion": model});
    if last {
        candidate["finishReason"] = json!("STOP");
        v["usageMetadata"] = json!({"promptTokenCount": 8, "candidatesTokenCount": 16, "totalTokenCount": 24});
    }
    v["candidates"] = json!([candidate]);
    v
}

/// `inner` as the answer of `v1beta` (itself) or Code Assist `v1internal` (`{"response": inner}`).
pub fn wrap(inner: Value, code_assist: bool) -> Value {
    if code_assist {
        json!({ "response": inner })
    } else {
        inner
    }
}

/// The token endpoint's 200.
pub fn token_grant(access_token: &Secret, expires_in: i64) -> Bytes {
    bytes(json!({
        "access_token": access_token.expose(),
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scope": SCOPE,
    }))
}

/// The token endpoint's 4xx (`invalid_grant`, `invalid_request`, `unsupported_grant_type`).
pub fn oauth_error(error: &str, description: &str) -> Bytes {
    bytes(json!({"error": error, "error_description": description}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_and_protobuf_do() {
        assert_eq!(go_duration(Duration::from_nanos(479_417_207)), "479.417207ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_micros(250)), "250µs");
        assert_eq!(proto_duration(Duration::from_nanos(479_417_207)), "0.479417207s");
        assert_eq!(proto_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn error_shape() {
        let v: Value = serde_json::from_slice(&unauthenticated(true)).unwrap();
        assert_eq!(v["error"]["code"], 401);
        assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(v["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");
        let v: Value = serde_json::from_slice(&rate_limited(RateLimitBody::Neither, Duration::ZERO, 0, "m")).unwrap();
        assert!(v["error"].get("details").is_none());
    }
}
