//! How fast the virtual-time runner simulates: simulated requests per wall-clock second, on one
//! core (the runner's current-thread runtime with tokio's paused clock).
//!
//! - `simulator/<strategy>`: one whole run of `benches/scenarios/simulator-open-load.toml` (an
//!   open Poisson load, zero modelled costs, a lognormal upstream) with 50,000 requests, through
//!   [`runner::run`] exactly as `credpool run` does it: lazy arrivals, one task per request,
//!   acquire, the simulated upstream, complete, the recorder.
//! - `simulator/bare_loop`: the floor any simulator on this runtime pays: the same arrivals
//!   generated lazily on the same paused clock, and per request one spawned task doing one
//!   sleep (the same upstream latency draw) and one atomic increment. Nothing else. It spends
//!   tokio time at the runner's scale (`VIRTUAL_TIME_SCALE`: a modelled microsecond is a
//!   tokio millisecond), so both put the same timers in the same places of tokio's timer wheel.
//!
//! Throughput is simulated requests per second; their ratio is the runner's efficiency.

#[path = "common/bare_loop.rs"]
mod bare_loop;

use bare_loop::bare_loop;
use credpool::scenario::plan::{self, Plan};
use credpool::scenario::runner;
use credpool::strategy::StrategyName;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use std::time::Duration;

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/scenarios/simulator-open-load.toml"
);
const REQUESTS: u64 = 50_000;

fn plan() -> Plan {
    let text = std::fs::read_to_string(SCENARIO).expect("the simulator scenario file");
    let text = text.replace("requests = 50000", &format!("requests = {REQUESTS}"));
    let plan = plan::parse(Path::new(SCENARIO), &text).expect("the simulator scenario is valid");
    assert_eq!(plan.load.requests, REQUESTS);
    plan
}

fn simulator(c: &mut Criterion) {
    let plan = plan();
    let mut group = c.benchmark_group("simulator");
    group
        .throughput(Throughput::Elements(REQUESTS))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    group.bench_function("bare_loop", |b| {
        b.iter(|| assert_eq!(bare_loop(&plan), REQUESTS));
    });
    for &name in StrategyName::DESIGNS {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let run = runner::run(&plan, name, None).expect("the run");
                assert!(run.deadlock.is_none(), "{name}: {:?}", run.deadlock);
                assert_eq!(run.recorder.requests, REQUESTS, "{name}: every request finished");
                run
            })
        });
    }
    group.finish();
}

criterion_group!(benches, simulator);
criterion_main!(benches);
