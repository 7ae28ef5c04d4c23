//! A job pool for independent runs: sweep points and repetitions on every core.
//!
//! A *unit* is one (scenario plan, strategy) pair whose plan already carries its seed and load
//! level. Units share nothing: each virtual-time run builds its own current-thread tokio runtime
//! with a paused clock inside [`runner::run`], so a run's figures depend only on its plan and
//! strategy, never on which thread ran it or what ran beside it. The pool hands units out to `J`
//! worker threads (each takes the next unstarted unit when it finishes one) and puts every result
//! back in its unit's place: the output is the same, in the same order, for any `J`; only wall
//! times differ.
//!
//! Real-mode runs measure the wall clock, and two of them side by side would measure each other:
//! [`run_units`] runs them one at a time whatever `J` is.
//!
//! Units are *started* heaviest first (by planned requests: longest-processing-time-first
//! scheduling), so the pool does not end with one thread finishing a long run while the other
//! idles; the order of the results is the input order regardless.
//!
//! [`map_ordered`] is the pool itself, for any independent work; [`run_units`] runs scenario
//! units (what sweeps and repetitions are made of).

use super::plan::Plan;
use super::runner::{self, Progress};
use super::spec::Mode;
use crate::metrics::StrategyRun;
use crate::strategy::StrategyName;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One independent run: `plan` (with its seed and load level set) with `strategy`.
#[derive(Clone, Debug)]
pub struct Unit {
    pub plan: Arc<Plan>,
    pub strategy: StrategyName,
}

/// The default parallelism: the cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Applies `f` to every item on up to `jobs` threads and returns the results in input order.
///
/// With `jobs <= 1` (or one item) everything runs on the calling thread. A panic in `f` is
/// propagated when the pool is joined.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_ordered_heaviest_first(items, jobs, |_| 0, f)
}

/// [`map_ordered`], starting the items of largest `weight` first (ties in input order). Only
/// the order of starting changes; results are in input order.
pub fn map_ordered_heaviest_first<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    weight: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = jobs.max(1).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&items[i])));
    let next = AtomicUsize::new(0);
    // Each slot is written once, by the thread that ran its item; the mutex is taken once per
    // finished item (runs last milliseconds to seconds), never while one runs.
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = f(&items[i]);
                    slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was run"))
        .collect()
}

/// Runs every unit (checking its plan's expectations) on up to `jobs` threads; results in input
/// order. Real-mode units run one at a time (see the module comment).
pub fn run_units(units: &[Unit], jobs: usize, progress: Option<Progress>) -> Vec<Result<StrategyRun, String>> {
    map_units(units, jobs, progress, |_, run| run)
}

/// [`run_units`], turning each finished run into `R` on its worker thread (a sweep keeps a few
/// figures of each run, not the run).
pub fn map_units<R: Send>(
    units: &[Unit],
    jobs: usize,
    progress: Option<Progress>,
    keep: impl Fn(&Unit, StrategyRun) -> R + Sync,
) -> Vec<Result<R, String>> {
    let jobs = if units.iter().any(|u| u.plan.mode == Mode::Real) {
        1
    } else {
        jobs
    };
    map_ordered_heaviest_first(
        units,
        jobs,
        |u| runner::planned_requests(&u.plan),
        |u| {
            let mut run = runner::run(&u.plan, u.strategy, progress.clone())
                .map_err(|e| format!("{}: {}: {e}", u.plan.name, u.strategy))?;
            run.expectations = runner::check_expectations(&u.plan, &run);
            Ok(keep(u, run))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order_whatever_the_parallelism() {
        let items: Vec<u64> = (0..97).collect();
        // Uneven work, so threads finish out of order.
        let work = |x: &u64| (0..(x % 7) * 10_000).fold(*x, |a, b| a.wrapping_mul(31).wrapping_add(b));
        let one = map_ordered(&items, 1, work);
        for jobs in [2, 3, 8, 200] {
            assert_eq!(map_ordered(&items, jobs, work), one, "jobs = {jobs}");
            let heavy = map_ordered_heaviest_first(&items, jobs, |x| x % 5, work);
            assert_eq!(heavy, one, "jobs = {jobs}, heaviest first");
        }
        assert!(map_ordered(&[] as &[u64], 4, work).is_empty());
    }

    #[test]
    fn uses_more_than_one_thread() {
        let items: Vec<u32> = (0..8).collect();
        let ids = map_ordered(&items, 2, |_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::thread::current().id()
        });
        let distinct: std::collections::HashSet<_> = ids.into_iter().collect();
        assert_eq!(distinct.len(), 2);
    }
}
