//! The shipped usage counters (`antigravity_usage_stats`): successful calls per account and model
//! series, kept in memory and flushed to disk once a minute.
//!
//! `record_successful_call` only counts in memory; the counts reach the disk when the flush
//! timer has run out (60 s). Between two flushes the counts exist in the process alone, so a
//! crash, a kill or a power cut loses up to a minute of them. The daily-quota check reads the
//! in-memory counts. credpool's strategies have no such counters: a call's count (`total_calls`)
//! is written by the store with the call, and the audit checks that it is on disk.
//!
//! The replica flushes at the first call recorded 60 s or more (virtual or wall time) after the
//! last flush, charging a dump and a file write on the event loop; where the shipped flush wrote
//! the counts is not modelled, only what it had not written yet: [`Usage::unflushed`], the
//! increments a crash at that instant would lose (the run's end is such an instant: nothing
//! flushes on the way out).

use crate::model::EpochMs;
use std::collections::HashMap;

/// How long counts stay in memory only (the shipped flush interval).
pub const FLUSH_INTERVAL_MS: i64 = 60_000;

#[derive(Debug)]
pub struct Usage {
    /// Successful calls per (account index, series), in memory.
    counts: HashMap<(usize, String), u64>,
    /// Increments recorded in memory, all time.
    recorded: u64,
    /// Of those, how many the last flush wrote.
    flushed: u64,
    /// When the counts were last flushed (the process' start, before the first flush).
    last_flush: EpochMs,
}

impl Usage {
    /// Counters of a process started at `start` (epoch ms).
    pub fn new(start: EpochMs) -> Self {
        Usage {
            counts: HashMap::new(),
            recorded: 0,
            flushed: 0,
            last_flush: start,
        }
    }

    /// Successful calls of account `index` on `series` so far (the daily-quota check).
    pub fn used(&self, index: usize, series: &str) -> u64 {
        self.counts.get(&(index, series.to_string())).copied().unwrap_or(0)
    }

    /// `record_successful_call` at `now`: one more call in memory. Returns whether the flush is
    /// due (the caller charges it); if so, everything recorded so far counts as flushed.
    pub fn record(&mut self, index: usize, series: &str, now: EpochMs) -> bool {
        *self.counts.entry((index, series.to_string())).or_default() += 1;
        self.recorded += 1;
        if now - self.last_flush < FLUSH_INTERVAL_MS {
            return false;
        }
        self.flushed = self.recorded;
        self.last_flush = now;
        true
    }

    /// Increments held in memory only: what a crash now would lose.
    pub fn unflushed(&self) -> u64 {
        self.recorded - self.flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stay_in_memory_until_a_minute_has_passed() {
        let mut u = Usage::new(0);
        assert!(!u.record(0, "claude_series", 1_000));
        assert!(!u.record(1, "claude_series", 59_999));
        assert_eq!(u.unflushed(), 2);
        assert!(u.record(0, "claude_series", 60_000), "the flush is due");
        assert_eq!(u.unflushed(), 0);
        assert!(!u.record(0, "gemini_3_series", 119_999));
        assert_eq!(u.unflushed(), 1, "lost by a crash now");
        assert_eq!(u.used(0, "claude_series"), 2);
        assert_eq!(u.used(1, "claude_series"), 1);
        assert_eq!(u.used(2, "claude_series"), 0);
    }
}
