//! A percentile-bootstrap confidence interval of the relative change of the mean between two
//! independent samples (OLD's repetitions and NEW's): resample each with replacement, compute
//! `mean(new*) / mean(old*) - 1`, and take the empirical quantiles of those changes.
//!
//! Seeded (keyed draws from [`crate::upstream::draw`]), so one pair of inputs always gives the
//! same interval; the number of resamples is stated in `compare.json`.

use crate::upstream::draw::{self, Stream};

/// Resamples when none is given.
pub const DEFAULT_RESAMPLES: usize = 10_000;
/// The seed when none is given.
pub const DEFAULT_SEED: u64 = 0x5eed_b007;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// The point estimate: `mean(new) / mean(old) - 1`.
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// e.g. 0.95.
    pub confidence: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The interval at `confidence` from `resamples` resamples, or `None` when a sample is empty or
/// OLD's mean is not positive (a relative change is then undefined).
pub fn relative_change(old: &[f64], new: &[f64], resamples: usize, confidence: f64, seed: u64) -> Option<Interval> {
    if old.is_empty() || new.is_empty() || mean(old) <= 0.0 || resamples == 0 {
        return None;
    }
    let estimate = mean(new) / mean(old) - 1.0;
    let mut key = 0u64;
    let mut draw_mean = |v: &[f64]| {
        let mut sum = 0.0;
        for _ in 0..v.len() {
            sum += v[draw::index(seed, Stream::Bootstrap, key, v.len() as u64) as usize];
            key += 1;
        }
        sum / v.len() as f64
    };
    let mut changes: Vec<f64> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let o = draw_mean(old);
        let n = draw_mean(new);
        // A resample of OLD can have mean 0 only if OLD holds zeros; it says nothing then.
        if o > 0.0 {
            changes.push(n / o - 1.0);
        }
    }
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(Interval {
        estimate,
        low: quantile(&changes, tail),
        high: quantile(&changes, 1.0 - tail),
        confidence,
    })
}

/// The `q` quantile of sorted `v`, interpolating linearly between order statistics.
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_sample_gives_an_interval_around_the_shift() {
        let old: Vec<f64> = (0..20).map(|i| 100.0 + (i % 5) as f64).collect();
        let new: Vec<f64> = old.iter().map(|v| v * 1.10).collect();
        let ci = relative_change(&old, &new, 2000, 0.95, 1).unwrap();
        assert!((ci.estimate - 0.10).abs() < 1e-12);
        assert!(ci.low < 0.10 && ci.high > 0.10, "{ci:?}");
        assert!(ci.low > 0.07 && ci.high < 0.13, "{ci:?}");
        // Seeded: the same inputs give the same interval.
        assert_eq!(relative_change(&old, &new, 2000, 0.95, 1), Some(ci));
    }

    #[test]
    fn identical_constant_samples_give_a_point_interval() {
        let v = [5.0; 8];
        let ci = relative_change(&v, &v, 500, 0.95, 3).unwrap();
        assert_eq!((ci.estimate, ci.low, ci.high), (0.0, 0.0, 0.0));
        assert!(relative_change(&[0.0], &[1.0], 10, 0.95, 3).is_none());
    }
}
