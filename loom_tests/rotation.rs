//! Rotation: every K calls in aggregate, whoever makes them and however they interleave.
//!
//! - `lock_free` ([`TicketCore`], [`TicketBlocks`]): no ticket is handed out twice, and each
//!   ticket's pick is what sequential [`PoolState::select`] picks for that call number (so no
//!   credential serves a turn more than K times, and turns go in pool order); every block of
//!   tickets reserved hands out at least its first ticket (a lost race cuts one turn short, it
//!   does not skip turns wholesale); with K = 1 and as many threads as credentials each thread
//!   gets a distinct credential. Under loom every model thread is the same OS thread, so they
//!   all share one [`replica`](credpool::strategy::lock_free::replica)'s slot: the contended
//!   case, where takers race to replace a used-up block. Threads on their own replicas are
//!   modelled through [`TicketBlocks`] directly.
//! - `rwlock` ([`RwLockCore`]): requests take the read path (`read_select`, which claims a call
//!   of the current turn from an atomic counter under the read lock) and fall back to the write
//!   path (`write_select`), as the strategy does. Its claims are not numbered, so the model
//!   checks the multiset of picks against sequential `select` (a credential serving a call too
//!   many changes it), the final turn state (current account and calls counted, pending claims
//!   included) against sequential `select`'s, and, with K = 1 and as many threads as
//!   credentials, distinct credentials.
//! - `sharded` ([`ShardedCore`]): the same within one shard.

use crate::support::{accounts, policy, MODEL, NOW};
use credpool::model::{PoolState, Selection};
use credpool::strategy::lock_free::{Resolved, TicketCore};
use credpool::strategy::rwlock::{RwLockCore, WritePick};
use credpool::strategy::sharded::{ShardPick, ShardedCore};
use credpool::strategy::ticket_blocks::TicketBlocks;
use loom::sync::Arc;
use loom::thread;

/// The first `calls` picks of sequential `select` on a healthy pool of `n` with turn length `k`,
/// and the pool's turn state afterwards (current account, calls in its turn).
fn sequential(n: usize, k: u64, calls: usize) -> (Vec<usize>, (usize, u64)) {
    let mut pool = PoolState::new(policy(k), accounts(n));
    let picks = (0..calls)
        .map(|_| match pool.select(MODEL, NOW) {
            Selection::Ready(i) => i,
            other => panic!("a healthy pool answered {other:?}"),
        })
        .collect();
    (picks, (pool.current(), pool.calls_since_rotation()))
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

/// One `lock_free` acquisition: (ticket, credential).
fn ticket_acquire(core: &TicketCore) -> (u64, usize) {
    let ticket = core.take_ticket();
    match core.resolve(ticket, MODEL, NOW) {
        Resolved::Ready { pick, .. } => (ticket, pick.index),
        other => panic!("a healthy pool resolved ticket {ticket} to {other:?}"),
    }
}

/// Runs `threads` threads making `per_thread` acquisitions each; returns every thread's picks.
fn run<C: Send + Sync + 'static, T: Send + 'static>(
    core: C,
    threads: usize,
    per_thread: usize,
    acquire: fn(&C) -> T,
) -> (Arc<C>, Vec<T>) {
    let core = Arc::new(core);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let core = core.clone();
            thread::spawn(move || (0..per_thread).map(|_| acquire(&core)).collect::<Vec<T>>())
        })
        .collect();
    let picks = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    (core, picks)
}

/// The `lock_free` contract over `picks` (ticket, credential) on a healthy pool of `n`, turn
/// length `k`, with `reserved` tickets reserved: tickets distinct, each pick the sequential
/// rotation's for that call number, every reserved block handing out at least one ticket.
fn check_tickets(n: usize, k: u64, mut picks: Vec<(u64, usize)>, reserved: u64) {
    picks.sort_unstable();
    let tickets: Vec<u64> = picks.iter().map(|p| p.0).collect();
    assert!(
        tickets.windows(2).all(|w| w[0] < w[1]),
        "a ticket was handed out twice: {tickets:?}"
    );
    let last = *tickets.last().expect("no acquisitions");
    assert!(last < reserved, "ticket {last} handed out, only {reserved} reserved");
    assert!(
        reserved / k <= picks.len() as u64,
        "{reserved} tickets reserved for {picks:?}"
    );
    let (rotation, _) = sequential(n, k, last as usize + 1);
    for (ticket, credential) in picks {
        assert_eq!(credential, rotation[ticket as usize], "ticket {ticket}");
    }
}

#[test]
fn lock_free_tickets_follow_sequential_rotation_on_a_shared_slot() {
    // 2 threads × 2 acquisitions over 2 credentials, K = 2 (blocks of 2): takers race to replace
    // a used-up block; turns [0, 0], [1, 1], [0, 0] ...
    loom::model(|| {
        let (core, picks) = run(TicketCore::new(policy(2), accounts(2)), 2, 2, ticket_acquire);
        check_tickets(2, 2, picks, core.tickets_reserved());
    });
}

#[test]
fn ticket_blocks_on_their_own_replicas_hand_out_whole_turns() {
    // Two replicas, one thread each, K = 2: each thread's tickets are whole turns of its own, so
    // with 2 + 2 acquisitions every ticket of turns 0 and 1 is handed out, none twice.
    loom::model(|| {
        let blocks = Arc::new(TicketBlocks::new(2));
        let handles: Vec<_> = (0..2)
            .map(|replica| {
                let blocks = blocks.clone();
                thread::spawn(move || [blocks.take(replica), blocks.take(replica)])
            })
            .collect();
        let mut tickets: Vec<[u64; 2]> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        tickets.sort_unstable();
        assert_eq!(tickets, vec![[0, 1], [2, 3]], "each replica uses up one turn");
        assert_eq!(blocks.reserved(), 4);
    });
}

#[test]
fn lock_free_k1_gives_each_thread_a_distinct_credential() {
    loom::model(|| {
        let (core, picks) = run(TicketCore::new(policy(1), accounts(3)), 3, 1, ticket_acquire);
        let creds = sorted(picks.iter().map(|p| p.1).collect());
        assert_eq!(creds, vec![0, 1, 2], "K = 1, 3 threads, 3 credentials: {picks:?}");
        check_tickets(3, 1, picks, core.tickets_reserved());
    });
}

/// One `rwlock` acquisition, as `RwLockStrategy::acquire` makes it: the read path, else the
/// write path (which rotates and counts).
fn rw_acquire(core: &RwLockCore) -> usize {
    if let Some(pick) = core.read_select(MODEL, NOW) {
        return pick.index;
    }
    match core.write_select(MODEL, NOW) {
        WritePick::Ready(pick) => pick.index,
        other => panic!("a healthy pool answered {other:?}"),
    }
}

fn check_rwlock(n: usize, k: u64, threads: usize, per_thread: usize) {
    let (core, picks) = run(RwLockCore::new(policy(k), accounts(n)), threads, per_thread, rw_acquire);
    let (want, (current, calls)) = sequential(n, k, threads * per_thread);
    assert_eq!(sorted(picks.clone()), sorted(want), "picks {picks:?}");
    assert_eq!(
        (core.current(), core.calls_in_turn()),
        (current, calls),
        "the turn state (current, calls counted) differs from sequential select's"
    );
}

#[test]
fn rwlock_turn_counter_matches_sequential_rotation() {
    // 3 acquisitions, K = 2, 2 credentials: {0, 0, 1}; a lost or double-counted claim changes it.
    loom::model(|| check_rwlock(2, 2, 3, 1));
}

#[test]
fn rwlock_turn_counter_over_two_acquisitions_per_thread() {
    // 2 threads × 2, K = 1, 2 credentials: {0, 1, 0, 1}, and the read path's pending claims are
    // folded into the turn by whichever write path comes next.
    loom::model(|| check_rwlock(2, 1, 2, 2));
}

#[test]
fn rwlock_k1_gives_each_thread_a_distinct_credential() {
    loom::model(|| {
        let (_, picks) = run(RwLockCore::new(policy(1), accounts(3)), 3, 1, rw_acquire);
        assert_eq!(sorted(picks.clone()), vec![0, 1, 2], "K = 1, 3 threads: {picks:?}");
    });
}

#[test]
fn sharded_rotation_within_a_shard() {
    // One shard of 2 credentials, K = 1, 3 requests of users of that shard: 0, 1, 0 in some
    // order.
    loom::model(|| {
        let core = ShardedCore::new(policy(1), accounts(2), 1);
        let (_, picks) = run(core, 3, 1, |c: &ShardedCore| match c.select(7, MODEL, NOW) {
            ShardPick::Ready(p) => p.index,
            other => panic!("a healthy shard answered {other:?}"),
        });
        assert_eq!(sorted(picks), sorted(sequential(2, 1, 3).0));
    });
}
