//! `lock_free`'s per-thread replicas: the replica number of the current thread, how many there
//! are, and the cache-line padding that keeps one replica's (or one credential's) counters off
//! another's lines. What a lease holds is cloned from the thread's own copy, so no reference
//! count or counter is written by every core.

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
