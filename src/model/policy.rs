//! The rules of the pool, all configurable, with the shipped proxy's defaults.
//!
//! A policy is plain data plus pure functions of (account, now, outcome). It does not know about
//! locks or strategies.

use super::account::Account;
use super::change::{Change, Outcome, RefreshFailure, TokenGrant};
use super::time::EpochMs;

const HOUR_MS: i64 = 3_600_000;

/// Maps model names to the series a 429 bans, e.g. `*claude*` -> `claude_series`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesRule {
    /// A pattern where `*` matches any run of characters (`gemini-3*`, `*claude*`).
    pub pattern: String,
    pub series: String,
}

impl SeriesRule {
    pub fn new(pattern: &str, series: &str) -> Self {
        SeriesRule {
            pattern: pattern.into(),
            series: series.into(),
        }
    }

    pub fn matches(&self, model: &str) -> bool {
        glob_match(&self.pattern, model)
    }
}

/// `*`-only glob matching, enough for model-name patterns.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The pool's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Move to the next account after this many calls in aggregate (the proxy's default: 100).
    pub calls_per_rotation: u64,
    /// A token expiring within this margin is refreshed before use (default 5 minutes).
    pub refresh_margin_ms: i64,
    /// Strategies that refresh ahead of expiry start a background refresh this long before the
    /// margin, while requests keep using the still-valid token. Must be >= the margin.
    pub refresh_ahead_ms: i64,
    pub series: Vec<SeriesRule>,
    /// Shortest ban when a 429 names a reset time (`max(2 × (reset − now), min_ban)`).
    pub min_ban_ms: i64,
    /// Ban when a 429 names neither a reset time nor a delay (default 6 hours).
    pub default_ban_ms: i64,
    /// Status codes that disable an account outright (default none; the proxy offers 401, 403).
    pub auto_ban_codes: Vec<u16>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            calls_per_rotation: 100,
            refresh_margin_ms: 5 * 60_000,
            refresh_ahead_ms: 10 * 60_000,
            series: vec![
                SeriesRule::new("*claude*", "claude_series"),
                SeriesRule::new("gemini-3*", "gemini_3_series"),
            ],
            min_ban_ms: HOUR_MS,
            default_ban_ms: 6 * HOUR_MS,
            auto_ban_codes: Vec::new(),
        }
    }
}

impl Policy {
    /// The series a model belongs to, if any rule names it.
    pub fn series_of(&self, model: &str) -> Option<&str> {
        self.series.iter().find(|r| r.matches(model)).map(|r| r.series.as_str())
    }

    /// Whether `account` may serve a request for `model` at `now` (its token may still need a
    /// refresh first).
    pub fn usable(&self, account: &Account, model: &str, now: EpochMs) -> bool {
        !account.disabled && self.series_of(model).is_none_or(|s| !account.is_banned(s, now))
    }

    /// The ban deadline for a 429: `max(2 × (reset − now), 1 h)`, or 2 × the delay, or 6 h.
    pub fn ban_until(&self, now: EpochMs, reset_at: Option<EpochMs>, retry_delay_ms: Option<i64>) -> EpochMs {
        let span = match (reset_at, retry_delay_ms) {
            (Some(reset), _) => (2 * (reset - now)).max(self.min_ban_ms),
            (None, Some(delay)) => 2 * delay.max(0),
            (None, None) => self.default_ban_ms,
        };
        now + span
    }

    /// The change an outcome makes to the account that served the request.
    pub fn outcome_change(&self, model: &str, now: EpochMs, outcome: &Outcome) -> Change {
        match outcome {
            Outcome::Success => Change::Success { at: now },
            Outcome::RateLimited {
                reset_at,
                retry_delay_ms,
            } => Change::Error {
                code: 429,
                ban: self
                    .series_of(model)
                    .map(|s| (s.to_string(), self.ban_until(now, *reset_at, *retry_delay_ms))),
                disable: self.auto_ban_codes.contains(&429),
            },
            Outcome::Status(code) => Change::Error {
                code: *code,
                ban: None,
                disable: self.auto_ban_codes.contains(code),
            },
        }
    }

    /// The change a refresh result makes: a new token, or disabled.
    pub fn refresh_change(&self, now: EpochMs, result: &Result<TokenGrant, RefreshFailure>) -> Change {
        match result {
            Ok(grant) => Change::Refreshed {
                grant: grant.clone(),
                at: now,
            },
            Err(_) => Change::Disabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_mapping() {
        let p = Policy::default();
        assert_eq!(p.series_of("claude-sonnet-4-5"), Some("claude_series"));
        assert_eq!(p.series_of("gemini-3-pro-preview"), Some("gemini_3_series"));
        assert_eq!(p.series_of("gemini-2.5-flash"), None);
    }

    #[test]
    fn ban_durations_follow_the_proxy() {
        let p = Policy::default();
        // reset in 10 minutes: 2 × 10 min < 1 h, so 1 h.
        assert_eq!(p.ban_until(0, Some(600_000), None), HOUR_MS);
        // reset in 2 hours: 2 × 2 h = 4 h.
        assert_eq!(p.ban_until(0, Some(2 * HOUR_MS), None), 4 * HOUR_MS);
        assert_eq!(p.ban_until(0, None, Some(30_000)), 60_000);
        assert_eq!(p.ban_until(5, None, None), 5 + 6 * HOUR_MS);
    }

    #[test]
    fn auto_ban_codes_disable_only_when_configured() {
        let mut p = Policy::default();
        let c = p.outcome_change("m", 0, &Outcome::Status(401));
        assert!(!c.disables());
        p.auto_ban_codes = vec![401, 403];
        assert!(p.outcome_change("m", 0, &Outcome::Status(401)).disables());
        assert!(!p.outcome_change("m", 0, &Outcome::Status(500)).disables());
    }

    #[test]
    fn a_429_bans_the_model_series() {
        let p = Policy::default();
        let c = p.outcome_change(
            "claude-opus",
            0,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
            },
        );
        assert_eq!(
            c,
            Change::Error {
                code: 429,
                ban: Some(("claude_series".into(), 6 * HOUR_MS)),
                disable: false
            }
        );
    }

    #[test]
    fn glob() {
        assert!(glob_match("*claude*", "claude"));
        assert!(glob_match("*claude*", "x-claude-y"));
        assert!(!glob_match("gemini-3*", "gemini-2"));
        assert!(glob_match("a*c", "abc"));
        assert!(!glob_match("a*c", "abd"));
    }
}
