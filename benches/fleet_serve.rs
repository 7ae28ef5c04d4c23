//! The fleet in real time: 1, 2 and 4 `credpool serve --strategy fleet` processes over one
//! `redis-server` and one `group_commit` accounts file (tests/common/fleet.rs), each driven by
//! `CLIENTS_PER_INSTANCE` closed-loop HTTP clients doing lease + complete through the lease API,
//! beside `redis-benchmark` running the acquire script with as many clients against the same
//! Redis, in the same run. Prints pairs per second, the ratio to `redis-benchmark`, and the
//! scaling over one instance.
//!
//! Run: `cargo bench --bench fleet_serve` (short: 2 s per measurement); `CREDPOOL_LONG=1` for
//! 10 s and three alternated rounds. Needs Debian's redis-server package.

#[path = "../tests/common/fleet.rs"]
mod fleet_common;
#[path = "common/redis_benchmark.rs"]
mod redis_benchmark;
#[path = "../tests/common/serve.rs"]
mod serve_common;

use credpool::fleet::server::RedisServer;
use fleet_common::{Fleet, FleetSetup};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS_PER_INSTANCE: usize = 4;
const CALLS_PER_ROTATION: u64 = 100;

fn long() -> bool {
    std::env::var("CREDPOOL_LONG").as_deref() == Ok("1")
}

/// Lease + complete pairs per second over `fleet`'s instances for `time`, and the errors.
async fn drive(fleet: &Arc<Fleet>, time: Duration) -> (f64, u64) {
    let running = fleet.running();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..running.len() * CLIENTS_PER_INSTANCE)
        .map(|c| {
            let (fleet, stop, done, failed) = (fleet.clone(), stop.clone(), done.clone(), failed.clone());
            let i = running[c % running.len()];
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match fleet.call(i).await {
                        Some(_) => done.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tools = RedisServer::available()
        && std::process::Command::new("redis-benchmark")
            .arg("--version")
            .output()
            .is_ok();
    if !tools {
        println!("fleet_serve bench: redis-server or redis-benchmark missing; nothing measured");
        return;
    }
    let (time, rounds) = if long() {
        (Duration::from_secs(10), 3)
    } else {
        (Duration::from_secs(2), 1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = FleetSetup {
        accounts: 8,
        calls_per_rotation: CALLS_PER_ROTATION,
        store: "group_commit",
        ..FleetSetup::default()
    };
    println!(
        "fleet of serve processes (lease + complete over HTTP, group_commit file) vs redis-benchmark (acquire \
         script, same clients, same Redis); {time:?} per measurement, median of {rounds}"
    );
    println!("| instances | clients | fleet pairs/s | redis-benchmark req/s | ratio | fleet scaling vs 1 |");
    println!("|---|---|---|---|---|---|");
    let mut one = None;
    for n in [1usize, 2, 4] {
        let (fleet_rate, redis_rate, errors) = runtime.block_on(async {
            let fleet = Arc::new(Fleet::start(&setup, n).await);
            // Seeds the pool and loads the script (for redis-benchmark too), outside the timing.
            for i in 0..n {
                assert!(fleet.call(i).await.is_some(), "{}", fleet.logs());
            }
            let (mut ours, mut theirs, mut errors) = (Vec::new(), Vec::new(), 0);
            for _ in 0..rounds {
                let (rate, failed) = drive(&fleet, time).await;
                ours.push(rate);
                errors += failed;
                let (port, clients) = (fleet.redis.port(), n * CLIENTS_PER_INSTANCE);
                let requests = if long() { 200_000 } else { 40_000 };
                theirs.push(
                    tokio::task::spawn_blocking(move || {
                        redis_benchmark::acquire_rate(port, "default", clients, requests, CALLS_PER_ROTATION)
                    })
                    .await
                    .unwrap(),
                );
            }
            (median(ours), median(theirs), errors)
        });
        let base = *one.get_or_insert(fleet_rate);
        println!(
            "| {n} | {} | {fleet_rate:.0} | {redis_rate:.0} | {:.3} | {:.2} |{}",
            n * CLIENTS_PER_INSTANCE,
            fleet_rate / redis_rate,
            fleet_rate / base,
            if errors > 0 {
                format!(" {errors} errors")
            } else {
                String::new()
            }
        );
    }
}
