//! `queue_pool`: exclusive check-out and return, through the production strategy itself.
//!
//! These models drive [`QueuePool`]'s own `acquire` and `complete` (its `CredentialManager`
//! implementation) with `loom::future::block_on`. On the paths modelled here (tokens valid,
//! outcomes not persisted, zero costs) the strategy waits only on its [`QueueCore`], which is
//! built on `credpool::sync`: the FIFO of waiters, the hand-over of a returned permit and the
//! `Waker`s it stores are all visible to loom, and a lost wake-up would leave a thread parked
//! forever, which loom reports as a deadlock.
//!
//! What they prove:
//! - no credential is held by more requests at once than it has permits (1, then 2);
//! - at quiescence `idle + checked_out + removed = N × permits`, with a disable in the middle;
//! - a lease dropped without `complete` (a cancelled request) gives its permit back, and an
//!   acquisition cancelled while queued passes a permit already handed to it on to the next
//!   waiter, who gets it (no deadlock).

use crate::support::{accounts, env, policy, MODEL, NOW};
use credpool::model::{Change, Outcome};
use credpool::strategy::queue_pool::{QueueCounts, QueuePool};
use credpool::strategy::{CredentialManager, Request, StrategyOptions};
use credpool::sync::{AtomicUsize, Ordering};
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

fn pool(n: usize, permits: usize) -> QueuePool {
    let options = StrategyOptions {
        record_outcomes: false,
        permits_per_credential: permits,
        ..StrategyOptions::default()
    };
    QueuePool::new(env(accounts(n), policy(1), options))
}

fn request(user: u32) -> Request {
    Request::new(u64::from(user), user, MODEL)
}

/// `threads` requests each acquire, hold and complete; no credential ever has more holders than
/// `permits`. Returns the pool at quiescence.
fn exclusive(n: usize, permits: usize, threads: u32) -> Arc<QueuePool> {
    let pool = Arc::new(pool(n, permits));
    let holders = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let handles: Vec<_> = (0..threads)
        .map(|user| {
            let (pool, holders) = (pool.clone(), holders.clone());
            thread::spawn(move || {
                let req = request(user);
                let lease = block_on(pool.acquire(&req)).expect("a usable credential");
                let i = lease.index;
                let before = holders[i].fetch_add(1, Ordering::SeqCst);
                assert!(
                    before < permits,
                    "credential {i} checked out {} times at once",
                    before + 1
                );
                assert!(pool.core().checked_out(i) <= permits);
                holders[i].fetch_sub(1, Ordering::SeqCst);
                block_on(pool.complete(lease, &req, Outcome::Success)).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    pool
}

fn assert_quiescent(counts: QueueCounts, idle: usize, removed: usize) {
    assert!(counts.conserved(), "{counts:?}");
    assert_eq!(
        (counts.idle, counts.checked_out, counts.removed),
        (idle, 0, removed),
        "{counts:?}"
    );
}

#[test]
fn no_credential_is_checked_out_twice_at_once() {
    // 3 requests, 2 credentials of 1 permit: one request always waits for a return.
    loom::model(|| {
        let pool = exclusive(2, 1, 3);
        assert_quiescent(pool.counts(), 2, 0);
        assert_eq!(pool.core().waiting(), 0);
    });
}

#[test]
fn no_credential_serves_more_than_its_permits() {
    // 3 requests, 1 credential of 2 permits.
    loom::model(|| {
        let pool = exclusive(1, 2, 3);
        assert_quiescent(pool.counts(), 2, 0);
    });
}

#[test]
fn permits_are_conserved_across_a_disable() {
    // Two requests acquire and complete while credential 0 is disabled: its permit leaves the
    // pool at once if idle, or when returned if checked out.
    loom::model(|| {
        let pool = Arc::new(pool(2, 1));
        let requests: Vec<_> = (0..2)
            .map(|user| {
                let pool = pool.clone();
                thread::spawn(move || {
                    let req = request(user);
                    let lease = block_on(pool.acquire(&req)).expect("credential 1 stays usable");
                    assert!(pool.counts().conserved());
                    block_on(pool.complete(lease, &req, Outcome::Success)).unwrap();
                })
            })
            .collect();
        pool.core().apply(0, &Change::Disabled, NOW);
        assert!(pool.counts().conserved());
        for h in requests {
            h.join().unwrap();
        }
        assert_quiescent(pool.counts(), 1, 1);
    });
}

#[test]
fn dropped_leases_and_cancelled_waits_give_the_permit_back() {
    // One credential, one permit. A holds it and drops its lease without completing (a cancelled
    // request). B starts an acquisition, polls it once and drops it (cancelled while queued,
    // possibly after the permit was handed to it). C waits for the permit and must get it.
    loom::model(|| {
        let pool = Arc::new(pool(1, 1));
        let a = {
            let pool = pool.clone();
            thread::spawn(move || {
                let lease = block_on(pool.acquire(&request(0))).unwrap();
                drop(lease);
            })
        };
        let b = {
            let pool = pool.clone();
            thread::spawn(move || {
                let req = request(1);
                let mut acquisition = pin!(pool.acquire(&req));
                let polled = acquisition.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                if let Poll::Ready(lease) = polled {
                    drop(lease.unwrap());
                }
                // Dropping `acquisition` here cancels it if it is still queued.
            })
        };
        let c = {
            let pool = pool.clone();
            thread::spawn(move || {
                let lease = block_on(pool.acquire(&request(2))).unwrap();
                assert_eq!(lease.index, 0);
            })
        };
        for h in [a, b, c] {
            h.join().unwrap();
        }
        assert_quiescent(pool.counts(), 1, 0);
        assert_eq!(pool.core().waiting(), 0, "a cancelled waiter stayed queued");
    });
}
