//! What a load sweep says per strategy: its points, the sustainable rate at an SLO, the knee of
//! the latency curve and, for concurrency sweeps, a Universal Scalability Law fit.
//!
//! - **Point**: one load level, the figures of its runs (the mean over repetitions when
//!   `repeat > 1`, with the range of p99 across them), and Little's law checked: throughput ×
//!   mean latency against the mean number in flight measured by integration.
//! - **Keeping up** (open loads): of the requests that arrived in the window from the start to
//!   the last arrival (in whole throughput buckets), at least [`KEEP_UP`] completed in the same
//!   window. Counting both in one window makes the test immune to the Poisson trace offering a
//!   little more or less than its nominal rate, and to a slow last request stretching the run.
//! - **Sustainable rate**: the highest swept rate that keeps up and meets the p99 SLO, *with every
//!   lower swept rate also doing so* (a pass above a failure is noise, not capacity).
//! - **Knee**: Kneedle ([`super::kneedle`]) on p99 latency against the offered level, convex
//!   increasing, at sensitivity [`super::kneedle::DEFAULT_SENSITIVITY`]; the first knee is
//!   reported. Kneedle normalises the curve to a unit square, so it would find a "knee" in the
//!   noise of a flat curve: a knee is only looked for when the highest p99 is at least
//!   [`KNEE_RISE`] times the lowest (the curve bends at all).
//!
//! Keeping up counts the requests still in flight at the last arrival against the level, about
//! `latency / duration` of them for a system that keeps up: a sweep's runs must offer load for at
//! least 100 times the latency for that to stay under 1% (the scenarios here offer 300 s against
//! latencies under a second).
//! - **USL**: [`super::usl::fit`] of achieved throughput against users.

use super::kneedle::{self, Shape};
use super::usl::{self, UslFit};
use crate::metrics::histogram::LatencyStats;
use serde::{Deserialize, Serialize};

/// Completions over arrivals in the arrival window that count as keeping up.
pub const KEEP_UP: f64 = 0.99;

/// A knee is looked for only when p99 rises by at least this factor over the sweep.
pub const KNEE_RISE: f64 = 2.0;

/// Arrivals and completions counted in the same window of an open-load run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub seconds: f64,
    pub arrivals: u64,
    pub completions: u64,
}

/// One run at one level, as the sweep needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The offered rate (rps) or the number of users.
    pub level: f64,
    /// Completed requests per second, first arrival to last completion (as in `summary.json`).
    pub throughput_rps: f64,
    pub window: Option<Window>,
    pub latency: LatencyStats,
    pub mean_in_flight: f64,
    pub requests: u64,
    pub errors: u64,
    pub deadlocked: bool,
}

/// One level of a sweep, in `sweep.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Offered rate (requests per second) or users.
    pub offered: f64,
    /// Open loads: arrivals per second in the arrival window (what the Poisson trace offered).
    pub arrival_rps: Option<f64>,
    /// Open loads: completions per second in the same window.
    pub window_throughput_rps: Option<f64>,
    /// Open loads: completions over arrivals in the window (at least 0.99 keeps up).
    pub completed_share: Option<f64>,
    /// Completed requests per second, first arrival to last completion.
    pub throughput_rps: f64,
    pub latency_ms: LatencyStats,
    /// Time-averaged requests in the system.
    pub mean_in_flight: f64,
    /// Little's law: throughput × mean latency (requests), to set beside `mean_in_flight`.
    pub littles_product: f64,
    /// (mean_in_flight - littles_product) / littles_product.
    pub littles_relative_error: f64,
    pub requests: u64,
    pub errors: u64,
    /// Runs (seeds) averaged into this point.
    pub repeats: usize,
    /// Lowest and highest p99 over the repetitions (ms).
    pub p99_range_ms: [f64; 2],
    /// Whether the p99 met the SLO (when one is set).
    pub meets_slo: Option<bool>,
    /// Open loads: whether `completed_share` reached [`KEEP_UP`].
    pub keeps_up: Option<bool>,
    /// Some run at this level hit the watchdog.
    pub deadlocked: bool,
}

/// The knee Kneedle found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The offered level at the knee.
    pub offered: f64,
    pub p99_ms: f64,
    /// Kneedle's S.
    pub sensitivity: f64,
    /// Which curve (`"p99 latency against offered load"`).
    pub curve: String,
}

/// A whole strategy's sweep, in `sweep.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategySweep {
    pub strategy: String,
    pub points: Vec<Point>,
    /// Rate sweeps with an SLO: see the module comment. `None` when even the lowest rate fails.
    pub sustainable_rps: Option<f64>,
    pub knee: Option<Knee>,
    /// Concurrency sweeps: throughput against users.
    pub usl: Option<UslFit>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// The point of one level from its runs (one per seed), judged against `slo_p99_ms`.
pub fn point(runs: &[Measurement], slo_p99_ms: Option<f64>) -> Point {
    let avg = |f: &dyn Fn(&Measurement) -> f64| mean(runs.iter().map(f));
    let lat = LatencyStats {
        count: runs.iter().map(|r| r.latency.count).sum(),
        min: avg(&|r| r.latency.min),
        mean: avg(&|r| r.latency.mean),
        p50: avg(&|r| r.latency.p50),
        p90: avg(&|r| r.latency.p90),
        p99: avg(&|r| r.latency.p99),
        p999: avg(&|r| r.latency.p999),
        max: avg(&|r| r.latency.max),
    };
    let windows: Vec<Window> = runs.iter().filter_map(|r| r.window).collect();
    let (arrival_rps, window_rps, share) = if windows.len() == runs.len() && !windows.is_empty() {
        let secs: f64 = windows.iter().map(|w| w.seconds).sum();
        let arrivals: u64 = windows.iter().map(|w| w.arrivals).sum();
        let done: u64 = windows.iter().map(|w| w.completions).sum();
        (
            Some(arrivals as f64 / secs),
            Some(done as f64 / secs),
            Some(if arrivals > 0 {
                done as f64 / arrivals as f64
            } else {
                1.0
            }),
        )
    } else {
        (None, None, None)
    };
    let throughput = avg(&|r| r.throughput_rps);
    let in_flight = avg(&|r| r.mean_in_flight);
    let product = throughput * lat.mean / 1e3;
    let deadlocked = runs.iter().any(|r| r.deadlocked);
    Point {
        offered: runs.first().map_or(0.0, |r| r.level),
        arrival_rps,
        window_throughput_rps: window_rps,
        completed_share: share,
        throughput_rps: throughput,
        latency_ms: lat,
        mean_in_flight: in_flight,
        littles_product: product,
        littles_relative_error: if product > 0.0 {
            (in_flight - product) / product
        } else {
            0.0
        },
        requests: runs.iter().map(|r| r.requests).sum(),
        errors: runs.iter().map(|r| r.errors).sum(),
        repeats: runs.len(),
        p99_range_ms: [
            runs.iter().map(|r| r.latency.p99).fold(f64::INFINITY, f64::min),
            runs.iter().map(|r| r.latency.p99).fold(f64::NEG_INFINITY, f64::max),
        ],
        meets_slo: slo_p99_ms.map(|slo| !deadlocked && lat.p99 <= slo),
        keeps_up: share.map(|s| !deadlocked && s >= KEEP_UP),
        deadlocked,
    }
}

/// The sustainable rate: see the module comment. `None` without an SLO, for concurrency sweeps,
/// or when the lowest rate already fails.
pub fn sustainable_rps(points: &[Point]) -> Option<f64> {
    let mut best = None;
    for p in points {
        match (p.meets_slo, p.keeps_up) {
            (Some(true), Some(true)) => best = Some(p.offered),
            _ => break,
        }
    }
    best
}

/// Kneedle on p99 against the offered level.
pub fn knee(points: &[Point], sensitivity: f64) -> Option<Knee> {
    let x: Vec<f64> = points.iter().map(|p| p.offered).collect();
    let y: Vec<f64> = points.iter().map(|p| p.latency_ms.p99).collect();
    let lo = y.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = y.iter().copied().fold(0.0, f64::max);
    if !(hi >= KNEE_RISE * lo && lo > 0.0) {
        return None;
    }
    let first = *kneedle::knees(&x, &y, Shape::ConvexIncreasing, sensitivity).first()?;
    Some(Knee {
        offered: x[first],
        p99_ms: y[first],
        sensitivity,
        curve: "p99 latency against offered load".into(),
    })
}

/// Everything a strategy's sweep says. `concurrency`: the levels are users (fit the USL).
pub fn analyse(strategy: &str, runs: &[Vec<Measurement>], slo_p99_ms: Option<f64>, concurrency: bool) -> StrategySweep {
    let points: Vec<Point> = runs.iter().map(|r| point(r, slo_p99_ms)).collect();
    let usl = if concurrency {
        let n: Vec<f64> = points.iter().map(|p| p.offered).collect();
        let x: Vec<f64> = points.iter().map(|p| p.throughput_rps).collect();
        usl::fit(&n, &x)
    } else {
        None
    };
    StrategySweep {
        strategy: strategy.to_string(),
        sustainable_rps: if concurrency { None } else { sustainable_rps(&points) },
        knee: knee(&points, kneedle::DEFAULT_SENSITIVITY),
        usl,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(level: f64, p99: f64, arrivals: u64, done: u64) -> Measurement {
        Measurement {
            level,
            throughput_rps: level,
            window: Some(Window {
                seconds: 10.0,
                arrivals,
                completions: done,
            }),
            latency: LatencyStats {
                count: arrivals,
                mean: p99 / 3.0,
                p99,
                ..Default::default()
            },
            mean_in_flight: level * p99 / 3e3,
            requests: arrivals,
            errors: 0,
            deadlocked: false,
        }
    }

    #[test]
    fn sustainable_is_the_top_of_the_passing_run_from_below() {
        let pts: Vec<Point> = [
            m(10.0, 100.0, 100, 100),
            m(20.0, 150.0, 200, 199),
            m(30.0, 400.0, 300, 299), // misses a 300 ms SLO
            m(40.0, 250.0, 400, 400), // passes again: noise, not capacity
        ]
        .iter()
        .map(|r| point(std::slice::from_ref(r), Some(300.0)))
        .collect();
        assert_eq!(sustainable_rps(&pts), Some(20.0));
        // Falling behind fails a level even when its p99 is fine.
        let behind = [m(10.0, 100.0, 100, 100), m(20.0, 100.0, 200, 190)]
            .iter()
            .map(|r| point(std::slice::from_ref(r), Some(300.0)))
            .collect::<Vec<_>>();
        assert_eq!(sustainable_rps(&behind), Some(10.0));
        assert_eq!(behind[1].keeps_up, Some(false));
        let none = [m(10.0, 900.0, 100, 100)]
            .iter()
            .map(|r| point(std::slice::from_ref(r), Some(300.0)))
            .collect::<Vec<_>>();
        assert_eq!(sustainable_rps(&none), None);
    }

    #[test]
    fn a_flat_curve_has_no_knee_and_a_bent_one_has() {
        let flat: Vec<Point> = [100.0, 90.0, 110.0, 95.0, 105.0]
            .iter()
            .enumerate()
            .map(|(i, &p99)| point(&[m(10.0 * (i + 1) as f64, p99, 100, 100)], None))
            .collect();
        assert_eq!(knee(&flat, 1.0), None);
        let bent: Vec<Point> = [100.0, 105.0, 110.0, 120.0, 2000.0, 9000.0]
            .iter()
            .enumerate()
            .map(|(i, &p99)| point(&[m(10.0 * (i + 1) as f64, p99, 100, 100)], None))
            .collect();
        assert_eq!(knee(&bent, 1.0).map(|k| k.offered), Some(40.0));
    }

    #[test]
    fn repeats_are_averaged_and_little_is_checked() {
        let p = point(&[m(10.0, 100.0, 100, 100), m(10.0, 200.0, 100, 100)], None);
        assert_eq!(p.latency_ms.p99, 150.0);
        assert_eq!(p.p99_range_ms, [100.0, 200.0]);
        assert_eq!(p.repeats, 2);
        assert_eq!(p.meets_slo, None);
        // mean latency 50 ms × 10 rps = 0.5 in flight; measured (0.333 + 0.667) / 2 = 0.5.
        assert!((p.littles_product - 0.5).abs() < 1e-12);
        assert!(p.littles_relative_error.abs() < 1e-12);
    }
}
