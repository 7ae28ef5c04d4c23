//! Strategies by name: the names scenario files and `--strategy` use, and [`AnyStrategy`], which
//! dispatches statically (an enum, not a boxed trait object, so the hot path stays allocation-free).

use super::as_shipped::AsShipped;
use super::env::{Env, StrategyStats};
use super::fleet::{Fleet, FleetOptions};
use super::global_mutex::GlobalMutex;
use super::lease::{AcquireError, Lease, Request};
use super::lock_free::LockFree;
use super::queue_pool::QueuePool;
use super::rwlock::RwLockStrategy;
use super::sharded::Sharded;
use super::CredentialManager;
use crate::fleet::ModelledPool;
use crate::model::{Account, Change, Outcome};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Every strategy credpool ships, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    GlobalMutex,
    Rwlock,
    QueuePool,
    Sharded,
    LockFree,
    Fleet,
    AsShipped,
}

impl StrategyName {
    pub const ALL: &'static [StrategyName] = &[
        StrategyName::GlobalMutex,
        StrategyName::Rwlock,
        StrategyName::QueuePool,
        StrategyName::Sharded,
        StrategyName::LockFree,
        StrategyName::Fleet,
        StrategyName::AsShipped,
    ];

    /// credpool's own designs: every strategy but the replica of the shipped code, whose defects
    /// (lost updates, a re-entrant deadlock) are the point of it.
    pub const DESIGNS: &'static [StrategyName] = &[
        StrategyName::GlobalMutex,
        StrategyName::Rwlock,
        StrategyName::QueuePool,
        StrategyName::Sharded,
        StrategyName::LockFree,
        StrategyName::Fleet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::GlobalMutex => "global_mutex",
            StrategyName::Rwlock => "rwlock",
            StrategyName::QueuePool => "queue_pool",
            StrategyName::Sharded => "sharded",
            StrategyName::LockFree => "lock_free",
            StrategyName::Fleet => "fleet",
            StrategyName::AsShipped => "as_shipped",
        }
    }

    /// One line for `credpool list`.
    pub fn summary(self) -> &'static str {
        match self {
            StrategyName::GlobalMutex => {
                "one async mutex around selection, refresh and persistence (the seed's design)"
            }
            StrategyName::Rwlock => "selection under a read lock; rotation, refresh and disable under the write lock",
            StrategyName::QueuePool => {
                "exclusive check-out and return of credentials, FIFO waiters (the seed's option 1)"
            }
            StrategyName::Sharded => "per-user shards, each with its own lock; a dry shard steals in a fixed order",
            StrategyName::LockFree => "snapshot + atomic ticket rotation, single-flight refresh ahead of expiry",
            StrategyName::Fleet => {
                "one fleet-wide ticket, bans and disables in a shared pool (Redis; modelled in scenarios), a refresh lease fenced by generation"
            }
            StrategyName::AsShipped => {
                "the proxy's shipped code (a30aa35) replayed, defects included: stale-read writes, unlocked saves, re-entrant deadlock"
            }
        }
    }

    /// Builds this strategy over `env`.
    pub fn build(self, env: Env) -> AnyStrategy {
        match self {
            StrategyName::GlobalMutex => AnyStrategy::GlobalMutex(GlobalMutex::new(env)),
            StrategyName::Rwlock => AnyStrategy::Rwlock(RwLockStrategy::new(env)),
            StrategyName::QueuePool => AnyStrategy::QueuePool(QueuePool::new(env)),
            StrategyName::Sharded => AnyStrategy::Sharded(Sharded::new(env)),
            StrategyName::LockFree => AnyStrategy::LockFree(LockFree::new(env)),
            StrategyName::Fleet => {
                let rtt = env.options.redis_rtt;
                AnyStrategy::Fleet(Fleet::modelled(env, rtt))
            }
            StrategyName::AsShipped => AnyStrategy::AsShipped(Box::new(AsShipped::new(env))),
        }
    }
}

impl StrategyName {
    /// `n` instances of this strategy over `env`, each with its own memory, as `n` processes over
    /// one accounts file (`env.store`). `fleet`'s instances share one modelled Redis (round trip
    /// `env.options.redis_rtt`), each under its own owner name; the others share nothing but the
    /// store.
    pub fn build_instances(self, env: Env, n: usize) -> Vec<AnyStrategy> {
        match self {
            StrategyName::Fleet => {
                let pool = Arc::new(ModelledPool::new(env.clock, env.options.redis_rtt));
                (0..n)
                    .map(|i| {
                        let options = FleetOptions {
                            owner: Some(format!("instance-{i}")),
                            ..FleetOptions::default()
                        };
                        AnyStrategy::Fleet(Fleet::new(env.clone(), pool.clone(), options))
                    })
                    .collect()
            }
            _ => (0..n).map(|_| self.build(env.clone())).collect(),
        }
    }
}

impl fmt::Display for StrategyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StrategyName::ALL
            .iter()
            .copied()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StrategyName::ALL.iter().map(|n| n.as_str()).collect();
                format!("unknown strategy {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// Any strategy, dispatched by `match`.
pub enum AnyStrategy {
    GlobalMutex(GlobalMutex),
    Rwlock(RwLockStrategy),
    QueuePool(QueuePool),
    Sharded(Sharded),
    LockFree(LockFree),
    Fleet(Fleet),
    /// Boxed: the replica carries its storage, rotation and usage models, several times the size
    /// of any design, and the enum would otherwise be as large as it.
    AsShipped(Box<AsShipped>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStrategy::GlobalMutex($s) => $e,
            AnyStrategy::Rwlock($s) => $e,
            AnyStrategy::QueuePool($s) => $e,
            AnyStrategy::Sharded($s) => $e,
            AnyStrategy::LockFree($s) => $e,
            AnyStrategy::Fleet($s) => $e,
            AnyStrategy::AsShipped($s) => $e,
        }
    };
}

impl CredentialManager for AnyStrategy {
    /// It may hold a strategy that does.
    const MARKS_STEPS: bool = true;

    fn name(&self) -> &'static str {
        dispatch!(self, s => s.name())
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        dispatch!(self, s => s.acquire(request).await)
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        dispatch!(self, s => s.complete(lease, request, outcome).await)
    }

    fn stats(&self) -> StrategyStats {
        dispatch!(self, s => s.stats())
    }

    async fn accounts(&self) -> Vec<Account> {
        dispatch!(self, s => s.accounts().await)
    }

    async fn switch(&self, index: usize, change: &Change) -> bool {
        dispatch!(self, s => s.switch(index, change).await)
    }
}
