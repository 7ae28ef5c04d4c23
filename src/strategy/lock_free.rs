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

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::ticket_blocks::TicketBlocks;
use super::CredentialManager;
use crate::costs::Step;
use crate::model::ticket::{pick_by_ticket, ticket_position};
use crate::model::time::to_plain;
use crate::model::{Account, AccountId, Change, EpochMs, Outcome, Policy, RefreshDue};
use crate::secret::Secret;
use crate::store::BoxFuture;
use crate::sync::{AtomicBool, AtomicI64, AtomicU64, Mutex, Ordering, SnapshotCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// Keeps a value on cache lines of its own (128 bytes: two 64-byte lines, because x86 prefetches
/// lines in adjacent pairs), so writes to one never invalidate a neighbour's.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// How many copies of each credential's id and token a snapshot keeps, and how many counters
/// each credential's successes are spread over (see [`replica`]).
pub const REPLICAS: usize = 8;

/// The replica the current thread uses: threads are numbered in the order they first ask, modulo
/// [`REPLICAS`]. A lease holds its own reference to the credential's id and token (two
/// `Arc<str>`s); were every thread to clone the same two `Arc`s, their reference counts would be
/// written by every acquisition and every dropped lease on every core: `perf` put the contended
/// case's time on those reference counts' `lock` instructions, and with one shared copy two
/// workers served requests no faster than one (53-57 ns each with 1, 2 or 64 tasks). With a
/// copy per thread, each core counts references on lines of its own (36-39 ns per request with
/// 2 or 64 tasks); the success counters are spread the same way.
#[inline]
pub fn replica() -> usize {
    use std::cell::Cell;
    // A thread number, not shared state: a plain std atomic, outside what loom models.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static REPLICA: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    REPLICA.with(|r| {
        let mine = r.get();
        if mine != usize::MAX {
            return mine;
        }
        let mine = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % REPLICAS;
        r.set(mine);
        mine
    })
}

/// One replica's copy of a credential's id and access token.
type LeaseCopy = (AccountId, Secret);

/// An immutable view of the pool. Replaced as a whole, never changed in place.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub accounts: Vec<Account>,
    /// Refreshes published per credential. A request that saw version `v` with a token inside the
    /// margin waits for the flight that publishes `v + 1`.
    pub versions: Vec<u64>,
    /// Enabled accounts in pool order: the usable set for every model once no ban is active.
    live: Vec<usize>,
    /// No ban outlasts this instant (`EpochMs::MIN` when there is none): from then on `live` is
    /// the usable set and selection needs no scan.
    bans_until: EpochMs,
    /// Until this instant no enabled account's token is inside its refresh-ahead window (nor,
    /// then, the margin), so an acquisition needs no expiry check (`EpochMs::MIN` when a token
    /// has no expiry: then every acquisition checks).
    fresh_until: EpochMs,
    /// `copies[r * n + i]` (`n` accounts): replica `r`'s own copy of credential `i`'s id and
    /// access token (equal strings, separate allocations), which leases taken on replica `r`'s
    /// threads clone. Built replica by replica, so one credential's copies are not neighbours in
    /// memory. (One flat slice: one bounds check and one indirection on the hot path.)
    copies: Box<[LeaseCopy]>,
}

impl Snapshot {
    /// `window_ms`: the policy's refresh-ahead window (at least its margin).
    fn new(accounts: Vec<Account>, versions: Vec<u64>, window_ms: i64) -> Snapshot {
        let live = accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.disabled)
            .map(|(i, _)| i)
            .collect();
        let bans_until = accounts
            .iter()
            .filter(|a| !a.disabled)
            .flat_map(|a| a.bans.iter().filter_map(|(_, until)| *until))
            .max()
            .unwrap_or(EpochMs::MIN);
        // The same arithmetic as `Account::needs_refresh`, so `now < fresh_until` implies
        // `Policy::refresh_due` is `No` for every enabled account.
        let fresh_until = accounts
            .iter()
            .filter(|a| !a.disabled)
            .map(|a| a.expires_at().map_or(EpochMs::MIN, |at| at - window_ms))
            .min()
            .unwrap_or(EpochMs::MAX);
        let copies = (0..REPLICAS)
            .flat_map(|_| {
                accounts
                    .iter()
                    .map(|a| (AccountId::from(a.id.as_str()), Secret::new(a.access_token.expose())))
            })
            .collect();
        Snapshot {
            accounts,
            versions,
            live,
            bans_until,
            fresh_until,
            copies,
        }
    }

    /// Credential `index`, leased on `replica`'s copies of its id and token.
    #[inline]
    fn pick(&self, index: usize, replica: usize) -> Pick {
        let (id, token) = &self.copies[replica * self.accounts.len() + index];
        Pick {
            index,
            id: id.clone(),
            token: token.clone(),
        }
    }

    /// This snapshot with `change` applied to account `index` (and its version bumped for a
    /// published refresh).
    fn with_change(&self, index: usize, change: &Change, refresh: bool, window_ms: i64) -> Snapshot {
        let mut accounts = self.accounts.clone();
        accounts[index].apply(change);
        let mut versions = self.versions.clone();
        if refresh {
            versions[index] += 1;
        }
        Snapshot::new(accounts, versions, window_ms)
    }
}

/// What a ticket resolves to on the current snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Use this credential. `ahead` is `Some(version)` when its token is inside the refresh-ahead
    /// window: start a background refresh unless one is running.
    Ready {
        pick: Pick,
        ahead: Option<u64>,
    },
    /// The credential's token is inside the margin: wait for (or start) the refresh that
    /// publishes `version + 1`, then resolve the same ticket again.
    Refresh {
        index: usize,
        version: u64,
    },
    Exhausted,
}

/// How a refresh flight ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlightResult {
    Refreshed,
    /// The credential is disabled; waiters move on.
    Failed,
}

/// What [`SingleFlight::begin`] tells a request that needs a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// No refresh is running and none landed since the caller's snapshot: the caller starts one.
    Lead,
    /// A refresh is running: wait for it to land.
    Follow,
    /// A refresh landed since the caller's snapshot, with this result: load the snapshot again.
    Landed(FlightResult),
}

#[derive(Debug, Default)]
struct FlightState {
    running: bool,
    /// Version of the last refresh that landed (published in the snapshot).
    landed: u64,
    last: Option<FlightResult>,
}

/// A per-credential single-flight slot: at most one refresh of a credential runs at a time, and
/// every request that needs it either leads it, follows it, or sees it already landed.
///
/// Protocol: `begin(seen)` (`seen` = the credential's version in the caller's snapshot) →
/// the leader refreshes, publishes the result in the snapshot as version `seen + 1`, calls
/// [`land`](Self::land) (followers go), and [`clear`](Self::clear)s the slot when it is entirely
/// done. Publishing before landing is what makes `Landed` mean "the snapshot has it".
#[derive(Debug, Default)]
pub struct SingleFlight {
    state: Mutex<FlightState>,
    /// Mirrors `state.running`, so the refresh-ahead path sees "already started" without the lock.
    running: AtomicBool,
}

impl SingleFlight {
    pub fn begin(&self, seen: u64) -> Join {
        let mut f = self.state.lock();
        if f.landed > seen {
            return Join::Landed(f.last.expect("a landed flight has a result"));
        }
        if f.running {
            return Join::Follow;
        }
        f.running = true;
        self.running.store(true, Ordering::Release);
        Join::Lead
    }

    /// For the refresh-ahead window: leads a new flight unless one is running (checked without
    /// the lock first) or one landed since `seen`.
    pub fn begin_ahead(&self, seen: u64) -> bool {
        !self.running.load(Ordering::Acquire) && self.begin(seen) == Join::Lead
    }

    /// The leader published its result as `version`: followers may go.
    pub fn land(&self, version: u64, result: FlightResult) {
        let mut f = self.state.lock();
        f.landed = version;
        f.last = Some(result);
    }

    /// The leader is done: a later request may start another flight.
    pub fn clear(&self) {
        let mut f = self.state.lock();
        f.running = false;
        self.running.store(false, Ordering::Release);
    }

    pub fn is_running(&self) -> bool {
        self.state.lock().running
    }

    /// Version of the last landed refresh.
    pub fn landed(&self) -> u64 {
        self.state.lock().landed
    }
}

/// One credential's mutable state outside the snapshot.
#[derive(Debug)]
pub struct Slot {
    /// Calls completed with plain bookkeeping (not in the snapshot's `total_calls`), counted on
    /// the counter of the completing thread's [`replica`] and summed when read.
    calls: [Padded<AtomicU64>; REPLICAS],
    /// Latest success, epoch ms (`EpochMs::MIN` for none yet).
    last_success: AtomicI64,
    pub flight: SingleFlight,
}

/// How far ahead of expiry [`Policy::refresh_due`] starts to answer other than `No`.
fn refresh_window(policy: &Policy) -> i64 {
    policy.refresh_ahead_ms.max(policy.refresh_margin_ms)
}

/// The synchronous core: snapshot, ticket, per-credential slots. No lock on the acquire path.
#[derive(Debug)]
pub struct TicketCore {
    policy: Policy,
    snapshot: SnapshotCell<Snapshot>,
    /// Where tickets come from: blocks of consecutive tickets, one block per replica at a time.
    tickets: TicketBlocks,
    slots: Box<[Padded<Slot>]>,
}

impl TicketCore {
    pub fn new(policy: Policy, accounts: Vec<Account>) -> Self {
        let n = accounts.len();
        let snapshot = Snapshot::new(accounts, vec![0; n], refresh_window(&policy));
        let slots = (0..n)
            .map(|_| {
                Padded(Slot {
                    calls: std::array::from_fn(|_| Padded(AtomicU64::new(0))),
                    last_success: AtomicI64::new(EpochMs::MIN),
                    flight: SingleFlight::default(),
                })
            })
            .collect();
        TicketCore {
            tickets: TicketBlocks::new(policy.calls_per_rotation),
            snapshot: SnapshotCell::new(crate::sync::Arc::new(snapshot)),
            policy,
            slots,
        }
    }

    /// The next rotation ticket of the current thread's [`replica`] (see [`TicketBlocks`]).
    #[inline]
    pub fn take_ticket(&self) -> u64 {
        self.tickets.take(replica())
    }

    /// Tickets reserved so far: every ticket handed out is below this (see [`TicketBlocks`] for
    /// the reserved ones that are never handed out).
    pub fn tickets_reserved(&self) -> u64 {
        self.tickets.reserved()
    }

    /// Maps `ticket` to a credential on the current snapshot, for `model` at `now`.
    #[inline]
    pub fn resolve(&self, ticket: u64, model: &str, now: EpochMs) -> Resolved {
        self.resolve_on(&self.snapshot.load(), ticket, model, now, replica())
    }

    /// [`resolve`](Self::resolve) on `snap`. The common case, inline: no ban active and no
    /// enabled token near its refresh-ahead window, so the usable set is `live` and no expiry
    /// check is needed; everything else (bans, expiry, an empty pool) in
    /// [`resolve_slowly`](Self::resolve_slowly).
    /// (`replica`: the current thread's [`replica`], read once per acquisition.)
    #[inline]
    fn resolve_on(&self, snap: &Snapshot, ticket: u64, model: &str, now: EpochMs, replica: usize) -> Resolved {
        if snap.bans_until <= now && now < snap.fresh_until {
            if let Some(position) = ticket_position(ticket, self.policy.calls_per_rotation, snap.live.len()) {
                return Resolved::Ready {
                    pick: snap.pick(snap.live[position], replica),
                    ahead: None,
                };
            }
        }
        self.resolve_slowly(snap, ticket, model, now, replica)
    }

    #[inline(never)]
    fn resolve_slowly(&self, snap: &Snapshot, ticket: u64, model: &str, now: EpochMs, replica: usize) -> Resolved {
        let index = if now >= snap.bans_until {
            // No ban is active: the usable set is the enabled set, precomputed.
            match ticket_position(ticket, self.policy.calls_per_rotation, snap.live.len()) {
                Some(position) => snap.live[position],
                None => return Resolved::Exhausted,
            }
        } else {
            match pick_by_ticket(&self.policy, &snap.accounts, ticket, model, now) {
                Some(i) => i,
                None => return Resolved::Exhausted,
            }
        };
        let account = &snap.accounts[index];
        let version = snap.versions[index];
        let due = if now < snap.fresh_until {
            RefreshDue::No
        } else {
            self.policy.refresh_due(account, now)
        };
        let ahead = match due {
            RefreshDue::Now => return Resolved::Refresh { index, version },
            RefreshDue::Ahead => Some(version),
            RefreshDue::No => None,
        };
        Resolved::Ready {
            pick: snap.pick(index, replica),
            ahead,
        }
    }

    pub fn flight(&self, index: usize) -> &SingleFlight {
        &self.slots[index].flight
    }

    /// What a refresh of credential `index` needs: its refresh token and id.
    pub fn refresh_source(&self, index: usize) -> (Secret, AccountId) {
        let snap = self.snapshot.load();
        let a = &snap.accounts[index];
        (a.refresh_token.clone(), a.id.clone())
    }

    /// Publishes a refresh's result (a new token, or disabled) as the credential's next version,
    /// which it returns. Only a flight's leader calls this.
    pub fn publish_refresh(&self, index: usize, change: &Change) -> u64 {
        let window = refresh_window(&self.policy);
        self.snapshot
            .rcu(|cur| cur.with_change(index, change, true, window))
            .versions[index]
    }

    /// Counts a success on credential `index` without its time (one relaxed `fetch_add` on the
    /// credential's own lines).
    #[inline]
    pub fn count_success(&self, index: usize) {
        self.slots[index].calls[replica()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records an outcome's change. A change that can alter selection (a ban, a disable) replaces
    /// the snapshot; plain bookkeeping (a success, a 5xx) only counts the call, and a success's
    /// time, on the credential's padded counters. Error codes are not kept in memory, as in every
    /// strategy: they are file bookkeeping.
    ///
    /// Returns whether the change disabled a credential that was enabled: requests in flight on a
    /// dead credential all report it, and the disable is counted once. (`rcu` may run its closure
    /// more than once; the last run is the one published, so its answer is the one kept.)
    pub fn complete(&self, index: usize, change: &Change) -> bool {
        if change.affects_selection() {
            let window = refresh_window(&self.policy);
            let mut newly_disabled = false;
            self.snapshot.rcu(|cur| {
                newly_disabled = change.disables() && !cur.accounts[index].disabled;
                cur.with_change(index, change, false, window)
            });
            return newly_disabled;
        }
        let slot = &self.slots[index];
        if change.counts_a_call() {
            slot.calls[replica()].fetch_add(1, Ordering::Relaxed);
        }
        if let Change::Success { at } = change {
            slot.last_success.fetch_max(*at, Ordering::Relaxed);
        }
        false
    }

    /// An operator's switch: a new snapshot with credential `index` disabled or enabled; returns
    /// whether its state changed. (As for every disable here, an acquisition that resolved on
    /// the old snapshot may still use the credential once.)
    pub fn switch(&self, index: usize, change: &Change) -> bool {
        let window = refresh_window(&self.policy);
        let mut changed = false;
        self.snapshot.rcu(|cur| {
            // Not a refresh: the credential's version stays.
            let next = cur.with_change(index, change, false, window);
            changed = next.accounts[index].disabled != cur.accounts[index].disabled;
            next
        });
        changed
    }

    /// The current snapshot (as published; fast-path successes are not in it).
    pub fn snapshot(&self) -> crate::sync::Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The accounts with the calls counted on the padded counters added back.
    pub fn accounts(&self) -> Vec<Account> {
        let snap = self.snapshot.load_full();
        snap.accounts
            .iter()
            .zip(self.slots.iter())
            .map(|(a, slot)| {
                let mut a = a.clone();
                a.total_calls += slot.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
                let last = slot.last_success.load(Ordering::Relaxed);
                if last != EpochMs::MIN {
                    a.last_success = Some(to_plain(last));
                }
                a
            })
            .collect()
    }
}

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
        loop {
            match resolved {
                Resolved::Ready { pick, ahead } => {
                    if let Some(seen) = ahead {
                        self.refresh_ahead(pick.index, seen);
                    }
                    return Ok(pick.into_lease(AcquireTiming::since(asked, Duration::ZERO, refresh_wait)));
                }
                Resolved::Refresh { index, version } => {
                    let started = Instant::now();
                    self.wait_for_refresh(index, version).await;
                    refresh_wait += started.elapsed();
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

/// The future of [`LockFree::acquire`]: the fast path runs in the first poll and hands the lease
/// straight to the caller; only an acquisition that must wait keeps its boxed continuation here.
/// (A hand-written future rather than an `async fn`: the lease is built once, where the caller
/// receives it, instead of being copied through the state machines of two more futures.)
struct Acquire<'s, 'r> {
    strategy: &'s LockFree,
    request: &'r Request,
    waiting: Option<BoxFuture<'s, Result<Lease, AcquireError>>>,
}

impl Future for Acquire<'_, '_> {
    type Output = Result<Lease, AcquireError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.waiting.is_none() {
            let sh = &*this.strategy.shared;
            let started = if sh.selection_free {
                let replica = replica();
                let ticket = sh.core.tickets.take(replica);
                let now = sh.env.clock.now_ms();
                // Borrowed until the lease is returned: its guard is released after the lease is
                // written to the caller's slot, not before (which made the lease's five words
                // wait on the stack across the release and be copied out again).
                let snapshot = sh.core.snapshot.load();
                match sh.core.resolve_on(&snapshot, ticket, &this.request.model, now, replica) {
                    // The fast path: the lease is built in the value returned.
                    Resolved::Ready { pick, ahead: None } => {
                        return Poll::Ready(Ok(pick.into_lease(AcquireTiming::default())));
                    }
                    resolved => Some((ticket, resolved)),
                }
            } else {
                None
            };
            match this.strategy.acquire_rest(this.request, started) {
                Ok(done) => return Poll::Ready(done),
                Err(continuation) => this.waiting = Some(continuation),
            }
        }
        match &mut this.waiting {
            Some(waiting) => waiting.as_mut().poll(cx),
            None => unreachable!("an acquisition that did not finish waits"),
        }
    }
}

/// The future of [`LockFree::complete`]: records the outcome in the first poll; only a change
/// that must be persisted continues in a boxed future.
struct Complete<'s, 'r> {
    strategy: &'s LockFree,
    request: &'r Request,
    /// The lease to give back, until the first poll.
    lease: Option<Lease>,
    outcome: Outcome,
    persisting: Option<BoxFuture<'s, ()>>,
}

impl Future for Complete<'_, '_> {
    type Output = Result<(), AcquireError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(lease) = &this.lease {
            let sh = &*this.strategy.shared;
            // A success that is not persisted only counts a call: no clock read, no snapshot
            // swap, and the lease is dropped where it lies.
            if this.outcome == Outcome::Success && !sh.env.options.record_outcomes {
                sh.core.count_success(lease.index);
                this.lease = None;
                return Poll::Ready(Ok(()));
            }
            let lease = this.lease.take().expect("borrowed just above");
            this.persisting = this.strategy.complete_now(lease, this.request, &this.outcome);
        }
        match &mut this.persisting {
            Some(persist) => persist.as_mut().poll(cx).map(Ok),
            None => Poll::Ready(Ok(())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TokenGrant;

    const MODEL: &str = "gemini-3-pro";

    fn core(n: usize, k: u64, lifetime_s: i64) -> TicketCore {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        TicketCore::new(policy, (0..n).map(|i| Account::synthetic(i, 0, lifetime_s)).collect())
    }

    fn ready(c: &TicketCore, now: EpochMs) -> usize {
        match c.resolve(c.take_ticket(), MODEL, now) {
            Resolved::Ready { pick, .. } => pick.index,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn tickets_rotate_every_k_and_skip_disabled_accounts() {
        let c = core(3, 2, 3600);
        let picks: Vec<usize> = (0..6).map(|_| ready(&c, 0)).collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2]);
        c.complete(1, &Change::Disabled);
        assert!((0..8).all(|_| ready(&c, 0) != 1));
    }

    #[test]
    fn banned_accounts_are_skipped_until_the_ban_ends() {
        let c = core(2, 1, 36_000);
        let ban = c.policy.outcome_change(
            MODEL,
            0,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        );
        c.complete(0, &ban);
        assert!((0..4).all(|_| ready(&c, 0) == 1));
        let after = c.policy.default_ban_ms;
        let picks: Vec<usize> = (0..4).map(|_| ready(&c, after)).collect();
        assert!(picks.contains(&0) && picks.contains(&1), "{picks:?}");
    }

    #[test]
    fn refresh_ahead_window_and_margin() {
        let c = core(1, 100, 3600); // expires at 3_600_000; ahead from 3_000_000; margin from 3_300_000
        assert!(matches!(
            c.resolve(0, MODEL, 2_999_999),
            Resolved::Ready { ahead: None, .. }
        ));
        assert!(matches!(
            c.resolve(0, MODEL, 3_000_000),
            Resolved::Ready { ahead: Some(0), .. }
        ));
        assert_eq!(
            c.resolve(0, MODEL, 3_300_000),
            Resolved::Refresh { index: 0, version: 0 }
        );
    }

    #[test]
    fn single_flight_leads_once_and_delivers_the_result() {
        let c = core(1, 100, 0);
        let f = c.flight(0);
        assert_eq!(f.begin(0), Join::Lead);
        assert_eq!(f.begin(0), Join::Follow);
        assert!(!f.begin_ahead(0));
        let grant = TokenGrant {
            access_token: Secret::new("new"),
            expires_in: 3600,
        };
        let v = c.publish_refresh(0, &Change::Refreshed { grant, at: 0 });
        assert_eq!(v, 1);
        f.land(v, FlightResult::Refreshed);
        // Followers of version 0 see it landed; a request already on version 1 does not lead a
        // second refresh while the leader is still persisting.
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Refreshed));
        assert_eq!(f.begin(1), Join::Follow);
        f.clear();
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Refreshed));
        assert_eq!(f.begin(1), Join::Lead, "the cleared slot lets a later refresh start");
        assert!(matches!(c.resolve(0, MODEL, 0), Resolved::Ready { ahead: None, .. }));
    }

    #[test]
    fn a_failed_flight_disables_and_waiters_move_on() {
        let c = core(2, 100, 0);
        assert_eq!(c.resolve(0, MODEL, 0), Resolved::Refresh { index: 0, version: 0 });
        let f = c.flight(0);
        assert_eq!(f.begin(0), Join::Lead);
        let v = c.publish_refresh(0, &Change::Disabled);
        f.land(v, FlightResult::Failed);
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Failed));
        // The same ticket now resolves to the next credential.
        assert_eq!(c.resolve(0, MODEL, 0), Resolved::Refresh { index: 1, version: 0 });
    }

    #[test]
    fn plain_bookkeeping_is_counted_without_a_snapshot_swap() {
        let c = core(1, 100, 3600);
        let before = c.snapshot();
        c.complete(0, &Change::Success { at: 2_000 });
        c.complete(
            0,
            &Change::Error {
                code: 500,
                ban: None,
                disable: false,
            },
        );
        c.complete(0, &Change::Success { at: 1_000 });
        c.count_success(0);
        assert!(
            crate::sync::Arc::ptr_eq(&before, &c.snapshot()),
            "plain bookkeeping swapped the snapshot"
        );
        let a = &c.accounts()[0];
        assert_eq!(a.total_calls, 4);
        assert_eq!(a.last_success.as_deref(), Some(to_plain(2_000).as_str()));
        // A ban does replace it, and counts its call there.
        c.complete(
            0,
            &Change::Error {
                code: 429,
                ban: Some(("gemini_3_series".into(), 10)),
                disable: false,
            },
        );
        assert!(!crate::sync::Arc::ptr_eq(&before, &c.snapshot()));
        assert_eq!(c.accounts()[0].total_calls, 5);
    }

    proptest::proptest! {
        /// The snapshot's `fresh_until` shortcut never changes what the policy decides: a ticket
        /// resolves to `Refresh` exactly when the token is inside the margin, and carries `ahead`
        /// exactly when it is inside the refresh-ahead window.
        #[test]
        fn the_expiry_shortcut_agrees_with_the_policy(
            lifetimes in proptest::collection::vec(proptest::option::of(0i64..7_200), 1..5),
            now in 0i64..8_000_000,
            ticket in 0u64..1_000,
        ) {
            let accounts: Vec<Account> = lifetimes
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut a = Account::synthetic(i, 0, l.unwrap_or(0));
                    a.expires_in = *l;
                    a
                })
                .collect();
            let policy = Policy { calls_per_rotation: 1, ..Policy::default() };
            let c = TicketCore::new(policy.clone(), accounts.clone());
            let (index, got) = match c.resolve(ticket, MODEL, now) {
                Resolved::Ready { pick, ahead: None } => (pick.index, RefreshDue::No),
                Resolved::Ready { pick, ahead: Some(_) } => (pick.index, RefreshDue::Ahead),
                Resolved::Refresh { index, .. } => (index, RefreshDue::Now),
                Resolved::Exhausted => panic!("a healthy pool is never exhausted"),
            };
            proptest::prop_assert_eq!(got, policy.refresh_due(&accounts[index], now));
        }
    }

    #[test]
    fn threads_lease_their_own_copies_and_their_counts_add_up() {
        let c = std::sync::Arc::new(core(1, 100, 3600));
        let threads = REPLICAS + 1;
        let picks: Vec<Pick> = (0..threads)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let pick = match c.resolve(c.take_ticket(), MODEL, 0) {
                        Resolved::Ready { pick, .. } => pick,
                        other => panic!("expected Ready, got {other:?}"),
                    };
                    c.count_success(pick.index);
                    pick
                })
                .join()
                .unwrap()
            })
            .collect();
        let a = &c.snapshot().accounts[0];
        assert!(picks.iter().all(|p| p.id == a.id && p.token == a.access_token));
        // Threads are numbered as they first ask, so successive threads use different copies.
        let copies: std::collections::HashSet<usize> = picks
            .iter()
            .map(|p| std::sync::Arc::as_ptr(&p.id.0) as *const u8 as usize)
            .collect();
        assert!(copies.len() >= 2, "every thread cloned the same Arc");
        assert!(copies.len() <= REPLICAS);
        assert_eq!(c.accounts()[0].total_calls, threads as u64);
    }

    #[test]
    fn counters_sit_on_their_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Padded<Slot>>(), 128);
        assert!(std::mem::size_of::<Padded<Slot>>().is_multiple_of(128));
    }
}
