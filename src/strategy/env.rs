//! What every strategy is built from: the policy, the accounts, the costs, the clock, the store and
//! the token endpoint. One [`Env`] per run, so every strategy starts from the same inputs.

use crate::clock::Clock;
use crate::costs::Costs;
use crate::model::{Account, Policy};
use crate::store::AccountStore;
use crate::upstream::TokenEndpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Knobs that only some strategies read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrategyOptions {
    /// Persist success/error bookkeeping after every request (the router does). Off in the
    /// seed's scenarios, whose model measures `get_valid_credential` alone.
    pub record_outcomes: bool,
    /// `queue_pool`: how many requests one credential may serve at once.
    pub permits_per_credential: usize,
    /// `sharded`: number of shards (clamped to the number of credentials; 0 means one shard per
    /// credential).
    pub shards: usize,
    /// `as_shipped`: the shipped proxy's daily quota, successful calls per account and model
    /// series (its accounts carried `daily_limit_claude = 200`, `daily_limit_gemini = 200`).
    /// `None`: no quota check (the proxy removed it later; credpool's policy has none).
    pub daily_limit: Option<u64>,
    /// `fleet`: the cost of one round trip to the modelled shared pool (Redis) in a virtual-time
    /// run. Default 100 µs: a Redis on the same host answers one `EVALSHA` in about 40 µs
    /// (docs/fleet.md's bench, 25,000 round trips per second from one client); a Redis one
    /// network hop away in the same data centre, 100 to 500 µs.
    pub redis_rtt: std::time::Duration,
}

/// [`StrategyOptions::redis_rtt`]'s default.
pub const DEFAULT_REDIS_RTT: std::time::Duration = std::time::Duration::from_micros(100);

impl Default for StrategyOptions {
    fn default() -> Self {
        StrategyOptions {
            record_outcomes: true,
            permits_per_credential: 1,
            shards: 0,
            daily_limit: None,
            redis_rtt: DEFAULT_REDIS_RTT,
        }
    }
}

#[derive(Clone)]
pub struct Env {
    pub policy: Policy,
    pub accounts: Vec<Account>,
    pub costs: Costs,
    pub clock: Clock,
    pub store: Arc<dyn AccountStore>,
    pub tokens: Arc<dyn TokenEndpoint>,
    pub options: StrategyOptions,
}

/// Event counts a strategy keeps (plain atomics: statistics, not synchronisation).
#[derive(Debug, Default)]
pub struct Counters {
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
    /// Of the failures: the token endpoint said `invalid_grant` (or there was no refresh token).
    pub refresh_invalid_grants: AtomicU64,
    /// Of the failures: it answered an HTTP error status (an outage).
    pub refresh_server_errors: AtomicU64,
    /// Of the failures: it did not answer within the timeout, or could not be reached.
    pub refresh_timeouts: AtomicU64,
    pub disables: AtomicU64,
    pub exhausted: AtomicU64,
    pub store_errors: AtomicU64,
    /// `fleet` only (zero elsewhere): times the instance entered degraded mode (the shared pool
    /// unreachable), left it, and acquisitions served locally meanwhile.
    pub degraded_entries: AtomicU64,
    pub degraded_exits: AtomicU64,
    pub degraded_acquisitions: AtomicU64,
    /// `fleet` only: refresh commits the generation fence rejected (another instance had
    /// committed first), and times the shared pool was found empty and seeded from the store.
    pub stale_commits: AtomicU64,
    pub reseeds: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StrategyStats {
        StrategyStats {
            refreshes: self.refreshes.load(Ordering::Relaxed),
            refresh_failures: self.refresh_failures.load(Ordering::Relaxed),
            refresh_invalid_grants: self.refresh_invalid_grants.load(Ordering::Relaxed),
            refresh_server_errors: self.refresh_server_errors.load(Ordering::Relaxed),
            refresh_timeouts: self.refresh_timeouts.load(Ordering::Relaxed),
            disables: self.disables.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            degraded_entries: self.degraded_entries.load(Ordering::Relaxed),
            degraded_exits: self.degraded_exits.load(Ordering::Relaxed),
            degraded_acquisitions: self.degraded_acquisitions.load(Ordering::Relaxed),
            stale_commits: self.stale_commits.load(Ordering::Relaxed),
            reseeds: self.reseeds.load(Ordering::Relaxed),
            usage_unflushed: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StrategyStats {
    pub refreshes: u64,
    pub refresh_failures: u64,
    /// The failures by kind (they add up to `refresh_failures`): the faults the token endpoint
    /// showed this strategy.
    pub refresh_invalid_grants: u64,
    pub refresh_server_errors: u64,
    pub refresh_timeouts: u64,
    pub disables: u64,
    pub exhausted: u64,
    pub store_errors: u64,
    /// `fleet` only (see [`Counters`]); absent from older files, hence the defaults.
    #[serde(default)]
    pub degraded_entries: u64,
    #[serde(default)]
    pub degraded_exits: u64,
    #[serde(default)]
    pub degraded_acquisitions: u64,
    #[serde(default)]
    pub stale_commits: u64,
    #[serde(default)]
    pub reseeds: u64,
    /// `as_shipped` only (zero elsewhere: credpool's strategies write a call's count with the
    /// call): usage-counter increments held in memory, not yet flushed, when the stats were read.
    #[serde(default)]
    pub usage_unflushed: u64,
}

impl std::ops::AddAssign for StrategyStats {
    /// Adds another instance's counts (a fleet's figures are its instances', added up).
    fn add_assign(&mut self, o: StrategyStats) {
        self.refreshes += o.refreshes;
        self.refresh_failures += o.refresh_failures;
        self.refresh_invalid_grants += o.refresh_invalid_grants;
        self.refresh_server_errors += o.refresh_server_errors;
        self.refresh_timeouts += o.refresh_timeouts;
        self.disables += o.disables;
        self.exhausted += o.exhausted;
        self.store_errors += o.store_errors;
        self.degraded_entries += o.degraded_entries;
        self.degraded_exits += o.degraded_exits;
        self.degraded_acquisitions += o.degraded_acquisitions;
        self.stale_commits += o.stale_commits;
        self.reseeds += o.reseeds;
        self.usage_unflushed += o.usage_unflushed;
    }
}

impl Env {
    /// The change the policy makes to the account that served `request` with `outcome`, now.
    pub fn outcome_change(&self, request: &super::Request, outcome: &crate::model::Outcome) -> crate::model::Change {
        self.policy.outcome_change(&request.model, self.clock.now_ms(), outcome)
    }

    /// Calls the token endpoint for credential `index` and turns the answer into the change the
    /// policy makes (a new token, a backed-off ban, or disabled). Counts the refresh, a failure by
    /// kind, and a disable.
    /// `attempt` is this credential's refresh number, which keys the upstream's fault draws.
    pub async fn refresh(
        &self,
        counters: &Counters,
        index: usize,
        attempt: u64,
        refresh_token: &crate::secret::Secret,
    ) -> crate::model::Change {
        Counters::bump(&counters.refreshes);
        let result = self.tokens.refresh(index, attempt, refresh_token).await;
        if let Err(failure) = &result {
            use crate::model::RefreshFailure as F;
            Counters::bump(&counters.refresh_failures);
            Counters::bump(match failure {
                F::InvalidGrant | F::NoRefreshToken => &counters.refresh_invalid_grants,
                F::Server(_) => &counters.refresh_server_errors,
                F::Timeout | F::Network(_) => &counters.refresh_timeouts,
            });
        }
        let change = self.policy.refresh_change(self.clock.now_ms(), &result);
        if change.disables() {
            Counters::bump(&counters.disables);
        }
        change
    }

    /// Persists `change` to account `id` through the store, counting a failure instead of
    /// failing the request: a proxy keeps serving when its bookkeeping write fails.
    pub async fn persist(
        &self,
        counters: &Counters,
        id: &crate::model::AccountId,
        change: crate::model::Change,
    ) -> bool {
        match self.store.update(id, change).await {
            Ok(()) => true,
            Err(_) => {
                Counters::bump(&counters.store_errors);
                false
            }
        }
    }

    /// Outcome bookkeeping shared by the strategies whose disable excludes selection through a
    /// `gate` (`rwlock`'s write side, `sharded`'s shard lock): a disable is applied and persisted
    /// while holding the gate and counted once (`apply` reports the enabled -> disabled
    /// transition); a ban is applied at once, without the gate; plain bookkeeping (a success, a
    /// 5xx) is not kept in memory and goes straight to the store without any lock, as the proxy's
    /// router did. The gate future is only awaited for a disable.
    pub async fn complete_outcome<G>(
        &self,
        counters: &Counters,
        id: &crate::model::AccountId,
        change: crate::model::Change,
        gate: impl std::future::Future<Output = G>,
        apply: impl Fn(&crate::model::Change) -> bool,
    ) {
        if change.disables() {
            let _gate = gate.await;
            // Requests in flight on a dead credential all report it: count the disable once.
            if apply(&change) {
                Counters::bump(&counters.disables);
            }
            self.persist(counters, id, change).await;
            return;
        }
        if change.affects_selection() {
            apply(&change);
        }
        if self.should_persist(&change) {
            self.persist(counters, id, change).await;
        }
    }

    /// Whether an outcome's change must be written to the store.
    pub fn should_persist(&self, change: &crate::model::Change) -> bool {
        self.options.record_outcomes || change.disables()
    }
}

/// Per-credential refresh numbers, so the n-th refresh of credential i draws the same fault in
/// every strategy (common random numbers).
#[derive(Debug)]
pub struct RefreshAttempts(Vec<AtomicU64>);

impl RefreshAttempts {
    pub fn new(credentials: usize) -> Self {
        RefreshAttempts((0..credentials).map(|_| AtomicU64::new(0)).collect())
    }

    pub fn next(&self, index: usize) -> u64 {
        self.0[index].fetch_add(1, Ordering::Relaxed)
    }
}
