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
//! - `dropped`: samples left out, by kind, each counted (0 in every scenario shipped).

use super::histogram::LatencyStats;
use super::StrategyRun;
use crate::scenario::spec::Mode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfAudit {
    /// `generator_lateness` (real mode) or `virtual_clock_divergence` (virtual mode).
    pub start_lag_kind: String,
    /// Per request: task start - intended start, ms.
    pub start_lag_ms: LatencyStats,
    pub dropped: Dropped,
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
    pub fn of(run: &StrategyRun) -> SelfAudit {
        let r = &run.recorder;
        let mut dropped = Dropped {
            fifo_service_records: r.service_dropped,
            herd_attribution: run.herd.attribution_dropped,
            fairness_untracked_requests: r.fairness.untracked_requests(),
            total: 0,
        };
        dropped.total = dropped.fifo_service_records + dropped.herd_attribution + dropped.fairness_untracked_requests;
        SelfAudit {
            start_lag_kind: match run.mode {
                Mode::Real => "generator_lateness",
                Mode::Virtual => "virtual_clock_divergence",
            }
            .into(),
            start_lag_ms: r.lateness.stats(),
            dropped,
        }
    }
}
