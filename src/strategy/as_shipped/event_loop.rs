//! The shipped proxy's one thread: a Python asyncio event loop runs one piece of work at a time.
//!
//! **The model.** Every local step of the shipped code (get_valid_credential's own work, reading
//! and parsing `accounts.toml`, dumping it, writing it, a log line, building an HTTP client) runs
//! *on* the loop: a request takes a [`Turn`] on it (a FIFO mutex) and spends the step's cost
//! holding it, so while one request parses a file, no other request of the process does anything.
//! Code with no `await` in between runs in one turn; at an `await` (a file operation through
//! `aiofiles`, a contended lock, the network) the request gives the loop up and queues again behind
//! every request that is ready, as an asyncio task does: steps of concurrent requests interleave
//! at exactly those points. Only waits on the network (the token endpoint, the upstream API) and
//! on locks leave the loop free.
//!
//! **Why a mutex and not a read-write lock** (where ordinary steps would share the loop and only
//! the 31 ms client build would take it exclusively): CPython runs one bytecode at a time, so two
//! requests parsing TOML take twice as long as one, not as long. The measurements on the real code
//! say the same: 100 routed requests need about 100 × (state read + state update) of wall time
//! (131 req/s), which is what a serial loop gives, not the storage lock alone (whose 100 updates
//! would allow about 160 req/s).
//!
//! **What it overstates.** `aiofiles` reads run in a thread pool, so part of a measured 0.57 ms
//! file read leaves the loop free; charging all of it to the loop makes the model slightly slower
//! than the real process under contention.

use crate::costs::{Costs, Step};

/// One process' event loop.
#[derive(Debug)]
pub struct EventLoop {
    /// The thread. A tokio mutex because a step holds it while its cost is spent (an await), and
    /// because its waiters queue first-come first-served, as asyncio's ready queue does.
    thread: tokio::sync::Mutex<()>,
    costs: Costs,
}

impl EventLoop {
    pub fn new(costs: Costs) -> Self {
        EventLoop {
            thread: tokio::sync::Mutex::new(()),
            costs,
        }
    }

    /// Waits for the loop (behind every request already waiting) and holds it until the turn is
    /// dropped: the code between two `await`s.
    pub async fn enter(&self) -> Turn<'_> {
        Turn {
            _thread: self.thread.lock().await,
            costs: &self.costs,
        }
    }

    /// One turn: spends `step`'s cost, then does `effect` (the step's visible result: bytes read,
    /// a file renamed) before giving the loop up.
    pub async fn run<T>(&self, step: Step, effect: impl FnOnce() -> T) -> T {
        let turn = self.enter().await;
        turn.spend(step).await;
        effect()
    }
}

/// Holding the loop: no other request of the process runs until this is dropped.
pub struct Turn<'a> {
    _thread: tokio::sync::MutexGuard<'a, ()>,
    costs: &'a Costs,
}

impl Turn<'_> {
    /// Spends `step`'s cost on the loop.
    pub async fn spend(&self, step: Step) {
        self.costs.charge(step).await;
    }

    /// Spends `step`'s cost `times` times (a burst of log lines).
    pub async fn repeat(&self, step: Step, times: u32) {
        for _ in 0..times {
            self.costs.charge(step).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn steps_of_concurrent_requests_run_one_at_a_time() {
        let costs = Costs {
            toml_parse: Duration::from_millis(10),
            ..Costs::default()
        };
        let event_loop = Arc::new(EventLoop::new(costs));
        let start = Instant::now();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let l = event_loop.clone();
                tokio::spawn(async move { l.run(Step::TomlParse, Instant::now).await })
            })
            .collect();
        let mut ends = Vec::new();
        for t in tasks {
            ends.push((t.await.unwrap() - start).as_millis());
        }
        ends.sort();
        assert_eq!(ends, vec![10, 20, 30], "three 10 ms parses take 30 ms, not 10");
    }
}
