//! Fairness: who got served. Per account, the upstream calls it carried; per user, the requests
//! sent, the successes, a latency histogram and the longest time the user waited for a success.
//!
//! Memory is bounded by the scenario, never by the number of requests: one counter per credential
//! (the pool's size) and one [`UserTally`] per user id (the scenario's `load.users`), at most
//! [`MAX_TRACKED_USERS`] of them; requests of users beyond that are counted in
//! `untracked_requests` (reported, never silently dropped). A user's histogram has 2 significant
//! digits in microseconds from 1 µs to a day, with 32-bit counts (about 16 KB: 16 MB for the
//! most users tracked), so its p99 is within 1%.
//!
//! The definitions (docs/statistics.md says why):
//! - `jain_accounts`: Jain's index `(Σx)² / (n Σx²)` over every credential of the pool, `x` its
//!   share of the upstream calls (an account that carried nothing counts as 0).
//! - `jain_users`: the same over every user that sent at least one request, `x` its goodput
//!   (successful requests; all users share the run's span, so counts and rates give one index).
//! - `worst_to_median_p99`: the largest user p99 over the median user p99 (the lower median).
//! - starvation: a user's *success gap* is a stretch of time during which it had at least one
//!   request in the system and no request of it succeeded; a user is *starved* when its longest
//!   gap exceeds the run's window, [`starvation_window`]: ten times the run's median latency, and
//!   at least [`MIN_STARVATION_WINDOW`] (one second of modelled time). Relative to the median so
//!   that a slow upstream alone (every request taking its time) is not starvation, while a user
//!   who waits ten typical requests' time for any answer is.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The starvation window is never shorter than this.
pub const MIN_STARVATION_WINDOW: Duration = Duration::from_secs(1);
/// The starvation window in median latencies.
pub const STARVATION_MEDIANS: u32 = 10;

/// The window of a run whose median latency is `p50`: a user who waits longer than this with
/// requests in the system and no success is starved.
pub fn starvation_window(p50: Duration) -> Duration {
    (p50 * STARVATION_MEDIANS).max(MIN_STARVATION_WINDOW)
}
/// Users tracked one by one; requests of users with a larger id are only counted.
pub const MAX_TRACKED_USERS: usize = 1024;
/// Per-user histograms: 1 µs to one day, 2 significant digits.
const USER_MAX_US: u64 = 86_400 * 1_000_000;

/// One user's figures.
#[derive(Clone, Debug)]
struct UserTally {
    requests: u64,
    successes: u64,
    /// Total latency of each of its requests, µs.
    latency_us: Histogram<u32>,
    /// Its requests in the system now.
    outstanding: u32,
    /// Start of the current success gap (requests outstanding, no success since).
    gap_since: Option<Duration>,
    longest_gap: Duration,
}

impl UserTally {
    fn new() -> UserTally {
        UserTally {
            requests: 0,
            successes: 0,
            latency_us: Histogram::new_with_bounds(1, USER_MAX_US, 2).expect("static bounds are valid"),
            outstanding: 0,
            gap_since: None,
            longest_gap: Duration::ZERO,
        }
    }

    fn close_gap(&mut self, at: Duration) {
        if let Some(since) = self.gap_since.take() {
            self.longest_gap = self.longest_gap.max(at.saturating_sub(since));
        }
    }
}

/// The running tally, owned by the [`super::Recorder`].
#[derive(Clone, Debug, Default)]
pub struct FairnessTally {
    /// Upstream calls per credential, sized to the pool.
    account_calls: Vec<u64>,
    users: Vec<Option<UserTally>>,
    untracked_requests: u64,
}

impl FairnessTally {
    pub fn new(credentials: usize) -> FairnessTally {
        FairnessTally {
            account_calls: vec![0; credentials],
            users: Vec::new(),
            untracked_requests: 0,
        }
    }

    fn user(&mut self, user: u32) -> Option<&mut UserTally> {
        let i = user as usize;
        if i >= MAX_TRACKED_USERS {
            return None;
        }
        if self.users.len() <= i {
            self.users.resize_with(i + 1, || None);
        }
        Some(self.users[i].get_or_insert_with(UserTally::new))
    }

    /// A request of `user` became due at `at`.
    pub fn started(&mut self, user: u32, at: Duration) {
        match self.user(user) {
            Some(u) => {
                u.outstanding += 1;
                if u.gap_since.is_none() {
                    u.gap_since = Some(at);
                }
            }
            None => self.untracked_requests += 1,
        }
    }

    /// A request of `user` finished at `done` after `latency`; `account` is the credential that
    /// carried its upstream call, if it got one.
    pub fn finished(&mut self, user: u32, account: Option<usize>, ok: bool, latency: Duration, done: Duration) {
        if let Some(a) = account {
            if self.account_calls.len() <= a {
                self.account_calls.resize(a + 1, 0);
            }
            self.account_calls[a] += 1;
        }
        let Some(u) = self.user(user) else { return };
        u.requests += 1;
        u.outstanding = u.outstanding.saturating_sub(1);
        u.latency_us
            .saturating_record((latency.as_micros().min(USER_MAX_US as u128) as u64).max(1));
        if ok {
            u.successes += 1;
            u.close_gap(done);
            if u.outstanding > 0 {
                u.gap_since = Some(done);
            }
        } else if u.outstanding == 0 {
            // The user has nothing left in the system: its gap ends without a success.
            u.close_gap(done);
        }
    }

    /// Requests from users beyond [`MAX_TRACKED_USERS`] (counted, not tracked per user).
    pub fn untracked_requests(&self) -> u64 {
        self.untracked_requests
    }

    /// The figures for `summary.json`, `end` being the run's last completion (open gaps end there)
    /// and `window` the starvation window ([`starvation_window`]).
    pub fn summary(&self, end: Duration, window: Duration) -> FairnessSummary {
        let calls: Vec<f64> = self.account_calls.iter().map(|&c| c as f64).collect();
        let users: Vec<&UserTally> = self.users.iter().flatten().filter(|u| u.requests > 0).collect();
        let goodput: Vec<f64> = users.iter().map(|u| u.successes as f64).collect();
        let mut p99s: Vec<f64> = users
            .iter()
            .map(|u| u.latency_us.value_at_quantile(0.99) as f64 / 1e3)
            .collect();
        p99s.sort_by(f64::total_cmp);
        let worst = p99s.last().copied();
        let median = (!p99s.is_empty()).then(|| p99s[(p99s.len() - 1) / 2]);
        let gaps: Vec<Duration> = users
            .iter()
            .map(|u| match u.gap_since {
                Some(since) => u.longest_gap.max(end.saturating_sub(since)),
                None => u.longest_gap,
            })
            .collect();
        FairnessSummary {
            jain_accounts: jain(&calls),
            jain_users: jain(&goodput),
            accounts: calls.len() as u64,
            users: users.len() as u64,
            worst_user_p99_ms: worst,
            median_user_p99_ms: median,
            worst_to_median_p99: match (worst, median) {
                (Some(w), Some(m)) if m > 0.0 => Some(w / m),
                _ => None,
            },
            starvation_window_ms: window.as_secs_f64() * 1e3,
            starved_users: gaps.iter().filter(|g| **g > window).count() as u64,
            longest_success_gap_ms: gaps.iter().max().map_or(0.0, |g| g.as_secs_f64() * 1e3),
            untracked_requests: self.untracked_requests,
        }
    }
}

/// Jain's fairness index `(Σx)² / (n Σx²)`: 1 when every share is equal, `k/n` when `k` of `n`
/// get equal shares and the rest nothing. `None` when there is nothing to share (all zero, or no
/// one to share among).
pub fn jain(x: &[f64]) -> Option<f64> {
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    (squares > 0.0).then(|| sum * sum / (x.len() as f64 * squares))
}

/// `fairness` in `summary.json` (one scenario × strategy). See the module comment for the rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FairnessSummary {
    /// Jain's index over the pool's credentials, by share of upstream calls (`null`: no calls).
    pub jain_accounts: Option<f64>,
    /// Jain's index over the users that sent requests, by goodput (`null`: no success at all).
    pub jain_users: Option<f64>,
    /// Credentials in the pool.
    pub accounts: u64,
    /// Users that sent at least one request.
    pub users: u64,
    pub worst_user_p99_ms: Option<f64>,
    /// The lower median of the users' p99s.
    pub median_user_p99_ms: Option<f64>,
    pub worst_to_median_p99: Option<f64>,
    /// A user is starved when it waited longer than this with requests in the system and no
    /// success: max(1 s, 10 × the run's median latency).
    pub starvation_window_ms: f64,
    pub starved_users: u64,
    /// The longest such wait of any user.
    pub longest_success_gap_ms: f64,
    /// Requests of users beyond the 1024 tracked one by one (counted in no per-user figure).
    pub untracked_requests: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn jain_of_k_equal_shares_among_n_is_k_over_n() {
        for n in 1..=12usize {
            for k in 1..=n {
                let x: Vec<f64> = (0..n).map(|i| if i < k { 7.0 } else { 0.0 }).collect();
                let j = jain(&x).unwrap();
                assert!((j - k as f64 / n as f64).abs() < 1e-12, "k={k} n={n}: {j}");
            }
        }
        assert_eq!(jain(&[0.0, 0.0]), None);
        assert_eq!(jain(&[]), None);
        // Unequal shares: (1+3)^2 / (2 * (1+9)) = 0.8.
        assert!((jain(&[1.0, 3.0]).unwrap() - 0.8).abs() < 1e-12);
    }

    #[test]
    fn accounts_that_carry_nothing_count_against_fairness() {
        let mut t = FairnessTally::new(4);
        for n in 0..100u64 {
            let at = MS * n as u32;
            t.started(0, at);
            t.finished(0, Some((n % 2) as usize), true, MS, at + MS);
        }
        let s = t.summary(MS * 101, MIN_STARVATION_WINDOW);
        assert_eq!(s.jain_accounts, Some(0.5), "2 of 4 credentials served equally");
        assert_eq!(s.jain_users, Some(1.0));
        assert_eq!(s.users, 1);
        assert_eq!(s.starved_users, 0);
    }

    #[test]
    fn a_user_served_nothing_for_longer_than_the_window_is_starved() {
        let mut t = FairnessTally::new(1);
        // User 0: a success every 10 ms. User 1: one request in the system from 0 to 1.5 s,
        // answered with an error, then a success at 1.6 s.
        t.started(1, Duration::ZERO);
        for n in 0..200u32 {
            t.started(0, MS * (10 * n));
            t.finished(0, Some(0), true, MS * 5, MS * (10 * n + 5));
        }
        t.finished(1, Some(0), false, MS * 1500, MS * 1500);
        t.started(1, MS * 1550);
        t.finished(1, Some(0), true, MS * 50, MS * 1600);
        let s = t.summary(MS * 2000, MIN_STARVATION_WINDOW);
        assert_eq!(s.users, 2);
        assert_eq!(s.starved_users, 1);
        assert!(
            (s.longest_success_gap_ms - 1500.0).abs() < 1e-9,
            "{}",
            s.longest_success_gap_ms
        );
        // Goodput 200 vs 1: (201)^2 / (2 * (40000 + 1)).
        let want = 201.0f64.powi(2) / (2.0 * 40_001.0);
        assert!((s.jain_users.unwrap() - want).abs() < 1e-12);
        // p99s: user 0 about 5 ms, user 1 about 1500 ms; lower median 5 ms.
        let ratio = s.worst_to_median_p99.unwrap();
        assert!((ratio - 300.0).abs() / 300.0 < 0.02, "{ratio}");
    }

    #[test]
    fn the_window_is_ten_medians_and_at_least_a_second() {
        assert_eq!(starvation_window(MS * 30), Duration::from_secs(1));
        assert_eq!(starvation_window(MS * 800), Duration::from_secs(8));
    }

    #[test]
    fn a_gap_still_open_at_the_end_counts_up_to_the_end() {
        let mut t = FairnessTally::new(1);
        t.started(3, Duration::ZERO);
        let s = t.summary(MS * 2500, MIN_STARVATION_WINDOW);
        // Requests are counted when they finish: a user whose only request is unfinished is not
        // among the users yet.
        assert_eq!(s.users, 0);
        t.finished(3, None, false, MS * 2500, MS * 2500);
        let s = t.summary(MS * 2500, MIN_STARVATION_WINDOW);
        assert_eq!(s.users, 1);
        assert_eq!(s.starved_users, 1);
        assert_eq!(s.jain_users, None, "no success at all: nothing to share");
        assert_eq!(s.jain_accounts, None);
    }

    #[test]
    fn users_beyond_the_tracked_ones_are_counted() {
        let mut t = FairnessTally::new(1);
        t.started(MAX_TRACKED_USERS as u32, Duration::ZERO);
        t.finished(MAX_TRACKED_USERS as u32, Some(0), true, MS, MS);
        assert_eq!(t.summary(MS, MIN_STARVATION_WINDOW).untracked_requests, 1);
    }
}
