//! Latency per interval of a run: one HdrHistogram per second of completions, kept compressed,
//! so a report can write HdrHistogram interval logs (`.hlog`, what Java's `HistogramLogProcessor`
//! and HistogramLogAnalyzer read) and a latency that moves during a run can be seen moving.
//!
//! Only the interval being filled is a live histogram; a finished one is kept as its compressed
//! V2 payload (a few hundred bytes), so memory stays bounded however long the run. Past
//! [`MAX_INTERVALS`] intervals, neighbours are merged and the width doubles, as the throughput
//! buckets do. A request is counted in the interval in which it *finished*; one that finishes
//! before the interval being filled began (completions reported out of order, which the
//! simulator does not do) is counted in the current interval rather than reopening a closed one.

use super::histogram::compressed_v2;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The width of an interval until the run grows past [`MAX_INTERVALS`] of them.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// At most this many intervals are kept; beyond, pairs merge and the width doubles.
pub const MAX_INTERVALS: usize = 300;
/// The same bounds as [`super::LatencyHistogram`], so intervals add up to the run's histogram.
const MAX_NS: u64 = 86_400 * 1_000_000_000;

/// One interval in `summary.json`: its latencies as compressed V2, base64 (`HISTF...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalHistogram {
    /// When the interval began, seconds after the run began.
    pub start_s: f64,
    pub length_s: f64,
    /// The requests that finished in it.
    pub count: u64,
    pub histogram: String,
}

#[derive(Clone, Debug)]
struct Closed {
    index: u64,
    count: u64,
    payload: Vec<u8>,
}

/// Collects [`IntervalHistogram`]s while a run is in progress.
#[derive(Clone, Debug)]
pub struct IntervalRecorder {
    width: Duration,
    /// The index (start / width) of the interval `current` holds.
    current_index: u64,
    current: Histogram<u64>,
    closed: Vec<Closed>,
}

impl Default for IntervalRecorder {
    fn default() -> Self {
        IntervalRecorder {
            width: INTERVAL,
            current_index: 0,
            current: new_histogram(),
            closed: Vec::new(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("static bounds are valid")
}

fn decode(payload: &[u8]) -> Histogram<u64> {
    Deserializer::new()
        .deserialize(&mut &payload[..])
        .expect("a payload this module encoded decodes")
}

impl IntervalRecorder {
    /// A request that took `latency` finished at `done` (time since the run began).
    pub fn record(&mut self, done: Duration, latency: Duration) {
        let index = interval_index(done, self.width);
        if index > self.current_index {
            self.close_current();
            self.current_index = index;
            while self.closed.len() >= MAX_INTERVALS {
                self.widen();
            }
        }
        let ns = (latency.as_nanos().min(u128::from(MAX_NS)) as u64).max(1);
        self.current.saturating_record(ns);
    }

    fn close_current(&mut self) {
        if !self.current.is_empty() {
            self.closed.push(Closed {
                index: self.current_index,
                count: self.current.len(),
                payload: compressed_v2(&self.current),
            });
            self.current.reset();
        }
    }

    /// Doubles the width: neighbouring closed intervals merge, and the current one joins the last
    /// closed one if they now share an interval.
    fn widen(&mut self) {
        self.width *= 2;
        let mut merged: Vec<Closed> = Vec::with_capacity(self.closed.len() / 2 + 1);
        for c in std::mem::take(&mut self.closed) {
            let index = c.index / 2;
            match merged.last_mut() {
                Some(last) if last.index == index => {
                    let mut h = decode(&last.payload);
                    h.add(decode(&c.payload)).expect("same bounds");
                    last.count = h.len();
                    last.payload = compressed_v2(&h);
                }
                _ => merged.push(Closed { index, ..c }),
            }
        }
        self.current_index /= 2;
        if merged.last().is_some_and(|l| l.index == self.current_index) {
            let last = merged.pop().expect("checked");
            self.current.add(decode(&last.payload)).expect("same bounds");
        }
        self.closed = merged;
    }

    /// Every interval so far, the one being filled included.
    pub fn intervals(&self) -> Vec<IntervalHistogram> {
        use base64::Engine;
        let width = self.width.as_secs_f64();
        let current = (!self.current.is_empty()).then(|| Closed {
            index: self.current_index,
            count: self.current.len(),
            payload: compressed_v2(&self.current),
        });
        self.closed
            .iter()
            .chain(current.as_ref())
            .map(|c| IntervalHistogram {
                start_s: c.index as f64 * width,
                length_s: width,
                count: c.count,
                histogram: base64::engine::general_purpose::STANDARD.encode(&c.payload),
            })
            .collect()
    }
}

fn interval_index(at: Duration, width: Duration) -> u64 {
    u64::try_from(at.as_nanos() / width.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::LatencyHistogram;

    #[test]
    fn one_histogram_per_second_adding_up_to_the_run() {
        let mut rec = IntervalRecorder::default();
        let mut all = LatencyHistogram::default();
        for k in 0..5000u64 {
            let done = Duration::from_millis(k);
            let latency = Duration::from_micros(100 + k * 7);
            rec.record(done, latency);
            all.record(latency);
        }
        let intervals = rec.intervals();
        assert_eq!(intervals.len(), 5);
        assert!(intervals.iter().all(|i| i.count == 1000 && i.length_s == 1.0));
        assert_eq!(
            intervals.iter().map(|i| i.start_s).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0, 3.0, 4.0]
        );
        let mut sum = LatencyHistogram::default();
        for i in &intervals {
            assert!(i.histogram.starts_with("HISTF"));
            sum.merge(&LatencyHistogram::from_base64_v2(&i.histogram).unwrap());
        }
        assert_eq!(sum.inner(), all.inner());
    }

    #[test]
    fn a_long_run_stays_bounded_and_keeps_every_request() {
        let mut rec = IntervalRecorder::default();
        let n = 3 * MAX_INTERVALS as u64 + 17;
        for s in 0..n {
            rec.record(
                Duration::from_secs(s) + Duration::from_millis(500),
                Duration::from_millis(s + 1),
            );
        }
        let intervals = rec.intervals();
        assert!(intervals.len() <= MAX_INTERVALS, "{}", intervals.len());
        assert_eq!(intervals.iter().map(|i| i.count).sum::<u64>(), n);
        assert_eq!(intervals[0].length_s, 4.0);
        // Intervals are ordered, contiguous where there were completions, and never overlap.
        for w in intervals.windows(2) {
            assert!(w[1].start_s >= w[0].start_s + w[0].length_s);
        }
    }

    #[test]
    fn empty_intervals_are_left_out() {
        let mut rec = IntervalRecorder::default();
        rec.record(Duration::from_millis(100), Duration::from_millis(3));
        rec.record(Duration::from_millis(3500), Duration::from_millis(4));
        let starts: Vec<f64> = rec.intervals().iter().map(|i| i.start_s).collect();
        assert_eq!(starts, [0.0, 3.0]);
        assert!(IntervalRecorder::default().intervals().is_empty());
    }
}
