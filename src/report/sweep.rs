//! `sweep.json`: the record of one load sweep, and the files written from it.
//!
//! Everything the sweep found is in the top-level fields and `strategies` (points, sustainable
//! rate, knee, USL fit per strategy), a function of the scenario, the levels and the seeds alone:
//! the same for any `--jobs`. How the sweep was executed (parallelism, wall time, when) is kept
//! apart in `execution`, the only part that changes from one identical sweep to the next.
//! `sweep.html` ([`crate::report::html::sweep`]) is drawn from this record alone.

use crate::analysis::kneedle::DEFAULT_SENSITIVITY;
use crate::analysis::sweep::{self, StrategySweep, KEEP_UP};
use crate::scenario::sweep::{Levels, Request, Runs};
use crate::scenario::Plan;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FILE: &str = "sweep.json";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub schema: u32,
    pub scenario: String,
    pub description: String,
    pub file: String,
    /// SHA-256 of the scenario file.
    pub sha256: String,
    pub mode: String,
    /// `"rates"` (open load, requests per second) or `"users"` (closed load).
    pub kind: String,
    pub levels: Vec<f64>,
    /// Requests per run at each level (a rate sweep scales them to keep the duration).
    pub requests_per_run: Vec<u64>,
    pub slo_p99_ms: Option<f64>,
    /// Completions over arrivals that count as keeping up.
    pub keep_up: f64,
    /// Kneedle's sensitivity S.
    pub knee_sensitivity: f64,
    /// Seeds of the repetitions, the same for every strategy.
    pub seeds: Vec<u64>,
    pub strategies: Vec<StrategySweep>,
    /// How the sweep ran: not part of its results.
    pub execution: Execution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Worker threads used.
    pub jobs: usize,
    pub wall_time_s: f64,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub cores: usize,
}

impl SweepReport {
    /// The record of `runs`, the result of sweeping `plan` as `req` asked.
    pub fn new(plan: &Plan, req: &Request, runs: &Runs, slo_p99_ms: Option<f64>, execution: Execution) -> SweepReport {
        let concurrency = matches!(req.levels, Levels::Users(_));
        let strategies = req
            .strategies
            .iter()
            .zip(&runs.runs)
            .map(|(s, r)| sweep::analyse(s.as_str(), r, slo_p99_ms, concurrency))
            .collect();
        let levels = req.levels.values();
        SweepReport {
            schema: SCHEMA_VERSION,
            scenario: plan.name.clone(),
            description: plan.description.clone(),
            file: plan.path.display().to_string(),
            sha256: plan.sha256.clone(),
            mode: plan.mode.as_str().into(),
            kind: req.levels.kind().into(),
            requests_per_run: (0..levels.len())
                .map(|i| {
                    crate::scenario::runner::planned_requests(&crate::scenario::sweep::at_level(plan, &req.levels, i))
                })
                .collect(),
            levels,
            slo_p99_ms,
            keep_up: KEEP_UP,
            knee_sensitivity: DEFAULT_SENSITIVITY,
            seeds: runs.seeds.clone(),
            strategies,
            execution,
        }
    }
}

/// How a run's index links this sweep, written into `rel` (relative to the run's folder).
pub fn link(r: &SweepReport, rel: &Path) -> crate::report::summary::SweepLink {
    let path = |f: &str| rel.join(f).to_string_lossy().replace('\\', "/");
    crate::report::summary::SweepLink {
        scenario: r.scenario.clone(),
        html: path(crate::report::html::sweep::FILE),
        json: path(FILE),
        kind: r.kind.clone(),
        levels: r.levels.clone(),
        slo_p99_ms: r.slo_p99_ms,
        strategies: r
            .strategies
            .iter()
            .map(|s| crate::report::summary::SweepLinkStrategy {
                strategy: s.strategy.clone(),
                sustainable_rps: s.sustainable_rps,
                knee: s.knee.as_ref().map(|k| k.offered),
            })
            .collect(),
    }
}

/// The sweep in a few lines per strategy, for the terminal.
pub fn terminal(r: &SweepReport) -> String {
    use crate::report::format;
    use std::fmt::Write;
    let mut out = format!(
        "sweep {} over {} {}: {}\n",
        r.scenario,
        r.levels.len(),
        r.kind,
        r.levels
            .iter()
            .map(|v| format::significant(*v, 4))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in &r.strategies {
        let _ = write!(out, "  {:<14}", s.strategy);
        if r.kind == "rates" {
            let _ = write!(
                out,
                " sustainable {:>10}",
                match (r.slo_p99_ms, s.sustainable_rps) {
                    (None, _) => "(no SLO)".to_string(),
                    (Some(_), None) => "none".to_string(),
                    (Some(_), Some(v)) => format!("{} rps", format::significant(v, 4)),
                }
            );
        }
        match &s.knee {
            Some(k) => {
                let _ = write!(
                    out,
                    "  knee at {} (p99 {})",
                    format::significant(k.offered, 4),
                    format::duration(k.p99_ms)
                );
            }
            None => out.push_str("  no knee"),
        }
        if let Some(u) = &s.usl {
            let _ = write!(
                out,
                "  USL σ={} κ={} λ={} N*={} R²={}",
                format::significant(u.sigma, 3),
                format::significant(u.kappa, 3),
                format::significant(u.lambda, 4),
                u.n_star.map_or("∞".into(), |n| format::significant(n, 3)),
                format::significant(u.r_squared, 4)
            );
        }
        out.push('\n');
    }
    out
}

/// Reads a `sweep.json` back.
pub fn read(path: &Path) -> Result<SweepReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {}", path.display(), crate::input_error::io_message(&e)))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a credpool sweep: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Redraws the `sweep.html` of every sweep a run's summary links, from its `sweep.json` (what
/// `credpool report` does for the run's own pages).
pub fn redraw_linked(dir: &Path, summary: &crate::report::summary::Summary) -> std::io::Result<()> {
    for l in &summary.sweeps {
        let report = read(&dir.join(&l.json)).map_err(std::io::Error::other)?;
        crate::report::write_file(
            &dir.join(&l.html),
            crate::report::html::sweep::render(&report).as_bytes(),
        )?;
    }
    Ok(())
}

/// Writes `sweep.json` and `sweep.html` into `dir` (created if missing).
pub fn write(dir: &Path, report: &SweepReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    crate::report::write_file(&dir.join(FILE), text.as_bytes())?;
    crate::report::write_file(
        &dir.join(crate::report::html::sweep::FILE),
        crate::report::html::sweep::render(report).as_bytes(),
    )
}
