//! Load sweeps: one scenario run at several load levels, per strategy, on the job pool.
//!
//! A level is an offered rate (open load: it replaces `load.rate`) or a number of concurrent users
//! (closed load: it replaces `load.users`). Everything else in the plan stays as written, and the
//! plan's seed is kept, so every strategy at every level sees the same arrival process and the same
//! upstream draws (common random numbers). A rate sweep keeps the scenario's *duration*: at rate
//! `r` the run issues `requests × r / rate` requests, so every level offers load for the same
//! virtual time and a higher rate is not also a shorter run. With `repeat = N`, every unit is run
//! with the seeds of `credpool run --repeat N` ([`super::repeat`]: the scenario's seed first), the
//! same seeds for every strategy.
//!
//! This module owns the `[sweep]` table's validation ([`validate`]), the level overrides
//! ([`at_level`]) and running the units ([`run`]); turning runs into points, capacity, knee and
//! USL fit is [`crate::analysis::sweep`]'s.

use super::arrivals::Arrivals;
use super::jobs::{self, Unit};
use super::plan::{self, Plan};
use super::runner::Progress;
use super::spec::{LoadModel, SweepSpec};
use crate::analysis::sweep::Measurement;
use crate::input_error::InputError;
use crate::metrics::StrategyRun;
use crate::strategy::StrategyName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// At most this many levels in one sweep: each is a whole run per strategy and seed.
pub const MAX_LEVELS: usize = 200;

/// What a sweep varies.
#[derive(Clone, Debug, PartialEq)]
pub enum Levels {
    /// Offered rates, requests per second, ascending.
    Rates(Vec<f64>),
    /// Concurrent users of a closed load, ascending.
    Users(Vec<u32>),
}

impl Levels {
    /// `"rates"` or `"users"`, as `sweep.json` names the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Levels::Rates(_) => "rates",
            Levels::Users(_) => "users",
        }
    }

    pub fn values(&self) -> Vec<f64> {
        match self {
            Levels::Rates(r) => r.clone(),
            Levels::Users(u) => u.iter().map(|&n| f64::from(n)).collect(),
        }
    }

    /// Checks the levels against the load model (`what` names where they came from in messages).
    pub fn check(self, model: LoadModel, what: &str) -> Result<Levels, String> {
        let (len, ok_model, need) = match &self {
            Levels::Rates(r) => (
                r.len(),
                model == LoadModel::Open,
                "an open load (`load.model = \"open\"`)",
            ),
            Levels::Users(u) => (
                u.len(),
                model == LoadModel::Closed,
                "a closed load (`load.model = \"closed\"`)",
            ),
        };
        if !ok_model {
            return Err(format!(
                "{what}: a sweep over {} needs {need}, but this scenario's load is {}",
                self.kind(),
                format!("{model:?}").to_lowercase()
            ));
        }
        if len == 0 {
            return Err(format!(
                "{what}: the list of {} is empty: expected at least one level",
                self.kind()
            ));
        }
        if len > MAX_LEVELS {
            return Err(format!(
                "{what}: {len} levels is too many: expected at most {MAX_LEVELS}"
            ));
        }
        Ok(match self {
            Levels::Rates(mut r) => {
                if let Some(bad) = r.iter().find(|v| **v <= 0.0) {
                    return Err(format!(
                        "{what}: rate {bad} is not above 0: expected requests per second above 0"
                    ));
                }
                r.sort_by(f64::total_cmp);
                r.dedup();
                Levels::Rates(r)
            }
            Levels::Users(mut u) => {
                u.sort_unstable();
                u.dedup();
                Levels::Users(u)
            }
        })
    }
}

/// A validated `[sweep]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPlan {
    pub levels: Levels,
    pub slo_p99: Option<Duration>,
    /// `None`: the scenario's own strategies.
    pub strategies: Option<Vec<StrategyName>>,
}

/// Checks a `[sweep]` table against the scenario's load model.
pub fn validate(
    path: &Path,
    text: &str,
    spec: &toml::Spanned<SweepSpec>,
    model: LoadModel,
    open_rate: bool,
) -> Result<SweepPlan, InputError> {
    let at = |msg: String| InputError::at(path, text, Some(spec.span()), msg);
    let s = spec.get_ref();
    let levels = match (&s.rates, &s.users) {
        (Some(r), None) => Levels::Rates(r.iter().map(|v| v.0).collect()),
        (None, Some(u)) => {
            if let Some(big) = u.iter().find(|n| n.0 > 1_000_000) {
                return Err(at(format!(
                    "`[sweep] users` has {}: expected at most 1000000 users",
                    big.0
                )));
            }
            Levels::Users(u.iter().map(|n| n.0 as u32).collect())
        }
        _ => {
            return Err(at(
                "a [sweep] needs exactly one of `rates` (open load) or `users` (closed load)".into(),
            ))
        }
    };
    let levels = levels.check(model, "[sweep]").map_err(at)?;
    if matches!(levels, Levels::Rates(_)) && !open_rate {
        return Err(at(
            "`[sweep] rates` replaces `load.rate`, but this open load uses `[[load.stages]]`: expected a plain `load.rate`"
                .into(),
        ));
    }
    let strategies = match &s.strategies {
        Some(names) => Some(plan::resolve_strategies(names).map_err(at)?),
        None => None,
    };
    if s.slo_p99.is_some_and(|d| d.0.is_zero()) {
        return Err(at(
            "`[sweep] slo_p99` is zero: expected a latency objective such as \"500ms\"".into(),
        ));
    }
    Ok(SweepPlan {
        levels,
        slo_p99: s.slo_p99.map(|d| d.0),
        strategies,
    })
}

/// The plan run at one level: the rate (with the request count scaled to keep the duration) or
/// the number of users replaced, the watchdog widened if the new load needs more time.
pub fn at_level(plan: &Plan, levels: &Levels, index: usize) -> Plan {
    let mut p = plan.clone();
    match levels {
        Levels::Rates(r) => {
            let rate = r[index];
            let base = p.load.stages.first().map_or(rate, |s| s.1);
            let scaled = (p.load.requests as f64 * rate / base).round();
            p.load.requests = (scaled as u64).clamp(1, crate::scenario::spec::MAX_COUNT);
            p.load.stages = vec![(Duration::MAX, rate, rate)];
        }
        Levels::Users(u) => p.load.users = u[index],
    }
    p.watchdog = p.watchdog.max(plan::default_watchdog(&p.load, &p.costs, &p.upstream));
    p
}

/// What to sweep and how.
#[derive(Clone, Debug)]
pub struct Request {
    pub levels: Levels,
    pub strategies: Vec<StrategyName>,
    /// Runs per unit, with the repetition seeds derived from the plan's.
    pub repeat: u32,
    pub jobs: usize,
}

/// Every run of a sweep: `runs[s][l]` holds strategy `s` at level `l`, one [`Measurement`] per
/// seed.
pub struct Runs {
    pub runs: Vec<Vec<Vec<Measurement>>>,
    pub seeds: Vec<u64>,
}

/// Runs every (strategy, level, seed) unit on the job pool.
pub fn run(plan: &Plan, req: &Request, progress: Option<Progress>) -> Result<Runs, String> {
    let levels = req.levels.values();
    let seeds: Vec<u64> = (0..u64::from(req.repeat.max(1)))
        .map(|i| crate::upstream::draw::repetition_seed(plan.seed, i))
        .collect();
    let mut units = Vec::new();
    let mut plans = Vec::new();
    for l in 0..levels.len() {
        for &seed in &seeds {
            plans.push(Arc::new(super::repeat::reseeded(&at_level(plan, &req.levels, l), seed)));
        }
    }
    for &strategy in &req.strategies {
        for p in &plans {
            units.push(Unit {
                plan: p.clone(),
                strategy,
            });
        }
    }
    let level_of = |u: &Unit| match &req.levels {
        Levels::Rates(_) => u.plan.load.stages[0].1,
        Levels::Users(_) => f64::from(u.plan.load.users),
    };
    let results = jobs::map_units(&units, req.jobs, progress, |u, run| measure(&u.plan, level_of(u), &run));
    let mut out = Vec::new();
    let mut it = results.into_iter();
    for _ in &req.strategies {
        let mut per_level = Vec::new();
        for _ in &levels {
            let mut per_seed = Vec::new();
            for _ in &seeds {
                per_seed.push(it.next().expect("one result per unit")?);
            }
            per_level.push(per_seed);
        }
        out.push(per_level);
    }
    Ok(Runs { runs: out, seeds })
}

/// The figures of one run a sweep needs.
pub fn measure(plan: &Plan, level: f64, run: &StrategyRun) -> Measurement {
    let r = &run.recorder;
    let window = arrival_window(plan, run);
    Measurement {
        level,
        throughput_rps: run.throughput_rps(),
        window,
        latency: run.latency(),
        mean_in_flight: r.mean_in_flight(),
        requests: r.requests,
        errors: r.errors,
        deadlocked: run.deadlock.is_some(),
    }
}

/// For an open load: arrivals and completions in the same window, the whole throughput buckets
/// before the last arrival (`None` for closed loads, or when the window holds no whole bucket).
fn arrival_window(plan: &Plan, run: &StrategyRun) -> Option<crate::analysis::sweep::Window> {
    if !plan.load.is_open() {
        return None;
    }
    let r = &run.recorder;
    let width = r.bucket_width().as_secs_f64();
    let last = Arrivals::new(&plan.load, plan.seed).last()?.as_secs_f64();
    let whole = (last / width).floor() as usize;
    if whole == 0 {
        return None;
    }
    let end = whole as f64 * width;
    let arrivals = Arrivals::new(&plan.load, plan.seed)
        .take_while(|a| a.as_secs_f64() < end)
        .count() as u64;
    let completions: u64 = r.buckets.iter().take(whole).sum();
    Some(crate::analysis::sweep::Window {
        seconds: end,
        arrivals,
        completions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(load: &str) -> Plan {
        let text = format!("name = \"t\"\nseed = 5\n[pool]\ncredentials = 2\n[load]\n{load}\n");
        plan::parse(Path::new("t.toml"), &text).unwrap()
    }

    #[test]
    fn a_rate_level_keeps_the_duration_and_the_seed() {
        let p = plan("model = \"open\"\nrate = 10\nrequests = 100");
        let levels = Levels::Rates(vec![5.0, 40.0]);
        let slow = at_level(&p, &levels, 0);
        let fast = at_level(&p, &levels, 1);
        assert_eq!((slow.load.requests, fast.load.requests), (50, 400));
        assert_eq!(fast.load.stages, vec![(Duration::MAX, 40.0, 40.0)]);
        assert!(fast.watchdog >= p.watchdog);
        assert_eq!((fast.seed, fast.upstream.seed), (5, 5));
        let again = crate::scenario::repeat::reseeded(&fast, 9);
        assert_eq!((again.seed, again.upstream.seed), (9, 9));
    }

    #[test]
    fn a_users_level_replaces_the_users_only() {
        let p = plan("model = \"closed\"\nusers = 3\nrequests = 100");
        let q = at_level(&p, &Levels::Users(vec![1, 16]), 1);
        assert_eq!((q.load.users, q.load.requests), (16, 100));
    }

    #[test]
    fn levels_must_fit_the_load_model() {
        let e = Levels::Users(vec![2]).check(LoadModel::Open, "--users").unwrap_err();
        assert!(
            e.contains("--users") && e.contains("closed load") && e.contains("open"),
            "{e}"
        );
        let e = Levels::Rates(vec![2.0]).check(LoadModel::Burst, "--rates").unwrap_err();
        assert!(e.contains("burst"), "{e}");
        assert!(Levels::Users(vec![]).check(LoadModel::Closed, "x").is_err());
        assert_eq!(
            Levels::Users(vec![8, 1, 8]).check(LoadModel::Closed, "x").unwrap(),
            Levels::Users(vec![1, 8])
        );
    }
}
