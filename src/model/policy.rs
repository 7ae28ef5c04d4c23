//! The rules of the pool, all configurable, with the shipped proxy's defaults.
//!
//! A policy is plain data plus pure functions of (account, now, outcome). It does not know about
//! locks or strategies.

use super::account::Account;
use super::change::{Change, Outcome, RefreshFailure, TokenGrant};
use super::refresh_window::{refresh_points, RefreshPoints};
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

/// `*`-only glob matching, enough for model-name patterns. Allocation-free: it runs on every
/// acquisition of the lock-free strategy.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // `split` always yields at least one part: the text before the first `*` (or all of it).
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts = parts.peekable();
    if parts.peek().is_none() {
        // No `*` at all: an exact match.
        return rest.is_empty();
    }
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether (and how urgently) an account's token should be refreshed at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshDue {
    /// Before the refresh-ahead window: nothing to do.
    No,
    /// Inside the refresh-ahead window but outside the margin: the token is still good to use,
    /// and a strategy that refreshes ahead of expiry starts a refresh in the background.
    Ahead,
    /// Inside the margin, or no expiry fields: refresh before use.
    Now,
}

/// The backed-off ban the proxy lacks: a refresh that fails with a 5xx or a timeout (the token
/// endpoint's outage, not the credential's fault) keeps the account out for `first_ms`, doubled
/// for each further failure in a row, at most `max_ms`, then its refresh is tried again.
/// `invalid_grant` (and a missing refresh token) still disables for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshBackoff {
    pub first_ms: i64,
    pub max_ms: i64,
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
    /// `None` (the proxy's rule): every failed refresh disables the account for good.
    pub refresh_backoff: Option<RefreshBackoff>,
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
            refresh_backoff: None,
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
        !account.disabled
            && !account.backing_off(now)
            && self.series_of(model).is_none_or(|s| !account.is_banned(s, now))
    }

    /// Where `account`'s token stands at `now` against the margin and the refresh-ahead window,
    /// both bounded by the token's own lifetime ([`super::refresh_window`]). `Now` is the rule
    /// every strategy uses; `Ahead` is the extra window only strategies that refresh ahead of
    /// expiry act on.
    pub fn refresh_due(&self, account: &Account, now: EpochMs) -> RefreshDue {
        let lifetime_ms = account.expires_in.map(|s| s.saturating_mul(1000));
        match self.refresh_points(account.timestamp, lifetime_ms) {
            Some(p) if now < p.ahead_at => RefreshDue::No,
            Some(p) if now < p.due_at => RefreshDue::Ahead,
            _ => RefreshDue::Now,
        }
    }

    /// Whether `account`'s token must be refreshed before use at `now`.
    pub fn needs_refresh(&self, account: &Account, now: EpochMs) -> bool {
        self.refresh_due(account, now) == RefreshDue::Now
    }

    /// The refresh points of a token issued at `issued_at` for `lifetime_ms` under this policy's
    /// margin and window (see [`super::refresh_window::refresh_points`]).
    pub fn refresh_points(&self, issued_at: Option<EpochMs>, lifetime_ms: Option<i64>) -> Option<RefreshPoints> {
        refresh_points(issued_at, lifetime_ms, self.refresh_margin_ms, self.refresh_window_ms())
    }

    /// How far before expiry the refresh-ahead window opens (at least the margin), before the
    /// lifetime bounds of [`super::refresh_window`].
    pub fn refresh_window_ms(&self) -> i64 {
        self.refresh_ahead_ms.max(self.refresh_margin_ms)
    }

    /// [`refresh_due`](Self::refresh_due) for a token known only by its expiry instant (the
    /// fleet's shared state keeps no more): the margins as written, since without the issue time
    /// the lifetime bounds cannot be placed.
    pub fn refresh_due_at(&self, expires_at: Option<EpochMs>, now: EpochMs) -> RefreshDue {
        use super::account::expires_within;
        if expires_within(expires_at, now, self.refresh_margin_ms) {
            RefreshDue::Now
        } else if expires_within(expires_at, now, self.refresh_window_ms()) {
            RefreshDue::Ahead
        } else {
            RefreshDue::No
        }
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
                ..
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

    /// The change a refresh result makes: a new token; a backed-off ban for an outage (5xx,
    /// timeout, unreachable) when the policy has [`RefreshBackoff`]; else disabled.
    pub fn refresh_change(&self, now: EpochMs, result: &Result<TokenGrant, RefreshFailure>) -> Change {
        match (result, self.refresh_backoff) {
            (Ok(grant), _) => Change::Refreshed {
                grant: grant.clone(),
                at: now,
            },
            (Err(RefreshFailure::Server(_) | RefreshFailure::Timeout | RefreshFailure::Network(_)), Some(b)) => {
                Change::RefreshBackedOff {
                    at: now,
                    first_ms: b.first_ms,
                    max_ms: b.max_ms,
                }
            }
            (Err(_), _) => Change::Disabled,
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
                quota_reset_delay: None,
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
    fn an_outage_backs_off_and_a_revoked_token_still_disables() {
        let p = Policy {
            refresh_backoff: Some(RefreshBackoff {
                first_ms: 1_000,
                max_ms: 3_000,
            }),
            ..Policy::default()
        };
        let mut a = Account::synthetic(0, 0, 3600);
        for (failure, until) in [
            (RefreshFailure::Server(503), 11_000),
            (RefreshFailure::Timeout, 12_000),
            (RefreshFailure::Network("reset".into()), 13_000),
        ] {
            let c = p.refresh_change(10_000, &Err(failure));
            assert!(!c.disables());
            a.apply(&c);
            assert_eq!(a.refresh_backoff_until, Some(until), "1 s, doubled, at most 3 s");
            assert!(!p.usable(&a, "m", until - 1) && p.usable(&a, "m", until));
        }
        assert!(p.refresh_change(0, &Err(RefreshFailure::InvalidGrant)).disables());
        assert!(Policy::default()
            .refresh_change(0, &Err(RefreshFailure::Server(503)))
            .disables());
        let grant = TokenGrant {
            access_token: crate::secret::Secret::new("t"),
            expires_in: 60,
        };
        a.apply(&p.refresh_change(20_000, &Ok(grant)));
        assert_eq!((a.refresh_backoff_until, a.refresh_failures), (None, 0));
    }

    #[test]
    fn glob() {
        assert!(glob_match("*claude*", "claude"));
        assert!(glob_match("*claude*", "x-claude-y"));
        assert!(!glob_match("gemini-3*", "gemini-2"));
        assert!(glob_match("a*c", "abc"));
        assert!(!glob_match("a*c", "abd"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
    }

    #[test]
    fn refresh_due_distinguishes_ahead_window_and_margin() {
        let p = Policy {
            refresh_margin_ms: 300_000,
            refresh_ahead_ms: 600_000,
            ..Policy::default()
        };
        let a = Account::synthetic(0, 0, 3600); // expires at 3_600_000
        assert_eq!(p.refresh_due(&a, 2_999_999), RefreshDue::No);
        assert_eq!(p.refresh_due(&a, 3_000_000), RefreshDue::Ahead);
        assert_eq!(p.refresh_due(&a, 3_299_999), RefreshDue::Ahead);
        assert_eq!(p.refresh_due(&a, 3_300_000), RefreshDue::Now);
        // A window narrower than the margin means "no ahead window", never "refresh later".
        let narrow = Policy {
            refresh_ahead_ms: 0,
            ..p
        };
        assert_eq!(narrow.refresh_due(&a, 3_299_999), RefreshDue::No);
        assert_eq!(narrow.refresh_due(&a, 3_300_000), RefreshDue::Now);
    }

    #[test]
    fn refresh_due_is_bounded_by_the_token_lifetime() {
        // 7-minute tokens inside a 7-minute window and a 5-minute margin: ahead from 3.5 minutes
        // after issue, due from 5.25 minutes, not at once.
        let p = Policy {
            refresh_margin_ms: 300_000,
            refresh_ahead_ms: 420_000,
            ..Policy::default()
        };
        let a = Account::synthetic(0, 1_000, 420);
        assert_eq!(p.refresh_due(&a, 1_000), RefreshDue::No);
        assert_eq!(p.refresh_due(&a, 1_000 + 209_999), RefreshDue::No);
        assert_eq!(p.refresh_due(&a, 1_000 + 210_000), RefreshDue::Ahead);
        assert_eq!(p.refresh_due(&a, 1_000 + 315_000), RefreshDue::Now);
        // Missing expiry fields: refresh before use.
        let mut unknown = a.clone();
        unknown.timestamp = None;
        assert_eq!(p.refresh_due(&unknown, 0), RefreshDue::Now);
    }
}
