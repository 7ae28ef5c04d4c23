//! Where `lock_free`'s rotation tickets come from: one shared counter of *blocks* of consecutive
//! tickets, and one slot per [`replica`](super::lock_free::replica) holding the block its
//! threads are using up.
//!
//! The rule of [`crate::model::ticket`] only needs every acquisition to hold a ticket no other
//! acquisition holds. One shared counter gives exactly that, but its cache line is written by
//! every acquisition on every core. On this project's 2-core machine that was the only line
//! both cores wrote per request, and the contended benchmark ran at one of two speeds (31-33 or
//! 53-62 ns per request at 64 tasks, from run to run) depending, as far as we could tell, on
//! what moving that line between the cores cost at the time. So a thread reserves a block of
//! tickets at a time and hands them out from a slot on its own lines; the shared counter is
//! written once per block (docs/benchmarks.md has the figures before and after).
//!
//! A block is one turn (`calls_per_rotation` tickets, aligned to the turn) when the turn is at
//! most [`MAX_BLOCK`] long, so **every turn is still served by one credential, at most K times**,
//! and turns still go round the pool in order; what changes is *when*: with two threads each
//! using up a block, two turns are in progress at once, on two credentials. On one thread (every
//! virtual-time run: the paused clock needs a current-thread runtime) tickets come out exactly
//! 0, 1, 2, ... as from one counter, so simulated results do not change.
//!
//! The price, and where rotation is no longer exact in aggregate:
//! - a turn a thread has reserved stays in progress until that thread's later acquisitions use
//!   it up; if the thread stops acquiring (the load ends, the worker idles), the turn is cut
//!   short (at most one turn per replica is in progress at any time);
//! - when two threads share a replica (more threads than [`REPLICAS`]) and both find its block
//!   used up at once, both reserve a block and only one is installed: the other thread uses the
//!   first ticket of its block and the rest of that turn is never served.
//!
//! Both are turns cut short, as when the usable set changes mid-turn; no ticket is ever handed
//! out twice (`loom_tests/rotation.rs` checks it over every interleaving, all model threads
//! sharing one slot, and threads on slots of their own).

use super::lock_free::{Padded, REPLICAS};
use crate::sync::{AtomicU64, Ordering};

/// The longest block: a longer turn is handed out in blocks of this many tickets (a turn of a
/// million calls then has several blocks, possibly in progress at once on one credential).
pub const MAX_BLOCK: u64 = 1 << 16;

/// A slot is `next << TAKEN_BITS | taken`: the next ticket of its block and how many takers
/// have counted themselves on the block; one `fetch_add` of [`TAKE`] advances both, so a taker
/// reads its ticket off the slot with a shift. `taken` goes past the block's length only by
/// takers racing to replace a used-up block (a million of them fit); the ticket has 44 bits and
/// counts modulo 2^44 (a wrap is one turn cut short, after 17.6 million million acquisitions).
const TAKEN_BITS: u32 = 20;
const TAKEN_MASK: u64 = (1 << TAKEN_BITS) - 1;
const TAKE: u64 = 1 << TAKEN_BITS | 1;

/// The first ticket of the block a slot value counts on (what the takers have not changed).
fn block_start(slot: u64) -> u64 {
    ((slot >> TAKEN_BITS).wrapping_sub(slot & TAKEN_MASK)) & (u64::MAX >> TAKEN_BITS)
}

#[derive(Debug)]
pub struct TicketBlocks {
    /// Tickets per block: `calls_per_rotation` up to [`MAX_BLOCK`], at least 1.
    block_len: u64,
    /// The next block to reserve, counted in blocks.
    next_block: Padded<AtomicU64>,
    /// One slot per replica (a fixed array, so the replica number needs no bounds check). Starts
    /// used up (`taken == block_len`), so the first taker reserves a block.
    slots: [Padded<AtomicU64>; REPLICAS],
}

impl TicketBlocks {
    pub fn new(calls_per_rotation: u64) -> TicketBlocks {
        let block_len = calls_per_rotation.clamp(1, MAX_BLOCK);
        TicketBlocks {
            block_len,
            next_block: Padded(AtomicU64::new(0)),
            slots: std::array::from_fn(|_| Padded(AtomicU64::new(block_len))),
        }
    }

    /// A ticket no other call of `take` returns, from `replica`'s block. One `fetch_add` on the
    /// replica's own slot, except once per block.
    #[inline]
    pub fn take(&self, replica: usize) -> u64 {
        let slot = &self.slots[replica % REPLICAS];
        let seen = slot.fetch_add(TAKE, Ordering::Relaxed);
        if seen & TAKEN_MASK < self.block_len {
            return seen >> TAKEN_BITS;
        }
        self.take_from_new_block(slot, seen)
    }

    /// `slot`'s block was used up when this taker saw `seen` there: reserve the next block, take
    /// its first ticket and install the rest, unless another taker on the slot installed a block
    /// first (then the rest of this one is never handed out: a turn cut short).
    #[cold]
    #[inline(never)]
    fn take_from_new_block(&self, slot: &AtomicU64, seen: u64) -> u64 {
        let used_up = block_start(seen);
        let first = self
            .next_block
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(self.block_len);
        let installed = first.wrapping_add(1) << TAKEN_BITS | 1;
        let mut current = slot.load(Ordering::Relaxed);
        // Other takers may have counted themselves on the used-up block meanwhile: replace it
        // whatever its count, but never a block another taker installed.
        while block_start(current) == used_up {
            match slot.compare_exchange_weak(current, installed, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        first & (u64::MAX >> TAKEN_BITS)
    }

    /// Tickets reserved so far: every ticket handed out is below this.
    pub fn reserved(&self) -> u64 {
        self.next_block.load(Ordering::Relaxed) * self.block_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn one_replica_hands_out_every_ticket_in_order() {
        for k in [1, 2, 3, 100] {
            let blocks = TicketBlocks::new(k);
            let tickets: Vec<u64> = (0..1000).map(|_| blocks.take(3)).collect();
            assert_eq!(tickets, (0..1000).collect::<Vec<u64>>(), "K = {k}");
            assert!(blocks.reserved() >= 1000 && blocks.reserved() < 1000 + k);
        }
    }

    #[test]
    fn replicas_use_up_whole_turns_of_their_own() {
        let blocks = TicketBlocks::new(4);
        let a: Vec<u64> = (0..6).map(|_| blocks.take(0)).collect();
        let b: Vec<u64> = (0..3).map(|_| blocks.take(1)).collect();
        let c: Vec<u64> = (0..2).map(|_| blocks.take(0)).collect();
        // Replica 0 reserved turns 0 and 1, then replica 1 turn 2; replica 0 finishes turn 1.
        assert_eq!(a, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(b, vec![8, 9, 10]);
        assert_eq!(c, vec![6, 7]);
        assert_eq!(blocks.reserved(), 12);
    }

    #[test]
    fn long_turns_are_handed_out_in_blocks_of_max_block() {
        let blocks = TicketBlocks::new(u64::MAX);
        assert_eq!(blocks.take(0), 0);
        assert_eq!(blocks.take(1), MAX_BLOCK);
        assert_eq!(blocks.take(0), 1);
    }

    #[test]
    fn tickets_wrap_at_2_pow_44_without_repeating_within_a_block() {
        // The block that straddles 2^44: its tickets count on from 0 past the wrap, and the slot
        // still recognises the block as its own when it is used up.
        let blocks = TicketBlocks::new(100);
        let straddling = (1u64 << 44) / 100;
        blocks.next_block.0.store(straddling, Ordering::Relaxed);
        let tickets: Vec<u64> = (0..101).map(|_| blocks.take(0)).collect();
        let first = straddling * 100;
        let wrap = ((1u64 << 44) - first) as usize;
        assert_eq!(tickets[0], first);
        assert_eq!(tickets[wrap - 1], (1 << 44) - 1);
        assert_eq!(tickets[wrap..100], (0..(100 - wrap) as u64).collect::<Vec<_>>()[..]);
        // The 101st is the first of the next block, reserved as usual.
        assert_eq!(tickets[100], ((straddling + 1) * 100) & ((1 << 44) - 1));
    }

    #[test]
    fn threads_sharing_one_slot_never_get_the_same_ticket() {
        // Eight threads on one replica: the contended slot, blocks replaced under a race.
        let blocks = Arc::new(TicketBlocks::new(3));
        let per_thread = 20_000;
        let tickets: Vec<u64> = (0..8)
            .map(|_| {
                let blocks = blocks.clone();
                std::thread::spawn(move || (0..per_thread).map(|_| blocks.take(0)).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let distinct: HashSet<u64> = tickets.iter().copied().collect();
        assert_eq!(distinct.len(), tickets.len(), "a ticket was handed out twice");
        assert!(tickets.iter().all(|&t| t < blocks.reserved()));
        // Every block reserved handed out at least its first ticket, lost race or not.
        let reserved_blocks = blocks.reserved() / 3;
        assert!(
            reserved_blocks <= tickets.len() as u64,
            "{reserved_blocks} blocks for {} tickets",
            tickets.len()
        );
    }
}
