//! `rwlock`: the seed's option 2, selection under a read lock.
//!
//! **Locks:** a readers-writer lock around the pool. **Read lock held for:** the rotation check,
//! loading the credential and the quota check (the three selection steps, charged once per
//! acquisition) and the selection itself. **Write lock held for:** rotating to the next account,
//! skipping a disabled or banned one, refreshing a token (the HTTP call) and persisting its result,
//! and disabling-and-persisting a credential after an auto-ban outcome.
//! **Trades away:** nothing while the current account is healthy and inside its turn: readers run
//! side by side. But every K-th request rotates under the write lock, a writer waits for every
//! reader in flight and then stalls every request behind it (tokio's lock is fair: a queued writer
//! blocks new readers), so a 500 ms refresh still stops the whole pool, exactly as under
//! `global_mutex`.
//!
//! ## Keeping the read path read-only
//!
//! [`PoolState::select`] counts every call (it advances the rotation counter), so it cannot run
//! under a shared lock. The read path therefore asks the pure, read-only
//! [`PoolState::ready_in_turn`] whether the current account can be handed out without rotating or
//! skipping, and claims one of the calls left in its turn from an atomic counter (`pending`) with a
//! compare-and-swap, still under the read lock. When the turn is used up (or the account is
//! disabled, banned or expiring) the claim fails and the request takes the write lock, which folds
//! the pending calls back into the pool ([`PoolState::count_calls`]) and runs the ordinary
//! `select`. What that changes against a plain mutex: rotation still happens exactly every K calls
//! in aggregate, but the call count lives in an atomic that every reader writes (one contended
//! cache line), and the request that finds the turn used up pays a write-lock round trip.
//!
//! ## Two layers
//!
//! The shared state lives in [`RwLockCore`], a synchronous core with short critical sections on
//! [`crate::sync`] primitives, so `loom_tests/` can model-check it from threads. Around it,
//! an async `tokio::sync::RwLock<()>` (the *gate*) is what requests queue on and hold while they
//! spend the modelled step costs and while a refresh is in flight: the gate is where time goes,
//! the core is where correctness lives. A 429's series ban takes the core's write lock for an
//! instant without queueing on the gate; plain bookkeeping (a success, a 5xx) takes no lock at
//! all: as in `global_mutex`, it is written to the store and not kept in memory.

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::model::{Account, Change, EpochMs, Outcome, Policy, PoolState, Selection};
use crate::secret::Secret;
use crate::sync::{AtomicU64, Ordering, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// What the write path decided.
#[derive(Debug, PartialEq, Eq)]
pub enum WritePick {
    Ready(Pick),
    /// Refresh credential `index` (its refresh token is here), apply the result, select again.
    NeedsRefresh {
        index: usize,
        refresh_token: Secret,
    },
    Exhausted,
}

/// The synchronous core: the pool under a sync readers-writer lock, and the calls served by the
/// read path since the write path last counted them.
#[derive(Debug)]
pub struct RwLockCore {
    pool: RwLock<PoolState>,
    /// Calls handed out by [`read_select`](Self::read_select) and not yet folded into the pool's
    /// turn count. Only incremented under the read lock, only reset under the write lock, so
    /// the write path always sees every claimed call.
    pending: AtomicU64,
}

impl RwLockCore {
    pub fn new(policy: Policy, accounts: Vec<Account>) -> Self {
        RwLockCore {
            pool: RwLock::new(PoolState::new(policy, accounts)),
            pending: AtomicU64::new(0),
        }
    }

    /// The read path: the current account, if it is usable, its token is outside the margin and
    /// its turn has a call left, claiming that call. `None` means: take the write path.
    pub fn read_select(&self, model: &str, now: EpochMs) -> Option<Pick> {
        let pool = self.pool.read();
        let (index, left) = pool.ready_in_turn(model, now)?;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| (p < left).then_some(p + 1))
            .ok()?;
        Some(pick(&pool, index))
    }

    /// The write path: counts the read path's calls, then runs the policy's `select` (which
    /// rotates, skips and counts this call).
    pub fn write_select(&self, model: &str, now: EpochMs) -> WritePick {
        self.write_select_after_refresh(model, now, None)
    }

    /// [`write_select`](Self::write_select) by a request that has just refreshed credential
    /// `refreshed` (see [`PoolState::select_after_refresh`]).
    pub fn write_select_after_refresh(&self, model: &str, now: EpochMs, refreshed: Option<usize>) -> WritePick {
        let mut pool = self.pool.write();
        let served = self.pending.swap(0, Ordering::AcqRel);
        pool.count_calls(served);
        match pool.select_after_refresh(model, now, refreshed) {
            Selection::Ready(index) => WritePick::Ready(pick(&pool, index)),
            Selection::NeedsRefresh(index) => WritePick::NeedsRefresh {
                index,
                refresh_token: pool.accounts[index].refresh_token.clone(),
            },
            Selection::Exhausted => WritePick::Exhausted,
        }
    }

    /// Applies a change to account `index` (under the write lock, for an instant).
    /// Applies a change; returns whether it disabled an enabled account (see [`PoolState::apply`]).
    pub fn apply(&self, index: usize, change: &Change) -> bool {
        self.pool.write().apply(index, change)
    }

    /// Calls counted in the current turn, the read path's pending ones included.
    pub fn calls_in_turn(&self) -> u64 {
        let pool = self.pool.read();
        pool.calls_since_rotation() + self.pending.load(Ordering::Acquire)
    }

    /// Index of the current account.
    pub fn current(&self) -> usize {
        self.pool.read().current()
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.pool.read().accounts.clone()
    }

    /// An operator's switch (see [`PoolState::switch`]), under the write lock for an instant.
    pub fn switch(&self, index: usize, change: &Change) -> bool {
        self.pool.write().switch(index, change)
    }

    pub fn account_id(&self, index: usize) -> crate::model::AccountId {
        self.pool.read().accounts[index].id.clone()
    }
}

fn pick(pool: &PoolState, index: usize) -> Pick {
    let a = &pool.accounts[index];
    Pick {
        index,
        id: a.id.clone(),
        token: a.access_token.clone(),
    }
}

pub struct RwLockStrategy {
    env: Env,
    /// The async gate: queued on and held while time is spent (step costs, refreshes).
    gate: tokio::sync::RwLock<()>,
    core: RwLockCore,
    counters: Counters,
    attempts: RefreshAttempts,
}

impl RwLockStrategy {
    pub fn new(env: Env) -> Self {
        let core = RwLockCore::new(env.policy.clone(), env.accounts.clone());
        let attempts = RefreshAttempts::new(env.accounts.len());
        RwLockStrategy {
            env,
            gate: tokio::sync::RwLock::new(()),
            core,
            counters: Counters::default(),
            attempts,
        }
    }

    /// The core, for tests and model checks.
    pub fn core(&self) -> &RwLockCore {
        &self.core
    }
}

impl CredentialManager for RwLockStrategy {
    fn name(&self) -> &'static str {
        "rwlock"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        let mut refresh_wait = Duration::ZERO;
        let mut lock_wait;
        {
            let _read = self.gate.read().await;
            lock_wait = asked.elapsed();
            self.env.costs.charge_selection().await;
            if let Some(p) = self.core.read_select(&request.model, self.env.clock.now_ms()) {
                return Ok(p.into_lease(AcquireTiming::since(asked, lock_wait, refresh_wait)));
            }
        }
        // Rotation, skipping, refresh: the write path.
        let before = Instant::now();
        let _write = self.gate.write().await;
        lock_wait += before.elapsed();
        // The credential this request refreshed, whose new token it serves whatever its age.
        let mut refreshed = None;
        loop {
            match self
                .core
                .write_select_after_refresh(&request.model, self.env.clock.now_ms(), refreshed)
            {
                WritePick::Ready(p) => return Ok(p.into_lease(AcquireTiming::since(asked, lock_wait, refresh_wait))),
                WritePick::NeedsRefresh { index, refresh_token } => {
                    let started = Instant::now();
                    let change = self
                        .env
                        .refresh(&self.counters, index, self.attempts.next(index), &refresh_token)
                        .await;
                    refresh_wait += started.elapsed();
                    refreshed = (!change.disables()).then_some(index);
                    self.core.apply(index, &change);
                    // Persist the new token, or the disable, still holding the write lock.
                    self.env
                        .persist(&self.counters, &self.core.account_id(index), change)
                        .await;
                }
                WritePick::Exhausted => {
                    Counters::bump(&self.counters.exhausted);
                    return Err(AcquireError::Exhausted);
                }
            }
        }
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        let change = self.env.outcome_change(request, &outcome);
        let gate = self.gate.write();
        self.env
            .complete_outcome(&self.counters, &lease.id, change, gate, |c| {
                self.core.apply(lease.index, c)
            })
            .await;
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        self.counters.snapshot()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.core.accounts()
    }

    /// Behind the write gate, as this design's own disables.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        let _write = self.gate.write().await;
        self.core.switch(index, change)
    }
}
