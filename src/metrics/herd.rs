//! Refresh herds: how many requests one refresh held up, and how many refreshes one expiry cost.
//!
//! [`RefreshWatch`] wraps the run's token endpoint, so it sees every refresh of every strategy
//! without any strategy knowing (the strategies all refresh through `Env::tokens`). It records
//! each refresh's span on the run's clock, and per credential: refreshes in flight, the newest
//! token's expiry and a token generation. The runner then tells it, for every request that was
//! held up while acquiring (a nonzero lock wait or refresh wait), the span it spent acquiring;
//! the request is counted as waiting on every refresh that *ended* inside that span (it was still
//! held when the refresh landed). The request that performs a refresh inside its acquisition
//! (global_mutex's first request, a lock-free leader) waits on it too, so one expiring token
//! awaited by N requests, leader included, gives a herd of N.
//!
//! Memory: per credential, a few words; the spans of the last [`RECENT_REFRESHES`] refreshes.
//! A request whose span reaches back past the oldest refresh still kept may have waited on one
//! already forgotten: that is counted in `attribution_dropped`, never silently lost.
//!
//! Definitions (docs/statistics.md):
//! - `max_waiters`: the largest number of requests waiting on one refresh.
//! - `max_overlapping`: the most refreshes of one credential in flight at once (1 is single-flight).
//! - `refreshes_per_expiry`: refreshes / token generations refreshed at least once (1.0 ideal).
//! - `wasted`: refreshes begun before the credential's newest token reached its refresh-ahead
//!   point (the policy's window, `max(refresh_margin, refresh_ahead)` before expiry, bounded by
//!   the token's lifetime: [`crate::model::refresh_window`]): no strategy had a reason to.

use crate::clock::Clock;
use crate::future::BoxFuture;
use crate::model::{Account, EpochMs, Policy, RefreshFailure, TokenGrant};
use crate::secret::Secret;
use crate::upstream::TokenEndpoint;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The spans of at most this many recent refreshes are kept for attributing waiters.
pub const RECENT_REFRESHES: usize = 256;

#[derive(Clone, Debug, Default)]
struct Credential {
    in_flight: u32,
    /// Where the newest token this credential holds (initial, or the last successful refresh)
    /// reaches its refresh-ahead point: a refresh begun before it is wasted.
    newest_ahead_at: Option<EpochMs>,
    /// Bumped by every successful refresh: which token an expiry belongs to.
    generation: u64,
    /// The generation the last refresh started on (`None`: never refreshed).
    last_refreshed: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    id: u64,
    start: Duration,
    end: Option<Duration>,
    waiters: u64,
}

#[derive(Debug, Default)]
struct State {
    credentials: Vec<Credential>,
    recent: VecDeque<Span>,
    next_id: u64,
    /// The latest end (or start, if still in flight) among the forgotten spans.
    forgotten_until: Option<Duration>,
    forgotten_max_waiters: u64,
    refreshes: u64,
    expiries: u64,
    wasted: u64,
    max_overlapping: u32,
    overlapping: u64,
    attribution_dropped: u64,
}

/// The token-endpoint wrapper that watches refreshes (see the module comment).
pub struct RefreshWatch {
    inner: Arc<dyn TokenEndpoint>,
    clock: Clock,
    /// The policy's refresh window, ms (reported beside `wasted`).
    window_ms: i64,
    /// Places each new token's refresh-ahead point.
    policy: Policy,
    state: crate::sync::Mutex<State>,
}

impl RefreshWatch {
    pub fn new(inner: Arc<dyn TokenEndpoint>, clock: Clock, policy: &Policy, accounts: &[Account]) -> RefreshWatch {
        let credentials = accounts
            .iter()
            .map(|a| Credential {
                newest_ahead_at: policy
                    .refresh_points(a.timestamp, a.expires_in.map(|s| s.saturating_mul(1000)))
                    .map(|p| p.ahead_at),
                ..Credential::default()
            })
            .collect();
        RefreshWatch {
            inner,
            clock,
            window_ms: policy.refresh_window_ms(),
            policy: policy.clone(),
            state: crate::sync::Mutex::new(State {
                credentials,
                ..State::default()
            }),
        }
    }

    fn begin(&self, credential: usize) -> u64 {
        let (start, now_ms) = (self.clock.elapsed(), self.clock.now_ms());
        let mut s = self.state.lock();
        if s.credentials.len() <= credential {
            s.credentials.resize_with(credential + 1, Credential::default);
        }
        let c = &mut s.credentials[credential];
        c.in_flight += 1;
        let overlapping = c.in_flight;
        let wasted = c.newest_ahead_at.is_some_and(|at| now_ms < at);
        let new_expiry = c.last_refreshed != Some(c.generation);
        c.last_refreshed = Some(c.generation);
        s.refreshes += 1;
        s.expiries += new_expiry as u64;
        s.wasted += wasted as u64;
        s.overlapping += (overlapping > 1) as u64;
        s.max_overlapping = s.max_overlapping.max(overlapping);
        let id = s.next_id;
        s.next_id += 1;
        if s.recent.len() == RECENT_REFRESHES {
            let old = s.recent.pop_front().expect("full");
            let until = old.end.unwrap_or(start);
            s.forgotten_until = Some(s.forgotten_until.map_or(until, |f| f.max(until)));
            s.forgotten_max_waiters = s.forgotten_max_waiters.max(old.waiters);
        }
        s.recent.push_back(Span {
            id,
            start,
            end: None,
            waiters: 0,
        });
        id
    }

    fn end(&self, credential: usize, id: u64, grant: Option<&TokenGrant>) {
        let (end, now_ms) = (self.clock.elapsed(), self.clock.now_ms());
        let mut s = self.state.lock();
        let c = &mut s.credentials[credential];
        c.in_flight -= 1;
        if let Some(g) = grant {
            c.generation += 1;
            c.newest_ahead_at = self
                .policy
                .refresh_points(Some(now_ms), Some(g.expires_in.saturating_mul(1000)))
                .map(|p| p.ahead_at);
        }
        match s.recent.iter_mut().find(|x| x.id == id) {
            Some(span) => span.end = Some(end),
            None => s.forgotten_until = Some(s.forgotten_until.map_or(end, |f| f.max(end))),
        }
    }

    /// A request was held up while acquiring from `from` to `until` (run time): it waited on
    /// every refresh that ended inside that span.
    pub fn held_up(&self, from: Duration, until: Duration) {
        let mut s = self.state.lock();
        if s.refreshes == 0 {
            return;
        }
        if s.forgotten_until.is_some_and(|f| f > from) {
            s.attribution_dropped += 1;
        }
        for span in s.recent.iter_mut() {
            if span.end.is_some_and(|e| e > from && e <= until) && span.start < until {
                span.waiters += 1;
            }
        }
    }

    pub fn summary(&self) -> HerdSummary {
        let s = self.state.lock();
        let max_waiters = s
            .recent
            .iter()
            .map(|x| x.waiters)
            .max()
            .unwrap_or(0)
            .max(s.forgotten_max_waiters);
        HerdSummary {
            refreshes: s.refreshes,
            max_waiters,
            max_overlapping: s.max_overlapping,
            overlapping_refreshes: s.overlapping,
            expiries: s.expiries,
            refreshes_per_expiry: (s.expiries > 0).then(|| s.refreshes as f64 / s.expiries as f64),
            wasted: s.wasted,
            window_ms: self.window_ms,
            attribution_dropped: s.attribution_dropped,
        }
    }
}

impl TokenEndpoint for RefreshWatch {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            let id = self.begin(credential);
            let result = self.inner.refresh(credential, attempt, refresh_token).await;
            self.end(credential, id, result.as_ref().ok());
            result
        })
    }
}

/// `herd` in `summary.json` (one scenario × strategy). See the module comment for the rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HerdSummary {
    /// Refreshes seen by the watch (the token endpoint's calls).
    pub refreshes: u64,
    /// The largest number of requests waiting on one refresh (the one that made it included).
    pub max_waiters: u64,
    /// The most refreshes of one credential in flight at once.
    pub max_overlapping: u32,
    /// Refreshes begun while another refresh of the same credential was in flight.
    pub overlapping_refreshes: u64,
    /// Token generations refreshed at least once.
    pub expiries: u64,
    /// `refreshes / expiries` (`null`: no refresh).
    pub refreshes_per_expiry: Option<f64>,
    /// Refreshes begun before the newest token reached its refresh-ahead point (`window_ms`
    /// before expiry, bounded by the token's lifetime).
    pub wasted: u64,
    /// The policy's refresh window, `max(refresh_margin, refresh_ahead)`, ms.
    pub window_ms: i64,
    /// Held-up requests that may have waited on a refresh too old to be kept (not attributed).
    pub attribution_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every refresh after 100 ms (tokio time) with a one-hour token.
    struct Slow;

    impl TokenEndpoint for Slow {
        fn refresh<'a>(&'a self, _: usize, _: u64, _: &'a Secret) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(TokenGrant {
                    access_token: Secret::new("t".to_string()),
                    expires_in: 3600,
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_and_overlapping_refreshes_are_counted() {
        let clock = Clock::starting_at(1_000_000);
        let policy = Policy::default();
        // Credential 0 expired; credential 1 has an hour left.
        let accounts = [Account::synthetic(0, 0, 1), Account::synthetic(1, 1_000_000, 3600)];
        let w = RefreshWatch::new(Arc::new(Slow), clock, &policy, &accounts);
        let token = Secret::new("r".to_string());
        // Two refreshes of credential 0 at once (a herd without single-flight), then a third
        // after they landed (its token now has an hour left: wasted), and one of credential 1
        // (an hour left from the start: wasted).
        let (a, b) = tokio::join!(w.refresh(0, 0, &token), w.refresh(0, 1, &token));
        assert!(a.is_ok() && b.is_ok());
        w.refresh(0, 2, &token).await.unwrap();
        w.refresh(1, 0, &token).await.unwrap();
        let s = w.summary();
        assert_eq!(s.refreshes, 4);
        assert_eq!(s.max_overlapping, 2);
        assert_eq!(s.overlapping_refreshes, 1);
        // Expiries: credential 0's first token (two refreshes), its second one (the duplicate
        // refreshed again), credential 1's token.
        assert_eq!(s.expiries, 3);
        assert_eq!(s.refreshes_per_expiry, Some(4.0 / 3.0));
        assert_eq!(s.wasted, 2);
        // Waiters: a request held up from 0 to 150 ms waited on the first two (they ended at
        // 100 ms), not on the later ones.
        w.held_up(Duration::ZERO, Duration::from_millis(150));
        assert_eq!(w.summary().max_waiters, 1);
    }
}
