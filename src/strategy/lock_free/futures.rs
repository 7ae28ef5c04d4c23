//! `lock_free`'s hand-written futures for [`LockFree::acquire`](super::LockFree) and
//! `complete`: the fast path runs in the first poll and the lease is built once, where the caller
//! receives it; only an acquisition that must wait, or a completion that must persist, continues
//! in a boxed future.

use super::replicas::replica;
use super::ticket_core::Resolved;
use super::LockFree;
use crate::future::BoxFuture;
use crate::model::Outcome;
use crate::strategy::lease::{AcquireError, AcquireTiming, Lease, Request};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of [`LockFree::acquire`]: the fast path runs in the first poll and hands the lease
/// straight to the caller; only an acquisition that must wait keeps its boxed continuation here.
/// (A hand-written future rather than an `async fn`: the lease is built once, where the caller
/// receives it, instead of being copied through the state machines of two more futures.)
pub(super) struct Acquire<'s, 'r> {
    pub(super) strategy: &'s LockFree,
    pub(super) request: &'r Request,
    pub(super) waiting: Option<BoxFuture<'s, Result<Lease, AcquireError>>>,
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
pub(super) struct Complete<'s, 'r> {
    pub(super) strategy: &'s LockFree,
    pub(super) request: &'r Request,
    /// The lease to give back, until the first poll.
    pub(super) lease: Option<Lease>,
    pub(super) outcome: Outcome,
    pub(super) persisting: Option<BoxFuture<'s, ()>>,
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
