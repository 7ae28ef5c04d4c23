//! Repetitions (`credpool run --repeat N`): one scenario run N times, each time with its own
//! seed, every strategy of a repetition on that same seed (common random numbers, so strategies
//! stay paired within a repetition).
//!
//! Repetition 0 keeps the scenario's seed, so `--repeat 1` is the plain run and a repeated run's
//! first repetition reproduces it; repetition `i` is seeded
//! [`crate::upstream::draw::repetition_seed`]`(seed, i)`.
//!
//! [`run_repetitions`] runs them one after another; each repetition is independent of the
//! others (its own runtime, store and upstream), so a job pool can run them in any order and on
//! any core, and [`plans`] gives every repetition's plan up front for it.

use super::plan::Plan;
use super::runner::Progress;
use super::suite::{self, ScenarioRun};
use crate::strategy::StrategyName;
use crate::upstream::draw::repetition_seed;

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

/// Runs `n` repetitions of `plan` with `strategies`, in order, repetition 0 first.
pub fn run_repetitions(
    plan: &Plan,
    strategies: &[StrategyName],
    n: u32,
    progress: Option<Progress>,
) -> Result<Vec<ScenarioRun>, String> {
    plans(plan, n)
        .iter()
        .map(|p| suite::run_scenario(p, strategies, progress.clone()))
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
