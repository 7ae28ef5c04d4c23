//! When a token is refreshed: the one rule every strategy and `credpool serve` apply.
//!
//! The policy names two spans before expiry: the *margin* (inside it a token is treated as
//! expired and refreshed before use) and the *refresh-ahead window* (inside it, a strategy that
//! refreshes ahead of expiry starts a background refresh while requests keep the still-valid
//! token). Measured from the expiry alone, both can reach back past the moment the token was
//! issued: with `expires_in` = 7 minutes, a 5-minute margin and a 7-minute window, a token fresh
//! from the endpoint is already inside its window, and every acquisition starts the next refresh
//! (1,658 refreshes where one per token lifetime would do); with a lifetime at or below the margin,
//! a fresh token is already "expired". `expires_in` comes from the endpoint at run time, so the
//! spans are bounded by the token's own lifetime `L`, from the instant it was issued:
//!
//! > refresh ahead from `max(expires − window, issued + L/2)`;
//! > treat as expired from `max(expires − margin, issued + 3L/4)`.
//!
//! So a token serves at least half its lifetime before any refresh starts, and three quarters
//! before a request waits for one: whatever the configuration, a credential is refreshed at most
//! once per half lifetime (two per lifetime, by a strategy that refreshes ahead) or once per three
//! quarters of it (a strategy that refreshes only when due), never on every acquisition.
//! With the usual figures (hour-long tokens, a 5-minute margin and a 10-minute window) the bounds
//! are never reached and the margins hold as written. A token whose issue time or lifetime is
//! unknown is refreshed before use, as the proxy did. A lifetime of zero or less is due at once;
//! strategies serve a token they have just refreshed once even then (a request never refreshes
//! the same credential twice), so no lifetime makes them loop.

use super::time::EpochMs;

/// The share of its own lifetime a token serves before a refresh ahead of expiry may start.
pub const AHEAD_NOT_BEFORE: Share = Share { num: 1, den: 2 };

/// The share of its own lifetime a token serves before it is treated as expired.
pub const DUE_NOT_BEFORE: Share = Share { num: 3, den: 4 };

/// A fraction of a token's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub num: i64,
    pub den: i64,
}

impl Share {
    /// This share of `lifetime_ms` (rounded down; a negative lifetime counts as 0).
    pub fn of(self, lifetime_ms: i64) -> i64 {
        lifetime_ms.max(0) / self.den * self.num + lifetime_ms.max(0) % self.den * self.num / self.den
    }
}

/// The two instants of one token's refresh, epoch ms: `ahead_at <= due_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPoints {
    /// From here a strategy that refreshes ahead of expiry starts a background refresh.
    pub ahead_at: EpochMs,
    /// From here the token is treated as expired: refreshed before use.
    pub due_at: EpochMs,
}

/// The refresh points of a token issued at `issued_at` for `lifetime_ms`, under a margin of
/// `margin_ms` and a refresh-ahead window of `window_ms` (both before expiry; a window narrower
/// than the margin is the margin). `None` when either figure is unknown: refresh before use.
pub fn refresh_points(
    issued_at: Option<EpochMs>,
    lifetime_ms: Option<i64>,
    margin_ms: i64,
    window_ms: i64,
) -> Option<RefreshPoints> {
    let (issued, lifetime) = (issued_at?, lifetime_ms?);
    let expires = issued.saturating_add(lifetime);
    let due_at = expires
        .saturating_sub(margin_ms)
        .max(issued.saturating_add(DUE_NOT_BEFORE.of(lifetime)));
    let ahead_at = expires
        .saturating_sub(window_ms.max(margin_ms))
        .max(issued.saturating_add(AHEAD_NOT_BEFORE.of(lifetime)))
        .min(due_at);
    Some(RefreshPoints { ahead_at, due_at })
}

/// Whether a scenario's figures make the spans reach back past a fresh token's issue: the
/// window (or the margin) is at least the lifetime, so the bounds above decide the refresh points
/// instead of the figures written. Returns which span does, for a warning.
pub fn swallowed_by(lifetime_ms: i64, margin_ms: i64, window_ms: i64) -> Option<&'static str> {
    if margin_ms >= lifetime_ms {
        Some("refresh_margin")
    } else if window_ms.max(margin_ms) >= lifetime_ms {
        Some("refresh_margin + refresh_ahead")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn the_storm_figures_refresh_at_half_and_three_quarters_of_the_lifetime() {
        // 7-minute tokens, 5-minute margin, 2 minutes ahead of it (a 7-minute window).
        let p = refresh_points(Some(0), Some(7 * MIN), 5 * MIN, 7 * MIN).unwrap();
        assert_eq!(p.ahead_at, 7 * MIN / 2);
        assert_eq!(p.due_at, 7 * MIN * 3 / 4);
    }

    #[test]
    fn hour_long_tokens_keep_the_margins_as_written() {
        let p = refresh_points(Some(1_000), Some(60 * MIN), 5 * MIN, 10 * MIN).unwrap();
        assert_eq!(p.ahead_at, 1_000 + 50 * MIN);
        assert_eq!(p.due_at, 1_000 + 55 * MIN);
        // A window narrower than the margin is the margin.
        let p = refresh_points(Some(0), Some(60 * MIN), 5 * MIN, 0).unwrap();
        assert_eq!(p.ahead_at, p.due_at);
    }

    #[test]
    fn a_lifetime_at_or_below_the_margin_still_serves_three_quarters_of_it() {
        let p = refresh_points(Some(0), Some(3 * MIN), 5 * MIN, 10 * MIN).unwrap();
        assert_eq!((p.ahead_at, p.due_at), (90_000, 135_000));
        let p = refresh_points(Some(0), Some(5 * MIN), 5 * MIN, 5 * MIN).unwrap();
        assert_eq!((p.ahead_at, p.due_at), (150_000, 225_000));
        // Zero (or nonsense below zero): due at once.
        for lifetime in [0, -5_000] {
            let p = refresh_points(Some(7), Some(lifetime), 5 * MIN, 10 * MIN).unwrap();
            assert!(p.due_at <= 7 && p.ahead_at <= p.due_at, "{p:?}");
        }
    }

    #[test]
    fn unknown_figures_mean_refresh_before_use() {
        assert_eq!(refresh_points(None, Some(MIN), 0, 0), None);
        assert_eq!(refresh_points(Some(0), None, 0, 0), None);
    }

    #[test]
    fn shares_round_down_without_overflow() {
        assert_eq!(DUE_NOT_BEFORE.of(7), 5);
        assert_eq!(AHEAD_NOT_BEFORE.of(7), 3);
        assert_eq!(DUE_NOT_BEFORE.of(i64::MAX), i64::MAX / 4 * 3 + 2);
    }

    #[test]
    fn swallowing_is_named_by_the_span_that_does_it() {
        assert_eq!(
            swallowed_by(7 * MIN, 5 * MIN, 7 * MIN),
            Some("refresh_margin + refresh_ahead")
        );
        assert_eq!(swallowed_by(5 * MIN, 5 * MIN, 5 * MIN), Some("refresh_margin"));
        assert_eq!(swallowed_by(60 * MIN, 5 * MIN, 10 * MIN), None);
    }

    proptest::proptest! {
        /// Whatever the figures: the points are ordered, never before the bounds, never after
        /// the plain margins' instants unless the bounds move them, and never after expiry for a
        /// positive lifetime.
        #[test]
        fn the_points_are_bounded_by_the_lifetime(
            issued in -1_000_000i64..1_000_000,
            lifetime in 0i64..10_000_000,
            margin in 0i64..10_000_000,
            ahead in 0i64..10_000_000,
        ) {
            let window = margin + ahead;
            let p = refresh_points(Some(issued), Some(lifetime), margin, window).unwrap();
            proptest::prop_assert!(p.ahead_at <= p.due_at);
            proptest::prop_assert!(p.ahead_at >= issued + lifetime / 2);
            proptest::prop_assert!(p.due_at >= issued + lifetime * 3 / 4);
            proptest::prop_assert!(p.due_at <= issued + lifetime);
            proptest::prop_assert_eq!(p.due_at, (issued + lifetime - margin).max(issued + lifetime * 3 / 4));
        }
    }
}
