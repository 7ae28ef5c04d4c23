//! [`LocalPool`]: an instance's own copy of the pool, and the degraded mode it serves from when
//! the shared pool cannot be reached.
//!
//! Every instance keeps the accounts it was started with (from the system of record), updated
//! with each token it sees in a shared acquisition and each ban or disable it learns. While the
//! shared pool answers, that copy is only a mirror. When it does not (a refused connection, a
//! timeout), the instance enters **degraded mode**, explicitly and counted:
//!
//! - acquisitions rotate locally ([`PoolState::select`]: K calls per turn in this instance, so
//!   about K × instances fleet-wide, the defect fleet mode exists to remove, accepted while Redis
//!   is down);
//! - bans and disables apply locally, and are kept to be written to the shared pool once it
//!   answers again (a ban as `max(old, new)`, so replaying one is harmless);
//! - **no token is refreshed**: a refresh needs the account's lease, which only the shared pool
//!   grants. An account whose token is inside the margin is skipped, as if unusable;
//! - at most one acquisition per `probe_interval` tries the shared pool again
//!   ([`LocalPool::probe_due`]); the first operation that succeeds leaves degraded mode
//!   ([`LocalPool::leave`]) and hands back the changes to replay.
//!
//! This is the fleet strategy's instance-local synchronous core (short critical sections on
//! [`crate::sync`]), so `loom_tests/fleet.rs` model-checks it from threads: one entry and one
//! exit counted per outage, one prober per interval, and no change made while degraded lost
//! between "recorded for replay" and "left degraded mode".

use crate::model::{Account, Change, EpochMs, PoolState, Selection};
use crate::secret::Secret;
use crate::sync::{AtomicBool, AtomicI64, Mutex, Ordering};

/// Changes made while degraded, waiting to be written to the shared pool: `(local index, change)`.
pub type Pending = Vec<(usize, Change)>;

#[derive(Debug)]
pub struct LocalPool {
    state: Mutex<PoolState>,
    /// Changes to replay, and whether the instance is degraded: one lock, so a change is either
    /// queued before [`leave`](Self::leave) takes the queue or told that degraded mode is over.
    mode: Mutex<Mode>,
    /// A copy of `mode.degraded` for the acquire path, read without the lock.
    degraded: AtomicBool,
    /// While degraded, the earliest epoch ms of the next probe of the shared pool.
    next_probe: AtomicI64,
    probe_interval_ms: i64,
}

#[derive(Debug, Default)]
struct Mode {
    degraded: bool,
    pending: Pending,
}

/// What a local acquisition found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalPick {
    Ready {
        index: usize,
        token: Secret,
    },
    /// Nothing usable without a refresh, which degraded mode may not do.
    Exhausted,
}

impl LocalPool {
    pub fn new(state: PoolState, probe_interval_ms: i64) -> LocalPool {
        LocalPool {
            state: Mutex::new(state),
            mode: Mutex::new(Mode::default()),
            degraded: AtomicBool::new(false),
            next_probe: AtomicI64::new(EpochMs::MIN),
            probe_interval_ms: probe_interval_ms.max(1),
        }
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Enters degraded mode at `now`. Whether this call entered it (so it is counted once per
    /// outage, however many requests find Redis gone at once).
    pub fn enter(&self, now: EpochMs) -> bool {
        let mut mode = self.mode.lock();
        if mode.degraded {
            return false;
        }
        mode.degraded = true;
        self.next_probe.store(now + self.probe_interval_ms, Ordering::Release);
        self.degraded.store(true, Ordering::Release);
        true
    }

    /// Leaves degraded mode. `Some(changes to replay)` for the one call that left it.
    pub fn leave(&self) -> Option<Pending> {
        let mut mode = self.mode.lock();
        if !mode.degraded {
            return None;
        }
        mode.degraded = false;
        self.degraded.store(false, Ordering::Release);
        Some(std::mem::take(&mut mode.pending))
    }

    /// Whether the caller should try the shared pool now: at most one caller per
    /// `probe_interval` while degraded (the one that moves the next probe on).
    pub fn probe_due(&self, now: EpochMs) -> bool {
        let due = self.next_probe.load(Ordering::Acquire);
        now >= due
            && self
                .next_probe
                .compare_exchange(due, now + self.probe_interval_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Queues a change (made while the shared pool could not be reached) for replay. `false`
    /// when degraded mode is already over: the caller writes the change to the shared pool itself.
    pub fn queue(&self, index: usize, change: Change) -> bool {
        let mut mode = self.mode.lock();
        if mode.degraded {
            mode.pending.push((index, change));
        }
        mode.degraded
    }

    /// Applies a change to the local copy; whether it disabled an enabled account.
    pub fn apply(&self, index: usize, change: &Change) -> bool {
        self.state.lock().apply(index, change)
    }

    /// Records the token (and expiry) the shared pool holds for account `index`.
    pub fn observe(&self, index: usize, token: &Secret, expires_at: Option<EpochMs>) {
        let mut state = self.state.lock();
        let a = &mut state.accounts[index];
        if a.access_token != *token {
            a.access_token = token.clone();
        }
        match expires_at {
            Some(at) => {
                let lifetime_s = a.expires_in.unwrap_or(0);
                a.expires_in = Some(lifetime_s);
                a.timestamp = Some(at - lifetime_s * 1000);
            }
            None => a.timestamp = None,
        }
    }

    /// A local acquisition for `model` at `now`: the policy's own selection, skipping (rotating
    /// past) accounts whose token needs a refresh, since degraded mode never refreshes.
    pub fn select(&self, model: &str, now: EpochMs) -> LocalPick {
        let mut state = self.state.lock();
        for _ in 0..state.accounts.len().max(1) {
            match state.select(model, now) {
                Selection::Ready(index) => {
                    return LocalPick::Ready {
                        index,
                        token: state.accounts[index].access_token.clone(),
                    }
                }
                Selection::NeedsRefresh(_) => state.rotate(),
                Selection::Exhausted => return LocalPick::Exhausted,
            }
        }
        LocalPick::Exhausted
    }

    /// Account `index` as the local copy holds it.
    pub fn account(&self, index: usize) -> Account {
        self.state.lock().accounts[index].clone()
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.state.lock().accounts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Policy;

    fn local(n: usize, k: u64) -> LocalPool {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        LocalPool::new(
            PoolState::new(policy, (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect()),
            1_000,
        )
    }

    #[test]
    fn one_entry_and_one_exit_per_outage_and_changes_replayed_once() {
        let l = local(2, 1);
        assert!(
            !l.queue(0, Change::Disabled),
            "not degraded: the caller writes it itself"
        );
        assert!(l.enter(0));
        assert!(!l.enter(5));
        assert!(l.queue(1, Change::Disabled));
        assert_eq!(l.leave(), Some(vec![(1, Change::Disabled)]));
        assert_eq!(l.leave(), None);
        assert!(!l.is_degraded());
    }

    #[test]
    fn one_probe_per_interval() {
        let l = local(1, 1);
        l.enter(0);
        assert!(!l.probe_due(999));
        assert!(l.probe_due(1_000));
        assert!(
            !l.probe_due(1_000),
            "the second caller in the same interval does not probe"
        );
        assert!(l.probe_due(2_000));
    }

    #[test]
    fn degraded_selection_rotates_locally_and_never_hands_out_an_expiring_token() {
        let l = local(3, 2);
        let picks: Vec<usize> = (0..6)
            .map(|_| match l.select("gemini-3-pro", 0) {
                LocalPick::Ready { index, .. } => index,
                LocalPick::Exhausted => panic!("exhausted"),
            })
            .collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2]);
        // Account 1's token now expires within the margin: skipped, not refreshed.
        l.observe(1, &Secret::new("t"), Some(100_000));
        for _ in 0..6 {
            assert!(matches!(l.select("gemini-3-pro", 0), LocalPick::Ready { index, .. } if index != 1));
        }
        for i in [0, 2] {
            l.observe(i, &Secret::new("t"), Some(100_000));
        }
        assert_eq!(l.select("gemini-3-pro", 0), LocalPick::Exhausted);
    }
}
