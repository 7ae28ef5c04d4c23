//! The fleet's throughput against a real Redis, beside Redis's own tool in the same run.
//!
//! For 1, 2 and 4 clients: `redis-benchmark -c N` running the acquire script itself (`EVALSHA`,
//! the same keys and arguments a `fleet` acquisition sends), then N `fleet` instances (each its
//! own `RedisPool`, one connection each) doing acquire + complete in a closed loop, one request
//! outstanding per instance as `redis-benchmark` keeps one per client. Rounds alternate the two
//! so both see the same machine; the medians and their ratio are printed (issue 16's goal:
//! fleet ≥ 0.5 × redis-benchmark). A success is not persisted (`record_outcomes` off), so
//! acquire + complete is one script round trip plus the strategy's own work.
//!
//! Run: `cargo bench --bench fleet` (needs `redis-server` and `redis-benchmark`, Debian's
//! redis-server package; without them it says so and measures nothing).

// Only its healthy pool: the rest serves the strategy benches.
#[allow(dead_code)]
#[path = "common/pool.rs"]
mod pool;
#[path = "common/redis_benchmark.rs"]
mod redis_benchmark;

use credpool::fleet::server::RedisServer;
use credpool::fleet::{RedisPool, RedisTimeouts};
use credpool::model::Outcome;
use credpool::strategy::fleet::{Fleet, FleetOptions};
use credpool::strategy::{CredentialManager, Request};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const MODEL: &str = "gemini-3-pro-preview";
const REQUESTS: usize = 20_000;
const ROUNDS: usize = 3;

/// `clients` fleet instances doing acquire + complete: requests per second.
async fn fleet(url: &str, pool: &str, clients: usize) -> f64 {
    let instances: Vec<Arc<Fleet>> = (0..clients)
        .map(|i| {
            let shared = RedisPool::open(url, pool, RedisTimeouts::default()).expect("open");
            let options = FleetOptions {
                owner: Some(format!("bench{i}")),
                ..FleetOptions::default()
            };
            Arc::new(Fleet::new(pool::healthy_env(), Arc::new(shared), options))
        })
        .collect();
    // Connect and seed outside the timing.
    for inst in &instances {
        let req = Request::new(0, 0, MODEL);
        let lease = inst.acquire(&req).await.expect("acquire");
        inst.complete(lease, &req, Outcome::Success).await.unwrap();
    }
    let per_client = REQUESTS / clients;
    let started = Instant::now();
    let tasks: Vec<_> = instances
        .iter()
        .map(|inst| {
            let inst = inst.clone();
            tokio::spawn(async move {
                for n in 0..per_client {
                    let req = Request::new(n as u64, 0, MODEL);
                    let lease = inst.acquire(&req).await.expect("acquire");
                    inst.complete(lease, &req, Outcome::Success).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    assert!(
        instances.iter().all(|i| i.stats().degraded_entries == 0),
        "an instance went degraded"
    );
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing else we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tools = RedisServer::available() && Command::new("redis-benchmark").arg("--version").output().is_ok();
    if !tools {
        println!(
            "fleet bench: redis-server or redis-benchmark missing (Debian's redis-server package); nothing measured"
        );
        return;
    }
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("fleet vs redis-benchmark, acquire script (EVALSHA), {REQUESTS} requests per measurement, median of {ROUNDS} alternated rounds");
    println!("| clients | redis-benchmark req/s | fleet acquire+complete req/s | ratio |");
    println!("|---|---|---|---|");
    for clients in [1usize, 2, 4] {
        let pool = format!("bench{clients}");
        let (mut baseline, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            // The fleet round first also seeds the pool and loads the script for redis-benchmark.
            ours.push(runtime.block_on(fleet(&server.url(), &pool, clients)));
            baseline.push(redis_benchmark::acquire_rate(
                server.port(),
                &pool,
                clients,
                REQUESTS,
                credpool::model::Policy::default().calls_per_rotation,
            ));
        }
        let (b, o) = (median(baseline), median(ours));
        println!("| {clients} | {b:.0} | {o:.0} | {:.2} |", o / b);
    }
}
