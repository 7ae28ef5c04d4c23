//! How concurrent requests share the pool: one trait, one file per strategy, a registry by name.
//!
//! Every strategy drives the same pure policy ([`crate::model`]) and differs only in how it
//! synchronises: what it locks, for how long, and where each modelled step is charged.
//!
//! | strategy | acquire path | selection steps charged | refresh | trades away |
//! |---|---|---|---|---|
//! | [`global_mutex`] | one async mutex around everything | under the lock | inside the lock, persisted under it | all concurrency |
//! | [`rwlock`] | read lock + atomic turn claim; write lock to rotate or skip | under the read lock | under the write lock (stalls every reader) | a contended call counter; every K-th request pays a write lock |
//! | [`queue_pool`] | exclusive check-out from a FIFO, FIFO waiters | after check-out, no lock | by the credential's holder (one refresher per credential) | concurrency capped at credentials × permits |
//! | [`sharded`] | per-user shard lock; a dry shard steals in fixed order, one lock at a time | under the home shard's lock | inside the shard lock | balance and pool-wide rotation (K per shard) |
//! | [`lock_free`] | snapshot borrow + a ticket from the thread's block ([`ticket_blocks`]), no lock | outside any lock | single-flight per credential, in the background ahead of expiry | simplicity; a disable is not retroactive for acquisitions already resolved |
//! | [`fleet`] | one round trip to the shared pool (Redis): a fleet-wide ticket, bans and disables skipped on the server | outside any lock | single-flight across the fleet: a lease per account, the commit fenced by a generation | a round trip per acquisition; exactness while degraded (Redis unreachable) |
//! | [`as_shipped`] | the shipped proxy's code paths (a30aa35): `_operation_lock`, a storage lock, one event loop | under the operation lock, on the loop | inside the operation lock, after a 31 ms loop stall | everything: a replica of the defects, not a design |
//!
//! Every strategy but `global_mutex` keeps its shared state in a synchronous *core* (short
//! critical sections on [`crate::sync`]) with async waiting around it, so `loom_tests/` can
//! model-check the cores from threads: [`rwlock::RwLockCore`], [`queue_pool::QueueCore`],
//! [`sharded::ShardedCore`], [`lock_free::TicketCore`] and [`lock_free::SingleFlight`].
//! `global_mutex` is the replica of an async lock held across awaits, and has no such core;
//! neither has `as_shipped`, the replica of the shipped code, which is outside the contract suite.
//!
//! (Each module's comment says the details.)

pub mod as_shipped;
pub mod env;
pub mod fleet;
pub mod global_mutex;
pub mod lease;
pub mod lock_free;
pub mod queue_pool;
pub mod registry;
pub mod rwlock;
pub mod sharded;
pub mod ticket_blocks;

pub use env::{Counters, Env, StrategyOptions, StrategyStats};
pub use lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
pub use registry::{AnyStrategy, StrategyName};

use crate::model::{Account, Change, Outcome};
use std::future::Future;

/// A credential manager: what a proxy (and the scenario runner) calls for every request.
///
/// `acquire` hands out a credential for a request; the caller makes the upstream call with the
/// lease's token and then passes the lease back to `complete` with the outcome. Dropping a lease
/// without completing it (a cancelled request) must leak nothing.
pub trait CredentialManager: Send + Sync + 'static {
    /// Whether this strategy marks the steps its requests reach on the watchdog's board
    /// ([`crate::metrics::steps::enter`]). The scenario runner sets the board up only around the
    /// requests of strategies that do; the others report where requests hung by phase only.
    const MARKS_STEPS: bool = false;

    fn name(&self) -> &'static str;

    fn acquire(&self, request: &Request) -> impl Future<Output = Result<Lease, AcquireError>> + Send;

    fn complete(
        &self,
        lease: Lease,
        request: &Request,
        outcome: Outcome,
    ) -> impl Future<Output = Result<(), AcquireError>> + Send;

    /// Counters: refreshes, disables, exhaustions.
    fn stats(&self) -> StrategyStats;

    /// The accounts as this strategy currently holds them in memory (for audits and tests).
    fn accounts(&self) -> impl Future<Output = Vec<Account>> + Send;

    /// Applies an operator's switch ([`Change::Disabled`] or [`Change::Enabled`], from
    /// `credpool serve`'s admin API) to credential `index` in memory, where the strategy's own
    /// disables go, so the next acquisition sees it. The caller persists it through the store.
    /// Returns whether the credential's state changed (a switch to the state it is in is not).
    fn switch(&self, index: usize, change: &Change) -> impl Future<Output = bool> + Send;
}
