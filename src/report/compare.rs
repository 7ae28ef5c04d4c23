//! Two runs side by side: per scenario and strategy, how each percentile, the throughput, the
//! errors and the lost updates moved from OLD to NEW. A function of the two summaries alone;
//! [`render_terminal`] prints it and [`crate::report::html::compare`] draws it.
//!
//! A pair is matched by scenario name and strategy. When the scenario file's hash, the seed or
//! the mode differ, the pair is still compared but flagged: the inputs were not the same.
//!
//! Beside the movements of the figures (repetition 0 of each run), each pair carries the
//! statistical verdicts over the runs' repetitions ([`super::verdicts`]), which `compare.json`
//! holds; without repetitions they are descriptive only.

use super::format;
use super::summary::{ResultSummary, ScenarioSummary, Summary};
use super::verdicts::{self, StatVerdict};
use crate::analysis::stats::verdict::Rule;
use std::fmt::Write;

/// Changes smaller than this (relative) are reported as unchanged. Virtual-time runs are
/// deterministic, so any change there is real; in real mode run-to-run noise is larger than this
/// and the HTML shows the raw figures beside the verdict.
pub const SAME_WITHIN: f64 = 0.01;

/// The figures the terminal spells out old → new when they moved (the table has them all).
const HEADLINE: [&str; 6] = ["p50", "p99", "max", "req/s", "errors", "lost updates"];

/// One figure of one pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Movement {
    pub metric: &'static str,
    pub old: f64,
    pub new: f64,
    /// Latency, errors, lost updates: lower is better. Throughput: higher is better.
    pub lower_is_better: bool,
    /// Shown as a duration (ms) rather than a count or rate.
    pub is_latency: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    Same,
}

impl Movement {
    pub fn verdict(&self) -> Verdict {
        let moved = match format::relative_change(self.old, self.new) {
            Some(r) => r.abs() > SAME_WITHIN,
            None => true,
        };
        if !moved {
            Verdict::Same
        } else if (self.new < self.old) == self.lower_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        }
    }

    /// The value for people: a duration for latencies, a rate or a count otherwise.
    pub fn show(&self, v: f64) -> String {
        if self.is_latency {
            format::duration(v)
        } else if self.metric == "req/s" {
            format::rate(v)
        } else {
            format!("{v}")
        }
    }
}

/// One scenario × strategy present in both runs.
#[derive(Clone, Debug)]
pub struct Pair {
    pub scenario: String,
    pub strategy: String,
    pub movements: Vec<Movement>,
    /// Why the inputs were not the same (scenario file, seed, mode), if they were not.
    pub caveats: Vec<String>,
    /// Per figure, the verdict over the repetitions.
    pub verdicts: Vec<StatVerdict>,
}

#[derive(Clone, Debug)]
pub struct Comparison {
    pub old: RunLabel,
    pub new: RunLabel,
    pub pairs: Vec<Pair>,
    /// `scenario / strategy` present in only one of the runs.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
    /// The rule the verdicts follow.
    pub rule: Rule,
}

/// What identifies a run to a reader.
#[derive(Clone, Debug)]
pub struct RunLabel {
    pub path: String,
    pub started_at: String,
    pub git_revision: String,
    pub credpool_version: String,
}

impl RunLabel {
    pub fn of(path: &str, s: &Summary) -> RunLabel {
        RunLabel {
            path: path.into(),
            started_at: s.started_at.clone(),
            git_revision: s.git_revision.clone(),
            credpool_version: s.credpool_version.clone(),
        }
    }
}

fn movements(o: &ResultSummary, n: &ResultSummary) -> Vec<Movement> {
    let lat = |metric, f: fn(&ResultSummary) -> f64| Movement {
        metric,
        old: f(o),
        new: f(n),
        lower_is_better: true,
        is_latency: true,
    };
    vec![
        lat("min", |r| r.latency_ms.min),
        lat("mean", |r| r.latency_ms.mean),
        lat("p50", |r| r.latency_ms.p50),
        lat("p90", |r| r.latency_ms.p90),
        lat("p99", |r| r.latency_ms.p99),
        lat("p99.9", |r| r.latency_ms.p999),
        lat("max", |r| r.latency_ms.max),
        Movement {
            metric: "req/s",
            old: o.throughput_rps,
            new: n.throughput_rps,
            lower_is_better: false,
            is_latency: false,
        },
        Movement {
            metric: "errors",
            old: o.errors as f64,
            new: n.errors as f64,
            lower_is_better: true,
            is_latency: false,
        },
        Movement {
            metric: "lost updates",
            old: o.lost_updates as f64,
            new: n.lost_updates as f64,
            lower_is_better: true,
            is_latency: false,
        },
    ]
}

fn caveats(o: &ScenarioSummary, n: &ScenarioSummary) -> Vec<String> {
    let mut c = Vec::new();
    if o.sha256 != n.sha256 {
        c.push(format!(
            "the scenario file changed (sha256 {} → {})",
            short_hash(&o.sha256),
            short_hash(&n.sha256)
        ));
    }
    if o.seed != n.seed {
        c.push(format!("seed {} → {}", o.seed, n.seed));
    }
    if o.mode != n.mode {
        c.push(format!("mode {} → {}", o.mode, n.mode));
    }
    c
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// Matches the runs' results by scenario name and strategy, in NEW's order.
pub fn compare(old: &Summary, old_path: &str, new: &Summary, new_path: &str, rule: &Rule) -> Comparison {
    let mut pairs = Vec::new();
    let mut only_new = Vec::new();
    for ns in &new.scenarios {
        let os = old.scenarios.iter().find(|s| s.name == ns.name);
        for nr in &ns.results {
            match os.and_then(|os| os.results.iter().find(|r| r.strategy == nr.strategy).map(|or| (os, or))) {
                Some((os, or)) => pairs.push(Pair {
                    scenario: ns.name.clone(),
                    strategy: nr.strategy.clone(),
                    movements: movements(or, nr),
                    caveats: caveats(os, ns),
                    verdicts: verdicts::judge(&ns.name, or, nr, rule),
                }),
                None => only_new.push(format!("{} / {}", ns.name, nr.strategy)),
            }
        }
    }
    let mut only_old = Vec::new();
    for os in &old.scenarios {
        let ns = new.scenarios.iter().find(|s| s.name == os.name);
        for or in &os.results {
            if !ns.is_some_and(|ns| ns.results.iter().any(|r| r.strategy == or.strategy)) {
                only_old.push(format!("{} / {}", os.name, or.strategy));
            }
        }
    }
    Comparison {
        old: RunLabel::of(old_path, old),
        new: RunLabel::of(new_path, new),
        pairs,
        only_old,
        only_new,
        rule: *rule,
    }
}

impl Comparison {
    /// (better, worse, unchanged) over every figure of every pair.
    pub fn tally(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for m in self.pairs.iter().flat_map(|p| &p.movements) {
            match m.verdict() {
                Verdict::Better => t.0 += 1,
                Verdict::Worse => t.1 += 1,
                Verdict::Same => t.2 += 1,
            }
        }
        t
    }
}

/// The terminal view: per scenario, one line per strategy with each figure's relative change
/// (`=` within ±1%), then the figures that moved, old → new.
pub fn render_terminal(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "old: {} (started {}, credpool {} git {})",
        c.old.path, c.old.started_at, c.old.credpool_version, c.old.git_revision
    );
    let _ = writeln!(
        out,
        "new: {} (started {}, credpool {} git {})",
        c.new.path, c.new.started_at, c.new.credpool_version, c.new.git_revision
    );
    let mut scenario = "";
    for p in &c.pairs {
        if p.scenario != scenario {
            scenario = &p.scenario;
            let _ = writeln!(out, "\n{scenario}");
            for caveat in &p.caveats {
                let _ = writeln!(out, "  not like for like: {caveat}");
            }
            let _ = write!(out, "  {:<14}", "strategy");
            for m in &p.movements {
                let _ = write!(out, " {:>8}", m.metric.replace("lost updates", "lost"));
            }
            out.push('\n');
        }
        let _ = write!(out, "  {:<14}", p.strategy);
        for m in &p.movements {
            let cell = match m.verdict() {
                Verdict::Same => "=".to_string(),
                _ => format::change(m.old, m.new),
            };
            let _ = write!(out, " {cell:>8}");
        }
        out.push('\n');
        // The headline figures that moved, old → new.
        let moved: Vec<String> = p
            .movements
            .iter()
            .filter(|m| HEADLINE.contains(&m.metric) && m.verdict() != Verdict::Same)
            .map(|m| format!("{} {} → {}", m.metric, m.show(m.old), m.show(m.new)))
            .collect();
        if !moved.is_empty() {
            let _ = writeln!(out, "  {:<14} {}", "", moved.join(", "));
        }
    }
    render_verdicts(c, &mut out);
    for (label, list) in [("only in old", &c.only_old), ("only in new", &c.only_new)] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n{label}: {}", list.join(", "));
        }
    }
    let (better, worse, same) = c.tally();
    let _ = writeln!(
        out,
        "\n{better} figure(s) better, {worse} worse, {same} unchanged (within ±{}%)",
        SAME_WITHIN * 100.0
    );
    out
}

/// The verdicts over repetitions: one line per pair (`=` no change), and the rule's outcome.
fn render_verdicts(c: &Comparison, out: &mut String) {
    let all: Vec<StatVerdict> = c.pairs.iter().flat_map(|p| p.verdicts.iter().cloned()).collect();
    let [improved, regressed, same, descriptive] = verdicts::tally(&all);
    let _ = writeln!(
        out,
        "\nverdicts over repetitions (Mann-Whitney U, bootstrap interval, noise ±{}%):",
        c.rule.noise * 100.0
    );
    let mut scenario = "";
    for p in &c.pairs {
        if p.scenario != scenario {
            scenario = &p.scenario;
            let _ = write!(out, "  {:<40}", scenario);
            for (figure, _, _) in verdicts::FIGURES {
                let _ = write!(out, " {figure:>14}");
            }
            out.push('\n');
        }
        let reps = p
            .verdicts
            .first()
            .map(|v| format!("{} ({}/{} reps)", p.strategy, v.old_values.len(), v.new_values.len()))
            .unwrap_or_default();
        let _ = write!(out, "  {reps:<40}");
        for v in &p.verdicts {
            let _ = write!(out, " {:>14}", verdicts::cell(v));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{improved} improved, {regressed} regressed, {same} no_change, {descriptive} descriptive only"
    );
    if descriptive > 0 {
        let _ = writeln!(
            out,
            "descriptive: a run without repetitions gives one value per figure; no test is possible, the change in \
             brackets is not a verdict (run both with --repeat N, N >= 5)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_direction_of_better() {
        let m = |old, new, lower| Movement {
            metric: "p99",
            old,
            new,
            lower_is_better: lower,
            is_latency: true,
        };
        assert_eq!(m(100.0, 50.0, true).verdict(), Verdict::Better);
        assert_eq!(m(100.0, 150.0, true).verdict(), Verdict::Worse);
        assert_eq!(m(100.0, 100.5, true).verdict(), Verdict::Same);
        assert_eq!(m(30.0, 33.0, false).verdict(), Verdict::Better);
        assert_eq!(m(0.0, 1.0, true).verdict(), Verdict::Worse);
        assert_eq!(m(0.0, 0.0, true).verdict(), Verdict::Same);
    }
}
