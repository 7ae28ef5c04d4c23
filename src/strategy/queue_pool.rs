//! `queue_pool`: the seed's option 1, exclusive check-out and return.
//!
//! Each credential has `permits_per_credential` permits (k, default 1). A request checks a permit
//! out, uses the credential for its whole upstream call and returns the permit when it completes
//! (or when its lease is dropped: a cancelled request gives the credential back). A credential that
//! is disabled (failed refresh, auto-ban outcome) leaves the pool: its idle permits at once, each
//! checked-out permit when it comes back. At every moment, in permits,
//! `idle + checked_out + removed = N × k` ([`QueueCore::counts`]).
//!
//! **Locks:** a short synchronous lock around the queue, for each check-out, return and wake-up
//! (no await inside). **Held for:** nothing long; but the *credential* is held exclusively for the
//! whole request, upstream call included, **by design**. **Trades away:** concurrency beyond the
//! pool: at most N × k requests are in flight, the rest queue (FIFO), however fast the lock. This is
//! the seed's "10-100× throughput" claim's hidden cap, and what the scenarios show. In exchange a
//! credential never serves two requests at once (k = 1), and a refresh stalls only the request
//! that holds the expiring credential. The selection steps are charged after check-out, outside any
//! lock; a refresh is done by the holder (single-flight per credential under a per-credential
//! async lock when k > 1).
//!
//! ## Rotation
//!
//! Idle permits form a FIFO. A request takes the first idle permit whose credential is usable for
//! its model (skipping ones banned for that series). A returned permit goes back to the **front** of
//! the queue while its credential has served fewer than `calls_per_rotation` (K) calls in its turn,
//! and to the **back** (its turn count reset) once it has served K. With sequential requests this is
//! exactly the proxy's rotation every K calls; under concurrency, a credential that is checked out
//! cannot be handed out, so concurrent requests spread over the idle credentials whatever K is:
//! rotation by availability, with K only deciding which idle credential goes next.
//!
//! ## Waiting
//!
//! When no usable permit is idle, the request joins a FIFO of waiters inside [`QueueCore`]. A
//! returned permit is handed directly to the first waiter that can use it (no barging, no lost
//! wake-up, no thundering herd: only that waiter's `Waker` is woken). A waiter whose model no
//! remaining credential can serve (everything disabled or banned) is told `Exhausted` at once. A
//! waiter that is cancelled leaves the queue, and a permit handed to it but not yet taken goes to
//! the next waiter. The core stores `std::task::Waker`s, not tokio types, so `loom_tests/` can drive
//! it from threads (with [`QueueCore::try_checkout`]) without an executor.

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::clock::Clock;
use crate::model::{Account, Change, EpochMs, Outcome, Policy};
use crate::secret::Secret;
use crate::sync::{Arc, Mutex};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

/// No credential can serve the request's model now: every one is disabled or banned for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted;

/// Where the permits are, in permits (`idle + checked_out + removed == total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueCounts {
    pub idle: usize,
    pub checked_out: usize,
    pub removed: usize,
    /// Credentials × permits per credential.
    pub total: usize,
}

impl QueueCounts {
    /// The conservation law.
    pub fn conserved(&self) -> bool {
        self.idle + self.checked_out + self.removed == self.total
    }
}

/// A request waiting for a permit.
#[derive(Debug)]
pub struct WaiterId(u64);

/// What [`QueueCore::checkout_or_wait`] did.
#[derive(Debug)]
pub enum Checkout {
    /// A permit of credential `index` is now checked out to the caller.
    Got(usize),
    /// Queued; poll with [`QueueCore::poll_wait`], or leave with [`QueueCore::cancel_wait`].
    Wait(WaiterId),
    Exhausted,
}

/// The state of a credential's token as its holder sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenState {
    Ready(Pick),
    NeedsRefresh(Secret),
    /// Disabled while the caller held a permit (by another holder's refresh or outcome).
    Disabled,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    model: std::sync::Arc<str>,
    waker: Waker,
}

#[derive(Debug)]
struct QueueState {
    policy: Policy,
    accounts: Vec<Account>,
    /// Permits per credential.
    permits: usize,
    /// One entry per idle permit, naming its credential; FIFO with the turn rule above.
    idle: VecDeque<usize>,
    /// Permits of each credential checked out.
    out: Vec<usize>,
    /// Calls each credential has served in its current turn.
    turn_calls: Vec<u64>,
    /// Permits that left the pool with their disabled credential.
    removed: usize,
    waiters: VecDeque<Waiter>,
    /// Permits (or `Exhausted`) handed to waiters that have not yet taken them.
    handed: HashMap<u64, Result<usize, Exhausted>>,
    next_waiter: u64,
}

/// The synchronous core: permits, turns and waiters under one short lock.
#[derive(Debug)]
pub struct QueueCore {
    state: Mutex<QueueState>,
}

impl QueueCore {
    pub fn new(policy: Policy, accounts: Vec<Account>, permits_per_credential: usize) -> Self {
        let n = accounts.len();
        let permits = permits_per_credential.max(1);
        let mut idle = VecDeque::with_capacity(n * permits);
        let mut removed = 0;
        // Round by round, so concurrent requests spread over credentials before doubling up.
        for _ in 0..permits {
            for (i, a) in accounts.iter().enumerate() {
                if a.disabled {
                    removed += 1;
                } else {
                    idle.push_back(i);
                }
            }
        }
        let state = QueueState {
            policy,
            accounts,
            permits,
            idle,
            out: vec![0; n],
            turn_calls: vec![0; n],
            removed,
            waiters: VecDeque::new(),
            handed: HashMap::new(),
            next_waiter: 0,
        };
        QueueCore {
            state: Mutex::new(state),
        }
    }

    /// Checks out the first idle permit usable for `model`, without queueing: `Ok(None)` when
    /// every usable credential is checked out.
    pub fn try_checkout(&self, model: &str, now: EpochMs) -> Result<Option<usize>, Exhausted> {
        let mut st = self.state.lock();
        if let Some(i) = st.take_idle(model, now) {
            return Ok(Some(i));
        }
        if st.any_usable(model, now) {
            Ok(None)
        } else {
            Err(Exhausted)
        }
    }

    /// Checks out a permit, or joins the FIFO of waiters (woken through `waker`).
    pub fn checkout_or_wait(&self, model: &std::sync::Arc<str>, now: EpochMs, waker: &Waker) -> Checkout {
        let mut st = self.state.lock();
        if let Some(i) = st.take_idle(model, now) {
            return Checkout::Got(i);
        }
        if !st.any_usable(model, now) {
            return Checkout::Exhausted;
        }
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.waiters.push_back(Waiter {
            id,
            model: model.clone(),
            waker: waker.clone(),
        });
        Checkout::Wait(WaiterId(id))
    }

    /// A waiter's turn: `Ready` once a permit (or `Exhausted`) was handed to it; otherwise its
    /// waker is updated and it stays queued.
    pub fn poll_wait(&self, id: &WaiterId, waker: &Waker) -> Poll<Result<usize, Exhausted>> {
        let mut st = self.state.lock();
        if let Some(result) = st.handed.remove(&id.0) {
            return Poll::Ready(result);
        }
        if let Some(w) = st.waiters.iter_mut().find(|w| w.id == id.0) {
            if !w.waker.will_wake(waker) {
                w.waker = waker.clone();
            }
        }
        Poll::Pending
    }

    /// Leaves the queue. A permit already handed to this waiter is returned (to the next waiter).
    /// Idempotent: a waiter that already took its permit is not affected.
    pub fn cancel_wait(&self, id: &WaiterId, now: EpochMs) {
        let wake = {
            let mut st = self.state.lock();
            st.waiters.retain(|w| w.id != id.0);
            match st.handed.remove(&id.0) {
                Some(Ok(index)) => st.give_back(index, now),
                _ => Vec::new(),
            }
        };
        wake.into_iter().for_each(Waker::wake);
    }

    /// Returns a permit of credential `index`.
    pub fn checkin(&self, index: usize, now: EpochMs) {
        let wake = self.state.lock().give_back(index, now);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Applies a change to credential `index`. A disable takes its idle permits out of the pool at
    /// once (checked-out ones leave when returned); a disable or a ban may leave some waiters with
    /// nothing usable, and they are told `Exhausted`.
    ///
    /// Returns whether the change disabled a credential that was enabled (with several permits
    /// per credential, every holder of a dead one reports it; the disable is counted once).
    pub fn apply(&self, index: usize, change: &Change, now: EpochMs) -> bool {
        let (wake, newly_disabled) = {
            let mut st = self.state.lock();
            let was_disabled = st.accounts[index].disabled;
            st.accounts[index].apply(change);
            let newly_disabled = !was_disabled && st.accounts[index].disabled;
            let health = matches!(change, Change::Disabled | Change::Error { .. });
            if st.accounts[index].disabled {
                let before = st.idle.len();
                st.idle.retain(|&i| i != index);
                let gone = before - st.idle.len();
                st.removed += gone;
            }
            let wake = if health { st.dispatch(now, true) } else { Vec::new() };
            (wake, newly_disabled)
        };
        wake.into_iter().for_each(Waker::wake);
        newly_disabled
    }

    /// An operator's switch of credential `index`; returns whether its state changed. A disable
    /// is [`apply`](Self::apply)'s; an enable puts the credential's permits that left the pool
    /// back at the end of the idle queue (those still checked out come back when returned, as
    /// for any enabled credential) and hands them to waiters.
    pub fn switch(&self, index: usize, change: &Change, now: EpochMs) -> bool {
        if change.disables() {
            let was_disabled = self.state.lock().accounts[index].disabled;
            self.apply(index, change, now);
            return !was_disabled;
        }
        let wake = {
            let mut st = self.state.lock();
            let was_disabled = st.accounts[index].disabled;
            st.accounts[index].apply(change);
            if !was_disabled || st.accounts[index].disabled {
                return false;
            }
            // Disabled, none of its permits was idle: all but the checked-out ones had left.
            let back = st.permits - st.out[index];
            st.removed -= back;
            for _ in 0..back {
                st.idle.push_back(index);
            }
            st.dispatch(now, false)
        };
        wake.into_iter().for_each(Waker::wake);
        true
    }

    /// The token of credential `index`, as its holder must treat it at `now`.
    pub fn token_state(&self, index: usize, now: EpochMs) -> TokenState {
        self.token_state_after_refresh(index, now, false)
    }

    /// [`token_state`](Self::token_state) for the holder that has just refreshed credential
    /// `index` when `refreshed`: its new token is served whatever its age, so a lifetime shorter
    /// than the refresh took (or zero) is used once rather than refreshed again in a loop (see
    /// [`crate::model::refresh_window`]).
    pub fn token_state_after_refresh(&self, index: usize, now: EpochMs, refreshed: bool) -> TokenState {
        let st = self.state.lock();
        let a = &st.accounts[index];
        if a.disabled {
            TokenState::Disabled
        } else if !refreshed && st.policy.needs_refresh(a, now) {
            TokenState::NeedsRefresh(a.refresh_token.clone())
        } else {
            TokenState::Ready(Pick {
                index,
                id: a.id.clone(),
                token: a.access_token.clone(),
            })
        }
    }

    pub fn counts(&self) -> QueueCounts {
        let st = self.state.lock();
        QueueCounts {
            idle: st.idle.len(),
            checked_out: st.out.iter().sum(),
            removed: st.removed,
            total: st.accounts.len() * st.permits,
        }
    }

    /// Permits of credential `index` checked out right now.
    pub fn checked_out(&self, index: usize) -> usize {
        self.state.lock().out[index]
    }

    /// Requests queued for a permit.
    pub fn waiting(&self) -> usize {
        self.state.lock().waiters.len()
    }

    pub fn account_id(&self, index: usize) -> crate::model::AccountId {
        self.state.lock().accounts[index].id.clone()
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.state.lock().accounts.clone()
    }
}

impl QueueState {
    fn usable(&self, index: usize, model: &str, now: EpochMs) -> bool {
        self.policy.usable(&self.accounts[index], model, now)
    }

    fn any_usable(&self, model: &str, now: EpochMs) -> bool {
        (0..self.accounts.len()).any(|i| self.usable(i, model, now))
    }

    /// Takes the first idle permit usable for `model` and counts the call in its turn.
    fn take_idle(&mut self, model: &str, now: EpochMs) -> Option<usize> {
        let pos = self.idle.iter().position(|&i| self.usable(i, model, now))?;
        let index = self.idle.remove(pos).expect("position is in range");
        self.out[index] += 1;
        self.turn_calls[index] += 1;
        Some(index)
    }

    /// Returns a permit: out of the pool if its credential is disabled, else to the front of the
    /// queue while its turn lasts, to the back once it has served K calls. Then hands permits to
    /// waiters; returns the wakers to wake once the lock is released.
    fn give_back(&mut self, index: usize, now: EpochMs) -> Vec<Waker> {
        self.out[index] -= 1;
        if self.accounts[index].disabled {
            self.removed += 1;
            return self.dispatch(now, true);
        }
        if self.turn_calls[index] >= self.policy.calls_per_rotation {
            self.turn_calls[index] = 0;
            self.idle.push_back(index);
        } else {
            self.idle.push_front(index);
        }
        self.dispatch(now, false)
    }

    /// Hands idle permits to waiters in FIFO order (each takes the first permit it can use);
    /// with `check_exhausted`, also answers `Exhausted` to waiters no credential can serve.
    fn dispatch(&mut self, now: EpochMs, check_exhausted: bool) -> Vec<Waker> {
        let mut wake = Vec::new();
        let mut k = 0;
        while k < self.waiters.len() {
            if self.idle.is_empty() && !check_exhausted {
                break;
            }
            let model = self.waiters[k].model.clone();
            let answer = match self.take_idle(&model, now) {
                Some(index) => Some(Ok(index)),
                None if check_exhausted && !self.any_usable(&model, now) => Some(Err(Exhausted)),
                None => None,
            };
            match answer {
                Some(result) => {
                    let w = self.waiters.remove(k).expect("k is in range");
                    self.handed.insert(w.id, result);
                    wake.push(w.waker);
                }
                None => k += 1,
            }
        }
        wake
    }
}

/// A checked-out permit: returned to the core when dropped (completion, or cancellation).
struct Permit {
    core: Arc<QueueCore>,
    index: usize,
    clock: Clock,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.core.checkin(self.index, self.clock.now_ms());
    }
}

/// A queued waiter: leaves the queue when dropped (a cancelled acquisition).
struct Queued<'a> {
    core: &'a QueueCore,
    id: WaiterId,
    clock: Clock,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.core.cancel_wait(&self.id, self.clock.now_ms());
    }
}

pub struct QueuePool {
    env: Env,
    /// Shared with every outstanding lease, which returns its permit when dropped.
    core: Arc<QueueCore>,
    /// One per credential: with k > 1 permits, two holders of one credential must not both
    /// refresh it. Async, because the refresh it guards awaits the token endpoint.
    refreshing: Box<[tokio::sync::Mutex<()>]>,
    counters: Counters,
    attempts: RefreshAttempts,
}

impl QueuePool {
    pub fn new(env: Env) -> Self {
        let n = env.accounts.len();
        let core = Arc::new(QueueCore::new(
            env.policy.clone(),
            env.accounts.clone(),
            env.options.permits_per_credential,
        ));
        let refreshing = (0..n).map(|_| tokio::sync::Mutex::new(())).collect();
        QueuePool {
            env,
            core,
            refreshing,
            counters: Counters::default(),
            attempts: RefreshAttempts::new(n),
        }
    }

    pub fn core(&self) -> &QueueCore {
        &self.core
    }

    /// Where the permits are (the conservation law's terms).
    pub fn counts(&self) -> QueueCounts {
        self.core.counts()
    }

    /// Waits (FIFO) for a permit usable for `model`.
    async fn checkout(&self, model: &std::sync::Arc<str>) -> Result<Permit, Exhausted> {
        let clock = self.env.clock;
        let mut queued: Option<Queued<'_>> = None;
        let index = poll_fn(|cx| match &queued {
            None => match self.core.checkout_or_wait(model, clock.now_ms(), cx.waker()) {
                Checkout::Got(i) => Poll::Ready(Ok(i)),
                Checkout::Exhausted => Poll::Ready(Err(Exhausted)),
                Checkout::Wait(id) => {
                    queued = Some(Queued {
                        core: &self.core,
                        id,
                        clock,
                    });
                    Poll::Pending
                }
            },
            Some(q) => self.core.poll_wait(&q.id, cx.waker()),
        })
        .await?;
        // From here the permit is ours: the guard returns it whatever happens next.
        Ok(Permit {
            core: self.core.clone(),
            index,
            clock,
        })
    }
}

impl CredentialManager for QueuePool {
    fn name(&self) -> &'static str {
        "queue_pool"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        let mut lock_wait = Duration::ZERO;
        let mut refresh_wait = Duration::ZERO;
        let mut charged = false;
        loop {
            let before = Instant::now();
            let permit = match self.checkout(&request.model).await {
                Ok(p) => p,
                Err(Exhausted) => {
                    Counters::bump(&self.counters.exhausted);
                    return Err(AcquireError::Exhausted);
                }
            };
            lock_wait += before.elapsed();
            if !charged {
                // Selection steps, once per acquisition, after check-out: outside any lock.
                self.env.costs.charge_selection().await;
                charged = true;
            }
            let index = permit.index;
            let mut state = self.core.token_state(index, self.env.clock.now_ms());
            if let TokenState::NeedsRefresh(_) = state {
                let started = Instant::now();
                let _refreshing = self.refreshing[index].lock().await;
                // Another holder of this credential may have refreshed it meanwhile.
                state = self.core.token_state(index, self.env.clock.now_ms());
                if let TokenState::NeedsRefresh(refresh_token) = state {
                    let change = self
                        .env
                        .refresh(&self.counters, index, self.attempts.next(index), &refresh_token)
                        .await;
                    refresh_wait += started.elapsed();
                    self.core.apply(index, &change, self.env.clock.now_ms());
                    self.env
                        .persist(&self.counters, &self.core.account_id(index), change)
                        .await;
                    state = self
                        .core
                        .token_state_after_refresh(index, self.env.clock.now_ms(), true);
                } else {
                    refresh_wait += started.elapsed();
                }
            }
            match state {
                TokenState::Ready(p) => {
                    let mut lease = p.into_lease(AcquireTiming::since(asked, lock_wait, refresh_wait));
                    lease.held = Some(Box::new(permit));
                    return Ok(lease);
                }
                // The refresh failed (here or in another holder): the permit leaves the pool with
                // its credential when dropped; try another credential.
                TokenState::Disabled => drop(permit),
                // Not reached: a token found due is refreshed above, and a token this request
                // refreshed is served whatever its age. Were it reached: check out again.
                TokenState::NeedsRefresh(_) => drop(permit),
            }
        }
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        let now = self.env.clock.now_ms();
        let change = self.env.policy.outcome_change(&request.model, now, &outcome);
        // Applied while the permit is still out, so a disabled credential's permit leaves the
        // pool. Plain bookkeeping (a success, a 5xx) is not kept in memory: as in `global_mutex`,
        // it goes straight to the store.
        if change.affects_selection() && self.core.apply(lease.index, &change, now) {
            Counters::bump(&self.counters.disables);
        }
        let id = lease.id.clone();
        // Return the credential before the bookkeeping write: the request is done with it.
        drop(lease);
        if self.env.should_persist(&change) {
            self.env.persist(&self.counters, &id, change).await;
        }
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        self.counters.snapshot()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.core.accounts()
    }

    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.core.switch(index, change, self.env.clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "gemini-3-pro";

    fn core(n: usize, k: u64, permits: usize) -> QueueCore {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        QueueCore::new(
            policy,
            (0..n).map(|i| Account::synthetic(i, 0, 3600)).collect(),
            permits,
        )
    }

    fn take(c: &QueueCore) -> usize {
        c.try_checkout(MODEL, 0).unwrap().expect("an idle permit")
    }

    #[test]
    fn sequential_requests_rotate_every_k_calls() {
        let c = core(3, 2, 1);
        let picks: Vec<usize> = (0..7)
            .map(|_| {
                let i = take(&c);
                c.checkin(i, 0);
                i
            })
            .collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2, 0]);
    }

    #[test]
    fn a_checked_out_credential_is_not_handed_out_again() {
        let c = core(2, 100, 1);
        let a = take(&c);
        let b = take(&c);
        assert_ne!(a, b);
        assert_eq!(c.try_checkout(MODEL, 0), Ok(None));
        let n = c.counts();
        assert_eq!((n.idle, n.checked_out, n.removed, n.total), (0, 2, 0, 2));
    }

    #[test]
    fn permits_let_one_credential_serve_k_requests() {
        let c = core(2, 100, 2);
        let picks: Vec<usize> = (0..4).map(|_| take(&c)).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
        assert_eq!(c.checked_out(0), 2);
        assert_eq!(c.try_checkout(MODEL, 0), Ok(None));
    }

    #[test]
    fn a_disabled_credential_leaves_the_pool_and_conservation_holds() {
        let c = core(2, 100, 2);
        let a = take(&c); // credential 0, one of its two permits
        assert_eq!(a, 0);
        c.apply(0, &Change::Disabled, 0);
        let n = c.counts();
        assert_eq!((n.idle, n.checked_out, n.removed), (2, 1, 1));
        c.checkin(0, 0);
        let n = c.counts();
        assert_eq!((n.idle, n.checked_out, n.removed), (2, 0, 2));
        assert!(n.conserved());
        assert_eq!(take(&c), 1);
        assert_eq!(take(&c), 1);
        assert_eq!(c.try_checkout(MODEL, 0), Ok(None));
        c.apply(1, &Change::Disabled, 0);
        assert_eq!(c.try_checkout(MODEL, 0), Err(Exhausted));
    }

    #[test]
    fn a_returned_permit_goes_to_the_first_waiter_that_can_use_it() {
        let c = core(1, 100, 1);
        let held = take(&c);
        let model: std::sync::Arc<str> = MODEL.into();
        let first = match c.checkout_or_wait(&model, 0, Waker::noop()) {
            Checkout::Wait(id) => id,
            other => panic!("expected to wait, got {other:?}"),
        };
        let second = match c.checkout_or_wait(&model, 0, Waker::noop()) {
            Checkout::Wait(id) => id,
            other => panic!("expected to wait, got {other:?}"),
        };
        assert_eq!(c.poll_wait(&first, Waker::noop()), Poll::Pending);
        c.checkin(held, 0);
        assert_eq!(c.poll_wait(&second, Waker::noop()), Poll::Pending);
        assert_eq!(c.poll_wait(&first, Waker::noop()), Poll::Ready(Ok(0)));
        // The first waiter's permit is not taken twice; a cancelled second waiter frees its place.
        c.cancel_wait(&second, 0);
        assert_eq!(c.waiting(), 0);
        let n = c.counts();
        assert_eq!((n.idle, n.checked_out), (0, 1));
    }

    #[test]
    fn a_cancelled_waiter_passes_its_handed_permit_on() {
        let c = core(1, 100, 1);
        let held = take(&c);
        let model: std::sync::Arc<str> = MODEL.into();
        let Checkout::Wait(first) = c.checkout_or_wait(&model, 0, Waker::noop()) else {
            panic!()
        };
        let Checkout::Wait(second) = c.checkout_or_wait(&model, 0, Waker::noop()) else {
            panic!()
        };
        c.checkin(held, 0); // handed to `first`
        c.cancel_wait(&first, 0); // which goes away without taking it
        assert_eq!(c.poll_wait(&second, Waker::noop()), Poll::Ready(Ok(0)));
        assert!(c.counts().conserved());
    }

    #[test]
    fn waiters_learn_when_nothing_can_serve_them() {
        let c = core(1, 100, 1);
        let held = take(&c);
        let model: std::sync::Arc<str> = MODEL.into();
        let Checkout::Wait(w) = c.checkout_or_wait(&model, 0, Waker::noop()) else {
            panic!()
        };
        c.apply(held, &Change::Disabled, 0);
        assert_eq!(c.poll_wait(&w, Waker::noop()), Poll::Ready(Err(Exhausted)));
        c.checkin(held, 0);
        let n = c.counts();
        assert_eq!((n.idle, n.checked_out, n.removed), (0, 0, 1));
    }

    #[test]
    fn an_operator_enable_puts_the_permits_back_and_conserves_them() {
        let c = core(2, 100, 2);
        let held = c.try_checkout(MODEL, 0).unwrap().unwrap();
        assert!(c.switch(held, &Change::Disabled, 0));
        assert!(!c.switch(held, &Change::Disabled, 0), "already disabled: no change");
        assert_eq!(
            c.counts().removed,
            1,
            "the idle permit left; the checked-out one is still out"
        );
        assert!(c.counts().conserved());
        assert!(c.switch(held, &Change::Enabled, 0));
        let counts = c.counts();
        assert_eq!((counts.removed, counts.checked_out), (0, 1));
        assert!(counts.conserved());
        // The permit still out comes back as any enabled credential's does.
        c.checkin(held, 0);
        assert_eq!(c.counts().idle, 4);
        assert!(c.counts().conserved());
        assert!(!c.switch(held, &Change::Enabled, 0), "already enabled: no change");
    }
}
