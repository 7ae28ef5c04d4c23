//! `global_mutex`: a faithful replica of the proxy's `_operation_lock`.
//!
//! **Locks:** one async mutex around the whole pool. **Held for:** the rotation check, loading the
//! credential, the quota check, the token refresh (the HTTP call to the token endpoint) and
//! disabling-and-persisting a credential whose refresh failed: every step of
//! `get_valid_credential`. **Trades away:** all concurrency. N simultaneous requests are served one
//! after another, and a 500 ms refresh stalls every request behind it. This is the baseline whose
//! timings the seed's table gives, reproduced exactly in virtual time.
//!
//! An async (tokio) mutex, not a sync one, because the seed holds it across awaits (the refresh) and
//! waiters queue FIFO, which is what makes the k-th request finish after k service times.

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Request};
use super::CredentialManager;
use crate::costs::Step;
use crate::model::{Account, Change, Outcome, PoolState, Selection};
use tokio::time::Instant;

pub struct GlobalMutex {
    env: Env,
    /// The operation lock and everything it protects.
    pool: tokio::sync::Mutex<PoolState>,
    counters: Counters,
    attempts: RefreshAttempts,
}

impl GlobalMutex {
    pub fn new(env: Env) -> Self {
        let pool = PoolState::new(env.policy.clone(), env.accounts.clone());
        let attempts = RefreshAttempts::new(env.accounts.len());
        GlobalMutex {
            env,
            pool: tokio::sync::Mutex::new(pool),
            counters: Counters::default(),
            attempts,
        }
    }
}

impl CredentialManager for GlobalMutex {
    fn name(&self) -> &'static str {
        "global_mutex"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        let mut pool = self.pool.lock().await;
        let locked = Instant::now();
        let mut refresh_wait = std::time::Duration::ZERO;
        // The credential this request refreshed, whose new token it serves whatever its age.
        let mut refreshed = None;
        // The seed's path: rotation check, credential load, quota check, once per request.
        self.env.costs.charge(Step::CheckRotation).await;
        self.env.costs.charge(Step::LoadCredential).await;
        self.env.costs.charge(Step::CheckQuota).await;
        loop {
            match pool.select_after_refresh(&request.model, self.env.clock.now_ms(), refreshed) {
                Selection::Ready(i) => {
                    let a = &pool.accounts[i];
                    let timing = AcquireTiming {
                        lock_wait: locked - asked,
                        hold: locked.elapsed() - refresh_wait,
                        refresh_wait,
                    };
                    return Ok(Lease::new(i, a.id.clone(), a.access_token.clone(), timing));
                }
                Selection::NeedsRefresh(i) => {
                    let started = Instant::now();
                    let token = pool.accounts[i].refresh_token.clone();
                    let change = self.env.refresh(&self.counters, i, self.attempts.next(i), &token).await;
                    refresh_wait += started.elapsed();
                    refreshed = (!change.disables()).then_some(i);
                    pool.apply(i, &change);
                    // Persist the new token, or the disable, still holding the operation lock.
                    let id = pool.accounts[i].id.clone();
                    self.env.persist(&self.counters, &id, change).await;
                }
                Selection::Exhausted => {
                    Counters::bump(&self.counters.exhausted);
                    return Err(AcquireError::Exhausted);
                }
            }
        }
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        let change = self.env.outcome_change(request, &outcome);
        if change.affects_selection() {
            let mut pool = self.pool.lock().await;
            let newly_disabled = pool.apply(lease.index, &change);
            if change.disables() {
                // Requests already in flight on a dead credential come back with the same error:
                // the credential is disabled once, so it is counted once. (Each still persists
                // its outcome, as the proxy did; the write is idempotent.)
                if newly_disabled {
                    Counters::bump(&self.counters.disables);
                }
                // Disable-and-persist happens under the operation lock in the seed's design.
                self.env.persist(&self.counters, &lease.id, change).await;
                return Ok(());
            }
        }
        // Plain bookkeeping never took the operation lock in the proxy (its router writes it
        // straight to storage), so neither does the replica.
        if self.env.should_persist(&change) {
            self.env.persist(&self.counters, &lease.id, change).await;
        }
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        self.counters.snapshot()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.pool.lock().await.accounts.clone()
    }

    /// Under the operation lock, as every disable in this design.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.pool.lock().await.switch(index, change)
    }
}
