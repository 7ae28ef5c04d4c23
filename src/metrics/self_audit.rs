//! The harness auditing itself, on every run: how late requests started against their intended
//! start, and every sample the recorders had to leave out. A figure is only as good as the
//! harness that measured it; these say whether the harness kept up.
//!
//! - `start_lag`: for each request, (when its task started) - (its intended start). In real mode
//!   this is the load generator's lateness (the coordinated-omission check: latencies are still
//!   measured from the intended start, so a late generator cannot hide queueing, but a large lag
//!   says the machine was saturated by the harness itself). In virtual mode it is the virtual
//!   clock's divergence from the schedule, which must be 0: time only advances when every task
//!   waits.
//! - `timer_lag`: in real time, how late the runtime fired a probe timer due every 5 ms
//!   ([`super::timer_lag`]): the scheduler's lag, which every request, the mock and the generator
//!   suffer alike. Absent in virtual mode, where the clock waits for every task.
//! - `saturation`: whether either lag says the harness could not keep up, by [`SATURATION_RULE`].
//!   A saturated run's latencies contain the harness's own delay; they describe the machine at
//!   its limit, not the strategy.
//! - `dropped`: samples left out, by kind, each counted (0 in every scenario shipped).

use super::histogram::{LatencyHistogram, LatencyStats};
use super::StrategyRun;
use crate::scenario::spec::Mode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfAudit {
    /// `generator_lateness` (real mode) or `virtual_clock_divergence` (virtual mode).
    pub start_lag_kind: String,
    /// Per request: task start - intended start, ms.
    pub start_lag_ms: LatencyStats,
    /// Real time: how late a probe timer due every 5 ms fired, ms. Absent in virtual runs and
    /// from files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_lag_ms: Option<LatencyStats>,
    /// Real time: whether the harness was saturated, by [`SATURATION_RULE`]. Absent in virtual
    /// runs and from files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<Saturation>,
    pub dropped: Dropped,
}

/// The p99 lag, ms, from which the harness counts as saturated: ten times tokio's 1 ms timer
/// resolution, and over twice the kernel's 4 ms tick; an idle runtime stays within about one
/// of each. A request measured while the harness lags this much carries about that much of the
/// harness's own delay.
pub const SATURATION_P99_MS: f64 = 10.0;

/// The rule, as the reports state it.
pub const SATURATION_RULE: &str =
    "saturated when the p99 of the timer lag or of the generator's lateness is at least 10 ms";

/// Whether a real-time run's harness kept up, and which figures say it did not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub saturated: bool,
    /// [`SATURATION_RULE`], written beside the verdict.
    pub rule: String,
    /// The figures at or over the threshold, e.g. `"timer_lag p99 212.4 ms"` (empty when calm).
    pub over: Vec<String>,
}

impl Saturation {
    /// Judges the two lags (p99 in ms) by [`SATURATION_RULE`]; `timer_lag` is absent when the
    /// probe did not run.
    pub fn judge(timer_lag: Option<&LatencyStats>, generator_lateness: &LatencyStats) -> Saturation {
        let figures = [
            ("timer_lag", timer_lag),
            ("generator_lateness", Some(generator_lateness)),
        ];
        let over: Vec<String> = figures
            .iter()
            .filter_map(|(name, stats)| {
                let s = (*stats)?;
                (s.count > 0 && s.p99 >= SATURATION_P99_MS).then(|| format!("{name} p99 {:.1} ms", s.p99))
            })
            .collect();
        Saturation {
            saturated: !over.is_empty(),
            rule: SATURATION_RULE.into(),
            over,
        }
    }
}

/// Samples left out, by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// Acquisitions beyond the 100,000 kept for the exact FIFO prediction.
    pub fifo_service_records: u64,
    /// Held-up requests that may have waited on a refresh too old to be kept (herd).
    pub herd_attribution: u64,
    /// Requests of users beyond the 1024 tracked one by one (fairness).
    pub fairness_untracked_requests: u64,
    pub total: u64,
}

impl SelfAudit {
    /// A real-time audit of a client that measured `generator_lateness` beside a probe's
    /// `timer_lag` (a `[target]` run's: nothing dropped, no virtual clock).
    pub fn real_time(generator_lateness: &LatencyHistogram, timer_lag: &LatencyHistogram) -> SelfAudit {
        let (start_lag, timer_lag) = (generator_lateness.stats(), timer_lag.stats());
        SelfAudit {
            start_lag_kind: "generator_lateness".into(),
            saturation: Some(Saturation::judge(Some(&timer_lag), &start_lag)),
            start_lag_ms: start_lag,
            timer_lag_ms: Some(timer_lag),
            dropped: Default::default(),
        }
    }

    pub fn of(run: &StrategyRun) -> SelfAudit {
        let r = &run.recorder;
        let mut dropped = Dropped {
            fifo_service_records: r.service_dropped,
            herd_attribution: run.herd.attribution_dropped,
            fairness_untracked_requests: r.fairness.untracked_requests(),
            total: 0,
        };
        dropped.total = dropped.fifo_service_records + dropped.herd_attribution + dropped.fairness_untracked_requests;
        let start_lag = r.lateness.stats();
        let timer_lag = run.timer_lag.as_ref().map(LatencyHistogram::stats);
        SelfAudit {
            start_lag_kind: match run.mode {
                Mode::Real => "generator_lateness",
                Mode::Virtual => "virtual_clock_divergence",
            }
            .into(),
            saturation: (run.mode == Mode::Real).then(|| Saturation::judge(timer_lag.as_ref(), &start_lag)),
            start_lag_ms: start_lag,
            timer_lag_ms: timer_lag,
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lags(ms: &[f64]) -> LatencyStats {
        let mut h = LatencyHistogram::default();
        for &m in ms {
            h.record(Duration::from_secs_f64(m / 1e3));
        }
        h.stats()
    }

    /// 1000 samples: `late` of them at `high` ms, the rest at `low`.
    fn spread(low: f64, high: f64, late: usize) -> LatencyStats {
        let mut v = vec![low; 1000 - late];
        v.extend(std::iter::repeat_n(high, late));
        lags(&v)
    }

    #[test]
    fn a_calm_run_is_not_saturated() {
        // An idle runtime: the probe within about a millisecond, a rare 8 ms hiccup below the p99.
        let s = Saturation::judge(Some(&spread(0.9, 8.0, 5)), &spread(0.3, 6.0, 5));
        assert!(!s.saturated, "{s:?}");
        assert!(s.over.is_empty());
        assert_eq!(s.rule, SATURATION_RULE);
    }

    #[test]
    fn a_lagging_timer_or_a_late_generator_each_flag_saturation() {
        let calm = spread(0.9, 8.0, 5);
        let behind = spread(1.0, 250.0, 50);
        let by_timer = Saturation::judge(Some(&behind), &calm);
        assert!(by_timer.saturated);
        assert_eq!(by_timer.over, vec!["timer_lag p99 250.0 ms".to_string()]);
        let by_generator = Saturation::judge(Some(&calm), &behind);
        assert!(by_generator.saturated);
        assert_eq!(by_generator.over, vec!["generator_lateness p99 250.0 ms".to_string()]);
        // Without a probe the generator alone decides; exactly at the threshold counts.
        let at = spread(0.5, SATURATION_P99_MS, 20);
        assert!(Saturation::judge(None, &at).saturated);
        assert!(!Saturation::judge(None, &calm).saturated);
    }
}
