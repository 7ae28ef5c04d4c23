//! A profiling harness for the virtual-time runner: one run of the simulator benchmark's scenario
//! (`benches/scenarios/simulator-open-load.toml`) with N requests, exactly as `benches/simulator.rs`
//! runs it, so a profiler's totals divide into a cost per simulated request. Count instructions:
//!
//! ```text
//! cargo build --release --example simulate
//! valgrind --tool=callgrind target/release/examples/simulate lock_free 20000
//! valgrind --tool=callgrind target/release/examples/simulate lock_free 60000
//! # (difference of the two totals) / 40000 = instructions per simulated request
//! ```
//!
//! `simulate <strategy|bare_loop> <requests>`: `bare_loop` is the benchmark's floor (the same
//! arrivals and upstream sleeps, nothing else; `benches/common/bare_loop.rs`). Prints the simulated requests per wall-clock second
//! (indicative only: the benchmark is the measurement).

#[path = "../benches/common/bare_loop.rs"]
mod bare_loop;

use credpool::scenario::{plan, runner};
use credpool::strategy::StrategyName;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/scenarios/simulator-open-load.toml"
);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(requests)) = (args.first(), args.get(1).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: simulate <strategy|bare_loop> <requests>");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(SCENARIO) {
        Ok(text) => text.replace("requests = 50000", &format!("requests = {requests}")),
        Err(e) => {
            eprintln!("simulate: {SCENARIO}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = match plan::parse(Path::new(SCENARIO), &text) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    if name == "bare_loop" {
        let done = bare_loop::bare_loop(&plan);
        return report(name, done, requests, start);
    }
    let Ok(strategy) = name.parse::<StrategyName>() else {
        eprintln!("simulate: unknown strategy `{name}`");
        return ExitCode::from(2);
    };
    let run = match runner::run(&plan, strategy, None) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(deadlock) = &run.deadlock {
        eprintln!("simulate: {deadlock}");
        return ExitCode::FAILURE;
    }
    report(name, run.recorder.requests, requests, start)
}

/// Prints the rate, or fails when not every request finished.
fn report(name: &str, done: u64, requests: u64, start: Instant) -> ExitCode {
    let wall = start.elapsed();
    if done != requests {
        eprintln!("simulate: {done} of {requests} requests finished");
        return ExitCode::FAILURE;
    }
    println!(
        "{name}: {requests} simulated requests in {:.3} s wall, {:.0} per second",
        wall.as_secs_f64(),
        requests as f64 / wall.as_secs_f64()
    );
    ExitCode::SUCCESS
}
