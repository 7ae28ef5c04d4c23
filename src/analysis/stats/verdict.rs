//! The verdict rule of `credpool compare`, after criterion.rs's: a change is reported only when
//! it is both *significant* and *larger than the noise*.
//!
//! For one figure (say p99) with one value per repetition in OLD and in NEW:
//! 1. Fewer than 2 repetitions on either side: `descriptive` (no test is possible; the figures
//!    are shown, no verdict is given).
//! 2. The two-sided Mann-Whitney p-value ≥ `alpha`: `no_change`.
//! 3. Otherwise the bootstrap interval of the relative change of the mean decides: entirely
//!    above `+noise` or entirely below `-noise` is a change (`regressed` or `improved` by the
//!    figure's direction: lower latency is better, higher throughput is better); an interval
//!    that reaches inside `±noise` is `no_change`, whatever the p-value.

use super::bootstrap::{self, Interval};
use super::mann_whitney::{self, Method};
use serde::{Deserialize, Serialize};

/// The rule's parameters (all stated in `compare.json`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Significance level of the Mann-Whitney test.
    pub alpha: f64,
    /// Relative changes within ±`noise` are `no_change`.
    pub noise: f64,
    /// Confidence of the bootstrap interval.
    pub confidence: f64,
    pub resamples: usize,
    pub bootstrap_seed: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            alpha: 0.05,
            noise: 0.02,
            confidence: 0.95,
            resamples: bootstrap::DEFAULT_RESAMPLES,
            bootstrap_seed: bootstrap::DEFAULT_SEED,
        }
    }
}

impl Rule {
    /// The rule in words, for `compare.json` and the reports.
    pub fn describe(&self) -> String {
        format!(
            "per figure, one value per repetition; fewer than 2 repetitions on a side: descriptive (no verdict); \
             two-sided Mann-Whitney U p >= {alpha}: no_change; otherwise the {conf}% percentile-bootstrap interval \
             ({resamples} resamples, seed {seed}) of the relative change of the mean decides: entirely beyond \
             +{noise}% or -{noise}% is regressed or improved by the figure's direction, anything reaching inside \
             ±{noise}% is no_change",
            alpha = self.alpha,
            conf = self.confidence * 100.0,
            resamples = self.resamples,
            seed = self.bootstrap_seed,
            noise = self.noise * 100.0,
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    NoChange,
    /// Too few repetitions for a test: the figures are shown, no verdict is given.
    Descriptive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoChange => "no_change",
            Verdict::Descriptive => "descriptive",
        }
    }
}

/// One figure judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub verdict: Verdict,
    /// The relative change of the mean and its bootstrap interval (`None`: OLD's mean is 0).
    pub change: Option<Interval>,
    pub p_value: Option<f64>,
    pub test: Option<Method>,
    /// Why this verdict, in words.
    pub reason: String,
}

/// Judges `new` against `old` by the [`Rule`].
pub fn assess(old: &[f64], new: &[f64], lower_is_better: bool, rule: &Rule) -> Assessment {
    let change = bootstrap::relative_change(old, new, rule.resamples, rule.confidence, rule.bootstrap_seed);
    if old.len() < 2 || new.len() < 2 {
        return Assessment {
            verdict: Verdict::Descriptive,
            change: change.map(|c| Interval {
                low: c.estimate,
                high: c.estimate,
                ..c
            }),
            p_value: None,
            test: None,
            reason: format!(
                "{} repetition(s) old, {} new: descriptive only, no verdict (run with --repeat N)",
                old.len(),
                new.len()
            ),
        };
    }
    let mw = mann_whitney::test(old, new).expect("both samples are non-empty");
    let (verdict, reason) = if mw.p_value >= rule.alpha {
        (Verdict::NoChange, format!("p = {:.3} >= {}", mw.p_value, rule.alpha))
    } else {
        match change {
            Some(c) if c.low > rule.noise || c.high < -rule.noise => {
                let worse = (c.low > rule.noise) == lower_is_better;
                (
                    if worse { Verdict::Regressed } else { Verdict::Improved },
                    format!(
                        "p = {:.3} < {} and the interval [{:+.1}%, {:+.1}%] lies beyond ±{}%",
                        mw.p_value,
                        rule.alpha,
                        c.low * 100.0,
                        c.high * 100.0,
                        rule.noise * 100.0
                    ),
                )
            }
            Some(c) => (
                Verdict::NoChange,
                format!(
                    "p = {:.3} < {} but the interval [{:+.1}%, {:+.1}%] reaches inside the noise threshold ±{}%",
                    mw.p_value,
                    rule.alpha,
                    c.low * 100.0,
                    c.high * 100.0,
                    rule.noise * 100.0
                ),
            ),
            None => (
                Verdict::NoChange,
                "old's mean is 0: no relative change to judge".to_string(),
            ),
        }
    };
    Assessment {
        verdict,
        change,
        p_value: Some(mw.p_value),
        test: Some(mw.method),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(centre: f64) -> Vec<f64> {
        (0..10).map(|i| centre * (1.0 + (i as f64 - 4.5) * 0.0005)).collect()
    }

    #[test]
    fn the_rule_needs_significance_and_a_change_beyond_the_noise() {
        let rule = Rule::default();
        let old = spread(100.0);
        assert_eq!(assess(&old, &spread(110.0), true, &rule).verdict, Verdict::Regressed);
        assert_eq!(assess(&old, &spread(90.0), true, &rule).verdict, Verdict::Improved);
        // Higher is better (throughput): the same movement reads the other way.
        assert_eq!(assess(&old, &spread(110.0), false, &rule).verdict, Verdict::Improved);
        // Significant (the samples separate completely) but 1% < the 2% noise threshold.
        let small = assess(&old, &spread(101.0), true, &rule);
        assert!(small.p_value.unwrap() < 0.001);
        assert_eq!(small.verdict, Verdict::NoChange);
        // Identical: no change.
        assert_eq!(assess(&old, &old, true, &rule).verdict, Verdict::NoChange);
        // One repetition: descriptive, whatever the figures.
        let one = assess(&[100.0], &[200.0], true, &rule);
        assert_eq!(one.verdict, Verdict::Descriptive);
        assert_eq!(one.p_value, None);
        assert!((one.change.unwrap().estimate - 1.0).abs() < 1e-12);
    }
}
