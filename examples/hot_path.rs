//! A profiling harness for the acquire + complete hot path: exactly N requests, so a profiler's
//! totals divide into a cost per request. On a shared, noisy machine, count instructions rather
//! than time them (callgrind's counts do not depend on the load):
//!
//! ```text
//! cargo build --release --example hot_path
//! valgrind --tool=callgrind target/release/examples/hot_path lock_free 100000
//! valgrind --tool=callgrind target/release/examples/hot_path lock_free 300000
//! # (difference of the two totals) / 200000 = instructions per acquire + complete
//! ```
//!
//! `hot_path <manager> <requests> [tasks]`: `<manager>` is a strategy name, `any:<name>` for the
//! strategy behind `AnyStrategy` (how the scenario runner calls it), or `parking_lot_reference`
//! (the benchmarks' reference); the requests are split over `tasks` tasks (default 1) on a
//! two-worker runtime, with zero modelled costs and outcomes not persisted, as in
//! `benches/strategies.rs`. Prints the wall time per request (indicative only).

// The refresh bench's expired pool is not used here.
#[allow(dead_code)]
#[path = "../benches/common/pool.rs"]
mod pool;
#[path = "../benches/common/reference.rs"]
mod reference;

use credpool::model::Outcome;
use credpool::strategy::fleet::Fleet;
use credpool::strategy::global_mutex::GlobalMutex;
use credpool::strategy::lock_free::LockFree;
use credpool::strategy::queue_pool::QueuePool;
use credpool::strategy::rwlock::RwLockStrategy;
use credpool::strategy::sharded::Sharded;
use credpool::strategy::{CredentialManager, Request, StrategyName};
use pool::healthy_env;
use reference::ParkingLotReference;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// `requests` acquire + complete over `tasks` tasks; the time from the first to the last.
async fn run<M: CredentialManager>(manager: M, requests: u64, tasks: u64) -> std::time::Duration {
    let manager = Arc::new(manager);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let request = Request::new(t, t as u32, "gemini-3-pro-preview");
                for _ in 0..requests / tasks {
                    let lease = manager.acquire(&request).await.expect("a credential");
                    manager
                        .complete(lease, &request, Outcome::Success)
                        .await
                        .expect("completed");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("a task panicked");
    }
    start.elapsed()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(which), Some(Ok(requests))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: hot_path <strategy|any:<strategy>|parking_lot_reference> <requests> [tasks]");
        return ExitCode::from(2);
    };
    let tasks = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1u64).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let which = which.clone();
    let elapsed = rt.block_on(async move {
        let name = |s: &str| s.parse::<StrategyName>();
        match which.as_str() {
            "parking_lot_reference" => Ok(run(ParkingLotReference::new(healthy_env()), requests, tasks).await),
            any if any.starts_with("any:") => match name(&any[4..]) {
                Ok(n) => Ok(run(n.build(healthy_env()), requests, tasks).await),
                Err(e) => Err(e),
            },
            other => match name(other) {
                Ok(StrategyName::GlobalMutex) => Ok(run(GlobalMutex::new(healthy_env()), requests, tasks).await),
                Ok(StrategyName::Rwlock) => Ok(run(RwLockStrategy::new(healthy_env()), requests, tasks).await),
                Ok(StrategyName::QueuePool) => Ok(run(QueuePool::new(healthy_env()), requests, tasks).await),
                Ok(StrategyName::Sharded) => Ok(run(Sharded::new(healthy_env()), requests, tasks).await),
                Ok(StrategyName::LockFree) => Ok(run(LockFree::new(healthy_env()), requests, tasks).await),
                Ok(StrategyName::Fleet) => Ok(run(
                    Fleet::modelled(healthy_env(), std::time::Duration::ZERO),
                    requests,
                    tasks,
                )
                .await),
                Ok(StrategyName::AsShipped) => Err("as_shipped replays the shipped code; it is not benchmarked".into()),
                Err(e) => Err(e),
            },
        }
    });
    match elapsed {
        Ok(elapsed) => {
            println!(
                "{:.1} ns per acquire + complete",
                elapsed.as_nanos() as f64 / requests.max(1) as f64
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
