//! `sharded`: the seed's option 3, per-user shards of the pool.
//!
//! The credentials are dealt into S shards (credential `i` goes to shard `i % S`), and user `u`
//! is served by shard `u % S`, its *home*. S is `StrategyOptions::shards`, clamped to the number
//! of credentials; 0 means one shard per credential (each user group bound to one credential,
//! the finest split). Each shard is a `PoolState` of its own, rotating every K calls over its own
//! credentials.
//!
//! **Locks:** one lock per shard. **Held for:** as `global_mutex`'s lock, but per shard: the
//! three selection steps (charged once per acquisition, under the home shard's lock), the
//! selection, a token refresh (the HTTP call) and its persistence, and disabling-and-persisting
//! after an auto-ban outcome. **Trades away:** balance and pool-wide rotation. Users of different
//! shards never wait for each other, but users of one shard still queue behind each other, a
//! refresh stalls its whole shard, rotation is per shard (a busy shard wears its own credentials
//! while another shard's sit idle), and K-rotation "in aggregate" holds per shard only.
//!
//! ## When a shard runs dry
//!
//! If the home shard has no credential usable for the request's model (all disabled, or banned
//! for that series), the request *steals*: it tries the other shards in a fixed order, ascending
//! from the home shard and wrapping around (`home+1, home+2, ..., S-1, 0, ..., home-1`), and takes
//! the first shard that can serve it; only if none can is the pool exhausted. A request releases
//! one shard's lock before it takes the next, so it **never holds two shard locks at once**:
//! no lock-order cycle can form, whatever the order. The price: a stolen credential's rotation is
//! counted in its own shard, and a shard can change between two looks (a request may find shard j
//! dry, move on, and j recover behind it).
//!
//! ## Two layers
//!
//! As in `rwlock`: [`ShardedCore`] holds the shards' state under short synchronous locks (what
//! `loom_tests/` checks, including the stealing), and an async `tokio::sync::Mutex<()>` per shard
//! (the *gate*) is what requests queue on while they spend the modelled costs and refresh.
//! A 429's series ban takes the core's shard lock for an instant; plain bookkeeping (a success, a
//! 5xx) takes no lock: as in `global_mutex`, it is written to the store, not kept in memory.

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::model::{Account, AccountId, Change, EpochMs, Outcome, Policy, PoolState, Selection};
use crate::secret::Secret;
use crate::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What a shard's selection decided (indices are pool-wide).
#[derive(Debug, PartialEq, Eq)]
pub enum ShardPick {
    Ready(Pick),
    /// Refresh credential `index` (its refresh token is here), apply the result, select again.
    NeedsRefresh {
        index: usize,
        refresh_token: Secret,
    },
    /// Nothing in this shard can serve the model now.
    Exhausted,
}

/// The synchronous core: one `PoolState` per shard, each under its own lock.
#[derive(Debug)]
pub struct ShardedCore {
    /// Shard `s` holds credentials `s, s + S, s + 2S, ...` in that order: local index `l` is
    /// pool index `s + l * S`.
    shards: Box<[Mutex<PoolState>]>,
}

impl ShardedCore {
    /// Deals `accounts` into `shards` shards (0 = one per credential; clamped to 1..=N).
    pub fn new(policy: Policy, accounts: Vec<Account>, shards: usize) -> Self {
        let n = accounts.len();
        let s = if shards == 0 { n } else { shards.min(n) }.max(1);
        let mut dealt: Vec<Vec<Account>> = (0..s).map(|_| Vec::new()).collect();
        for (i, a) in accounts.into_iter().enumerate() {
            dealt[i % s].push(a);
        }
        let shards = dealt
            .into_iter()
            .map(|accs| Mutex::new(PoolState::new(policy.clone(), accs)))
            .collect();
        ShardedCore { shards }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard that serves `user`.
    pub fn home(&self, user: u32) -> usize {
        user as usize % self.shards.len()
    }

    /// The shard credential `index` belongs to, and its position there.
    pub fn locate(&self, index: usize) -> (usize, usize) {
        let s = self.shards.len();
        (index % s, index / s)
    }

    /// The order in which `user`'s request tries shards: home first, then the others ascending
    /// from home, wrapping around.
    pub fn search_order(&self, user: u32) -> impl Iterator<Item = usize> {
        let s = self.shards.len();
        let home = self.home(user);
        (0..s).map(move |d| (home + d) % s)
    }

    /// Selects in shard `shard` alone (its lock held for the call only).
    pub fn select_in(&self, shard: usize, model: &str, now: EpochMs) -> ShardPick {
        self.select_in_after_refresh(shard, model, now, None)
    }

    /// [`select_in`](Self::select_in) by a request that has just refreshed credential
    /// `refreshed` (see [`PoolState::select_after_refresh`]).
    pub fn select_in_after_refresh(
        &self,
        shard: usize,
        model: &str,
        now: EpochMs,
        refreshed: Option<usize>,
    ) -> ShardPick {
        let s = self.shards.len();
        let refreshed_here = refreshed
            .map(|index| self.locate(index))
            .and_then(|(home, local)| (home == shard).then_some(local));
        let mut pool = self.shards[shard].lock();
        match pool.select_after_refresh(model, now, refreshed_here) {
            Selection::Ready(local) => {
                let a = &pool.accounts[local];
                ShardPick::Ready(Pick {
                    index: shard + local * s,
                    id: a.id.clone(),
                    token: a.access_token.clone(),
                })
            }
            Selection::NeedsRefresh(local) => ShardPick::NeedsRefresh {
                index: shard + local * s,
                refresh_token: pool.accounts[local].refresh_token.clone(),
            },
            Selection::Exhausted => ShardPick::Exhausted,
        }
    }

    /// The whole rule in one call: the home shard, then stealing in [`search_order`]; the first
    /// shard that is not exhausted answers. One shard lock at a time.
    ///
    /// [`search_order`]: Self::search_order
    pub fn select(&self, user: u32, model: &str, now: EpochMs) -> ShardPick {
        for shard in self.search_order(user) {
            match self.select_in(shard, model, now) {
                ShardPick::Exhausted => continue,
                found => return found,
            }
        }
        ShardPick::Exhausted
    }

    /// Applies a change to credential `index` (its shard's lock, for an instant).
    /// Applies a change; returns whether it disabled an enabled account (see `PoolState::apply`).
    pub fn apply(&self, index: usize, change: &Change) -> bool {
        let (shard, local) = self.locate(index);
        self.shards[shard].lock().apply(local, change)
    }

    /// An operator's switch (see [`PoolState::switch`]), under its shard's lock for an instant.
    pub fn switch(&self, index: usize, change: &Change) -> bool {
        let (shard, local) = self.locate(index);
        self.shards[shard].lock().switch(local, change)
    }

    pub fn account_id(&self, index: usize) -> AccountId {
        let (shard, local) = self.locate(index);
        self.shards[shard].lock().accounts[local].id.clone()
    }

    /// Every account in pool order (each shard locked in turn, never two at once).
    pub fn accounts(&self) -> Vec<Account> {
        let s = self.shards.len();
        let per: Vec<Vec<Account>> = self.shards.iter().map(|m| m.lock().accounts.clone()).collect();
        let n: usize = per.iter().map(Vec::len).sum();
        (0..n).map(|i| per[i % s][i / s].clone()).collect()
    }
}

pub struct Sharded {
    env: Env,
    /// One async gate per shard: queued on and held while time is spent (costs, refreshes).
    gates: Box<[tokio::sync::Mutex<()>]>,
    core: ShardedCore,
    counters: Counters,
    attempts: RefreshAttempts,
}

impl Sharded {
    pub fn new(env: Env) -> Self {
        let core = ShardedCore::new(env.policy.clone(), env.accounts.clone(), env.options.shards);
        let gates = (0..core.shard_count()).map(|_| tokio::sync::Mutex::new(())).collect();
        let attempts = RefreshAttempts::new(env.accounts.len());
        Sharded {
            env,
            gates,
            core,
            counters: Counters::default(),
            attempts,
        }
    }

    /// The core, for tests and model checks.
    pub fn core(&self) -> &ShardedCore {
        &self.core
    }
}

impl CredentialManager for Sharded {
    fn name(&self) -> &'static str {
        "sharded"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        let mut lock_wait = Duration::ZERO;
        let mut refresh_wait = Duration::ZERO;
        for (attempt, shard) in self.core.search_order(request.user).enumerate() {
            let before = Instant::now();
            // Dropped at the end of this iteration, before the next shard's gate is taken.
            let _gate = self.gates[shard].lock().await;
            lock_wait += before.elapsed();
            if attempt == 0 {
                self.env.costs.charge_selection().await;
            }
            // The credential this request refreshed, whose new token it serves whatever its age.
            let mut refreshed = None;
            loop {
                match self
                    .core
                    .select_in_after_refresh(shard, &request.model, self.env.clock.now_ms(), refreshed)
                {
                    ShardPick::Ready(p) => {
                        return Ok(p.into_lease(AcquireTiming::since(asked, lock_wait, refresh_wait)))
                    }
                    ShardPick::NeedsRefresh { index, refresh_token } => {
                        let started = Instant::now();
                        let change = self
                            .env
                            .refresh(&self.counters, index, self.attempts.next(index), &refresh_token)
                            .await;
                        refresh_wait += started.elapsed();
                        refreshed = (!change.disables()).then_some(index);
                        self.core.apply(index, &change);
                        // Persist the new token, or the disable, still holding the shard's lock.
                        self.env
                            .persist(&self.counters, &self.core.account_id(index), change)
                            .await;
                    }
                    ShardPick::Exhausted => break,
                }
            }
        }
        Counters::bump(&self.counters.exhausted);
        Err(AcquireError::Exhausted)
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        let change = self.env.outcome_change(request, &outcome);
        let gate = self.gates[self.core.locate(lease.index).0].lock();
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

    /// Behind its shard's gate, as this design's own disables.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        let _gate = self.gates[self.core.locate(index).0].lock().await;
        self.core.switch(index, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "gemini-3-pro";

    fn core(n: usize, shards: usize, k: u64) -> ShardedCore {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        ShardedCore::new(policy, (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect(), shards)
    }

    fn ready(c: &ShardedCore, user: u32) -> usize {
        match c.select(user, MODEL, 0) {
            ShardPick::Ready(p) => p.index,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn credentials_are_dealt_round_robin_and_users_map_to_their_home() {
        let c = core(5, 2, 1);
        assert_eq!(c.shard_count(), 2);
        // Shard 0 = {0, 2, 4}, shard 1 = {1, 3}; K = 1 rotates within the shard every call.
        let picks: Vec<usize> = (0..4).map(|_| ready(&c, 0)).collect();
        assert_eq!(picks, vec![0, 2, 4, 0]);
        let picks: Vec<usize> = (0..3).map(|_| ready(&c, 3)).collect();
        assert_eq!(picks, vec![1, 3, 1]);
        assert_eq!(
            c.accounts().iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
            (0..5).map(|i| Account::synthetic(i, 0, 1).id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shard_count_is_clamped_and_zero_means_one_per_credential() {
        assert_eq!(core(3, 0, 1).shard_count(), 3);
        assert_eq!(core(3, 10, 1).shard_count(), 3);
        assert_eq!(core(0, 0, 1).shard_count(), 1);
    }

    #[test]
    fn a_dry_shard_steals_ascending_from_home_wrapping_around() {
        let c = core(3, 3, 100);
        assert_eq!(c.search_order(1).collect::<Vec<_>>(), vec![1, 2, 0]);
        c.apply(1, &Change::Disabled);
        assert_eq!(ready(&c, 1), 2);
        c.apply(2, &Change::Disabled);
        assert_eq!(ready(&c, 1), 0);
        c.apply(0, &Change::Disabled);
        assert_eq!(c.select(1, MODEL, 0), ShardPick::Exhausted);
    }
}
