//! The result of running one scenario with one strategy.

use super::audit::Audit;
use super::expectation::{Counts, ExpectationResult, Metric};
use super::histogram::LatencyStats;
use super::phase::Phase;
use super::recorder::Recorder;
use crate::analysis::Prediction;
use crate::scenario::spec::Mode;
use crate::store::StoreStats;
use crate::strategy::{StrategyName, StrategyStats};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct StrategyRun {
    pub scenario: String,
    pub strategy: StrategyName,
    pub mode: Mode,
    /// Burst and closed loads: a stalled system slows its own arrivals. Open: it cannot.
    pub closed_loop: bool,
    pub recorder: Recorder,
    pub stats: StrategyStats,
    /// What the run's refreshes did to the requests (from the token endpoint's watch).
    pub herd: super::herd::HerdSummary,
    pub store: StoreStats,
    pub audit: Audit,
    /// What the leases were, against the acknowledged disables ([`super::served`]).
    pub served: super::served::Served,
    /// Wall-clock time the run took (virtual runs: how long simulating took).
    pub wall_time: Duration,
    /// Real time: how late the runtime fired a probe timer, all through the run (the
    /// self-audit's scheduler lag; [`super::timer_lag`]). `None` in virtual runs.
    pub timer_lag: Option<super::LatencyHistogram>,
    /// Set when the watchdog fired: what was stuck where.
    pub deadlock: Option<String>,
    /// When the watchdog fired: the steps strategies marked for the unfinished requests.
    pub stuck: Vec<super::steps::StuckAt>,
    pub predictions: Vec<Prediction>,
    pub expectations: Vec<ExpectationResult>,
}

impl StrategyRun {
    /// Completed requests per second, from the first arrival to the last completion.
    pub fn throughput_rps(&self) -> f64 {
        let r = &self.recorder;
        let span = r
            .last_completion
            .saturating_sub(r.first_arrival.unwrap_or_default())
            .as_secs_f64();
        if span > 0.0 {
            r.requests as f64 / span
        } else {
            0.0
        }
    }

    pub fn latency(&self) -> LatencyStats {
        self.recorder.total.stats()
    }

    pub fn phase(&self, phase: Phase) -> LatencyStats {
        self.recorder
            .phases
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, h)| h.stats())
            .unwrap_or_default()
    }

    /// The value of `metric` in this run (ms for latencies).
    pub fn metric(&self, metric: &Metric) -> f64 {
        let r = &self.recorder;
        let counts = Counts {
            throughput_rps: self.throughput_rps(),
            lost_updates: self.audit.lost_updates,
            errors: r.errors,
            refreshes: self.stats.refreshes,
            disables: self.stats.disables,
            store_writes: self.store.writes,
            resurrected: self.audit.resurrected,
            stale_tokens: self.audit.stale_tokens,
            status_429: r.status_429,
            requests: r.requests,
            deadlocked: self.deadlock.is_some(),
            file_unreadable: !self.audit.file_readable,
            served_disabled: self.served.served_disabled,
            rotation_skips: self.served.rotation_skips,
            longest_ban_hours: self.audit.longest_ban_hours(),
            usage_unflushed: self.stats.usage_unflushed,
            refreshes_per_expiry: self.herd.refreshes_per_expiry.unwrap_or(0.0),
            longest_turn: self.served.longest_turn,
            account_calls_ratio: self.served.account_calls_ratio(),
        };
        metric.value(&self.latency(), |p| self.phase(p), &counts)
    }
}
