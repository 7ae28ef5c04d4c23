//! "Now" for the policy, on the virtual or the wall clock.
//!
//! The pure model takes epoch milliseconds. A [`Clock`] maps tokio's monotonic `Instant` onto a
//! fixed epoch origin: under the paused clock of a virtual run, time moves only when every task
//! waits, and a run is repeatable to the last digit; on the wall clock it is real time.
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
}

impl Clock {
    /// A clock that reads `origin_epoch_ms` now and advances with tokio's clock.
    pub fn starting_at(origin_epoch_ms: EpochMs) -> Clock {
        Clock {
            origin_epoch_ms,
            origin: Instant::now(),
            scale: 1,
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

    /// A clock at the real current time.
    pub fn wall() -> Clock {
        Clock::starting_at(chrono::Utc::now().timestamp_millis())
    }

    pub fn now_ms(&self) -> EpochMs {
        self.at(Instant::now())
    }

    /// The epoch time of `instant` on this clock, so one clock read can serve both a latency
    /// measurement and the policy's "now" (a read costs about 23 ns on the project's machines,
    /// as much as the whole `lock_free` selection).
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
}
