//! How concurrent requests share the pool: one trait, one file per strategy, a registry by name.
//!
//! Every strategy drives the same pure policy ([`crate::model`]) and differs only in how it
//! synchronises: what it locks, for how long, and where each modelled step is charged.
//!
//! | strategy | acquire path | refresh | trades away |
//! |---|---|---|---|
//! | [`global_mutex`] | one async mutex around everything | inside the lock | all concurrency |
//! | [`rwlock`] | read lock to select | write lock | writers starve readers' fairness |
//! | [`queue_pool`] | exclusive check-out | by the holder | concurrency capped at pool × permits |
//! | [`sharded`] | per-shard lock, steal in fixed order | inside the shard lock | balance across users |
//! | [`lock_free`] | snapshot + atomic ticket | single-flight, ahead of expiry | simplicity |
//!
//! (Each module's comment says the details.)

pub mod env;
pub mod global_mutex;
pub mod lease;
pub mod lock_free;
pub mod queue_pool;
pub mod registry;
pub mod rwlock;
pub mod sharded;

pub use env::{Counters, Env, StrategyOptions, StrategyStats};
pub use lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
pub use registry::{AnyStrategy, StrategyName};

use crate::model::{Account, Outcome};
use std::future::Future;

/// A credential manager: what a proxy (and the scenario runner) calls for every request.
///
/// `acquire` hands out a credential for a request; the caller makes the upstream call with the
/// lease's token and then passes the lease back to `complete` with the outcome. Dropping a lease
/// without completing it (a cancelled request) must leak nothing.
pub trait CredentialManager: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn acquire(&self, request: &Request) -> impl Future<Output = Result<Lease, AcquireError>> + Send;

    fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> impl Future<Output = Result<(), AcquireError>> + Send;

    /// Counters: refreshes, disables, exhaustions.
    fn stats(&self) -> StrategyStats;

    /// The accounts as this strategy currently holds them in memory (for audits and tests).
    fn accounts(&self) -> impl Future<Output = Vec<Account>> + Send;
}
