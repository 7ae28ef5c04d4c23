//! The scheduler-lag probe: how late the runtime fires a timer, sampled all through a real-time
//! run.
//!
//! Every request, the mock upstream and the load generator of a real-time run share one runtime
//! of two worker threads on a shared machine. When they (or anything else on the machine) keep
//! the CPUs busy, every timer fires late and every task is polled late, and the latencies measured
//! grow by the harness's own delay. The probe is a task due every [`PROBE_PERIOD`] on a fixed
//! schedule; each wake records how late it came against that schedule (a wake that falls behind
//! is not rescheduled from "now", so a stall of the runtime is counted in full, once per period
//! it covers). An idle runtime fires it within about a millisecond (tokio's timer resolution);
//! a saturated one shows its lag here.

use super::histogram::LatencyHistogram;
use crate::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often the probe is due: 200 wakes a second, each recording one histogram sample.
pub const PROBE_PERIOD: Duration = Duration::from_millis(5);

/// A running probe; [`TimerLagProbe::stop`] returns what it measured.
pub struct TimerLagProbe {
    lags: Arc<Mutex<LatencyHistogram>>,
    task: tokio::task::JoinHandle<()>,
}

impl TimerLagProbe {
    /// Starts the probe on the current runtime (real time: on a paused clock it would only
    /// measure 0).
    pub fn start() -> TimerLagProbe {
        let lags = Arc::new(Mutex::new(LatencyHistogram::default()));
        let task = {
            let lags = lags.clone();
            tokio::spawn(async move {
                let mut due = Instant::now() + PROBE_PERIOD;
                loop {
                    tokio::time::sleep_until(due).await;
                    lags.lock().record(Instant::now().saturating_duration_since(due));
                    due += PROBE_PERIOD;
                }
            })
        };
        TimerLagProbe { lags, task }
    }

    /// Stops the probe: each wake's lag against its schedule.
    pub fn stop(self) -> LatencyHistogram {
        self.task.abort();
        self.lags.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_probe_samples_once_per_period_and_counts_a_stall_in_full() {
        let probe = TimerLagProbe::start();
        tokio::time::sleep(PROBE_PERIOD * 10 + PROBE_PERIOD / 2).await;
        // A stall: the clock jumps 20 periods with no timer fired meanwhile, then the probe
        // catches up while the test waits half a period more.
        tokio::time::advance(PROBE_PERIOD * 20).await;
        tokio::time::sleep(PROBE_PERIOD / 2).await;
        let lags = probe.stop();
        // 10 wakes on time, then the 20 slots the stall covered, each late by what was left of it.
        assert!(lags.count() >= 30, "{} wakes", lags.count());
        assert_eq!(lags.min_ms(), 0.0);
        let stall_ms = (PROBE_PERIOD * 20).as_secs_f64() * 1e3;
        assert!(lags.max_ms() >= stall_ms - 5.0, "max lag {} ms", lags.max_ms());
    }
}
