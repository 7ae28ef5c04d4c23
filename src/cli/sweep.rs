//! `credpool sweep FILE [--rates 5,10,20] [--users 1,2,4] [--strategy a,b] [--slo-p99 DUR]
//! [--repeat N] [--jobs J] [--out DIR]`: one scenario at several load levels, per strategy, with
//! `sweep.json` and `sweep.html` written to the output folder.
//!
//! The levels, the SLO and the strategies come from the command line, else from the scenario's
//! `[sweep]` table. The work is [`crate::scenario::sweep`]'s (runs on the job pool) and
//! [`crate::analysis::sweep`]'s (capacity, knee, USL); this file only resolves arguments.

use super::{CliResult, Failure};
use crate::report::sweep::{Execution, SweepReport};
use crate::scenario::jobs;
use crate::scenario::sweep::{Levels, Request, SweepPlan};
use crate::scenario::{plan, Plan};
use crate::strategy::StrategyName;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Offered rates, requests per second (open-load scenarios).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// Concurrent users (closed-load scenarios).
    #[arg(long, value_delimiter = ',')]
    pub users: Vec<u32>,
    /// Only these strategies (comma-separated names, or `all`).
    #[arg(long, value_delimiter = ',')]
    pub strategy: Vec<String>,
    /// The p99 latency objective, e.g. `500ms`.
    #[arg(long, value_parser = parse_span)]
    pub slo_p99: Option<Duration>,
    /// Runs per level and strategy, seeded as `credpool run --repeat` (the same for every strategy).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override the scenario's seed (the first of the repetitions).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default: `reports/sweep-<scenario>-<UTC time>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_span(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_duration(s)?;
    if d.is_zero() {
        return Err("a zero objective: expected a latency such as 500ms".into());
    }
    Ok(d)
}

pub fn run(args: SweepArgs) -> CliResult {
    let mut plan = plan::load(&args.file).map_err(|e| Failure::BadInput(e.to_string()))?;
    super::print_warnings(&plan);
    if let Some(seed) = args.seed {
        plan = crate::scenario::repeat::reseeded(&plan, seed);
    }
    if args.repeat == 0 || args.repeat > 1000 {
        return Err(Failure::BadInput(format!(
            "--repeat {}: expected between 1 and 1000 runs per level",
            args.repeat
        )));
    }
    if args.jobs == Some(0) {
        return Err(Failure::BadInput("--jobs 0: expected at least 1 worker thread".into()));
    }
    let table = plan.sweep.clone();
    let what = args.file.display().to_string();
    let levels = match (args.rates.is_empty(), args.users.is_empty()) {
        (false, false) => {
            return Err(Failure::BadInput(
                "--rates and --users both given: expected one of them".into(),
            ))
        }
        (false, true) => {
            if !plan_has_plain_rate(&plan) {
                return Err(Failure::BadInput(format!(
                    "{what}: --rates replaces `load.rate`, but this scenario has no plain `load.rate` (a closed load, or `[[load.stages]]`)"
                )));
            }
            Levels::Rates(args.rates.clone())
                .check(plan.load.model, "--rates")
                .map_err(Failure::BadInput)?
        }
        (true, false) => Levels::Users(args.users.clone())
            .check(plan.load.model, "--users")
            .map_err(Failure::BadInput)?,
        (true, true) => match &table {
            Some(t) => t.levels.clone(),
            None => {
                return Err(Failure::BadInput(format!(
                    "{what}: no levels to sweep: give --rates or --users, or add a [sweep] table to the scenario"
                )))
            }
        },
    };
    let strategies = if args.strategy.is_empty() {
        default_strategies(&plan, table.as_ref())
    } else {
        plan::resolve_strategies(&args.strategy).map_err(Failure::BadInput)?
    };
    let slo = args.slo_p99.or(table.as_ref().and_then(|t| t.slo_p99));
    let req = Request {
        levels,
        strategies,
        repeat: args.repeat,
        jobs: args.jobs.unwrap_or_else(jobs::default_jobs),
    };
    let out = match &args.out {
        Some(d) => d.clone(),
        None => super::run::new_run_dir(Path::new(super::run::REPORTS_DIR), &format!("sweep-{}-", plan.name)),
    };
    let report = execute(&plan, &req, slo, &out)?;
    if !args.quiet {
        print!("{}", crate::report::sweep::terminal(&report));
        println!("\nsweep: {}", out.join(crate::report::html::sweep::FILE).display());
    }
    Ok(())
}

/// Whether the plan's open load is one plain `load.rate` (what a rate level replaces).
pub fn plan_has_plain_rate(plan: &Plan) -> bool {
    plan.load.is_open() && plan.load.stages.len() == 1 && plan.load.stages[0].0 == Duration::MAX
}

/// The `[sweep]` table's strategies, else the scenario's.
pub fn default_strategies(plan: &Plan, table: Option<&SweepPlan>) -> Vec<StrategyName> {
    table
        .and_then(|t| t.strategies.clone())
        .unwrap_or_else(|| plan.strategies.clone())
}

/// The folder of a scenario's sweep inside a run's folder.
pub const SWEEPS_DIR: &str = "sweeps";

/// `credpool run`: sweeps the scenarios that carry a `[sweep]` table (virtual mode only: a real
/// sweep takes real time), each into `out/sweeps/<scenario>/`, and returns the index's links.
pub fn run_tables(
    plans: &[Plan],
    only: Option<&[StrategyName]>,
    out: &Path,
    quiet: bool,
) -> Result<Vec<crate::report::summary::SweepLink>, Failure> {
    let mut links = Vec::new();
    for plan in plans {
        let Some(table) = &plan.sweep else { continue };
        if plan.mode != crate::scenario::Mode::Virtual {
            if !quiet {
                println!("sweep of {}: skipped (sweeps run in virtual mode)", plan.name);
            }
            continue;
        }
        let strategies: Vec<StrategyName> = default_strategies(plan, Some(table))
            .into_iter()
            .filter(|s| only.is_none_or(|o| o.contains(s)))
            .collect();
        if strategies.is_empty() {
            continue;
        }
        let req = Request {
            levels: table.levels.clone(),
            strategies,
            repeat: 1,
            jobs: jobs::default_jobs(),
        };
        let rel = Path::new(SWEEPS_DIR).join(&plan.name);
        let report = execute(plan, &req, table.slo_p99, &out.join(&rel))?;
        if !quiet {
            print!("{}", crate::report::sweep::terminal(&report));
        }
        links.push(crate::report::sweep::link(&report, &rel));
    }
    Ok(links)
}

/// Runs the sweep and writes `sweep.json` and `sweep.html` into `dir`.
pub fn execute(plan: &Plan, req: &Request, slo: Option<Duration>, dir: &Path) -> Result<SweepReport, Failure> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let wall = Instant::now();
    let runs = crate::scenario::sweep::run(plan, req, None).map_err(Failure::BadInput)?;
    let execution = Execution {
        jobs: req.jobs,
        wall_time_s: wall.elapsed().as_secs_f64(),
        started_at,
        cores: jobs::default_jobs(),
    };
    let report = SweepReport::new(plan, req, &runs, slo.map(|d| d.as_secs_f64() * 1e3), execution);
    crate::report::sweep::write(dir, &report)
        .map_err(|e| Failure::BadInput(format!("{}: cannot write the sweep: {e}", dir.display())))?;
    Ok(report)
}
