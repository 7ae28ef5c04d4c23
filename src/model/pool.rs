//! The pool's state transitions: select a credential, apply a change.
//!
//! This is the proxy's `get_valid_credential` and its bookkeeping, minus the lock and the I/O:
//! a strategy calls these functions under whatever synchronisation it chooses, performs the
//! refresh or the persistence they ask for, and charges each step's cost where it does it.

use super::account::Account;
use super::change::Change;
use super::policy::Policy;
use super::time::EpochMs;

/// What [`PoolState::select`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Use account `index`; the call has been counted.
    Ready(usize),
    /// Account `index` is next, but its token is inside the refresh margin (or has no expiry
    /// fields). Refresh it, apply the result, and select again. The call is not counted yet.
    NeedsRefresh(usize),
    /// No enabled account can serve this model now.
    Exhausted,
}

/// The accounts plus the rotation cursor.
#[derive(Clone, Debug)]
pub struct PoolState {
    pub policy: Policy,
    pub accounts: Vec<Account>,
    /// Index of the current account.
    current: usize,
    /// Calls served by the current account since the last rotation (the proxy's global count).
    calls: u64,
}

impl PoolState {
    pub fn new(policy: Policy, accounts: Vec<Account>) -> Self {
        PoolState {
            policy,
            accounts,
            current: 0,
            calls: 0,
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    pub fn calls_since_rotation(&self) -> u64 {
        self.calls
    }

    /// Chooses the account for a request for `model` at `now`.
    ///
    /// 1. Rotate when there is more than one account and `calls_per_rotation` calls were counted.
    /// 2. Skip disabled accounts and accounts whose series is banned for this model, moving the
    ///    cursor (a fresh account gets a full `calls_per_rotation` turn).
    /// 3. Report `NeedsRefresh` when the chosen token is due ([`Policy::needs_refresh`]), else
    ///    count the call.
    pub fn select(&mut self, model: &str, now: EpochMs) -> Selection {
        self.select_after_refresh(model, now, None)
    }

    /// [`select`](Self::select) by a request that has just refreshed account `refreshed`: if the
    /// cursor is still on it, its new token is served whatever its age, so that a token whose
    /// lifetime is shorter than the refresh took (or zero) is used once rather than refreshed
    /// again in a loop (see [`super::refresh_window`]).
    pub fn select_after_refresh(&mut self, model: &str, now: EpochMs, refreshed: Option<usize>) -> Selection {
        let n = self.accounts.len();
        if n == 0 {
            return Selection::Exhausted;
        }
        self.rotate_if_due();
        if !self.policy.usable(&self.accounts[self.current], model, now) {
            let next = (1..n)
                .map(|step| (self.current + step) % n)
                .find(|&i| self.policy.usable(&self.accounts[i], model, now));
            match next {
                Some(i) => {
                    self.current = i;
                    self.calls = 0;
                }
                None => return Selection::Exhausted,
            }
        }
        let i = self.current;
        if refreshed != Some(i) && self.policy.needs_refresh(&self.accounts[i], now) {
            return Selection::NeedsRefresh(i);
        }
        self.calls += 1;
        Selection::Ready(i)
    }

    /// Step 1 of [`select`](Self::select): once `calls_per_rotation` calls were counted, start a
    /// new turn on the next account.
    pub fn rotate_if_due(&mut self) {
        if self.calls >= self.policy.calls_per_rotation {
            self.rotate();
        }
    }

    /// Moves the cursor to the next account (when there is more than one) and starts a new turn:
    /// the proxy's `_rotate_credential`, which it also calls to move past an account it cannot use.
    pub fn rotate(&mut self) {
        let n = self.accounts.len();
        if n > 1 {
            self.current = (self.current + 1) % n;
        }
        self.calls = 0;
    }

    /// The read-only half of [`select`](Self::select), for strategies that select under a shared
    /// lock: `Some((current, left))` when `select` would hand out the current account without
    /// rotating or skipping (usable, token outside the margin), with `left` the calls still
    /// available in its turn. A caller that serves a call this way counts it elsewhere and hands
    /// the count back through [`count_calls`](Self::count_calls) before the next `select`; a
    /// caller must not serve more than `left` calls so (then `select` rotates as usual).
    pub fn ready_in_turn(&self, model: &str, now: EpochMs) -> Option<(usize, u64)> {
        let i = self.current;
        let account = self.accounts.get(i)?;
        let usable = self.policy.usable(account, model, now) && !self.policy.needs_refresh(account, now);
        let left = self.policy.calls_per_rotation.saturating_sub(self.calls);
        (usable && left > 0).then_some((i, left))
    }

    /// Adds `n` calls served through [`ready_in_turn`](Self::ready_in_turn) to the current
    /// account's turn.
    pub fn count_calls(&mut self, n: u64) {
        self.calls += n;
    }

    /// Applies a change to account `index` in memory. Returns whether it disabled an account
    /// that was enabled: concurrent requests on a dead credential all come back with its error,
    /// and a strategy counts the disable once, on this transition.
    pub fn apply(&mut self, index: usize, change: &Change) -> bool {
        let was_disabled = self.accounts[index].disabled;
        self.accounts[index].apply(change);
        !was_disabled && self.accounts[index].disabled
    }

    /// Applies an operator's switch (disable or enable) to account `index`; returns whether it
    /// changed the account's state. A skip past a disabled account happens at the next `select`.
    pub fn switch(&mut self, index: usize, change: &Change) -> bool {
        let was_disabled = self.accounts[index].disabled;
        self.accounts[index].apply(change);
        was_disabled != self.accounts[index].disabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::change::{Outcome, RefreshFailure, TokenGrant};
    use crate::secret::Secret;
    use proptest::prelude::*;

    const MODEL: &str = "gemini-3-pro";

    fn pool(n: usize, k: u64) -> PoolState {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        PoolState::new(policy, (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect())
    }

    fn ready(p: &mut PoolState, now: EpochMs) -> usize {
        match p.select(MODEL, now) {
            Selection::Ready(i) => i,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn rotates_every_k_calls_in_aggregate() {
        let mut p = pool(3, 2);
        let picks: Vec<usize> = (0..7).map(|_| ready(&mut p, 0)).collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2, 0]);
    }

    #[test]
    fn rotate_moves_on_and_starts_a_new_turn() {
        let mut p = pool(3, 2);
        assert_eq!(ready(&mut p, 0), 0);
        p.rotate();
        assert_eq!((p.current(), p.calls_since_rotation()), (1, 0));
        p.rotate_if_due();
        assert_eq!(p.current(), 1, "not due: no call counted yet");
        assert_eq!(ready(&mut p, 0), 1);
        assert_eq!(ready(&mut p, 0), 1);
        p.rotate_if_due();
        assert_eq!(p.current(), 2);
    }

    #[test]
    fn single_account_never_rotates() {
        let mut p = pool(1, 2);
        assert!((0..5).all(|_| ready(&mut p, 0) == 0));
    }

    #[test]
    fn skips_disabled_and_banned_accounts() {
        let mut p = pool(3, 100);
        p.apply(0, &Change::Disabled);
        assert_eq!(ready(&mut p, 0), 1);
        let ban = p.policy.outcome_change(
            MODEL,
            0,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        );
        p.apply(1, &ban);
        assert_eq!(ready(&mut p, 0), 2);
        // Other series are not affected by a gemini-3 ban.
        assert_eq!(p.select("claude-sonnet", 0), Selection::Ready(2));
    }

    #[test]
    fn reports_exhausted_when_nothing_is_usable() {
        let mut p = pool(2, 100);
        p.apply(0, &Change::Disabled);
        p.apply(1, &Change::Disabled);
        assert_eq!(p.select(MODEL, 0), Selection::Exhausted);
        assert_eq!(pool(0, 1).select(MODEL, 0), Selection::Exhausted);
    }

    #[test]
    fn expired_token_needs_refresh_and_is_not_counted() {
        let mut p = pool(2, 100);
        let now = 3_600_000 - 300_000; // exactly at the margin
        assert_eq!(p.select(MODEL, now), Selection::NeedsRefresh(0));
        assert_eq!(p.calls_since_rotation(), 0);
        let grant = TokenGrant {
            access_token: Secret::new("t"),
            expires_in: 3600,
        };
        let change = p.policy.refresh_change(now, &Ok(grant));
        p.apply(0, &change);
        assert_eq!(p.select(MODEL, now), Selection::Ready(0));
        assert_eq!(p.calls_since_rotation(), 1);
    }

    #[test]
    fn a_token_refreshed_by_the_request_is_served_even_if_already_due() {
        let mut p = pool(2, 100);
        p.accounts[0].timestamp = None;
        assert_eq!(p.select(MODEL, 0), Selection::NeedsRefresh(0));
        // The endpoint grants a token that lives 0 seconds: due at once, served once.
        let grant = TokenGrant {
            access_token: Secret::new("t"),
            expires_in: 0,
        };
        let change = p.policy.refresh_change(0, &Ok(grant));
        p.apply(0, &change);
        assert_eq!(p.select(MODEL, 0), Selection::NeedsRefresh(0));
        assert_eq!(p.select_after_refresh(MODEL, 0, Some(0)), Selection::Ready(0));
        assert_eq!(p.calls_since_rotation(), 1);
    }

    #[test]
    fn failed_refresh_disables_and_moves_on() {
        let mut p = pool(2, 100);
        p.accounts[0].timestamp = None;
        assert_eq!(p.select(MODEL, 0), Selection::NeedsRefresh(0));
        let change = p.policy.refresh_change(0, &Err(RefreshFailure::InvalidGrant));
        p.apply(0, &change);
        assert!(p.accounts[0].disabled);
        assert_eq!(p.select(MODEL, 0), Selection::Ready(1));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Request { advance_ms: i64, claude: bool },
        Outcome { status: u16 },
        Disable(usize),
        Expire(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0i64..120_000, any::<bool>()).prop_map(|(advance_ms, claude)| Step::Request { advance_ms, claude }),
            2 => prop::sample::select(vec![200u16, 429, 401, 403, 500]).prop_map(|status| Step::Outcome { status }),
            1 => (0usize..4).prop_map(Step::Disable),
            1 => (0usize..4).prop_map(Step::Expire),
        ]
    }

    proptest! {
        /// Over random requests and outcomes: a disabled, banned or expiring account is never
        /// handed out, and while nothing changes the pool's health, each usable account gets K
        /// consecutive selections in turn.
        #[test]
        fn selection_invariants(n in 1usize..5, k in 1u64..5, steps in prop::collection::vec(step(), 1..200)) {
            let mut p = pool(n, k);
            p.policy.auto_ban_codes = vec![401];
            let mut now: EpochMs = 0;
            let mut last: Option<usize> = None;
            let mut run_len: u64 = 0;
            for s in steps {
                match s {
                    Step::Request { advance_ms, claude } => {
                        now += advance_ms;
                        let model = if claude { "claude-x" } else { MODEL };
                        let sel = loop {
                            match p.select(model, now) {
                                Selection::NeedsRefresh(i) => {
                                    let grant = TokenGrant { access_token: Secret::new("t"), expires_in: 3600 };
                                    let c = p.policy.refresh_change(now, &Ok(grant));
                                    p.apply(i, &c);
                                }
                                other => break other,
                            }
                        };
                        if let Selection::Ready(i) = sel {
                            let a = &p.accounts[i];
                            prop_assert!(!a.disabled, "disabled account {} handed out", i);
                            prop_assert!(p.policy.usable(a, model, now), "banned account {} handed out", i);
                            prop_assert!(!p.policy.needs_refresh(a, now), "expiring token handed out");
                            if last == Some(i) { run_len += 1 } else { run_len = 1 }
                            last = Some(i);
                            // With one usable account left, it rightly serves every call: restart the count.
                            if p.accounts.iter().filter(|a| p.policy.usable(a, model, now)).count() <= 1 {
                                run_len = 0;
                            }
                            prop_assert!(run_len <= k, "account {} served {} in a row with K={}", i, run_len, k);
                        } else {
                            // Exhausted must mean nothing is usable.
                            prop_assert!(p.accounts.iter().all(|a| !p.policy.usable(a, model, now)));
                        }
                    }
                    Step::Outcome { status } => {
                        let i = p.current();
                        let outcome = if status == 200 { Outcome::Success }
                            else if status == 429 { Outcome::RateLimited { reset_at: None, retry_delay_ms: None, quota_reset_delay: None } }
                            else { Outcome::Status(status) };
                        let c = p.policy.outcome_change(MODEL, now, &outcome);
                        p.apply(i, &c);
                    }
                    Step::Disable(i) => { if i < n { p.apply(i, &Change::Disabled); } }
                    Step::Expire(i) => { if i < n { p.accounts[i].timestamp = Some(now - 3_600_000); } }
                }
            }
        }

        /// Serving some calls through the read-only `ready_in_turn` (counted and handed back
        /// later, as the `rwlock` strategy does) picks exactly what `select` alone picks.
        #[test]
        fn ready_in_turn_plus_count_calls_matches_select(
            n in 1usize..5, k in 1u64..5,
            calls in prop::collection::vec((any::<bool>(), 0usize..4, any::<bool>()), 1..120),
        ) {
            let mut reference = pool(n, k);
            let mut split = pool(n, k);
            let mut pending = 0u64;
            for (fast, disable, do_disable) in calls {
                if do_disable && disable < n && disable != 0 {
                    reference.apply(disable, &Change::Disabled);
                    split.apply(disable, &Change::Disabled);
                }
                let want = ready(&mut reference, 0);
                let got = match split.ready_in_turn(MODEL, 0) {
                    Some((i, left)) if fast && pending < left => {
                        pending += 1;
                        i
                    }
                    _ => {
                        split.count_calls(std::mem::take(&mut pending));
                        ready(&mut split, 0)
                    }
                };
                prop_assert_eq!(got, want);
            }
        }

        /// With every account healthy, selections follow the exact round-robin of K-runs.
        #[test]
        fn healthy_pool_gives_k_consecutive_selections_in_turn(n in 1usize..6, k in 1u64..6, calls in 1usize..100) {
            let mut p = pool(n, k);
            for c in 0..calls {
                let i = ready(&mut p, 0);
                prop_assert_eq!(i, (c / k as usize) % n);
            }
        }
    }
}
