//! "Now" for the policy, on the virtual or the wall clock.
//!
//! The pure model takes epoch milliseconds. A [`Clock`] maps a monotonic clock onto a fixed epoch
//! origin, from one of two sources:
//!
//! - [`Clock::starting_at`] and [`Clock::scaled`] follow **tokio's clock**. Under the paused clock
//!   of a virtual run, time moves only when every task waits, and a run is repeatable to the last
//!   digit. This is the clock of virtual runs and of tests.
//! - [`Clock::wall`] reads the policy's "now" from the operating system's **coarse monotonic
//!   clock** (on Linux `CLOCK_MONOTONIC_COARSE`, through the vDSO like any clock, but without
//!   reading the CPU's time-stamp counter: 8-11 ns a read on the project's loaded 2-core machine,
//!   against 27-36 ns for `Instant::now`, measured side by side). It advances in steps of one
//!   kernel tick (4 ms here; 1 to 10 ms depending on the kernel's configuration), far finer than
//!   any decision of the policy (expiry margins of minutes, bans of seconds to hours), and it
//!   never pauses: it is for real-time runs, whose runtime is never paused. Every strategy reads
//!   "now" once or more per request, so this read is on every strategy's hot path. Latencies are
//!   measured with tokio's `Instant` ([`Clock::elapsed`], [`Clock::measured`]), never with it.
//!
//! **Resolution.** tokio's timer has millisecond resolution: a sleep ends on the next whole
//! millisecond, so a modelled 0.03 ms step would take 1 ms. A virtual run therefore runs *slowed
//! down* by [`VIRTUAL_TIME_SCALE`]: every modelled duration it spends (a step's cost, an upstream
//! latency, an arrival time, a think time, the watchdog) is spent ×1000 on the paused clock
//! ([`Clock::spend`]), and every duration it measures is divided back ([`Clock::measured`],
//! [`Clock::elapsed`], [`Clock::at`]). A modelled microsecond is then a tokio millisecond, costs
//! down to 1 µs are exact, and a whole-millisecond model gives exactly the figures it gave at
//! scale 1. The paused clock costs no wall time either way.

use crate::model::EpochMs;
use std::time::Duration;
use tokio::time::Instant;

/// How much slower than modelled time a virtual run spends tokio time (see the module comment).
pub const VIRTUAL_TIME_SCALE: u32 = 1000;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_epoch_ms: EpochMs,
    origin: Instant,
    /// tokio time spent per unit of modelled time: 1 on the wall clock and in tests,
    /// [`VIRTUAL_TIME_SCALE`] in virtual runs.
    scale: u32,
    source: Source,
}

/// Where [`Clock::now_ms`] reads the time.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// tokio's clock, paused or not.
    Tokio,
    /// The coarse monotonic clock, which read `origin_ms` at the clock's origin (scale 1).
    Coarse { origin_ms: i64 },
}

impl Clock {
    /// A clock that reads `origin_epoch_ms` now and advances with tokio's clock.
    pub fn starting_at(origin_epoch_ms: EpochMs) -> Clock {
        Clock {
            origin_epoch_ms,
            origin: Instant::now(),
            scale: 1,
            source: Source::Tokio,
        }
    }

    /// A clock for a virtual run: modelled time is tokio time divided by `scale`.
    pub fn scaled(origin_epoch_ms: EpochMs, scale: u32) -> Clock {
        Clock {
            scale: scale.max(1),
            ..Clock::starting_at(origin_epoch_ms)
        }
    }

    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// The tokio time to spend for a modelled duration `d`.
    pub fn spend(&self, d: Duration) -> Duration {
        d.saturating_mul(self.scale)
    }

    /// The modelled duration of a tokio duration `d` measured on this clock.
    pub fn measured(&self, d: Duration) -> Duration {
        // Scale 1 (the wall clock, benchmarks) skips the division: `at` is on lock_free's hot path.
        if self.scale == 1 {
            d
        } else {
            d / self.scale
        }
    }

    /// A clock at the real current time; its "now" is read from the coarse monotonic clock (see the
    /// module comment).
    pub fn wall() -> Clock {
        Clock {
            source: Source::Coarse {
                origin_ms: coarse_monotonic_ms(),
            },
            ..Clock::starting_at(chrono::Utc::now().timestamp_millis())
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
        self.origin_epoch_ms
            + self
                .measured(instant.saturating_duration_since(self.origin))
                .as_millis() as EpochMs
    }

    /// Modelled time since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.measured(self.origin.elapsed())
    }

    /// The tokio instant at which modelled time `at` (since the start) is reached.
    pub fn instant_at(&self, at: Duration) -> Instant {
        self.origin + self.spend(at)
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
    async fn a_scaled_clock_keeps_microseconds_that_tokio_would_round_to_milliseconds() {
        let plain = Clock::starting_at(0);
        tokio::time::sleep(Duration::from_micros(30)).await;
        assert_eq!(
            plain.elapsed(),
            Duration::from_millis(1),
            "tokio's timer rounds up to 1 ms"
        );

        let clock = Clock::scaled(1_000, VIRTUAL_TIME_SCALE);
        for _ in 0..3 {
            tokio::time::sleep(clock.spend(Duration::from_micros(30))).await;
        }
        assert_eq!(clock.elapsed(), Duration::from_micros(90));
        tokio::time::sleep(clock.spend(Duration::from_millis(2))).await;
        assert_eq!(clock.now_ms(), 1_002);
        assert_eq!(
            clock.measured(clock.spend(Duration::from_nanos(570_000))),
            Duration::from_micros(570)
        );
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
