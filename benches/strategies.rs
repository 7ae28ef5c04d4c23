//! What each strategy's own Rust code costs per request: acquire + complete with zero modelled
//! costs and outcomes not persisted, uncontended and under contention, and the refresh path.
//!
//! Groups (filter with `cargo bench --bench strategies -- <regex>`, e.g. `-- lock_free`):
//!
//! - `acquire_complete/<strategy>/<tasks>`: `tasks` tasks on a multi-threaded runtime with two
//!   workers, each doing one acquire + complete per iteration (so an iteration is one round of
//!   `tasks` requests, always exactly `tasks` of them in flight). `tasks = 1` is the uncontended
//!   case. Throughput is requests per second. Each strategy is called as its own type (what is
//!   measured is the strategy's code); `lock_free_via_any_strategy/1` adds the enum dispatch of
//!   `AnyStrategy`, through which the scenario runner calls strategies.
//! - `acquire_complete/parking_lot_reference/<tasks>`: the same bookkeeping as `lock_free`'s fast
//!   path (ticket rotation over the pool, the policy's expiry check, counting the success) under
//!   one `parking_lot::Mutex`, through the same trait and harness: on two cores, the practical
//!   limit the lock-free design is measured against.
//! - `refresh/<strategy>`: a batch of 64 tasks × 16 requests against a pool whose every token has
//!   expired, with a token endpoint that answers at once (in process): each batch refreshes every
//!   credential (and persists the new tokens to an in-memory `locked` store) while the load goes on.
//!
//! Tasks never yield between requests: with zero modelled costs a request is pure CPU work, and on
//! a two-worker runtime "64 concurrent tasks" means two threads running them, interleaving only
//! where a strategy makes a task wait (a contended async lock, a queue, a refresh).

#[path = "common/pool.rs"]
mod pool;
#[path = "common/reference.rs"]
mod reference;

use credpool::model::Outcome;
use credpool::strategy::global_mutex::GlobalMutex;
use credpool::strategy::lock_free::LockFree;
use credpool::strategy::queue_pool::QueuePool;
use credpool::strategy::rwlock::RwLockStrategy;
use credpool::strategy::sharded::Sharded;
use credpool::strategy::{CredentialManager, Request, StrategyName};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use pool::{expired_env, healthy_env, CREDENTIALS};
use reference::ParkingLotReference;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent tasks per case; 1 is the uncontended case.
const TASKS: [usize; 5] = [1, 2, 8, 64, 1024];
const MODEL: &str = "gemini-3-pro-preview";
/// The refresh batch: this many tasks, each making this many requests.
const REFRESH_TASKS: usize = 64;
const REFRESH_REQUESTS_PER_TASK: usize = 16;

/// The benchmark runtime: multi-threaded, two workers (the machines this targets have two cores).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `tasks` tasks each run `rounds` acquire + complete on `manager`; returns the time from the
/// moment every task is ready to the moment the last one is done. Task `i` is user `i` (the
/// `sharded` key) and keeps one `Request` for all its rounds.
async fn run_tasks<M: CredentialManager>(manager: Arc<M>, tasks: usize, rounds: u64) -> Duration {
    let gate = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (manager, gate) = (manager.clone(), gate.clone());
            tokio::spawn(async move {
                let request = Request::new(i as u64, i as u32, MODEL);
                gate.wait().await;
                for _ in 0..rounds {
                    let lease = manager.acquire(&request).await.expect("a credential");
                    manager
                        .complete(lease, &request, Outcome::Success)
                        .await
                        .expect("completed");
                }
            })
        })
        .collect();
    let start = Instant::now();
    gate.wait().await;
    for h in handles {
        h.await.expect("a benchmark task panicked");
    }
    start.elapsed()
}

/// Benchmarks `manager` with `tasks` concurrent tasks as `<group>/<function>/<tasks>`.
fn bench_tasks<M: CredentialManager>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    function: &str,
    manager: M,
    tasks: usize,
) {
    let manager = Arc::new(manager);
    group.bench_function(BenchmarkId::new(function, tasks), |b| {
        b.iter_custom(|rounds| rt.block_on(run_tasks(manager.clone(), tasks, rounds)))
    });
}

/// Each strategy is benchmarked as its own type, so what is measured is the strategy's code;
/// `lock_free_via_any_strategy` adds the cost of `AnyStrategy`'s dispatch (how the scenario
/// runner calls strategies), uncontended.
fn acquire_complete(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("acquire_complete");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20);
    for &tasks in &TASKS {
        group.throughput(Throughput::Elements(tasks as u64));
        for &name in StrategyName::DESIGNS {
            let env = healthy_env();
            let function = name.as_str();
            match name {
                StrategyName::GlobalMutex => bench_tasks(&mut group, &rt, function, GlobalMutex::new(env), tasks),
                StrategyName::Rwlock => bench_tasks(&mut group, &rt, function, RwLockStrategy::new(env), tasks),
                StrategyName::QueuePool => bench_tasks(&mut group, &rt, function, QueuePool::new(env), tasks),
                StrategyName::Sharded => bench_tasks(&mut group, &rt, function, Sharded::new(env), tasks),
                StrategyName::LockFree => bench_tasks(&mut group, &rt, function, LockFree::new(env), tasks),
                // A modelled shared pool with no round trip: the strategy's own code (the round trip
                // to a real Redis is `benches/fleet.rs`'s).
                StrategyName::Fleet => bench_tasks(
                    &mut group,
                    &rt,
                    function,
                    credpool::strategy::fleet::Fleet::modelled(env, Duration::ZERO),
                    tasks,
                ),
                StrategyName::AsShipped => unreachable!("DESIGNS excludes the replica of the shipped code"),
            }
        }
        let reference = ParkingLotReference::new(healthy_env());
        bench_tasks(&mut group, &rt, "parking_lot_reference", reference, tasks);
        if tasks == 1 {
            let any = StrategyName::LockFree.build(healthy_env());
            bench_tasks(&mut group, &rt, "lock_free_via_any_strategy", any, tasks);
        }
    }
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("refresh");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
        .throughput(Throughput::Elements((REFRESH_TASKS * REFRESH_REQUESTS_PER_TASK) as u64));
    for &name in StrategyName::DESIGNS {
        group.bench_function(name.as_str(), |b| {
            b.iter_custom(|batches| {
                let mut total = Duration::ZERO;
                for _ in 0..batches {
                    // A fresh pool of expired tokens per batch, built outside the timing.
                    let manager = Arc::new(name.build(expired_env()));
                    total += rt.block_on(run_tasks(
                        manager.clone(),
                        REFRESH_TASKS,
                        REFRESH_REQUESTS_PER_TASK as u64,
                    ));
                    assert_eq!(
                        manager.stats().refreshes,
                        CREDENTIALS as u64,
                        "{name}: every expired credential is refreshed exactly once per batch"
                    );
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, acquire_complete, refresh);
criterion_main!(benches);
