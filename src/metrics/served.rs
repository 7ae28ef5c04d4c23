//! What requests were served with, against what the store had acknowledged: requests sent with
//! an account that was already disabled, and enabled accounts a rotation passed over.
//!
//! Both figures are measured outside the strategy, from the leases the runner receives, so they
//! judge every strategy alike (`as_shipped`'s stale "current account" pointer and the skip after
//! the pool shrank, `../shared/reference-behaviour.md`):
//!
//! - `served_disabled`: requests whose account's disable the store had acknowledged before the
//!   request began to acquire ([`AuditedStore::disabled_at`] at the moment taken then). Requests
//!   already acquiring when the disable landed are not counted: no design can take back a
//!   credential it has handed out, and one it is handing out may miss the news.
//! - `rotation_skips`: a change of account between two consecutive acquisitions, each made while
//!   no other request was in the system, that passed over accounts lying between the two in pool
//!   order (cyclically) which could have served: never disabled during the run (by the store's
//!   acknowledgements; decided at the end, so a disable whose acknowledgement lags the in-memory
//!   one is not taken for a skip) and not banned for the request's series by a 429 the upstream
//!   answered (the ban the policy derives from the answer). Requests that overlap others are left
//!   out: concurrent requests rightly spread over several accounts at once. A closed load of one
//!   user has every request alone, and there each change of account is a rotation.
//! - `longest_turn`: the most acquisitions of one account in a row, in the order the runner
//!   received the leases (fleet-wide under `[fleet]`): K for a pool-wide rotation of K calls per
//!   turn, K × N for N instances that each rotate on their own.
//! - `account_calls_max`, `account_calls_min`: the most and fewest leases of any one account of
//!   the pool (their ratio is the balance `[fleet]` scenarios bound).

use super::audit::AuditedStore;
use crate::model::{Account, AccountId, Change, EpochMs, Outcome, Policy};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The figures of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// Requests sent with an account whose disable the store had acknowledged before they began
    /// to acquire.
    pub served_disabled: u64,
    /// Accounts passed over by changes of account between requests that ran alone, though they
    /// were never disabled nor banned for the series.
    pub rotation_skips: u64,
    /// The most acquisitions of one account in a row (absent from older files).
    #[serde(default)]
    pub longest_turn: u64,
    /// The most and fewest leases of one account of the pool.
    #[serde(default)]
    pub account_calls_max: u64,
    #[serde(default)]
    pub account_calls_min: u64,
}

impl Served {
    /// `account_calls_max / account_calls_min` (infinite when an account got none).
    pub fn account_calls_ratio(&self) -> f64 {
        self.account_calls_max as f64 / self.account_calls_min as f64
    }
}

/// Watches the leases of one run.
pub struct ServedWatch {
    audit: Arc<AuditedStore>,
    policy: Policy,
    /// The pool's account ids by index.
    ids: Vec<AccountId>,
    state: crate::sync::Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    served_disabled: u64,
    /// The previous acquisition's account, and whether that request was alone.
    last: Option<(usize, bool)>,
    /// Accounts passed over, by index (one entry per time), to be judged at the end.
    passed_over: Vec<usize>,
    /// Series bans derived from the upstream's 429s: (account, series) -> until.
    banned: HashMap<(usize, String), EpochMs>,
    /// The account of the current run of acquisitions, and its length so far.
    turn: Option<(usize, u64)>,
    longest_turn: u64,
    /// Leases per account, by index.
    calls: Vec<u64>,
}

impl ServedWatch {
    pub fn new(audit: Arc<AuditedStore>, policy: Policy, accounts: &[Account]) -> Self {
        ServedWatch {
            audit,
            policy,
            ids: accounts.iter().map(|a| a.id.clone()).collect(),
            state: crate::sync::Mutex::new(WatchState {
                calls: vec![0; accounts.len()],
                ..WatchState::default()
            }),
        }
    }

    /// The moment a request begins to acquire (see [`AuditedStore::moment`]).
    pub fn moment(&self) -> u64 {
        self.audit.moment()
    }

    /// A request for `model` that began to acquire at `started` got account `index` (`id`) at
    /// `now`; `alone` when no other request was in the system meanwhile.
    pub fn acquired(&self, index: usize, id: &AccountId, model: &str, started: u64, alone: bool, now: EpochMs) {
        let disabled = self.audit.disabled_at(id, started);
        let series = self.policy.series_of(model);
        let mut st = self.state.lock();
        if disabled {
            st.served_disabled += 1;
        }
        let run = match st.turn {
            Some((last, length)) if last == index => length + 1,
            _ => 1,
        };
        st.turn = Some((index, run));
        st.longest_turn = st.longest_turn.max(run);
        if let Some(c) = st.calls.get_mut(index) {
            *c += 1;
        }
        if let Some((last, last_alone)) = st.last {
            if alone && last_alone && last != index {
                let n = self.ids.len();
                let between = (1..n).map(|step| (last + step) % n).take_while(|&j| j != index);
                let could_serve: Vec<usize> = between
                    .filter(|&j| {
                        series.is_none_or(|s| st.banned.get(&(j, s.to_string())).is_none_or(|&until| until <= now))
                    })
                    .collect();
                st.passed_over.extend(could_serve);
            }
        }
        st.last = Some((index, alone));
    }

    /// The upstream answered `outcome` to a request for `model` on account `index` at `now`.
    pub fn answered(&self, index: usize, model: &str, outcome: &Outcome, now: EpochMs) {
        if let Change::Error {
            ban: Some((series, until)),
            ..
        } = self.policy.outcome_change(model, now, outcome)
        {
            let mut st = self.state.lock();
            let entry = st.banned.entry((index, series)).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// The figures, once the run is over.
    pub fn summary(&self) -> Served {
        let st = self.state.lock();
        Served {
            served_disabled: st.served_disabled,
            rotation_skips: st
                .passed_over
                .iter()
                .filter(|&&j| !self.audit.ever_disabled(&self.ids[j]))
                .count() as u64,
            longest_turn: st.longest_turn,
            account_calls_max: st.calls.iter().copied().max().unwrap_or(0),
            account_calls_min: st.calls.iter().copied().min().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::MemoryBackend;
    use crate::store::{AccountStore, StoreMode};

    const MODEL: &str = "gemini-3-pro-preview";

    fn watch(n: usize) -> (Arc<AuditedStore>, ServedWatch, Vec<Account>) {
        let accounts: Vec<Account> = (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect();
        let text = crate::model::AccountsFile::from_accounts(accounts.clone()).to_toml_string();
        let backend = Arc::new(MemoryBackend::new(Some(text)));
        let store = crate::store::open(StoreMode::Locked, backend, Default::default());
        let audit = Arc::new(AuditedStore::new(store));
        let w = ServedWatch::new(audit.clone(), Policy::default(), &accounts);
        (audit, w, accounts)
    }

    #[test]
    fn a_request_that_began_after_the_disable_was_acknowledged_was_served_disabled() {
        let (audit, w, a) = watch(2);
        let before = w.moment();
        audit.acknowledge(&a[0].id, &Change::Disabled);
        let after = w.moment();
        w.acquired(0, &a[0].id, MODEL, before, true, 0);
        assert_eq!(w.summary().served_disabled, 0, "already acquiring when it landed");
        w.acquired(0, &a[0].id, MODEL, after, true, 0);
        w.acquired(1, &a[1].id, MODEL, after, true, 0);
        assert_eq!(w.summary().served_disabled, 1);
    }

    #[test]
    fn a_rotation_past_an_account_that_could_serve_is_a_skip_and_past_a_disabled_or_banned_one_is_not() {
        let (audit, w, a) = watch(4);
        let m = w.moment();
        // 0 -> 2 passes over 1; 2 -> 0 passes over 3.
        for i in [0, 2, 0] {
            w.acquired(i, &a[i].id, MODEL, m, true, 0);
        }
        assert_eq!(w.summary().rotation_skips, 2);
        // 1 disabled (even acknowledged after it was passed over) and 3 banned for the series:
        // the same moves skip nothing from now on, and the earlier pass over 1 is forgiven.
        audit.acknowledge(&a[1].id, &Change::Disabled);
        let limited = Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms: None,
            quota_reset_delay: None,
        };
        w.answered(3, MODEL, &limited, 0);
        w.acquired(2, &a[2].id, MODEL, m, true, 0);
        w.acquired(0, &a[0].id, MODEL, m, true, 0);
        assert_eq!(
            w.summary().rotation_skips,
            1,
            "only the first pass over 3, before its ban"
        );
        // A model of no series is not held back by the ban.
        w.acquired(2, &a[2].id, "other-model", m, true, 0);
        w.acquired(0, &a[0].id, "other-model", m, true, 0);
        assert_eq!(w.summary().rotation_skips, 2);
    }

    #[test]
    fn turns_are_runs_of_one_account_and_calls_are_counted_per_account() {
        let (_audit, w, a) = watch(3);
        let m = w.moment();
        for i in [0, 0, 0, 1, 1, 0, 2, 2] {
            w.acquired(i, &a[i].id, MODEL, m, false, 0);
        }
        let s = w.summary();
        assert_eq!((s.longest_turn, s.account_calls_max, s.account_calls_min), (3, 4, 2));
        assert_eq!(s.account_calls_ratio(), 2.0);
    }

    #[test]
    fn requests_that_overlap_others_are_not_judged() {
        let (_audit, w, a) = watch(3);
        let m = w.moment();
        w.acquired(0, &a[0].id, MODEL, m, true, 0);
        w.acquired(2, &a[2].id, MODEL, m, false, 0);
        w.acquired(0, &a[0].id, MODEL, m, true, 0);
        assert_eq!(w.summary().rotation_skips, 0);
    }
}
