//! The statistical side of `credpool compare`: per scenario, strategy and figure, a verdict
//! (`improved`, `regressed`, `no_change`, or `descriptive` without repetitions) over the
//! repetitions of OLD and NEW, by the rule in [`crate::analysis::stats::verdict`]; and
//! `compare.json`, which holds them beside `compare.html`.
//!
//! The unit of evidence is the repetition (one whole run on its own seed), never the request:
//! requests inside one run share queues, locks and refreshes and are not independent. A run
//! without `--repeat` has one repetition, and its comparison is descriptive only.

use super::summary::{Repetition, ResultSummary};
use crate::analysis::stats::verdict::{self, Assessment, Rule, Verdict};
use serde::{Deserialize, Serialize};

/// `compare.json`'s name, beside `compare.html`.
pub const FILE: &str = "compare.json";
/// Bumped when a field of `compare.json` changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// A figure judged: its name, whether lower is better, and its value in one repetition.
pub type Figure = (&'static str, bool, fn(&Repetition) -> f64);

/// The figures judged.
pub const FIGURES: [Figure; 6] = [
    ("mean", true, |r| r.latency_ms.mean),
    ("p50", true, |r| r.latency_ms.p50),
    ("p90", true, |r| r.latency_ms.p90),
    ("p99", true, |r| r.latency_ms.p99),
    ("p99.9", true, |r| r.latency_ms.p999),
    ("req/s", false, |r| r.throughput_rps),
];

/// One comparison: one scenario × strategy × figure (one entry of `compare.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatVerdict {
    pub scenario: String,
    pub strategy: String,
    pub figure: String,
    /// `ms` for latencies, `req/s` for throughput.
    pub unit: String,
    pub lower_is_better: bool,
    /// One value per repetition, in repetition order.
    pub old_values: Vec<f64>,
    pub new_values: Vec<f64>,
    pub old_mean: f64,
    pub new_mean: f64,
    /// `verdict` (`improved`, `regressed`, `no_change` or `descriptive`), `change` (estimate
    /// and interval), `p_value`, `test`, `reason`.
    #[serde(flatten)]
    pub assessment: Assessment,
}

impl StatVerdict {
    pub fn verdict(&self) -> Verdict {
        self.assessment.verdict
    }
}

/// A result's repetitions, or, for a run without them (older files too), its one run's figures.
fn repetitions(r: &ResultSummary) -> Vec<Repetition> {
    if !r.repetitions.is_empty() {
        return r.repetitions.clone();
    }
    vec![Repetition {
        seed: 0,
        requests: r.requests,
        errors: r.errors,
        throughput_rps: r.throughput_rps,
        latency_ms: r.latency_ms,
    }]
}

/// Every figure of one pair judged by `rule`.
pub fn judge(scenario: &str, old: &ResultSummary, new: &ResultSummary, rule: &Rule) -> Vec<StatVerdict> {
    let (o, n) = (repetitions(old), repetitions(new));
    FIGURES
        .iter()
        .map(|&(figure, lower_is_better, value)| {
            let old_values: Vec<f64> = o.iter().map(value).collect();
            let new_values: Vec<f64> = n.iter().map(value).collect();
            let assessment = verdict::assess(&old_values, &new_values, lower_is_better, rule);
            StatVerdict {
                scenario: scenario.into(),
                strategy: new.strategy.clone(),
                figure: figure.into(),
                unit: if lower_is_better { "ms" } else { "req/s" }.into(),
                lower_is_better,
                old_mean: mean(&old_values),
                new_mean: mean(&new_values),
                old_values,
                new_values,
                assessment,
            }
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `compare.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareJson {
    pub schema: u32,
    pub old: String,
    pub new: String,
    pub method: Method,
    /// One entry per scenario × strategy × figure.
    pub comparisons: Vec<StatVerdict>,
}

/// How the verdicts were reached, stated in the file itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Method {
    pub unit_of_evidence: String,
    pub test: String,
    pub interval: String,
    #[serde(flatten)]
    pub rule: Rule,
    pub verdict_rule: String,
}

impl Method {
    pub fn of(rule: &Rule) -> Method {
        Method {
            unit_of_evidence: "the repetition: one value per figure per repetition (credpool run --repeat N, each \
                               repetition on its own derived seed); requests inside one run are not independent and \
                               are never treated as samples"
                .into(),
            test: format!(
                "two-sided Mann-Whitney U over repetitions: exact distribution without ties when n_old + n_new <= {}, \
                 normal approximation with tie correction and continuity correction otherwise",
                crate::analysis::stats::mann_whitney::EXACT_MAX_TOTAL
            ),
            interval: format!(
                "{}% percentile bootstrap of mean(new)/mean(old) - 1, {} resamples of each side, seed {}",
                rule.confidence * 100.0,
                rule.resamples,
                rule.bootstrap_seed
            ),
            rule: *rule,
            verdict_rule: rule.describe(),
        }
    }
}

/// (improved, regressed, no_change, descriptive) over `verdicts`.
pub fn tally(verdicts: &[StatVerdict]) -> [usize; 4] {
    let mut t = [0; 4];
    for v in verdicts {
        t[match v.verdict() {
            Verdict::Improved => 0,
            Verdict::Regressed => 1,
            Verdict::NoChange => 2,
            Verdict::Descriptive => 3,
        }] += 1;
    }
    t
}

/// A short cell for tables: `=`, `▲ regressed +5.1%`, `n/a`.
pub fn cell(v: &StatVerdict) -> String {
    let change = v
        .assessment
        .change
        .map(|c| format!("{:+.1}%", c.estimate * 100.0))
        .unwrap_or_default();
    match v.verdict() {
        Verdict::NoChange => "=".into(),
        Verdict::Improved => format!("better {change}"),
        Verdict::Regressed => format!("worse {change}"),
        Verdict::Descriptive => format!("({change})"),
    }
}

/// Writes `compare.json` for comparison `c`.
pub fn write(path: &std::path::Path, c: &super::compare::Comparison) -> std::io::Result<()> {
    let doc = CompareJson {
        schema: SCHEMA_VERSION,
        old: c.old.path.clone(),
        new: c.new.path.clone(),
        method: Method::of(&c.rule),
        comparisons: c.pairs.iter().flat_map(|p| p.verdicts.iter().cloned()).collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    text.push('\n');
    super::write_file(path, text.as_bytes())
}
