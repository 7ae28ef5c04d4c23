//! `lock_free`: no pool-wide lock on the acquire path. The design we believe is best.
//!
//! - **An immutable snapshot** of the accounts ([`Snapshot`]) in a [`SnapshotCell`] (an
//!   `ArcSwap`): readers borrow it without locking; a disable, a ban or a refresh builds a new
//!   snapshot and swaps it in atomically (`rcu`).
//! - **Atomic tickets for rotation, reserved a turn at a time**: every acquisition holds a ticket
//!   no other holds, and the pure rule of [`crate::model::ticket`] maps it to an account: ticket
//!   `t` belongs to turn `t / K`, and turns go round the accounts usable for the request's model
//!   (disabled and banned ones skipped). Tickets come from [`TicketBlocks`]: a thread reserves a
//!   whole turn from one shared counter and hands its tickets out from a slot on its own lines,
//!   so no line is written by every acquisition on every core. Every turn is served by one
//!   credential at most K times, with no lock and no shared cursor to update; with several
//!   threads, several turns are in progress at once, and a turn a thread has not used up when
//!   the load stops is cut short (see [`crate::strategy::ticket_blocks`]). On one thread, as in
//!   every virtual-time run, tickets are 0, 1, 2, ... exactly.
//! - **Per-credential counters padded apart** ([`Padded`]): a success's bookkeeping is a
//!   `fetch_add` on its credential's own cache lines, so credentials never false-share.
//! - **Per-thread copies of what a lease holds** ([`replica`]): a lease owns its credential's id
//!   and token (two `Arc<str>`), and cloning one shared `Arc` from every core makes its reference
//!   count the hottest cache line in the process; the snapshot keeps a copy of each per replica,
//!   and each thread clones (and counts successes on) its own.
//! - **A per-credential single-flight refresh, ahead of expiry** ([`SingleFlight`]): inside the
//!   policy's refresh-ahead window but outside the margin, the first request to notice starts a
//!   refresh in the background (`tokio::spawn`) and every request keeps using the still-valid
//!   token; inside the margin, requests wait for the one refresh in flight. A refresh failure
//!   reaches every waiter (the credential is disabled once, in the snapshot, and each waiter moves
//!   on to the next credential with the same ticket); the slot is cleared afterwards so a later
//!   request can start another refresh.
//! - **Write-behind persistence**: the refresh task publishes the new token (waiters go) before it
//!   persists it; outcome bookkeeping is persisted by the completing request, through whatever store
//!   the [`Env`] gives. Use it with the `group_commit` store, which coalesces concurrent updates into
//!   one durable write; with `locked` or `durable`, every persisted outcome still queues on the
//!   store's own lock, which becomes the bottleneck.
//!
//! **Locks:** none on the acquire path: an atomic add, a snapshot borrow, pure arithmetic. A
//! per-credential mutex is taken only in the refresh-ahead window and while joining a refresh, for
//! an instant. **Trades away:** simplicity, and strictness at the edges: a request that loaded the
//! snapshot just before a disable may still use the old credential (the disable is not
//! retroactive for acquisitions already resolved); when the usable set changes, the turn in
//! progress may be shorter or longer than K; concurrent completions on one credential are applied
//! in no defined order, as in the file. Plain bookkeeping (a success, a 5xx) is counted on the
//! padded counters, not in the snapshot ([`CredentialManager::accounts`] adds the counts back);
//! like every strategy, it keeps error codes in the file only.
//!
//! Selection steps are charged once per acquisition, outside any lock.
//!
//! ## The hot path
//!
//! With zero selection costs and outcomes not recorded, acquire + complete allocates nothing,
//! spawns nothing and never yields: one read of the policy's clock (the coarse clock on a wall
//! clock, see [`crate::clock`]), one `fetch_add` on the thread's ticket slot, one snapshot
//! borrow, pure arithmetic (no expiry check at all while the snapshot's `fresh_until` has not
//! passed), two reference-count increments on the thread's own copies of the id and token; a
//! success is one `fetch_add` on the thread's counter for the credential. [`LockFree::acquire`]
//! and [`LockFree::complete`] return small hand-written futures that run that path in their
//! first poll, so the lease is built once, where the caller receives it, and the common case of
//! [`TicketCore::resolve`] (no ban active, no token near its window) is inline, the rest out of
//! line. The thread's replica number is read once per acquisition, and the snapshot's guard is
//! held until the lease is returned.
//!
//! Measured with `examples/hot_path.rs` (one task, release, callgrind for instructions, wall
//! time on the project's 2-core machine, old and new binaries alternated), per acquire +
//! complete:
//! - first round: 589 instructions and 94 ns → 454 and 54-58 ns (an `Instant::now` per
//!   acquisition, `async fn` shells and the policy's expiry check every time, removed);
//! - second round: → 362 and 52-54 ns (the lease had moved through nested `Result`s and an
//!   `Option<(Lease, Outcome)>`; `ticket_position` was called out of line; per-replica copies
//!   sat in nested slices);
//! - third round, the ticket slots: 355 → 361 instructions and 45.5-48 → 40-45 ns; the criterion
//!   bench, alternated, 47.4-49.6 → 42.3-44.4 ns at 1 task and 30-33 → 21-24 ns per request at
//!   64 tasks. Slots alone cost 13 instructions and 4-8 ns at one task (a thread-local read put
//!   in front of the ticket's `fetch_add`, then a second one for the copies); reading the
//!   replica once and keeping the guard until the lease is written (so the lease's words no
//!   longer wait on the stack across the guard's release, to be copied out with wider loads
//!   than stored them) more than paid it back;
//! - for comparison: 223 instructions and 28 ns for the same bookkeeping under one
//!   `parking_lot` mutex (the benchmarks' reference, which has no snapshot to borrow).
//!
//! With 2 or 64 tasks on two workers, before the ticket slots: 88-91 ns per request before the
//! first round, 53-57 ns with one shared copy of the lease's `Arc`s, 36-44 ns after the second
//! round, and then two speeds from run to run (31-33 or 53-62 ns at 64 tasks) as long as every
//! acquisition wrote the one shared ticket. Tried and dropped: reading the snapshot through a
//! per-thread arc-swap `Cache` instead of `load()`'s debt slot saved only 7 instructions here and
//! cost 20 ns of wall time (the resolved pick then crossed a thread-local closure and a `Result`
//! as memory copies that the CPU could not forward from the stores just before). Two things are
//! deliberately not
//! done on that path, to save a second and a third clock read:
//! - an acquisition that never yielded reports an all-zero [`AcquireTiming`]: its latency is the
//!   few tens of nanoseconds of the path itself, less than one more clock read would cost. Under
//!   the paused clock of a virtual run it is exactly zero. Any acquisition that waits (modelled
//!   costs, a refresh) is timed in full, from the moment it found it must wait.
//! - a success that is not persisted (`record_outcomes` off) is counted but its time is not kept:
//!   `last_success` is file bookkeeping, and when outcomes are recorded it goes to the file as in
//!   every strategy (and the latest is kept on the credential's counters too).
//!
//! [`TicketCore`] is the synchronous core (snapshot, ticket, counters, single-flight slots) that
//! `loom_tests/` drives from threads; [`LockFree`] is the async shell around it (waiting on a
//! `tokio::sync::Notify` per credential, spawning refresh tasks).

mod futures;
pub mod replicas;
pub mod single_flight;
pub mod snapshot;
pub mod ticket_core;

pub use replicas::{replica, Padded, REPLICAS};
pub use single_flight::{FlightResult, Join, SingleFlight};
pub use snapshot::Snapshot;
pub use ticket_core::{Resolved, Slot, TicketCore};

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::costs::Step;
use crate::future::BoxFuture;
use crate::model::{Account, Change, Outcome};
use futures::{Acquire, Complete};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the async shell shares with the refresh tasks it spawns.
struct Shared {
    env: Env,
    /// The three selection steps cost nothing: the hot path needs no await and one clock read.
    selection_free: bool,
    core: TicketCore,
    /// Woken when a credential's flight lands or clears: where requests inside the margin wait.
    landed: Box<[tokio::sync::Notify]>,
    counters: Counters,
    attempts: RefreshAttempts,
}

pub struct LockFree {
    shared: std::sync::Arc<Shared>,
}

impl LockFree {
    pub fn new(env: Env) -> Self {
        let n = env.accounts.len();
        let core = TicketCore::new(env.policy.clone(), env.accounts.clone());
        let landed = (0..n).map(|_| tokio::sync::Notify::new()).collect();
        let selection_free = [Step::CheckRotation, Step::LoadCredential, Step::CheckQuota]
            .into_iter()
            .all(|step| env.costs.of(step).is_zero());
        let shared = Shared {
            env,
            selection_free,
            core,
            landed,
            counters: Counters::default(),
            attempts: RefreshAttempts::new(n),
        };
        LockFree {
            shared: std::sync::Arc::new(shared),
        }
    }

    /// The core, for tests and model checks.
    pub fn core(&self) -> &TicketCore {
        &self.shared.core
    }

    /// Starts a refresh flight of credential `index` in its own task, so that it lands (and the
    /// slot clears) even if the request that started it is cancelled.
    fn spawn_flight(&self, index: usize) {
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.run_flight(index).await });
    }

    /// Records an outcome synchronously; returns the persistence still to do, if any. (A success
    /// that is not persisted does not come here: [`Complete`] counts it in place.)
    fn complete_now(&self, lease: Lease, request: &Request, outcome: &Outcome) -> Option<BoxFuture<'_, ()>> {
        let sh = &*self.shared;
        let change = sh.env.outcome_change(request, outcome);
        if sh.core.complete(lease.index, &change) {
            Counters::bump(&sh.counters.disables);
        }
        if !sh.env.should_persist(&change) {
            return None;
        }
        let id = lease.id;
        Some(Box::pin(async move {
            sh.env.persist(&sh.counters, &id, change).await;
        }))
    }

    /// Starts a background refresh of a credential inside its refresh-ahead window, unless one
    /// is running or has landed since `seen`.
    fn refresh_ahead(&self, index: usize, seen: u64) {
        if self.shared.core.flight(index).begin_ahead(seen) {
            self.spawn_flight(index);
        }
    }

    /// The rest of an acquisition whose ticket did not resolve to a ready credential with no
    /// refresh to start (that case is [`Acquire`]'s, inline), run synchronously: the finished
    /// acquisition, or the continuation that must wait (boxed). `started` is the ticket and what
    /// it resolved to, or `None` when the selection steps have modelled costs to wait for first.
    /// With zero selection costs the path reads the policy's "now" once and is not timed unless
    /// it has to wait (see the module comment).
    #[inline(never)]
    fn acquire_rest(
        &self,
        request: &Request,
        started: Option<(u64, Resolved)>,
    ) -> Result<Result<Lease, AcquireError>, BoxFuture<'_, Result<Lease, AcquireError>>> {
        let sh = &*self.shared;
        let Some((ticket, resolved)) = started else {
            return Err(Box::pin(self.acquire_slowly(
                request.model.clone(),
                Instant::now(),
                None,
            )));
        };
        match resolved {
            Resolved::Ready { pick, ahead } => {
                if let Some(seen) = ahead {
                    self.refresh_ahead(pick.index, seen);
                }
                Ok(Ok(pick.into_lease(AcquireTiming::default())))
            }
            Resolved::Exhausted => {
                Counters::bump(&sh.counters.exhausted);
                Ok(Err(AcquireError::Exhausted))
            }
            // Timed from here: the fast path before it is a few tens of nanoseconds.
            first => Err(Box::pin(self.acquire_slowly(
                request.model.clone(),
                Instant::now(),
                Some((ticket, first)),
            ))),
        }
    }

    /// An acquisition that waits: for the selection steps' modelled costs (when `started` is
    /// `None`), then for refreshes, resolving the same ticket again until it is served or the
    /// pool is exhausted.
    /// Owns what it needs of the request (the model), so only `self` is borrowed.
    async fn acquire_slowly(
        &self,
        model: Arc<str>,
        asked: Instant,
        started: Option<(u64, Resolved)>,
    ) -> Result<Lease, AcquireError> {
        let sh = &*self.shared;
        let (ticket, mut resolved) = match started {
            Some(started) => started,
            None => {
                sh.env.costs.charge_selection().await;
                let ticket = sh.core.take_ticket();
                (ticket, sh.core.resolve(ticket, &model, sh.env.clock.now_ms()))
            }
        };
        let mut refresh_wait = Duration::ZERO;
        // The credential and version this request waited past: a newer token of it that is
        // already due is served, not waited for again.
        let mut waited: Option<(usize, u64)> = None;
        loop {
            match resolved {
                Resolved::Ready { pick, ahead } => {
                    if let Some(seen) = ahead {
                        self.refresh_ahead(pick.index, seen);
                    }
                    return Ok(pick.into_lease(AcquireTiming::since(asked, Duration::ZERO, refresh_wait)));
                }
                Resolved::Refresh { index, version }
                    if waited.is_some_and(|(i, seen)| i == index && version > seen) =>
                {
                    if let Some(pick) = sh.core.pick_refreshed(index) {
                        return Ok(pick.into_lease(AcquireTiming::since(asked, Duration::ZERO, refresh_wait)));
                    }
                }
                Resolved::Refresh { index, version } => {
                    let started = Instant::now();
                    self.wait_for_refresh(index, version).await;
                    refresh_wait += started.elapsed();
                    waited = Some((index, version));
                }
                Resolved::Exhausted => {
                    Counters::bump(&sh.counters.exhausted);
                    return Err(AcquireError::Exhausted);
                }
            }
            resolved = sh.core.resolve(ticket, &model, sh.env.clock.now_ms());
        }
    }

    /// Waits until the refresh of credential `index` past version `seen` has landed, leading it
    /// if nobody is.
    async fn wait_for_refresh(&self, index: usize, seen: u64) {
        let flight = self.shared.core.flight(index);
        loop {
            // Registered before looking at the slot, so a landing in between is not missed.
            let notified = self.shared.landed[index].notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match flight.begin(seen) {
                Join::Landed(_) => return,
                Join::Lead => {
                    self.spawn_flight(index);
                    notified.await;
                }
                Join::Follow => notified.await,
            }
        }
    }
}

impl Shared {
    /// One refresh of credential `index`: call the endpoint, publish, land, persist, clear.
    async fn run_flight(&self, index: usize) {
        let _clear = ClearOnDrop { shared: self, index };
        let (refresh_token, id) = self.core.refresh_source(index);
        let change = self
            .env
            .refresh(&self.counters, index, self.attempts.next(index), &refresh_token)
            .await;
        let result = if change.disables() {
            FlightResult::Failed
        } else {
            FlightResult::Refreshed
        };
        let version = self.core.publish_refresh(index, &change);
        self.core.flight(index).land(version, result);
        self.landed[index].notify_waiters();
        // Write-behind: the waiters have their token (or moved on) already.
        self.env.persist(&self.counters, &id, change).await;
    }
}

/// Clears a flight's slot when its task ends, however it ends (done, panicked, cancelled), and
/// wakes waiters: followers of a flight that never landed retry, and one of them leads.
struct ClearOnDrop<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.core.flight(self.index).clear();
        self.shared.landed[self.index].notify_waiters();
    }
}

impl CredentialManager for LockFree {
    fn name(&self) -> &'static str {
        "lock_free"
    }

    // The fast paths are plain functions; only an acquisition that must wait (modelled costs, a
    // refresh) or a completion that must persist continues in a boxed future, so the waiting
    // machinery (a timer, a `Notified`) does not weigh on every request's future.

    fn acquire(&self, request: &Request) -> impl Future<Output = Result<Lease, AcquireError>> + Send {
        Acquire {
            strategy: self,
            request,
            waiting: None,
        }
    }

    fn complete(
        &self,
        lease: Lease,
        request: &Request,
        outcome: Outcome,
    ) -> impl Future<Output = Result<(), AcquireError>> + Send {
        Complete {
            strategy: self,
            request,
            lease: Some(lease),
            outcome,
            persisting: None,
        }
    }

    fn stats(&self) -> StrategyStats {
        self.shared.counters.snapshot()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.shared.core.accounts()
    }

    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.shared.core.switch(index, change)
    }
}
