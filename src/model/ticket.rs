//! Rotation as a pure function of a ticket number, for strategies without a rotation lock.
//!
//! [`PoolState::select`](super::PoolState::select) rotates with a cursor and a call count that
//! each selection mutates, so it needs exclusive access. The `lock_free` strategy instead hands
//! every acquisition a number no other acquisition holds (its *ticket*, from
//! `strategy::ticket_blocks`) and maps the ticket to an account with the rule below, which needs
//! no shared mutable state at all:
//!
//! > ticket `t` belongs to turn `t / K`; turns go round the accounts usable for the request's
//! > model, in pool order: turn `u` is served by the `(u mod m)`-th of the `m` usable accounts.
//!
//! With every account healthy this is exactly `select`'s round-robin of K-runs (tested below).
//! When the set of usable accounts changes (a disable, a ban, a ban expiring), the mapping of later
//! tickets shifts with it; a turn that straddles the change may be shorter or longer than K, as
//! with `select` when it skips an account. Expiry is not part of the rule: a usable account whose
//! token is inside the margin is refreshed, not skipped (see [`Policy::refresh_due`]).
//!
//! [`Policy::refresh_due`]: super::Policy::refresh_due

use super::account::Account;
use super::policy::Policy;
use super::time::EpochMs;

/// The position, among `usable` accounts in pool order, of the one that serves ticket `ticket`;
/// `None` when no account is usable. A `calls_per_rotation` of 0 is treated as 1.
#[inline]
pub fn ticket_position(ticket: u64, calls_per_rotation: u64, usable: usize) -> Option<usize> {
    if usable == 0 {
        return None;
    }
    let turn = ticket / calls_per_rotation.max(1);
    Some((turn % usable as u64) as usize)
}

/// The index of the account that serves ticket `ticket` for `model` at `now`, scanning
/// `accounts` with [`Policy::usable`]; `None` when no account is usable for this model now.
pub fn pick_by_ticket(policy: &Policy, accounts: &[Account], ticket: u64, model: &str, now: EpochMs) -> Option<usize> {
    let usable = |a: &&Account| policy.usable(a, model, now);
    let m = accounts.iter().filter(usable).count();
    let position = ticket_position(ticket, policy.calls_per_rotation, m)?;
    accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| usable(a))
        .nth(position)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::change::{Change, Outcome};
    use crate::model::pool::{PoolState, Selection};
    use proptest::prelude::*;

    const MODEL: &str = "gemini-3-pro";

    fn accounts(n: usize) -> Vec<Account> {
        (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect()
    }

    #[test]
    fn positions_advance_every_k_tickets() {
        let picks: Vec<usize> = (0..9).map(|t| ticket_position(t, 2, 3).unwrap()).collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2, 0, 0, 1]);
        assert_eq!(ticket_position(5, 0, 2), Some(1));
        assert_eq!(ticket_position(5, 3, 0), None);
    }

    #[test]
    fn disabled_and_banned_accounts_are_skipped() {
        let policy = Policy {
            calls_per_rotation: 1,
            ..Policy::default()
        };
        let mut a = accounts(4);
        a[1].apply(&Change::Disabled);
        let ban = policy.outcome_change(
            MODEL,
            0,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        );
        a[2].apply(&ban);
        let picks: Vec<usize> = (0..4)
            .map(|t| pick_by_ticket(&policy, &a, t, MODEL, 0).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 3, 0, 3]);
        // The ban is per series: another model still reaches account 2.
        let picks: Vec<usize> = (0..3)
            .map(|t| pick_by_ticket(&policy, &a, t, "claude-x", 0).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 2, 3]);
        // Once the ban is over, account 2 is back in the rotation.
        let later = policy.default_ban_ms;
        assert_eq!(pick_by_ticket(&policy, &a, 1, MODEL, later), Some(2));
    }

    #[test]
    fn nothing_usable_is_none() {
        let policy = Policy::default();
        let mut a = accounts(2);
        a.iter_mut().for_each(|x| x.apply(&Change::Disabled));
        assert_eq!(pick_by_ticket(&policy, &a, 0, MODEL, 0), None);
        assert_eq!(pick_by_ticket(&policy, &[], 0, MODEL, 0), None);
    }

    proptest! {
        /// On a healthy pool, tickets 0, 1, 2, ... pick exactly what successive `select`s pick.
        #[test]
        fn healthy_pool_matches_select(n in 1usize..6, k in 1u64..6, calls in 1u64..100) {
            let policy = Policy { calls_per_rotation: k, ..Policy::default() };
            let mut pool = PoolState::new(policy.clone(), accounts(n));
            for t in 0..calls {
                let want = match pool.select(MODEL, 0) {
                    Selection::Ready(i) => i,
                    other => panic!("healthy pool gave {other:?}"),
                };
                prop_assert_eq!(pick_by_ticket(&policy, &pool.accounts, t, MODEL, 0), Some(want));
            }
        }

        /// Whatever is disabled, a ticket never maps to a disabled account, and every usable
        /// account gets turns.
        #[test]
        fn never_a_disabled_account(n in 1usize..6, k in 1u64..4, disabled in prop::collection::vec(any::<bool>(), 6)) {
            let policy = Policy { calls_per_rotation: k, ..Policy::default() };
            let mut a = accounts(n);
            for (acc, off) in a.iter_mut().zip(&disabled) {
                if *off { acc.apply(&Change::Disabled) }
            }
            let live = a.iter().filter(|x| !x.disabled).count();
            let mut seen = vec![false; n];
            for t in 0..(k * n as u64 * 2) {
                match pick_by_ticket(&policy, &a, t, MODEL, 0) {
                    Some(i) => { prop_assert!(!a[i].disabled); seen[i] = true; }
                    None => prop_assert_eq!(live, 0),
                }
            }
            prop_assert_eq!(seen.iter().filter(|s| **s).count(), live);
        }
    }
}
