//! The fleet: several credpool instances sharing one pool through Redis (DESIGN.md §8; the
//! design in depth: docs/fleet.md).
//!
//! - [`shared_pool`]: the [`SharedPool`] trait, the shared soft state as one atomic operation per
//!   method (acquire by ticket, ban as `max(old, new)`, disable, refresh lease, fenced commit,
//!   delete, seed), and what each answers.
//! - [`redis_pool`]: on a real Redis, one Lua script per operation (the scripts in
//!   `src/fleet/scripts/*.lua`), keys hash-tagged by pool ([`keys`]), replies read by [`reply`].
//! - [`modelled`]: the same semantics in memory, each operation charging a round trip on the
//!   crate's clock, for virtual-time simulations of N instances.
//! - [`seeding`]: loading the shared pool from the system of record (after a restart, on import).
//! - [`server`]: a private `redis-server` on a free loopback port (tests, benchmarks, harness).
//! - [`fault_proxy`]: a TCP proxy that delays, drops or blackholes an instance's Redis traffic.
//! - [`degraded`]: the instance's own copy of the pool, and the degraded mode it serves from when
//!   the shared pool cannot be reached (the fleet strategy's instance-local synchronous core).
//!
//! The `fleet` strategy over a shared pool is [`crate::strategy::fleet`].

pub mod degraded;
pub mod fault_proxy;
pub mod keys;
pub mod modelled;
pub mod redis_pool;
pub mod reply;
pub mod seeding;
pub mod server;
pub mod shared_pool;

pub use modelled::ModelledPool;
pub use redis_pool::{RedisPool, RedisTimeouts};
pub use shared_pool::{
    AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, SeedAccount, SeedAnswer, SharedAccount, SharedError,
    SharedPool, SharedResult, WriteAnswer, EVERY_SERIES,
};
