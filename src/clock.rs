//! "Now" for the policy, on the virtual or the wall clock.
//!
//! The pure model takes epoch milliseconds. A [`Clock`] maps a monotonic clock onto a fixed epoch
//! origin, from one of two sources:
//!
//! - [`Clock::starting_at`] follows **tokio's clock**. Under the paused clock of a virtual run,
//!   time moves only when every task waits, and a run is repeatable to the last digit. This is
//!   the clock of virtual runs and of tests.
//! - [`Clock::wall`] reads the operating system's **coarse monotonic clock** (on Linux
//!   `CLOCK_MONOTONIC_COARSE`, through the vDSO like any clock, but without reading the CPU's
//!   time-stamp counter: 8-11 ns a read on the project's loaded 2-core machine, against 27-36 ns
//!   for `Instant::now`, measured side by side). It advances in steps of one kernel tick (4 ms
//!   here; 1 to 10 ms depending on the kernel's configuration), far finer than any
//!   decision of the policy (expiry margins of minutes, bans of seconds to hours), and it never
//!   pauses: it is for real-time runs, whose runtime is never paused. Every strategy reads "now"
//!   once or more per request, so this read is on every strategy's hot path.
//!
//! Latencies are measured with tokio's `Instant` directly, never with this clock.

use crate::model::EpochMs;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_epoch_ms: EpochMs,
    origin: Instant,
    source: Source,
}

/// Where [`Clock::now_ms`] reads the time.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// tokio's clock, paused or not.
    Tokio,
    /// The coarse monotonic clock, which read `origin_ms` at the clock's origin.
    Coarse { origin_ms: i64 },
}

impl Clock {
    /// A clock that reads `origin_epoch_ms` now and advances with tokio's clock.
    pub fn starting_at(origin_epoch_ms: EpochMs) -> Clock {
        Clock {
            origin_epoch_ms,
            origin: Instant::now(),
            source: Source::Tokio,
        }
    }

    /// A clock at the real current time, on the coarse monotonic clock (see the module comment).
    pub fn wall() -> Clock {
        Clock {
            origin_epoch_ms: chrono::Utc::now().timestamp_millis(),
            origin: Instant::now(),
            source: Source::Coarse {
                origin_ms: coarse_monotonic_ms(),
            },
        }
    }

    #[inline]
    pub fn now_ms(&self) -> EpochMs {
        match self.source {
            Source::Tokio => self.at(Instant::now()),
            Source::Coarse { origin_ms } => self.origin_epoch_ms + (coarse_monotonic_ms() - origin_ms),
        }
    }

    /// The epoch time of `instant` on this clock (exact; a wall clock's [`now_ms`](Self::now_ms)
    /// may lag it by up to one kernel tick).
    #[inline]
    pub fn at(&self, instant: Instant) -> EpochMs {
        self.origin_epoch_ms + instant.saturating_duration_since(self.origin).as_millis() as EpochMs
    }

    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }
}

/// Milliseconds on the coarse monotonic clock (an arbitrary origin).
#[cfg(target_os = "linux")]
#[inline]
fn coarse_monotonic_ms() -> i64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec, and CLOCK_MONOTONIC_COARSE exists on every Linux
    // since 2.6.32, so the call only writes `t` and cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut t) };
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

/// Elsewhere, the standard monotonic clock stands in for the coarse one.
#[cfg(not(target_os = "linux"))]
fn coarse_monotonic_ms() -> i64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_virtual_clock_follows_the_paused_clock_exactly() {
        let clock = Clock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::sleep(Duration::from_millis(1_234)).await;
        assert_eq!(clock.now_ms(), 2_234);
        assert_eq!(clock.at(clock.origin() + Duration::from_secs(5)), 6_000);
    }

    #[test]
    fn a_wall_clock_reads_real_time_and_never_goes_back() {
        let clock = Clock::wall();
        let epoch = chrono::Utc::now().timestamp_millis();
        let first = clock.now_ms();
        // The origin was taken just before `epoch`; the coarse clock lags by at most a tick.
        assert!((first - epoch).abs() < 1_000, "{first} vs {epoch}");
        std::thread::sleep(Duration::from_millis(30));
        let later = clock.now_ms();
        assert!(
            later - first >= 20,
            "30 ms of real time moved the clock {} ms",
            later - first
        );
        assert!(clock.now_ms() >= later);
    }
}
