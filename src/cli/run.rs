//! `credpool run [FILE|DIR]... [--strategy a,b] [--mode virtual|real] [--seed N] [--repeat N]
//! [--jobs J] [--out DIR]`: runs scenarios and writes the report.

use super::{CliResult, Failure};
use crate::report::summary::{Machine, ResultSummary, ScenarioSummary, Summary, SCHEMA_VERSION};
use crate::report::{json, terminal};
use crate::scenario::spec::Mode;
use crate::scenario::suite;
use crate::strategy::StrategyName;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where reports go by default.
pub const REPORTS_DIR: &str = "reports";

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario files or directories of them (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Only these strategies (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub strategy: Vec<String>,
    /// Override every scenario's mode.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Override every scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default: `reports/<run id>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar and no tables.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run each scenario N times, repetition i with a seed derived from the scenario's (0 keeps
    /// it), for `credpool compare`'s statistics. Tables and charts show repetition 0.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Worker threads for a scenario's runs (its strategies and repetitions; default: the
    /// number of cores). The figures are the same for any number; real-mode runs go one at a time.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

pub fn run(args: RunArgs) -> CliResult {
    let jobs = args
        .jobs
        .map_or_else(crate::scenario::jobs::default_jobs, |j| j as usize);
    let files = suite::discover(&args.paths).map_err(|e| Failure::BadInput(e.to_string()))?;
    let plans = suite::load_all(&files, args.mode, args.seed).map_err(|e| Failure::BadInput(e.to_string()))?;
    plans.iter().for_each(super::print_warnings);
    let only: Option<Vec<StrategyName>> = if args.strategy.is_empty() {
        None
    } else {
        Some(
            args.strategy
                .iter()
                .map(|s| s.parse())
                .collect::<Result<_, String>>()
                .map_err(Failure::BadInput)?,
        )
    };
    if let Some(names) = &only {
        check_selection(&plans, names, args.quiet)?;
    }
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => new_run_dir(Path::new(REPORTS_DIR), ""),
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::BadInput(format!("{}: cannot create the output folder: {e}", out.display())))?;

    let total: u64 = plans
        .iter()
        .map(|p| crate::scenario::runner::planned_requests(p) * suite::strategies_for(p, only.as_deref()).len() as u64)
        .sum::<u64>()
        * args.repeat as u64;
    let bar = progress_bar(total, args.quiet);
    let tick: crate::scenario::runner::Progress = {
        let bar = bar.clone();
        Arc::new(move || bar.inc(1))
    };

    let started = Instant::now();
    let mut summary = Summary {
        schema: SCHEMA_VERSION,
        credpool_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        wall_time_s: 0.0,
        machine: Machine::this(),
        command: std::env::args().collect(),
        scenarios: Vec::new(),
        findings: Default::default(),
        sweeps: Vec::new(),
    };
    for plan in &plans {
        let strategies = suite::strategies_for(plan, only.as_deref());
        if strategies.is_empty() && plan.target.is_none() {
            continue;
        }
        bar.set_message(plan.name.clone());
        let reps = crate::scenario::repeat::run_repetitions(plan, &strategies, args.repeat, jobs, Some(tick.clone()))
            .map_err(Failure::BadInput)?;
        let mut block = ScenarioSummary::from_repetitions(&reps);
        if plan.target.is_some() {
            // The target beside the strategies, on the same inputs: once per repetition, with the
            // repetition's seed, one after another (a target is real time). The table and the
            // expectations are repetition 0's; every repetition's figures are in `repetitions`.
            let mut runs = Vec::new();
            for rep in crate::scenario::repeat::plans(plan, args.repeat) {
                let run = bar
                    .suspend(|| crate::target::runner::run(&rep))
                    .map_err(Failure::BadInput)?;
                block.wall_time_s += run.wall_time.as_secs_f64();
                runs.push((rep.seed, run));
            }
            let first = &runs[0].1;
            let mut result = ResultSummary::from_target(plan, first);
            result.expectations = first.check_expectations(plan);
            result.repetitions = runs
                .iter()
                .map(|(seed, run)| crate::report::summary::Repetition::of_target(*seed, run))
                .collect();
            block.results.push(result);
        }
        if !args.quiet {
            bar.suspend(|| print!("{}", terminal::scenario_block(&block)));
        }
        summary.push(block);
        summary.wall_time_s = started.elapsed().as_secs_f64();
        json::write(&out, &summary)
            .map_err(|e| Failure::BadInput(format!("{}: cannot write the report: {e}", out.display())))?;
    }
    bar.finish_and_clear();
    // Scenarios with a `[sweep]` table: swept too, and linked from the index.
    summary.sweeps = super::sweep::run_tables(&plans, only.as_deref(), &out, args.quiet)?;
    crate::report::write_outputs(&out, &summary)
        .map_err(|e| Failure::BadInput(format!("{}: cannot write the report: {e}", out.display())))?;
    if args.out.is_none() {
        // The default folder: reports/index.html opens the latest run.
        crate::report::html::latest::write(Path::new(REPORTS_DIR), &out)
            .map_err(|e| Failure::BadInput(format!("{REPORTS_DIR}: cannot write the index: {e}")))?;
    }
    if !args.quiet {
        print!("{}", terminal::findings(&summary.findings));
        println!("\nreport: {}", out.join(crate::report::html::FILE).display());
    }
    let mut failures = summary.failures();
    failures.extend(unexpected_deadlocks(&summary, &plans));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Expectation(format!(
            "{} expectation(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        )))
    }
}

/// A deadlock fails the run unless the scenario expects one (an `[[expect]]` on `deadlocks`).
/// `--strategy` filters each scenario's own `strategies` list (`credpool sweep`'s replaces it:
/// a sweep names what to sweep). A filter that leaves nothing to run anywhere is a usage error
/// naming what each scenario lists; scenarios it leaves empty beside others that run are named
/// on stderr, so a partial selection is never silent.
fn check_selection(plans: &[crate::scenario::Plan], names: &[StrategyName], quiet: bool) -> CliResult {
    let lists = |p: &crate::scenario::Plan| {
        p.strategies
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let skipped: Vec<&crate::scenario::Plan> = plans
        .iter()
        .filter(|p| suite::strategies_for(p, Some(names)).is_empty() && p.target.is_none())
        .collect();
    let wanted = names.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
    if !plans.is_empty() && skipped.len() == plans.len() {
        let each: Vec<String> = skipped
            .iter()
            .map(|p| format!("{}: its `strategies` list is [{}]", p.path.display(), lists(p)))
            .collect();
        return Err(Failure::BadInput(format!(
            "--strategy {wanted} selects nothing to run: no scenario lists it (--strategy filters each scenario's `strategies`; name one they list, or add it to the file)\n  {}",
            each.join("\n  ")
        )));
    }
    if !quiet && !skipped.is_empty() {
        let names: Vec<String> = skipped.iter().map(|p| p.name.clone()).collect();
        eprintln!(
            "note: --strategy {wanted}: {} scenario(s) list none of it and are skipped: {}",
            skipped.len(),
            names.join(", ")
        );
    }
    Ok(())
}

fn unexpected_deadlocks(summary: &Summary, plans: &[crate::scenario::Plan]) -> Vec<String> {
    use crate::metrics::expectation::Metric;
    let mut out = Vec::new();
    for (s, plan) in summary.scenarios.iter().zip(plans) {
        for r in &s.results {
            let expected = plan
                .expectations
                .iter()
                .any(|e| e.metric == Metric::Deadlocks && r.strategy.parse().is_ok_and(|n| e.strategy.covers(n)));
            if let (Some(d), false) = (&r.deadlock, expected) {
                out.push(format!("{}/{}: {d}", s.name, r.strategy));
            }
        }
    }
    out
}

fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:<24} [{bar:30}] {human_pos}/{human_len} requests ({per_sec})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar
}

/// `reports/<prefix><UTC timestamp>`, with a suffix if that exists already.
pub(crate) fn new_run_dir(base: &Path, prefix: &str) -> PathBuf {
    let stamp = format!("{prefix}{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut dir = base.join(&stamp);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{n}"));
        n += 1;
    }
    dir
}

/// The git revision of the working directory, if it is a git checkout.
fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
