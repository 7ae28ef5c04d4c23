//! Findings: what a run says about the analysis, the code as it shipped, and credpool's remedies.
//!
//! Computed from the scenario results alone (so `summary.json` carries them and any report can
//! redraw them), in three parts:
//!
//! - **calibration**: for each figure measured on the real code (a `[[reference]]` from the real
//!   proxy), the real value, the analysis' value where it gave one, and what `as_shipped`, the
//!   replica of the shipped code, measured here, with the relative error and the stated tolerance;
//! - **defects**: each defect of the shipped code, the scenario that shows it, how big it is in
//!   `as_shipped`, and for every credpool strategy and store mode of that workload whether it is
//!   gone and at what cost (mean latency, throughput);
//! - **analysis**: the analysis' claims, each with a verdict and the run's figures as evidence.
//!
//! The wording of claims and defects is fixed prose; every number and every verdict is taken
//! from the run by a rule written beside it: a calibration row is within its bound when the
//! `[[expect]]` on that metric held (its bound is shown); a remedy removed a defect when its
//! figure is at most 0 (a performance figure has no "removed"); each claim's verdict follows from
//! its tests ([`claims`]). A part whose scenarios were not run is left out rather than guessed.

use super::summary::{ResultSummary, ScenarioSummary};
use crate::metrics::expectation::Check;
use serde::{Deserialize, Serialize};

mod claims;

/// The `[[reference]]` source of figures measured on the shipped code.
pub const REAL_SOURCE: &str = "real proxy a30aa35";
/// The `[[reference]]` source of the analysis' figures.
pub const ANALYSIS_SOURCE: &str = "analysis";
/// The strategy that replays the shipped code (reports set it apart: it is not a design).
pub const SHIPPED: &str = "as_shipped";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    pub calibration: Vec<CalibrationRow>,
    pub defects: Vec<Defect>,
    pub analysis: Vec<Claim>,
}

/// One figure, side by side (latencies in ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub scenario: String,
    pub metric: String,
    /// Measured on the shipped code.
    pub real: Option<f64>,
    /// What the analysis said.
    pub analysis: Option<f64>,
    /// What `as_shipped` measured in this run.
    pub modelled: Option<f64>,
    /// `(modelled - real) / real`.
    pub relative_error: Option<f64>,
    /// The `[[expect]]` bound on this metric for `as_shipped`, and whether it held.
    pub bound: Option<String>,
    pub within_bound: Option<bool>,
    pub note: String,
}

/// A defect of the shipped code and what removes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Defect {
    pub id: String,
    pub defect: String,
    pub metric: String,
    /// The rule each remedy's `removed` follows from ("removed when lost_updates <= 0"), or
    /// that the figure is a cost with no "removed" (empty in files written before rules).
    #[serde(default)]
    pub rule: String,
    /// `as_shipped`'s figure in each scenario that shows the defect.
    pub shipped: Vec<Shown>,
    /// Every other strategy, in each of those scenarios.
    pub remedies: Vec<Remedy>,
}

/// The defect as `as_shipped` showed it in one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub scenario: String,
    pub value: f64,
    /// Requests whose call the audit expected in the file (for lost updates), or served.
    pub out_of: Option<u64>,
    /// Where the watchdog found the requests, when the run hung.
    pub stuck_at: Vec<String>,
    pub mean_ms: f64,
    pub throughput_rps: f64,
}

/// One credpool strategy (on the scenario's store mode) against the defect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub scenario: String,
    pub strategy: String,
    pub store: String,
    pub value: f64,
    /// Whether the defect is absent (None for performance figures, which have no "absent").
    pub removed: Option<bool>,
    pub mean_ms: f64,
    pub max_ms: f64,
    pub throughput_rps: f64,
}

/// The remedies of one defect in one scenario, summed up.
#[derive(Clone, Debug, PartialEq)]
pub struct RemedySummary<'a> {
    pub scenario: &'a str,
    pub store: &'a str,
    /// Strategies that removed the defect (for a performance figure: every strategy).
    pub removed: Vec<&'a Remedy>,
    /// Strategies that still show it.
    pub kept: Vec<&'a Remedy>,
    /// Of `removed`, the one with the lowest mean latency (the cheapest remedy).
    pub cheapest: Option<&'a Remedy>,
}

impl Defect {
    /// The remedies, scenario by scenario.
    pub fn by_scenario(&self) -> Vec<RemedySummary<'_>> {
        let mut names: Vec<&str> = self.remedies.iter().map(|r| r.scenario.as_str()).collect();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let here: Vec<&Remedy> = self.remedies.iter().filter(|r| r.scenario == name).collect();
                let (removed, kept): (Vec<&Remedy>, Vec<&Remedy>) = here.iter().partition(|r| r.removed != Some(false));
                let cheapest = removed.iter().copied().min_by(|a, b| a.mean_ms.total_cmp(&b.mean_ms));
                RemedySummary {
                    scenario: name,
                    store: here.first().map(|r| r.store.as_str()).unwrap_or_default(),
                    removed,
                    kept,
                    cheapest,
                }
            })
            .collect()
    }
}

/// A claim of the analysis, judged by the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub claim: String,
    /// "right", "wrong", "right in kind, wrong in size", or each part's word ("right
    /// arithmetic, wrong premise"): what `rule` gives on this run's figures.
    pub verdict: String,
    /// The rule the verdict follows from: each test's figure, threshold and measured value, and
    /// how the tests make the verdict (empty in files written before verdicts had rules).
    #[serde(default)]
    pub rule: String,
    pub evidence: String,
}

/// How a defect is measured: the metric, the scenarios that show it, and whether zero means gone.
struct Catalogue {
    id: &'static str,
    defect: &'static str,
    metric: &'static str,
    /// Scenario names, or prefixes ending in `*`.
    scenarios: &'static [&'static str],
    /// True when a value of 0 means the defect is gone (false: a performance figure).
    zero_is_gone: bool,
}

const DEFECTS: &[Catalogue] = &[
    Catalogue {
        id: "stale-read-lost-update",
        defect: "state read outside the storage lock, whole record written back under it: concurrent updates of one account overwrite each other",
        metric: "lost_updates",
        scenarios: &["real-error-reports-*"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "unlocked-shared-temp-save",
        defect: "the 429 path saves with no lock through one temp file name shared by every writer: duplicate keys, an unparsable file",
        metric: "file_unreadable",
        scenarios: &["real-429-storm-*"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "stale-token-overwrite",
        defect: "a refreshed token saved to disk is overwritten by a state write built on an older read",
        metric: "stale_tokens",
        scenarios: &["real-refresh-vs-bookkeeping"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "stale-current-account",
        defect: "the account loaded at the last rotation is cached and handed out until the next one, even after it was disabled: requests sent with a disabled account",
        metric: "served_disabled",
        scenarios: &["defect-stale-current-account", "defect-resurrected-account"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "rotation-skip-after-shrink",
        defect: "the cursor keeps its position when a disable shrinks the list of accounts, so the next rotation passes over the account that slid into it",
        metric: "rotation_skips",
        scenarios: &["defect-stale-current-account"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "resurrected-account",
        defect: "a success report built on a stale read writes the whole record back and re-enables an account another request disabled meanwhile",
        metric: "resurrected",
        scenarios: &["defect-resurrected-account"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "reentrant-deadlock",
        defect: "get_valid_credential calls itself while holding the non-reentrant _operation_lock (failed refresh, series ban, exhausted quota): every request hangs",
        metric: "deadlocks",
        scenarios: &["real-refresh-failure", "real-daily-quota", "storm-429"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "serial-bookkeeping",
        defect: "every request's bookkeeping (state read + 6.2 ms state write) runs on the one event loop, serialised: the throughput limit",
        metric: "throughput_rps",
        scenarios: &["real-router-burst-100", "real-router-burst-100-group-commit"],
        zero_is_gone: false,
    },
    Catalogue {
        id: "event-loop-stall",
        defect: "an HTTP client built synchronously on every refresh: 31 ms during which the whole process stands still",
        metric: "latency.max",
        scenarios: &["real-first-token-expired"],
        zero_is_gone: false,
    },
    Catalogue {
        id: "expired-ban-rewrites",
        defect: "once a series ban has expired, get_valid_credential clears it in the file but never in memory: a whole-file rewrite on every request after it",
        metric: "store_writes",
        scenarios: &["defect-expired-ban-rewrites"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "usage-flush-lost",
        defect: "usage counters kept in memory and flushed once a minute: a crash loses the calls counted since the last flush",
        metric: "usage_unflushed",
        scenarios: &["defect-usage-flush-lost"],
        zero_is_gone: true,
    },
    Catalogue {
        id: "429-delay-misread",
        defect: "the 429 handler reads quotaResetDelay \"479.417207ms\" as 417,207 minutes when the body has no reset timestamp: a series ban of about 580 days instead of a second",
        metric: "longest_ban_hours",
        scenarios: &["defect-429-delay-misread"],
        zero_is_gone: true,
    },
];

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn result<'a>(s: &'a ScenarioSummary, strategy: &str) -> Option<&'a ResultSummary> {
    s.results.iter().find(|r| r.strategy == strategy)
}

fn value(r: &ResultSummary, metric: &str) -> Option<f64> {
    super::lookup(r, metric)
}

fn scenario<'a>(all: &'a [ScenarioSummary], name: &str) -> Option<&'a ScenarioSummary> {
    all.iter().find(|s| s.name == name)
}

/// The findings of the scenarios run so far.
pub fn compute(scenarios: &[ScenarioSummary]) -> Findings {
    Findings {
        calibration: calibration(scenarios),
        defects: defects(scenarios),
        analysis: claims::judge(scenarios),
    }
}

fn calibration(scenarios: &[ScenarioSummary]) -> Vec<CalibrationRow> {
    let mut rows: Vec<CalibrationRow> = Vec::new();
    for s in scenarios {
        for reference in s.references.iter().filter(|r| r.strategy == SHIPPED) {
            let row = match rows
                .iter_mut()
                .find(|r| r.scenario == s.name && r.metric == reference.metric)
            {
                Some(row) => row,
                None => {
                    let measured = result(s, SHIPPED);
                    let check = measured.and_then(|r| r.expectations.iter().find(|e| e.metric == reference.metric));
                    rows.push(CalibrationRow {
                        scenario: s.name.clone(),
                        metric: reference.metric.clone(),
                        real: None,
                        analysis: None,
                        modelled: measured.and_then(|r| value(r, &reference.metric)),
                        relative_error: None,
                        bound: check.map(|e| e.bound.clone()),
                        within_bound: check.map(|e| e.passed),
                        note: String::new(),
                    });
                    rows.last_mut().expect("just pushed")
                }
            };
            if reference.source == REAL_SOURCE {
                row.real = Some(reference.value.value());
                row.note = reference.note.clone();
            } else if reference.source == ANALYSIS_SOURCE {
                row.analysis = Some(reference.value.value());
            }
        }
    }
    for row in &mut rows {
        if let (Some(real), Some(model)) = (row.real, row.modelled) {
            if real != 0.0 {
                row.relative_error = Some((model - real) / real);
            }
        }
    }
    rows
}

fn defects(scenarios: &[ScenarioSummary]) -> Vec<Defect> {
    let mut out = Vec::new();
    for c in DEFECTS {
        // A defect that can be absent is removed when its figure is at most 0.
        let gone = c.zero_is_gone.then_some(Check::AtMost(0.0));
        let mut shipped = Vec::new();
        let mut remedies = Vec::new();
        for s in scenarios
            .iter()
            .filter(|s| c.scenarios.iter().any(|p| matches(p, &s.name)))
        {
            let Some(r) = result(s, SHIPPED) else { continue };
            shipped.push(Shown {
                scenario: s.name.clone(),
                value: value(r, c.metric).unwrap_or_default(),
                out_of: match c.metric {
                    "lost_updates" => Some(r.acknowledged_updates),
                    "served_disabled" => Some(r.requests),
                    _ => None,
                },
                stuck_at: r
                    .stuck
                    .iter()
                    .map(|st| format!("{} at {}", st.requests, st.step))
                    .collect(),
                mean_ms: r.latency_ms.mean,
                throughput_rps: r.throughput_rps,
            });
            for other in s.results.iter().filter(|o| o.strategy != SHIPPED) {
                let v = value(other, c.metric).unwrap_or_default();
                remedies.push(Remedy {
                    scenario: s.name.clone(),
                    strategy: other.strategy.clone(),
                    store: s.store.clone(),
                    value: v,
                    removed: gone.map(|g| g.holds(v)),
                    mean_ms: other.latency_ms.mean,
                    max_ms: other.latency_ms.max,
                    throughput_rps: other.throughput_rps,
                });
            }
        }
        if !shipped.is_empty() {
            out.push(Defect {
                id: c.id.into(),
                defect: c.defect.into(),
                metric: c.metric.into(),
                rule: match gone {
                    Some(g) => format!("removed when {} {}", c.metric, g.describe()),
                    None => {
                        "a cost, not a defect that is present or absent: every strategy's figure side by side".into()
                    }
                },
                shipped,
                remedies,
            });
        }
    }
    out
}

/// A number for prose: no float noise.
fn num(v: f64) -> String {
    if (v == v.trunc() && v.abs() < 1e9) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn or_dash(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

/// The findings as Markdown (`findings.md` in a run's folder, and docs/as-shipped.md).
/// The file the findings are written to, beside `index.html`.
pub const FILE: &str = "findings.md";

pub fn markdown(f: &Findings) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !f.calibration.is_empty() {
        let _ = writeln!(out, "### Measured on the shipped code, the analysis, and the model\n");
        let _ = writeln!(
            out,
            "| scenario | metric | real (a30aa35) | analysis | as_shipped (model) | model vs real | bound |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for r in &f.calibration {
            let bound = match (&r.bound, r.within_bound) {
                (Some(b), Some(ok)) => format!("{b} {}", if ok { "ok" } else { "missed" }),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.scenario,
                r.metric,
                or_dash(r.real),
                or_dash(r.analysis),
                or_dash(r.modelled),
                r.relative_error
                    .map(|e| format!("{:+.1}%", e * 100.0))
                    .unwrap_or_else(|| "-".into()),
                bound
            );
        }
        let _ = writeln!(out);
    }
    if !f.defects.is_empty() {
        let _ = writeln!(out, "### Defects of the shipped code, and what removes them\n");
        let _ = writeln!(
            out,
            "| defect | metric | as_shipped | credpool store | removed by | cheapest remedy (mean, max, throughput) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for d in &f.defects {
            let shipped: Vec<String> = d
                .shipped
                .iter()
                .map(|s| {
                    let of = s.out_of.map(|n| format!(" of {n}")).unwrap_or_default();
                    format!("{}{of} ({})", num(s.value), s.scenario)
                })
                .collect();
            let is_cost = d.remedies.iter().all(|x| x.removed.is_none());
            for (i, r) in d.by_scenario().iter().enumerate() {
                let removed = if is_cost {
                    format!("({})", d.rule)
                } else if r.kept.is_empty() {
                    format!("all {}", r.removed.len())
                } else {
                    let kept: Vec<&str> = r.kept.iter().map(|k| k.strategy.as_str()).collect();
                    format!(
                        "{} of {} (still there: {})",
                        r.removed.len(),
                        r.removed.len() + r.kept.len(),
                        kept.join(", ")
                    )
                };
                let cheapest = r
                    .cheapest
                    .map(|c| {
                        format!(
                            "{}: {} = {}; {} ms, {} ms, {} req/s",
                            c.strategy,
                            d.metric,
                            num(c.value),
                            num(c.mean_ms),
                            num(c.max_ms),
                            num(c.throughput_rps)
                        )
                    })
                    .unwrap_or_else(|| "none".into());
                let (name, metric, shown) = if i == 0 {
                    let metric = if is_cost {
                        d.metric.clone()
                    } else {
                        format!("{} ({})", d.metric, d.rule)
                    };
                    (format!("{}: {}", d.id, d.defect), metric, shipped.join("; "))
                } else {
                    (String::new(), String::new(), String::new())
                };
                let _ = writeln!(
                    out,
                    "| {name} | {metric} | {shown} | {} ({}) | {removed} | {cheapest} |",
                    r.store, r.scenario
                );
            }
        }
        let _ = writeln!(out);
    }
    if !f.analysis.is_empty() {
        let _ = writeln!(out, "### The analysis, claim by claim\n");
        let _ = writeln!(out, "| the analysis said | verdict | by the rule | this run |");
        let _ = writeln!(out, "|---|---|---|---|");
        for c in &f.analysis {
            let _ = writeln!(out, "| {} | {} | {} | {} |", c.claim, c.verdict, c.rule, c.evidence);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(matches("real-error-reports-*", "real-error-reports-naive"));
        assert!(!matches("real-error-reports-*", "real-router-burst-100"));
        assert!(matches("storm-429", "storm-429"));
        assert!(!matches("storm-429", "storm-429-b"));
    }

    #[test]
    fn nothing_run_nothing_found() {
        assert_eq!(compute(&[]), Findings::default());
    }
}
