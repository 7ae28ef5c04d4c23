//! Collects one strategy's measurements while a run is in progress.
//!
//! Besides latency, it keeps the run's self-audit: how late each request started against its
//! intended start (`lateness`: the load generator's lag in real mode, the virtual clock's
//! divergence from the schedule in virtual mode, where it should be 0), and every sample it had
//! to leave out (`service_dropped`), so no figure is an artefact of the harness.

use super::fairness::FairnessTally;
use super::histogram::LatencyHistogram;
use super::intervals::IntervalRecorder;
use super::phase::Phase;
use crate::strategy::AcquireTiming;
use crate::upstream::draw::{self, Stream};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// At most this many requests are kept for timeline charts (a uniform reservoir sample).
pub const TIMELINE_SAMPLE: usize = 2000;
/// The throughput series keeps at most this many buckets; buckets double in width beyond it.
const MAX_BUCKETS: usize = 240;
/// At most this many acquisitions are kept for the exact FIFO prediction.
const MAX_SERVICE_RECORDS: usize = 100_000;

/// One request in the timeline sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub number: u64,
    /// Intended start, ms after the run began.
    pub arrival_ms: f64,
    /// Total latency, ms.
    pub latency_ms: f64,
    pub ok: bool,
}

/// What happened to one request, as the runner reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestRecord {
    pub number: u64,
    pub arrival: Duration,
    pub acquired_at: Duration,
    pub timing: AcquireTiming,
    pub upstream: Duration,
    pub bookkeeping: Duration,
    pub total: Duration,
    /// Completed with a usable credential and a 2xx answer.
    pub ok: bool,
    pub status: u16,
    /// No credential could be had at all.
    pub exhausted: bool,
    /// Who sent it (for fairness).
    pub user: u32,
    /// The credential that carried its upstream call, if it got one.
    pub account: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Recorder {
    seed: u64,
    pub total: LatencyHistogram,
    pub phases: Vec<(Phase, LatencyHistogram)>,
    pub requests: u64,
    pub errors: u64,
    pub status_429: u64,
    pub exhausted: u64,
    pub timeline: Vec<TimelinePoint>,
    pub first_arrival: Option<Duration>,
    pub last_completion: Duration,
    bucket_width: Duration,
    pub buckets: Vec<u64>,
    in_flight: u64,
    in_flight_area: f64,
    in_flight_since: Duration,
    /// (acquired at, service time) per acquisition, for the FIFO prediction.
    pub service: Vec<(Duration, Duration, Duration)>,
    /// Acquisitions left out of `service` once it held [`MAX_SERVICE_RECORDS`].
    pub service_dropped: u64,
    /// Per account and per user: who got served.
    pub fairness: FairnessTally,
    /// How late each request started against its intended start.
    pub lateness: LatencyHistogram,
    /// Total latency per second of completions, for interval logs.
    pub intervals: IntervalRecorder,
}

impl Recorder {
    pub fn new(seed: u64, credentials: usize) -> Self {
        Recorder {
            seed,
            total: LatencyHistogram::default(),
            phases: Phase::ALL.iter().map(|p| (*p, LatencyHistogram::default())).collect(),
            requests: 0,
            errors: 0,
            status_429: 0,
            exhausted: 0,
            timeline: Vec::new(),
            first_arrival: None,
            last_completion: Duration::ZERO,
            bucket_width: Duration::from_millis(50),
            buckets: Vec::new(),
            in_flight: 0,
            in_flight_area: 0.0,
            in_flight_since: Duration::ZERO,
            service: Vec::new(),
            service_dropped: 0,
            fairness: FairnessTally::new(credentials),
            lateness: LatencyHistogram::default(),
            intervals: IntervalRecorder::default(),
        }
    }

    fn advance_in_flight(&mut self, now: Duration) {
        if now > self.in_flight_since {
            self.in_flight_area += self.in_flight as f64 * (now - self.in_flight_since).as_secs_f64();
            self.in_flight_since = now;
        }
    }

    /// A request of `user` became due at `at` (its intended start) and started at `actual`.
    pub fn started(&mut self, at: Duration, user: u32, actual: Duration) {
        self.lateness.record(actual.saturating_sub(at));
        self.fairness.started(user, at);
        self.advance_in_flight(at);
        self.in_flight += 1;
        self.first_arrival = Some(self.first_arrival.map_or(at, |f| f.min(at)));
    }

    /// A request finished at `done` (time since the run began).
    pub fn finished(&mut self, r: &RequestRecord, done: Duration) {
        self.advance_in_flight(done);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.requests += 1;
        self.last_completion = self.last_completion.max(done);
        self.total.record(r.total);
        self.intervals.record(done, r.total);
        self.fairness.finished(r.user, r.account, r.ok, r.total, done);
        if !r.ok {
            self.errors += 1;
        }
        if r.status == 429 {
            self.status_429 += 1;
        }
        if r.exhausted {
            self.exhausted += 1;
        } else {
            for (phase, h) in &mut self.phases {
                h.record(match phase {
                    Phase::LockWait => r.timing.lock_wait,
                    Phase::Hold => r.timing.hold,
                    Phase::RefreshWait => r.timing.refresh_wait,
                    Phase::Upstream => r.upstream,
                    Phase::Bookkeeping => r.bookkeeping,
                });
            }
            if self.service.len() < MAX_SERVICE_RECORDS {
                self.service.push((
                    r.acquired_at,
                    r.timing.hold + r.timing.refresh_wait,
                    r.acquired_at.saturating_sub(r.arrival),
                ));
            } else {
                self.service_dropped += 1;
            }
        }
        self.record_throughput(done);
        self.sample(r);
    }

    fn record_throughput(&mut self, done: Duration) {
        // In u64 nanoseconds (584 years): a u128 division is a library call, once per request.
        let done_ns = u64::try_from(done.as_nanos()).unwrap_or(u64::MAX);
        let mut slot = (done_ns / self.bucket_width.as_nanos() as u64) as usize;
        while slot >= MAX_BUCKETS {
            // Widen: merge pairs of buckets.
            self.buckets = self.buckets.chunks(2).map(|c| c.iter().sum()).collect();
            self.bucket_width *= 2;
            slot = (done_ns / self.bucket_width.as_nanos() as u64) as usize;
        }
        if self.buckets.len() <= slot {
            self.buckets.resize(slot + 1, 0);
        }
        self.buckets[slot] += 1;
    }

    /// Reservoir sampling (algorithm R) with keyed draws, so the sample is repeatable.
    fn sample(&mut self, r: &RequestRecord) {
        let p = TimelinePoint {
            number: r.number,
            arrival_ms: r.arrival.as_secs_f64() * 1e3,
            latency_ms: r.total.as_secs_f64() * 1e3,
            ok: r.ok,
        };
        let seen = self.requests;
        if self.timeline.len() < TIMELINE_SAMPLE {
            self.timeline.push(p);
        } else {
            let j = draw::index(self.seed, Stream::Sample, seen, seen) as usize;
            if j < TIMELINE_SAMPLE {
                self.timeline[j] = p;
            }
        }
    }

    pub fn bucket_width(&self) -> Duration {
        self.bucket_width
    }

    /// Time-averaged number of requests in the system (for Little's law).
    pub fn mean_in_flight(&self) -> f64 {
        let span = self
            .last_completion
            .saturating_sub(self.first_arrival.unwrap_or_default())
            .as_secs_f64();
        if span > 0.0 {
            self.in_flight_area / span
        } else {
            0.0
        }
    }
}
