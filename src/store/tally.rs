//! What a store did, counted as it goes: updates acknowledged, whole-file writes, fsyncs.
//!
//! Every mode keeps the same three counters and reports them as [`StoreStats`]; plain relaxed
//! atomics, because they are statistics, not synchronisation (loom has nothing to check here).

use super::StoreStats;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Tally {
    updates: AtomicU64,
    writes: AtomicU64,
    fsyncs: AtomicU64,
}

impl Tally {
    /// One update acknowledged to its caller.
    pub(crate) fn updated(&self) {
        self.updates.fetch_add(1, Ordering::Relaxed);
    }

    /// One whole-file write, made durable with `fsyncs` fsyncs.
    pub(crate) fn wrote(&self, fsyncs: u32) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.fsyncs.fetch_add(u64::from(fsyncs), Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            updates: self.updates.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
        }
    }
}
