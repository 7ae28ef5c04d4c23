//! What a run's figures are called and how they are bounded: the metric names scenario files and
//! reports write (`latency.p99`, `lost_updates`...), the counts of a run they read, the bounds an
//! `[[expect]]` puts on them ([`Check`]) and an expectation's result. The vocabulary of
//! measurement, below its three users: the scenario runner checks runs against it, a run's
//! figures are read through it, and reports name and look up figures by it.

use crate::metrics::Phase;
use serde::Serialize;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl FromStr for Stat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "min" => Stat::Min,
            "mean" => Stat::Mean,
            "p50" => Stat::P50,
            "p90" => Stat::P90,
            "p99" => Stat::P99,
            "p999" => Stat::P999,
            "max" => Stat::Max,
            _ => {
                return Err(format!(
                    "unknown statistic {s:?}: expected min, mean, p50, p90, p99, p999 or max"
                ))
            }
        })
    }
}

impl Stat {
    /// This statistic of `s`.
    pub fn of(self, s: &crate::metrics::histogram::LatencyStats) -> f64 {
        match self {
            Stat::Min => s.min,
            Stat::Mean => s.mean,
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P99 => s.p99,
            Stat::P999 => s.p999,
            Stat::Max => s.max,
        }
    }
}

/// The non-latency figures of a run, for [`Metric::value`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub throughput_rps: f64,
    pub lost_updates: u64,
    pub errors: u64,
    pub refreshes: u64,
    pub disables: u64,
    pub store_writes: u64,
    pub resurrected: u64,
    pub stale_tokens: u64,
    pub status_429: u64,
    pub requests: u64,
    pub deadlocked: bool,
    pub file_unreadable: bool,
    pub served_disabled: u64,
    pub rotation_skips: u64,
    /// The longest series ban left in the final file, hours past the run's end.
    pub longest_ban_hours: f64,
    /// Usage-counter increments held in memory only at the run's end (`as_shipped`'s
    /// once-a-minute flush): what a crash then loses.
    pub usage_unflushed: u64,
    /// Refreshes per token generation refreshed (the herd watch, outside the strategies); 0 when
    /// nothing was refreshed.
    pub refreshes_per_expiry: f64,
    /// The most acquisitions of one account in a row (`metrics::served`).
    pub longest_turn: u64,
    /// Most over fewest leases of one account.
    pub account_calls_ratio: f64,
}

/// A measurable quantity of a strategy's run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Total latency, ms.
    Latency(Stat),
    /// One phase's latency, ms.
    Phase(Phase, Stat),
    Throughput,
    LostUpdates,
    Errors,
    Refreshes,
    Disables,
    StoreWrites,
    Resurrected,
    StaleTokens,
    Status429,
    Requests,
    Deadlocks,
    FileUnreadable,
    /// Requests sent with an account already disabled (`metrics::served`).
    ServedDisabled,
    /// Accounts a rotation passed over (`metrics::served`).
    RotationSkips,
    LongestBanHours,
    UsageUnflushed,
    /// Refresh calls per token expiry, across every instance (`metrics::herd`).
    RefreshesPerExpiry,
    /// The most acquisitions of one account in a row, fleet-wide (`metrics::served`).
    LongestTurn,
    /// The most leases of one account over the fewest (`metrics::served`).
    AccountCallsRatio,
    /// `audit.<figure>`: a figure of a `[target]` run's audit (`target::audit::FIGURES`); not a
    /// strategy's figure.
    Audit(&'static str),
}

impl Metric {
    /// This metric's value, given the run's total latency, its phases and its counts.
    pub fn value(
        &self,
        latency: &crate::metrics::histogram::LatencyStats,
        phase: impl Fn(Phase) -> crate::metrics::histogram::LatencyStats,
        c: &Counts,
    ) -> f64 {
        match *self {
            Metric::Latency(stat) => stat.of(latency),
            Metric::Phase(p, stat) => stat.of(&phase(p)),
            Metric::Throughput => c.throughput_rps,
            Metric::LostUpdates => c.lost_updates as f64,
            Metric::Errors => c.errors as f64,
            Metric::Refreshes => c.refreshes as f64,
            Metric::Disables => c.disables as f64,
            Metric::StoreWrites => c.store_writes as f64,
            Metric::Resurrected => c.resurrected as f64,
            Metric::StaleTokens => c.stale_tokens as f64,
            Metric::Status429 => c.status_429 as f64,
            Metric::Requests => c.requests as f64,
            Metric::Deadlocks => f64::from(u8::from(c.deadlocked)),
            Metric::FileUnreadable => f64::from(u8::from(c.file_unreadable)),
            Metric::ServedDisabled => c.served_disabled as f64,
            Metric::RotationSkips => c.rotation_skips as f64,
            Metric::LongestBanHours => c.longest_ban_hours,
            Metric::UsageUnflushed => c.usage_unflushed as f64,
            Metric::RefreshesPerExpiry => c.refreshes_per_expiry,
            Metric::LongestTurn => c.longest_turn as f64,
            Metric::AccountCallsRatio => c.account_calls_ratio,
            // Only a target has an audit; plans refuse it for strategies (scenario::plan).
            Metric::Audit(_) => f64::NAN,
        }
    }
}

/// Every metric name, for error messages and docs/scenarios.md.
pub const METRIC_NAMES: &str = "latency.{min,mean,p50,p90,p99,p999,max}, phase.<lock_wait|hold|refresh_wait|upstream|bookkeeping>.<stat>, throughput_rps, lost_updates, errors, refreshes, disables, store_writes, resurrected, stale_tokens, status_429, requests, deadlocks, file_unreadable, served_disabled, rotation_skips, longest_ban_hours, usage_unflushed, refreshes_per_expiry, longest_turn, account_calls_ratio, audit.<figure> (a [target]'s)";

impl Metric {
    /// Whether a `[target]` run measures this metric: its latencies, throughput, counts the
    /// client and the mock see, and its audit.
    pub fn of_targets(&self) -> bool {
        matches!(
            self,
            Metric::Latency(_)
                | Metric::Throughput
                | Metric::Errors
                | Metric::Requests
                | Metric::Status429
                | Metric::Refreshes
                | Metric::LostUpdates
                | Metric::Audit(_)
        )
    }

    /// Whether values are durations in ms (bounds must then be written as durations).
    pub fn is_latency(&self) -> bool {
        matches!(self, Metric::Latency(_) | Metric::Phase(..))
    }

    pub fn name(&self) -> String {
        let stat = |s: &Stat| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        };
        match self {
            Metric::Latency(s) => format!("latency.{}", stat(s)),
            Metric::Phase(p, s) => format!("phase.{}.{}", p.as_str(), stat(s)),
            Metric::Throughput => "throughput_rps".into(),
            Metric::LostUpdates => "lost_updates".into(),
            Metric::Errors => "errors".into(),
            Metric::Refreshes => "refreshes".into(),
            Metric::Disables => "disables".into(),
            Metric::StoreWrites => "store_writes".into(),
            Metric::Resurrected => "resurrected".into(),
            Metric::StaleTokens => "stale_tokens".into(),
            Metric::Status429 => "status_429".into(),
            Metric::Requests => "requests".into(),
            Metric::Deadlocks => "deadlocks".into(),
            Metric::FileUnreadable => "file_unreadable".into(),
            Metric::ServedDisabled => "served_disabled".into(),
            Metric::RotationSkips => "rotation_skips".into(),
            Metric::LongestBanHours => "longest_ban_hours".into(),
            Metric::UsageUnflushed => "usage_unflushed".into(),
            Metric::RefreshesPerExpiry => "refreshes_per_expiry".into(),
            Metric::LongestTurn => "longest_turn".into(),
            Metric::AccountCallsRatio => "account_calls_ratio".into(),
            Metric::Audit(figure) => format!("audit.{figure}"),
        }
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let unknown = || format!("unknown metric {s:?}: expected one of {METRIC_NAMES}");
        if let Some(stat) = s.strip_prefix("latency.") {
            return stat.parse().map(Metric::Latency).map_err(|_| unknown());
        }
        if let Some(figure) = s.strip_prefix("audit.") {
            return crate::target::audit::FIGURES
                .iter()
                .find(|f| **f == figure)
                .map(|f| Metric::Audit(f))
                .ok_or_else(|| {
                    format!(
                        "unknown audit figure {figure:?}: expected one of {}",
                        crate::target::audit::FIGURES.join(", ")
                    )
                });
        }
        if let Some(rest) = s.strip_prefix("phase.") {
            let (phase, stat) = rest.split_once('.').ok_or_else(unknown)?;
            return Ok(Metric::Phase(
                phase.parse().map_err(|_| unknown())?,
                stat.parse().map_err(|_| unknown())?,
            ));
        }
        Ok(match s {
            "throughput_rps" => Metric::Throughput,
            "lost_updates" => Metric::LostUpdates,
            "errors" => Metric::Errors,
            "refreshes" => Metric::Refreshes,
            "disables" => Metric::Disables,
            "store_writes" => Metric::StoreWrites,
            "resurrected" => Metric::Resurrected,
            "stale_tokens" => Metric::StaleTokens,
            "status_429" => Metric::Status429,
            "requests" => Metric::Requests,
            "deadlocks" => Metric::Deadlocks,
            "file_unreadable" => Metric::FileUnreadable,
            "served_disabled" => Metric::ServedDisabled,
            "rotation_skips" => Metric::RotationSkips,
            "longest_ban_hours" => Metric::LongestBanHours,
            "usage_unflushed" => Metric::UsageUnflushed,
            "refreshes_per_expiry" => Metric::RefreshesPerExpiry,
            "longest_turn" => Metric::LongestTurn,
            "account_calls_ratio" => Metric::AccountCallsRatio,
            _ => return Err(unknown()),
        })
    }
}

/// The bound of an expectation (latencies in ms).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    AtMost(f64),
    AtLeast(f64),
    Approx { value: f64, tolerance: f64 },
}

impl Check {
    pub fn holds(&self, v: f64) -> bool {
        match *self {
            Check::AtMost(b) => v <= b,
            Check::AtLeast(b) => v >= b,
            Check::Approx { value, tolerance } => {
                if value == 0.0 {
                    v.abs() <= tolerance
                } else {
                    ((v - value) / value).abs() <= tolerance
                }
            }
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Check::AtMost(b) => format!("<= {}", short(b)),
            Check::AtLeast(b) => format!(">= {}", short(b)),
            Check::Approx { value, tolerance } => format!("= {} ± {}%", short(value), short(tolerance * 100.0)),
        }
    }
}

/// A number without float noise: at most 4 decimals, trailing zeros dropped.
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An expectation checked against one run.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ExpectationResult {
    pub metric: String,
    pub bound: String,
    pub value: f64,
    pub passed: bool,
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for name in [
            "latency.p999",
            "phase.lock_wait.p99",
            "throughput_rps",
            "lost_updates",
            "deadlocks",
            "served_disabled",
            "rotation_skips",
        ] {
            let m: Metric = name.parse().unwrap();
            assert_eq!(m.name(), name);
        }
        assert!("latency.p42".parse::<Metric>().unwrap_err().contains("expected one of"));
    }

    #[test]
    fn checks() {
        assert!(Check::Approx {
            value: 1515.0,
            tolerance: 0.01
        }
        .holds(1520.0));
        assert!(!Check::Approx {
            value: 1515.0,
            tolerance: 0.001
        }
        .holds(1520.0));
        assert!(Check::AtMost(3.0).holds(3.0));
        assert!(!Check::AtLeast(3.0).holds(2.9));
    }
}
