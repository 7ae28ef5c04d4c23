//! When requests arrive, and from which user: generated lazily, one at a time, so a run of ten
//! million requests never holds ten million pending arrivals.

use super::plan::LoadPlan;
use super::spec::Arrival;
use crate::upstream::draw::{self, Stream};
use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

/// The open-load arrival process: intended start times, in order. Borrows its plan (`&LoadPlan`)
/// or shares it (`Arc<LoadPlan>`, for generators whose connections are spawned tasks).
pub struct Arrivals<L: Borrow<LoadPlan>> {
    load: L,
    seed: u64,
    next: u64,
    /// Intended start of the next request, seconds since the start.
    t: f64,
}

impl<L: Borrow<LoadPlan>> Arrivals<L> {
    pub fn new(load: L, seed: u64) -> Self {
        Arrivals {
            load,
            seed,
            next: 0,
            t: 0.0,
        }
    }

    /// The rate at time `t` (seconds), or `None` after the last stage.
    fn rate_at(&self, t: f64) -> Option<(f64, f64)> {
        let mut start = 0.0;
        for &(d, a, b) in &self.load.borrow().stages {
            let len = if d == Duration::MAX {
                f64::INFINITY
            } else {
                d.as_secs_f64()
            };
            // A nanosecond of slack: accumulated 1/rate gaps land just short of a stage's end.
            if t < start + len - 1e-9 {
                let rate = if len.is_finite() && len > 0.0 {
                    a + (b - a) * (t - start) / len
                } else {
                    a
                };
                return Some((rate, start + len));
            }
            start += len;
        }
        None
    }
}

impl<L: Borrow<LoadPlan>> Iterator for Arrivals<L> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.load.borrow().requests {
            return None;
        }
        // Skip stages with no traffic.
        loop {
            let (rate, stage_end) = self.rate_at(self.t)?;
            if rate <= 0.0 {
                self.t = stage_end;
                continue;
            }
            let at = self.t;
            let gap = match self.load.borrow().arrival {
                Arrival::Constant => 1.0 / rate,
                Arrival::Poisson => -(1.0 - draw::uniform(self.seed, Stream::Arrival, self.next)).ln() / rate,
            };
            self.t += gap;
            self.next += 1;
            return Some(Duration::from_secs_f64(at));
        }
    }
}

/// The user who sends request `number`.
pub fn user_of(load: &LoadPlan, seed: u64, number: u64) -> u32 {
    if load.hot_user_share > 0.0 && draw::uniform(seed, Stream::User, number) < load.hot_user_share {
        return 0;
    }
    draw::index(seed, Stream::User, number ^ 0x5555, load.users as u64) as u32
}

/// The model request `number` asks for (in turn through the list).
pub fn model_of(load: &LoadPlan, number: u64) -> Arc<str> {
    load.models[(number % load.models.len() as u64) as usize].clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::spec::LoadModel;

    fn load(stages: Vec<(Duration, f64, f64)>, arrival: Arrival, requests: u64) -> LoadPlan {
        LoadPlan {
            model: LoadModel::Open,
            requests,
            users: 10,
            hot_user_share: 0.0,
            think_time: Duration::ZERO,
            arrival,
            stages,
            models: vec![Arc::from("m")],
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let l = load(vec![(Duration::MAX, 100.0, 100.0)], Arrival::Constant, 5);
        let ts: Vec<u128> = Arrivals::new(&l, 1).map(|d| d.as_millis()).collect();
        assert_eq!(ts, vec![0, 10, 20, 30, 40]);
    }

    #[test]
    fn poisson_has_the_right_mean_rate() {
        let l = load(vec![(Duration::MAX, 200.0, 200.0)], Arrival::Poisson, 20_000);
        let last = Arrivals::new(&l, 7).last().unwrap().as_secs_f64();
        let rate = 20_000.0 / last;
        assert!((rate - 200.0).abs() < 6.0, "rate {rate}");
    }

    #[test]
    fn stages_end_the_run_and_skip_silence() {
        let l = load(
            vec![
                (Duration::from_secs(1), 10.0, 10.0),
                (Duration::from_secs(1), 0.0, 0.0),
                (Duration::from_secs(1), 10.0, 10.0),
            ],
            Arrival::Constant,
            1000,
        );
        let ts: Vec<Duration> = Arrivals::new(&l, 1).collect();
        assert_eq!(ts.len(), 20);
        assert_eq!(ts[10], Duration::from_secs(2));
    }

    #[test]
    fn hot_user_gets_its_share() {
        let mut l = load(vec![], Arrival::Constant, 0);
        l.hot_user_share = 0.8;
        let hot = (0..10_000).filter(|n| user_of(&l, 3, *n) == 0).count();
        assert!((8000..8400).contains(&hot), "{hot}");
    }
}
