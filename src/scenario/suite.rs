//! Many scenarios: finding the files, validating all of them before running any, and running each
//! with its strategies.

use super::plan::{self, Plan};
use super::runner::{self, Progress};
use super::spec::Mode;
use crate::input_error::InputError;
use crate::metrics::StrategyRun;
use crate::strategy::StrategyName;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The default place for scenario files.
pub const SCENARIO_DIR: &str = "scenarios";

/// One scenario's runs, one per strategy.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    pub plan: Plan,
    pub runs: Vec<StrategyRun>,
    pub wall_time: Duration,
}

/// Expands files and directories (a directory contributes its `*.toml`, sorted) into files.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let defaults = [PathBuf::from(SCENARIO_DIR)];
    let paths = if paths.is_empty() { &defaults[..] } else { paths };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| InputError::whole_file(p, crate::input_error::io_message(&e)))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml") && f.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InputError::whole_file(
                    p,
                    "contains no *.toml scenario files: expected a scenario file or a folder of them",
                ));
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// Loads and validates every scenario; the first error stops everything before anything runs.
pub fn load_all(files: &[PathBuf], mode: Option<Mode>, seed: Option<u64>) -> Result<Vec<Plan>, InputError> {
    files
        .iter()
        .map(|f| {
            let mut p = plan::load(f)?;
            if let Some(m) = mode {
                p = p.with_mode(m);
            }
            if let Some(s) = seed {
                p = super::repeat::reseeded(&p, s);
            }
            Ok(p)
        })
        .collect()
}

/// The strategies to run for `plan`: its own list, narrowed by `only` when given.
pub fn strategies_for(plan: &Plan, only: Option<&[StrategyName]>) -> Vec<StrategyName> {
    match only {
        Some(names) => plan.strategies.iter().copied().filter(|s| names.contains(s)).collect(),
        None => plan.strategies.clone(),
    }
}

/// Runs one scenario with the given strategies, checking its expectations.
pub fn run_scenario(
    plan: &Plan,
    strategies: &[StrategyName],
    progress: Option<Progress>,
) -> Result<ScenarioRun, String> {
    let started = Instant::now();
    let mut runs = Vec::new();
    for &s in strategies {
        let mut run = runner::run(plan, s, progress.clone()).map_err(|e| format!("{}: {s}: {e}", plan.name))?;
        run.expectations = runner::check_expectations(plan, &run);
        runs.push(run);
    }
    Ok(ScenarioRun {
        plan: plan.clone(),
        runs,
        wall_time: started.elapsed(),
    })
}

/// Validates one scenario file (for `credpool check`).
pub fn check(path: &Path) -> Result<Plan, InputError> {
    plan::load(path)
}
