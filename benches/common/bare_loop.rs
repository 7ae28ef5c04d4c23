//! The floor of the simulator benchmark (`benches/simulator.rs`, and the profiling harness
//! `examples/simulate.rs`): the plan's arrivals generated lazily on a paused clock, and per
//! request one spawned task doing one sleep (the plan's upstream latency draw, at the runner's
//! virtual-time scale) and one atomic increment. Nothing else: any simulator on this runtime pays
//! at least this much per simulated request.

use credpool::clock::{Clock, VIRTUAL_TIME_SCALE};
use credpool::scenario::arrivals::Arrivals;
use credpool::scenario::plan::Plan;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The bare paused-clock loop over `plan`'s arrivals and upstream latencies.
pub fn bare_loop(plan: &Plan) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let load = plan.load.clone();
    let upstream = Arc::new(plan.upstream.clone());
    let seed = plan.seed;
    rt.block_on(async move {
        let done = Arc::new(AtomicU64::new(0));
        let all_done = Arc::new(tokio::sync::Notify::new());
        let total = load.requests;
        let clock = Clock::scaled(0, VIRTUAL_TIME_SCALE);
        let generator = {
            let (done, all_done) = (done.clone(), all_done.clone());
            tokio::spawn(async move {
                for (n, at) in Arrivals::new(&load, seed).enumerate() {
                    tokio::time::sleep_until(clock.instant_at(at)).await;
                    let latency = clock.spend(upstream.api(n as u64, 0, at).latency);
                    let (done, all_done) = (done.clone(), all_done.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(latency).await;
                        if done.fetch_add(1, Ordering::Relaxed) + 1 == total {
                            all_done.notify_one();
                        }
                    });
                }
            })
        };
        all_done.notified().await;
        generator.await.expect("the generator");
        done.load(Ordering::Relaxed)
    })
}
