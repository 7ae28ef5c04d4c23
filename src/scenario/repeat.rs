//! Repetitions (`credpool run --repeat N`): one scenario run N times, each time with its own
//! seed, every strategy of a repetition on that same seed (common random numbers, so strategies
//! stay paired within a repetition).
//!
//! Repetition 0 keeps the scenario's seed, so `--repeat 1` is the plain run and a repeated run's
//! first repetition reproduces it; repetition `i` is seeded
//! [`crate::upstream::draw::repetition_seed`]`(seed, i)`.
//!
//! [`run_repetitions`] runs every (repetition, strategy) pair as one unit of the job pool
//! ([`super::jobs`]): each is independent of the others (its own runtime, store and upstream), so
//! the figures are the same whatever the parallelism, and [`plans`] gives every repetition's plan
//! up front.

use super::jobs::{run_units, Unit};
use super::plan::Plan;
use super::runner::Progress;
use super::suite::ScenarioRun;
use crate::strategy::StrategyName;
use crate::upstream::draw::repetition_seed;
use std::sync::Arc;

/// `plan` with every seed set to `seed` (arrivals, users, upstream draws).
pub fn reseeded(plan: &Plan, seed: u64) -> Plan {
    let mut p = plan.clone();
    p.seed = seed;
    p.upstream.seed = seed;
    p
}

/// The plans of `n` repetitions of `plan` (`n` ≥ 1), repetition 0 first.
pub fn plans(plan: &Plan, n: u32) -> Vec<Plan> {
    (0..n.max(1) as u64)
        .map(|i| reseeded(plan, repetition_seed(plan.seed, i)))
        .collect()
}

/// Runs `n` repetitions of `plan` with `strategies` on up to `jobs` threads (real-mode runs one at
/// a time), repetition 0 first, each repetition's runs in `strategies`' order. A repetition's
/// `wall_time` is the time its runs took, added up (they may have run beside other runs).
pub fn run_repetitions(
    plan: &Plan,
    strategies: &[StrategyName],
    n: u32,
    jobs: usize,
    progress: Option<Progress>,
) -> Result<Vec<ScenarioRun>, String> {
    let plans: Vec<Arc<Plan>> = plans(plan, n).into_iter().map(Arc::new).collect();
    let units: Vec<Unit> = plans
        .iter()
        .flat_map(|p| {
            strategies.iter().map(|&strategy| Unit {
                plan: p.clone(),
                strategy,
            })
        })
        .collect();
    let mut results = run_units(&units, jobs, progress).into_iter();
    plans
        .iter()
        .map(|p| {
            let runs = results.by_ref().take(strategies.len()).collect::<Result<Vec<_>, _>>()?;
            Ok(ScenarioRun {
                plan: (**p).clone(),
                wall_time: runs.iter().map(|r| r.wall_time).sum(),
                runs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_seeds_are_deterministic_distinct_and_start_at_the_scenario_seed() {
        let seeds: Vec<u64> = (0..1000).map(|i| repetition_seed(42, i)).collect();
        assert_eq!(seeds[0], 42);
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_eq!(repetition_seed(42, 7), seeds[7]);
        assert_ne!(repetition_seed(43, 7), seeds[7]);
    }
}
