//! The [`SharedPool`] trait: the fleet's shared soft state, one atomic operation per method.
//!
//! Every instance of a fleet holds a handle on the same shared pool. Each method is one atomic
//! step on the shared state (one Lua script on Redis, one critical section in the model) and one
//! round trip, so no instance ever reads, changes and writes back what another may be changing:
//! the defect of every proxy that keeps fleet state as whole maps.
//!
//! What lives here is *soft* state, which can be lost and relearned: the rotation ticket, the
//! current access token and its generation, disables and series bans, refresh leases. The
//! system of record (refresh tokens, disabled flags, every field credpool does not model) stays
//! in the accounts file ([`crate::store`]); [`SharedPool::seed`] loads the shared state from it
//! after a restart that lost everything.
//!
//! Every write is idempotent, because a command that timed out may have been applied
//! ([`SharedError::Ambiguous`]): a ban keeps `max(old, new)`, a disable sets a flag, a lease is
//! taken again by the owner that holds it, a commit already applied by the same owner for the
//! same generation answers `Committed` again. Only [`SharedPool::acquire`] is not (it takes a
//! ticket), so a caller does not retry it after an ambiguous error: at worst one ticket is lost,
//! and that turn is one call shorter.

use crate::future::BoxFuture;
use crate::model::{AccountId, EpochMs};
use crate::secret::Secret;
use std::time::Duration;

/// The series name of a ban that keeps an account out of selection for *every* series: a refresh
/// that failed with an outage (5xx, timeout) and backs off (`[pool] refresh_backoff`). Written
/// with [`SharedPool::ban`] like any ban (`max(old, new)`), so every instance skips the account
/// until its backoff ends and then refreshes it again, under the lease as always. The leading `*`
/// keeps it apart from the policy's series names, which are words.
pub const EVERY_SERIES: &str = "*refresh_backoff";

/// An account as the shared pool knows it, for seeding it from the system of record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedAccount {
    pub id: AccountId,
    /// Redacted in `Debug`.
    pub token: Secret,
    /// When the access token expires (epoch ms); `None`: refresh before use.
    pub expires_at: Option<EpochMs>,
    pub disabled: bool,
}

/// One acquisition's answer: the ticket it holds and the account that ticket maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// The rotation ticket: `ticket / K` is its turn. Resolve the same ticket again with
    /// [`SharedPool::acquire`]'s `again` after waiting for a refresh, so the turn stays exact.
    pub ticket: u64,
    /// The account's slot in the shared pool (stable; never reused after a delete).
    pub slot: u64,
    pub id: AccountId,
    /// Redacted in `Debug`.
    pub token: Secret,
    /// The token's generation: the fence of the next refresh commit.
    pub generation: u64,
    pub expires_at: Option<EpochMs>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireAnswer {
    Ready(Acquired),
    /// No enabled account is unbanned for this series (and for [`EVERY_SERIES`]) now. No ticket
    /// was taken.
    Exhausted,
    /// The shared pool holds nothing (a fresh or restarted Redis): seed it, then ask again.
    Unseeded,
}

/// The answer to a refresh lease request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// The caller holds the lease (newly, or again: it was already its owner) until the TTL.
    Acquired { generation: u64 },
    /// Another owner holds it: wait for its commit (or for the TTL).
    Held { generation: u64 },
    /// The account is past the generation the caller saw: somebody refreshed already.
    Stale { generation: u64 },
    /// The account is disabled: it is not refreshed (by anyone).
    Disabled,
    /// The account was deleted.
    Gone,
}

/// The answer to a fenced refresh commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitAnswer {
    /// The token was stored; the account is now at `generation` (the fenced one + 1).
    Committed {
        generation: u64,
    },
    /// Rejected: the account is at `generation`, not the one the caller refreshed from (another
    /// instance committed after this caller's lease ran out). The caller's token is not stored.
    Stale {
        generation: u64,
    },
    Gone,
}

/// The answer to a ban, a disable or an enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAnswer {
    /// Applied (or already so). For a ban: the deadline now kept, `max(old, new)`.
    Done { ban_until: Option<EpochMs> },
    /// The account was deleted: nothing was written (no resurrection).
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedAnswer {
    /// The pool was empty and now holds this many accounts.
    Seeded(u64),
    /// The pool was already there with this many accounts; nothing changed.
    Present(u64),
    /// `add_missing`: this many accounts whose id the pool lacked were added.
    Added(u64),
}

/// One account of the shared pool as it stands (for `accounts export` and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedAccount {
    pub slot: u64,
    pub id: AccountId,
    /// Redacted in `Debug`.
    pub token: Secret,
    pub generation: u64,
    pub expires_at: Option<EpochMs>,
    pub disabled: bool,
    /// Series bans as kept, `(series, until)`, sorted by series (expired ones included).
    pub bans: Vec<(String, EpochMs)>,
}

/// Why an operation did not answer. No variant carries a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// Sent, but no answer in time (or the connection dropped after sending): it may have been
    /// applied.
    #[error("no answer from the shared pool within the timeout (the operation may have been applied)")]
    Ambiguous,
    /// Not sent: the shared pool cannot be reached.
    #[error("shared pool unreachable: {0}")]
    Unreachable(String),
    /// It answered something this code does not understand (a bug, or another program's keys).
    #[error("unexpected answer from the shared pool: {0}")]
    Protocol(String),
}

impl SharedError {
    /// Whether the caller should treat the shared pool as down (degraded mode).
    pub fn is_outage(&self) -> bool {
        matches!(self, SharedError::Ambiguous | SharedError::Unreachable(_))
    }
}

pub type SharedResult<T> = Result<T, SharedError>;

/// The fleet's shared state: one atomic operation per method, one round trip each.
///
/// Implementations: [`crate::fleet::redis::RedisPool`] (real Redis, one Lua script per method)
/// and [`crate::fleet::modelled::ModelledPool`] (the same semantics in memory, for virtual
/// time). `tests/fleet_redis.rs` runs the same seeded operation sequences against both and
/// requires identical answers.
pub trait SharedPool: Send + Sync + 'static {
    /// Takes the next ticket (one `INCR`) and maps it to an account among those enabled and not
    /// banned for `series` on the pool's own clock: ticket `t` is served by the `(t / K) mod m`-th
    /// of the `m` usable accounts in slot order ([`crate::model::ticket`]'s rule). `again`:
    /// resolve this ticket again instead of taking one (after a refresh, so the turn stays
    /// exact). `calls_per_rotation` of 0 counts as 1.
    fn acquire<'a>(
        &'a self,
        calls_per_rotation: u64,
        series: Option<&'a str>,
        again: Option<u64>,
    ) -> BoxFuture<'a, SharedResult<AcquireAnswer>>;

    /// Bans `series` on account `slot` until `max(old, until)`.
    fn ban<'a>(&'a self, slot: u64, series: &'a str, until: EpochMs) -> BoxFuture<'a, SharedResult<WriteAnswer>>;

    fn disable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>>;

    fn enable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>>;

    /// Asks for the refresh lease of account `slot` (`SET NX PX ttl`, value `owner`), if the
    /// account is still at generation `seen` and enabled.
    fn lease<'a>(
        &'a self,
        slot: u64,
        owner: &'a str,
        ttl: Duration,
        seen: u64,
    ) -> BoxFuture<'a, SharedResult<LeaseAnswer>>;

    /// Gives the lease back if `owner` holds it (after a failed refresh). Whether it did.
    fn release<'a>(&'a self, slot: u64, owner: &'a str) -> BoxFuture<'a, SharedResult<bool>>;

    /// Stores a refreshed token fenced by `generation`: `if gen == generation then set token,
    /// gen = generation + 1`, and the lease is released if `owner` holds it.
    fn commit<'a>(
        &'a self,
        slot: u64,
        generation: u64,
        token: &'a Secret,
        expires_at: Option<EpochMs>,
        owner: &'a str,
    ) -> BoxFuture<'a, SharedResult<CommitAnswer>>;

    /// Deletes account `slot` (HDEL from every hash). Later writes to it answer `Gone`; a seed
    /// of a present pool does not bring it back. `series`: the series whose bans to drop with it.
    fn delete<'a>(&'a self, slot: u64, series: &'a [String]) -> BoxFuture<'a, SharedResult<bool>>;

    /// Loads `accounts` (from the system of record) into an empty pool, each at generation
    /// `generation_base`. A present pool is left as it is, unless `add_missing`, which adds the
    /// accounts whose id it lacks (`credpool accounts import`).
    fn seed<'a>(
        &'a self,
        accounts: &'a [SeedAccount],
        generation_base: u64,
        add_missing: bool,
    ) -> BoxFuture<'a, SharedResult<SeedAnswer>>;

    /// Every account as it stands, in slot order.
    fn snapshot(&self) -> BoxFuture<'_, SharedResult<Vec<SharedAccount>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_token() {
        let token = Secret::new("ya29.SHARED-SECRET");
        let acquired = Acquired {
            ticket: 1,
            slot: 0,
            id: AccountId::from("a@example.com"),
            token: token.clone(),
            generation: 7,
            expires_at: None,
        };
        let seed = SeedAccount {
            id: AccountId::from("a@example.com"),
            token: token.clone(),
            expires_at: None,
            disabled: false,
        };
        let shared = SharedAccount {
            slot: 0,
            id: AccountId::from("a@example.com"),
            token,
            generation: 7,
            expires_at: None,
            disabled: false,
            bans: Vec::new(),
        };
        let text = format!(
            "{acquired:?} {:?} {seed:?} {shared:?}",
            AcquireAnswer::Ready(acquired.clone())
        );
        assert!(!text.contains("SHARED-SECRET"), "{text}");
        assert!(text.contains("a@example.com"));
    }
}
