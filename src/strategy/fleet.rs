//! `fleet`: one instance of a fleet that shares its pool through a [`SharedPool`] (Redis, or its
//! model in virtual time). The design in depth: docs/fleet.md.
//!
//! - **Rotation from one ticket counter**, fleet-wide: every acquisition is one round trip (the
//!   acquire script takes a ticket and maps it to an account enabled and unbanned on the server's
//!   clock), so a turn is exactly K calls across all instances, not K per instance.
//! - **Refresh single-flight across the fleet**: a token inside the margin is refreshed only by
//!   the instance holding the account's refresh lease (`SET NX PX`, TTL above the refresh
//!   timeout), and its new token is committed fenced by the generation it was refreshed from. A
//!   holder whose lease ran out while it was paused is rejected by the fence when it commits late
//!   (counted as `stale_commits`), because another instance refreshed after the TTL. Inside one
//!   instance, one request per account does the lease dance ([`Inner::flights`]); the others wait
//!   for it, then resolve the same ticket again. Inside the refresh-ahead window the refresh runs
//!   in the background and requests keep the still-valid token, as in `lock_free`.
//! - **Bans and disables written to the shared pool** at once, so every instance's next
//!   acquisition skips them; a ban is `max(old, new)`. A refresh that backs off after an outage
//!   (`[pool] refresh_backoff`) is a ban of every series ([`EVERY_SERIES`]) until the backoff
//!   ends, after which the account is refreshed again.
//! - **The accounts file stays the system of record** (through the [`Env`]'s store): a refreshed
//!   token, a disable and the outcome bookkeeping are persisted there as by every strategy; the
//!   shared pool is soft state, seeded from the file when it is found empty (a Redis restart that
//!   kept nothing), with the bans the file holds written back to it.
//! - **Degraded mode** when the shared pool cannot be reached (see [`crate::fleet::degraded`]):
//!   local rotation and local bans, no refresh at all (no lease can be had), one probe per
//!   interval, the changes made meanwhile replayed when it answers again; entries, exits and
//!   acquisitions served locally are counted in the stats.
//!
//! Policy stays in [`crate::model`]: selection is the ticket rule, expiry is
//! [`Policy::refresh_due_at`](crate::model::Policy::refresh_due_at), outcomes are
//! [`Env::outcome_change`], refreshes [`Env::refresh`].
//!
//! **Locks:** none shared by requests on the acquire path but the round trip itself; a
//! per-account async mutex while refreshing, and the local copy's short critical sections.
//! **Trades away:** a round trip per acquisition and per ban or disable (Redis's single core is
//! the fleet's ceiling), and exactness while degraded.

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Request};
use super::CredentialManager;
use crate::fleet::degraded::{LocalPick, LocalPool};
use crate::fleet::{
    seeding, AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, ModelledPool, SeedAnswer, SharedError, SharedPool,
    EVERY_SERIES,
};
use crate::model::{Account, AccountId, Change, PoolState, RefreshDue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The fleet strategy's own knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetOptions {
    /// How long a refresh lease lasts. Must exceed `refresh_timeout`, so a live holder's refresh
    /// ends (answered or timed out) before another instance may take the lease.
    pub lease_ttl: Duration,
    /// The token endpoint's timeout (the proxy's: 30 s).
    pub refresh_timeout: Duration,
    /// While degraded, how often one acquisition tries the shared pool again.
    pub probe_interval: Duration,
    /// How long a request waits before looking again when another instance holds the lease.
    pub lease_poll: Duration,
    /// This instance's name in leases and commits; `None`: made unique from the process id.
    pub owner: Option<String>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            lease_ttl: Duration::from_secs(35),
            refresh_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_secs(1),
            lease_poll: Duration::from_millis(50),
            owner: None,
        }
    }
}

/// A unique owner name for this process's next instance.
fn owner_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("pid{}-i{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// No slot learned yet for an account (see [`Inner::slots`]).
const UNKNOWN_SLOT: u64 = u64::MAX;

struct Inner {
    env: Env,
    pool: Arc<dyn SharedPool>,
    options: FleetOptions,
    owner: String,
    /// Local index of each account id (the order of the [`Env`]'s accounts).
    index_of: HashMap<AccountId, usize>,
    /// Each local account's slot in the shared pool, as last seen in an acquisition (slots are
    /// assigned in the system of record's order when the pool is seeded); forgotten on a reseed.
    slots: Box<[AtomicU64]>,
    local: LocalPool,
    /// One refresh per account at a time inside this instance (across the fleet: the lease).
    flights: Box<[Turn]>,
    /// One seeding of an empty shared pool at a time inside this instance (across the fleet:
    /// the seed script, which only the first seeder's call applies).
    seeding: Turn,
    counters: Counters,
    attempts: RefreshAttempts,
    /// Operations on the shared pool that got no answer (timed out or unreachable), each one.
    shared_errors: AtomicU64,
}

/// A fleet instance's own figures, beside its [`StrategyStats`] (`credpool serve`'s `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetFigures {
    /// Serving from the local copy now.
    pub degraded: bool,
    pub degraded_entries: u64,
    pub degraded_exits: u64,
    pub degraded_acquisitions: u64,
    /// Refresh results the fence rejected because this instance's lease had run out and another
    /// instance refreshed: a late token commit, or a late failure's disable.
    pub stale_commits: u64,
    /// Operations on the shared pool that got no answer: timeouts and unreachable Redis.
    pub shared_errors: u64,
    /// Seedings of an empty shared pool from the system of record that this instance applied.
    pub reseeds: u64,
}

pub struct Fleet {
    inner: Arc<Inner>,
}

/// A piece of work that one request of the instance does while the others wait, and that a
/// waiter does not do again once it is its turn: it looks again at what the first one did.
#[derive(Default)]
struct Turn(tokio::sync::Mutex<u64>);

impl Turn {
    /// `Some(guard)`: do the work while holding it. `None`: another request did it (or was doing
    /// it) while this one waited.
    async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, u64>> {
        let seen = self.0.try_lock().map(|done| *done).ok();
        let mut done = self.0.lock().await;
        if seen != Some(*done) {
            return None;
        }
        *done += 1;
        Some(done)
    }

    /// Without waiting: `Some(guard)` if nobody is doing the work now.
    fn try_take(&self) -> Option<tokio::sync::MutexGuard<'_, u64>> {
        let mut done = self.0.try_lock().ok()?;
        *done += 1;
        Some(done)
    }

    fn busy(&self) -> bool {
        self.0.try_lock().is_err()
    }
}

/// How one turn of the refresh protocol ended.
enum Refreshed {
    /// Nothing more to do here: this instance committed, or somebody else did (the generation
    /// moved on), or the account is gone or disabled. Resolve the ticket again.
    Done,
    /// Another instance holds the lease: look again after `lease_poll`.
    Held,
    /// The shared pool cannot be reached.
    Outage,
}

impl Fleet {
    /// An instance over `pool`. Panics if `lease_ttl` does not exceed `refresh_timeout` (a lease
    /// that can expire under a live refresh is no single-flight at all).
    pub fn new(env: Env, pool: Arc<dyn SharedPool>, options: FleetOptions) -> Fleet {
        assert!(
            options.lease_ttl > options.refresh_timeout,
            "fleet: lease_ttl ({:?}) must exceed refresh_timeout ({:?})",
            options.lease_ttl,
            options.refresh_timeout
        );
        let n = env.accounts.len();
        let index_of = env
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let local = LocalPool::new(
            PoolState::new(env.policy.clone(), env.accounts.clone()),
            options.probe_interval.as_millis() as i64,
        );
        let owner = options.owner.clone().unwrap_or_else(owner_name);
        let inner = Inner {
            pool,
            owner,
            index_of,
            slots: (0..n).map(|_| AtomicU64::new(UNKNOWN_SLOT)).collect(),
            local,
            flights: (0..n).map(|_| Turn::default()).collect(),
            seeding: Turn::default(),
            counters: Counters::default(),
            attempts: RefreshAttempts::new(n),
            shared_errors: AtomicU64::new(0),
            options,
            env,
        };
        Fleet { inner: Arc::new(inner) }
    }

    /// One instance over a private modelled Redis whose round trips cost `redis_rtt` on the
    /// [`Env`]'s clock: what a scenario can build without a Redis server.
    pub fn modelled(env: Env, redis_rtt: Duration) -> Fleet {
        let pool = Arc::new(ModelledPool::new(env.clock, redis_rtt));
        Fleet::new(env, pool, FleetOptions::default())
    }

    /// This instance's owner name (in leases and commits).
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn is_degraded(&self) -> bool {
        self.inner.local.is_degraded()
    }

    pub fn figures(&self) -> FleetFigures {
        let s = self.inner.counters.snapshot();
        FleetFigures {
            degraded: self.is_degraded(),
            degraded_entries: s.degraded_entries,
            degraded_exits: s.degraded_exits,
            degraded_acquisitions: s.degraded_acquisitions,
            stale_commits: s.stale_commits,
            shared_errors: self.inner.shared_errors.load(Ordering::Relaxed),
            reseeds: s.reseeds,
        }
    }

    /// The local copy's core, for tests and model checks.
    pub fn local(&self) -> &LocalPool {
        &self.inner.local
    }
}

impl Inner {
    fn now(&self) -> crate::model::EpochMs {
        self.env.clock.now_ms()
    }

    fn enter_degraded(&self, why: &SharedError) {
        if why.is_outage() {
            self.shared_errors.fetch_add(1, Ordering::Relaxed);
        }
        if self.local.enter(self.now()) {
            Counters::bump(&self.counters.degraded_entries);
            tracing::warn!(owner = %self.owner, error = %why, "fleet: shared pool unreachable, degraded mode");
        }
    }

    /// The shared pool answered: leave degraded mode if in it, writing back what was learned.
    async fn answered(&self) {
        if !self.local.is_degraded() {
            return;
        }
        if let Some(pending) = self.local.leave() {
            Counters::bump(&self.counters.degraded_exits);
            tracing::info!(owner = %self.owner, replayed = pending.len(), "fleet: shared pool answers again");
            for (index, change) in pending {
                // Best effort: a failure here enters degraded mode again, and the change is in
                // the system of record already.
                if let Err(e) = self.write_change(index, &change).await {
                    self.enter_degraded(&e);
                    self.local.queue(index, change);
                }
            }
        }
    }

    fn slot(&self, index: usize) -> Option<u64> {
        let slot = self.slots[index].load(Ordering::Relaxed);
        (slot != UNKNOWN_SLOT).then_some(slot)
    }

    /// Account `index`'s slot, looked up in the shared pool (one snapshot, which teaches every
    /// slot) when this instance has not seen it since the last seeding. `None`: not in the pool.
    async fn slot_of(&self, index: usize) -> Result<Option<u64>, SharedError> {
        if let Some(slot) = self.slot(index) {
            return Ok(Some(slot));
        }
        for shared in self.pool.snapshot().await? {
            if let Some(&i) = self.index_of.get(&shared.id) {
                self.slots[i].store(shared.slot, Ordering::Relaxed);
            }
        }
        Ok(self.slot(index))
    }

    /// Writes a change that affects selection (a ban, a disable, an enable) to the shared pool.
    async fn write_change(&self, index: usize, change: &Change) -> Result<(), SharedError> {
        let Some(slot) = self.slot_of(index).await? else {
            // Deleted from the shared pool: nothing to write (no resurrection).
            return Ok(());
        };
        match change {
            Change::Error { ban, disable, .. } => {
                if let Some((series, until)) = ban {
                    self.pool.ban(slot, series, *until).await?;
                }
                if *disable {
                    self.pool.disable(slot).await?;
                }
            }
            Change::Disabled => {
                self.pool.disable(slot).await?;
            }
            Change::Enabled => {
                self.pool.enable(slot).await?;
            }
            // A refresh backing off: a ban of every series until the backoff (already applied to
            // the local copy) ends.
            Change::RefreshBackedOff { .. } => {
                if let Some(until) = self.local.account(index).refresh_backoff_until {
                    self.pool.ban(slot, EVERY_SERIES, until).await?;
                }
            }
            Change::Success { .. } | Change::Refreshed { .. } => {}
        }
        Ok(())
    }

    /// Whether account `index`'s token, expiring at `expires_at` (as the shared pool says), is due
    /// for a refresh now. With a known lifetime the refresh points are bounded by it, as for every
    /// strategy (`Policy::refresh_due`: ahead from half the lifetime, due from three quarters); the
    /// local copy, just told the expiry, holds the token's issue time and lifetime. Without one,
    /// the margins from the expiry alone.
    fn refresh_due(&self, index: usize, expires_at: Option<crate::model::EpochMs>) -> RefreshDue {
        let account = self.local.account(index);
        if account.expires_in.is_some_and(|s| s > 0) {
            self.env.policy.refresh_due(&account, self.now())
        } else {
            self.env.policy.refresh_due_at(expires_at, self.now())
        }
    }

    /// An acquisition served from the local copy (degraded mode).
    fn acquire_locally(&self, request: &Request, asked: Instant) -> Result<Lease, AcquireError> {
        Counters::bump(&self.counters.degraded_acquisitions);
        match self.local.select(&request.model, self.now()) {
            LocalPick::Ready { index, token } => Ok(Lease::new(
                index,
                self.env.accounts[index].id.clone(),
                token,
                AcquireTiming::since(asked, Duration::ZERO, Duration::ZERO),
            )),
            LocalPick::Exhausted => {
                Counters::bump(&self.counters.exhausted);
                Err(AcquireError::Exhausted)
            }
        }
    }

    /// Seeds an empty shared pool from the system of record, bans included
    /// ([`seeding::seed_from`]), and forgets the slots learned before.
    async fn reseed(&self) -> Result<(), SharedError> {
        let file = match self.env.store.load().await {
            Ok(file) => file,
            Err(_) => {
                Counters::bump(&self.counters.store_errors);
                return Err(SharedError::Unreachable("the system of record cannot be read".into()));
            }
        };
        let (answer, _) = seeding::seed_from(&*self.pool, &file.accounts, self.now(), false).await?;
        if let SeedAnswer::Seeded(_) = answer {
            Counters::bump(&self.counters.reseeds);
        }
        for slot in self.slots.iter() {
            slot.store(UNKNOWN_SLOT, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One turn of the refresh protocol for account `index` (slot `slot`) seen at `generation`:
    /// take the lease, refresh, commit fenced by the generation.
    async fn refresh_once(&self, index: usize, slot: u64, generation: u64) -> Refreshed {
        let ttl = self.options.lease_ttl;
        let leased = match self.pool.lease(slot, &self.owner, ttl, generation).await {
            Ok(LeaseAnswer::Acquired { generation }) => generation,
            Ok(LeaseAnswer::Held { .. }) => return Refreshed::Held,
            Ok(LeaseAnswer::Stale { .. } | LeaseAnswer::Disabled | LeaseAnswer::Gone) => return Refreshed::Done,
            Err(e) => {
                self.enter_degraded(&e);
                return Refreshed::Outage;
            }
        };
        let id = self.env.accounts[index].id.clone();
        let refresh_token = self.local.account(index).refresh_token;
        let change = self
            .env
            .refresh(&self.counters, index, self.attempts.next(index), &refresh_token)
            .await;
        match &change {
            Change::Refreshed { grant, at } => {
                let expires_at = Some(at.saturating_add(grant.expires_in.saturating_mul(1000)));
                let mut answer = self
                    .pool
                    .commit(slot, leased, &grant.access_token, expires_at, &self.owner)
                    .await;
                if matches!(answer, Err(SharedError::Ambiguous)) {
                    // It may have been applied: the commit is idempotent by owner and generation.
                    answer = self
                        .pool
                        .commit(slot, leased, &grant.access_token, expires_at, &self.owner)
                        .await;
                }
                match answer {
                    Ok(CommitAnswer::Committed { .. }) => {
                        self.local.apply(index, &change);
                        self.env.persist(&self.counters, &id, change).await;
                        Refreshed::Done
                    }
                    // The fence: another instance committed this generation first; this token
                    // is dropped (the shared one is as fresh).
                    Ok(CommitAnswer::Stale { .. }) => {
                        Counters::bump(&self.counters.stale_commits);
                        Refreshed::Done
                    }
                    Ok(CommitAnswer::Gone) => Refreshed::Done,
                    Err(e) => {
                        // Keep the token locally (degraded mode may serve it) and in the system
                        // of record: it is valid whether or not the commit landed.
                        self.enter_degraded(&e);
                        self.local.apply(index, &change);
                        self.env.persist(&self.counters, &id, change).await;
                        Refreshed::Outage
                    }
                }
            }
            _ => {
                // A failed refresh disables the account, or with `[pool] refresh_backoff` after an
                // outage bans it for every series until the backoff ends (then the next
                // acquisition refreshes it again, under the lease): fleet-wide and in the system
                // of record, but only if this instance still holds the lease at the generation it
                // refreshed from. A holder paused past its TTL (whose refresh then times out)
                // must not take out an account another instance has refreshed meanwhile. Holding
                // the lease, nobody else can commit before the change lands.
                match self.pool.lease(slot, &self.owner, ttl, leased).await {
                    Ok(LeaseAnswer::Acquired { .. }) | Err(_) => {}
                    Ok(LeaseAnswer::Stale { .. } | LeaseAnswer::Held { .. }) => {
                        Counters::bump(&self.counters.stale_commits);
                        return Refreshed::Done;
                    }
                    Ok(LeaseAnswer::Disabled | LeaseAnswer::Gone) => return Refreshed::Done,
                }
                // (`Env::refresh` counted the disable or the server error.)
                self.local.apply(index, &change);
                let shared = async {
                    self.write_change(index, &change).await?;
                    self.pool.release(slot, &self.owner).await
                };
                if let Err(e) = shared.await {
                    self.enter_degraded(&e);
                    self.local.queue(index, change.clone());
                }
                self.env.persist(&self.counters, &id, change).await;
                Refreshed::Done
            }
        }
    }

    /// [`refresh_once`](Self::refresh_once), by one request of this instance per account at a
    /// time: the others wait here, and find the generation moved on when their turn comes (the
    /// lease answers `Stale`, no second refresh).
    async fn refresh(&self, index: usize, slot: u64, generation: u64) -> Refreshed {
        match self.flights[index].take().await {
            Some(_flight) => self.refresh_once(index, slot, generation).await,
            // Another request of this instance refreshed (or tried) meanwhile: look again.
            None => Refreshed::Done,
        }
    }

    /// The refresh-ahead window: refresh in the background unless this instance is already
    /// refreshing the account.
    fn refresh_ahead(self: &Arc<Self>, index: usize, slot: u64, generation: u64) {
        if self.flights[index].busy() {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            if let Some(_flight) = inner.flights[index].try_take() {
                inner.refresh_once(index, slot, generation).await;
            }
        });
    }

    async fn acquire(self: &Arc<Self>, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        self.env.costs.charge_selection().await;
        if self.local.is_degraded() && !self.local.probe_due(self.now()) {
            return self.acquire_locally(request, asked);
        }
        let policy = &self.env.policy;
        let series = policy.series_of(&request.model);
        let mut again = None;
        let mut refresh_wait = Duration::ZERO;
        let mut reseeded = false;
        // The account and generation this request refreshed (or waited for) past: a newer
        // token of it that is already due (a lifetime shorter than the refresh took) is served,
        // not refreshed again.
        let mut refreshed_past: Option<(usize, u64)> = None;
        // Enough rounds to outwait a lease whose holder died (the TTL), and a few more.
        let rounds = 16 + (self.options.lease_ttl.as_millis() / self.options.lease_poll.as_millis().max(1)) as usize;
        for _ in 0..rounds {
            let acquired: Acquired = match self.pool.acquire(policy.calls_per_rotation, series, again).await {
                Ok(AcquireAnswer::Ready(a)) => a,
                Ok(AcquireAnswer::Exhausted) => {
                    self.answered().await;
                    Counters::bump(&self.counters.exhausted);
                    return Err(AcquireError::Exhausted);
                }
                Ok(AcquireAnswer::Unseeded) if !reseeded => {
                    reseeded = true;
                    // One request seeds; the others wait for it and ask again.
                    let seeded = match self.seeding.take().await {
                        Some(_seeding) => self.reseed().await,
                        None => Ok(()),
                    };
                    if let Err(e) = seeded {
                        self.enter_degraded(&e);
                        return self.acquire_locally(request, asked);
                    }
                    again = None;
                    continue;
                }
                Ok(AcquireAnswer::Unseeded) => {
                    // Still empty after this request's seeding turn: the seeding it waited for
                    // failed, or the pool was lost again meanwhile (another restart). Not a
                    // reason to turn the request away: the local copy serves it, as in degraded
                    // mode, and the next request seeds again.
                    tracing::warn!(owner = %self.owner, "fleet: shared pool still unseeded after seeding, served locally");
                    return self.acquire_locally(request, asked);
                }
                Err(e) => {
                    self.enter_degraded(&e);
                    return self.acquire_locally(request, asked);
                }
            };
            self.answered().await;
            let Some(&index) = self.index_of.get(&acquired.id) else {
                // An account this instance was not started with (imported since): not its to
                // serve, and its ticket is spent. Take another.
                again = None;
                continue;
            };
            self.slots[index].store(acquired.slot, Ordering::Relaxed);
            self.local.observe(index, &acquired.token, acquired.expires_at);
            let newer_than_refreshed = refreshed_past.is_some_and(|(i, g)| i == index && acquired.generation > g);
            match self.refresh_due(index, acquired.expires_at) {
                RefreshDue::No => {}
                RefreshDue::Ahead => self.refresh_ahead(index, acquired.slot, acquired.generation),
                RefreshDue::Now if newer_than_refreshed => {}
                RefreshDue::Now => {
                    let started = Instant::now();
                    match self.refresh(index, acquired.slot, acquired.generation).await {
                        Refreshed::Done => {}
                        Refreshed::Held => {
                            tokio::time::sleep(self.env.clock.spend(self.options.lease_poll)).await;
                        }
                        Refreshed::Outage => {
                            refresh_wait += started.elapsed();
                            return self.acquire_locally(request, asked);
                        }
                    }
                    refresh_wait += started.elapsed();
                    refreshed_past = Some((index, acquired.generation));
                    again = Some(acquired.ticket);
                    continue;
                }
            }
            return Ok(Lease::new(
                index,
                acquired.id,
                acquired.token,
                AcquireTiming::since(asked, Duration::ZERO, refresh_wait),
            ));
        }
        Counters::bump(&self.counters.exhausted);
        Err(AcquireError::Exhausted)
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: crate::model::Outcome) {
        let change = self.env.outcome_change(request, &outcome);
        if self.local.apply(lease.index, &change) {
            Counters::bump(&self.counters.disables);
        }
        if change.affects_selection() {
            self.publish(lease.index, &change).await;
        }
        if self.env.should_persist(&change) {
            self.env.persist(&self.counters, &lease.id, change).await;
        }
    }

    /// Writes a change that affects selection to the shared pool, or queues it for replay while
    /// the pool cannot be reached (entering degraded mode when this write finds it so).
    async fn publish(&self, index: usize, change: &Change) {
        let queued = self.local.is_degraded() && self.local.queue(index, change.clone());
        if !queued {
            if let Err(e) = self.write_change(index, change).await {
                self.enter_degraded(&e);
                if !self.local.queue(index, change.clone()) {
                    // Degraded mode ended meanwhile: the pool answers again; write it now.
                    let _ = self.write_change(index, change).await;
                }
            }
        }
    }

    /// An operator's disable or enable: applied to the local copy and published fleet-wide.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        let was_disabled = self.local.account(index).disabled;
        self.local.apply(index, change);
        let changed = self.local.account(index).disabled != was_disabled;
        self.publish(index, change).await;
        changed
    }
}

impl CredentialManager for Fleet {
    fn name(&self) -> &'static str {
        "fleet"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        self.inner.acquire(request).await
    }

    async fn complete(
        &self,
        lease: Lease,
        request: &Request,
        outcome: crate::model::Outcome,
    ) -> Result<(), AcquireError> {
        self.inner.complete(lease, request, outcome).await;
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        self.inner.counters.snapshot()
    }

    /// The local copy: the accounts as this instance last saw them, with its own bookkeeping.
    async fn accounts(&self) -> Vec<Account> {
        self.inner.local.accounts()
    }

    /// Published to the shared pool whether or not this instance's copy changed: another
    /// instance may hold the account in the other state.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.inner.switch(index, change).await
    }
}
