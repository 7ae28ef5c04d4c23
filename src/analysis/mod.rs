//! Predictions set beside measurements.
//!
//! A prediction is computed from the run's own inputs by a formula that does not look at the
//! latencies it predicts, then compared with them. When the two agree, the measurement and the
//! model explain each other; when they disagree, the report says by how much.
//!
//! - [`fifo`]: a burst through one FIFO lock: the k-th request is served after the sum of the
//!   first k service times (exact for `global_mutex`, and a lower bound on nothing for the others).
//! - [`littles_law`]: an open load in steady state: mean requests in the system = throughput ×
//!   mean latency.
//! - [`stats`]: whether two sets of repetitions differ (Mann-Whitney U, bootstrap, the verdict).
//!
//! Load sweeps (`credpool sweep`, a scenario's `[sweep]`):
//!
//! - [`sweep`]: points, sustainable rate at an SLO, knee and USL fit per strategy;
//! - [`kneedle`]: the knee of a curve (Satopää et al. 2011);
//! - [`usl`]: the Universal Scalability Law and its least-squares fit;
//! - [`mmc`]: the M/M/c queue in closed form (Erlang C), the known answer sweeps are tested against.

pub mod fifo;
pub mod kneedle;
pub mod littles_law;
pub mod mmc;
pub mod stats;
pub mod sweep;
pub mod usl;

use serde::{Deserialize, Serialize};

/// A predicted figure beside the measured one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// What is predicted, e.g. `fifo.latency.max`.
    pub name: String,
    pub predicted: f64,
    pub measured: f64,
    /// `ms`, `requests`, ...
    pub unit: String,
    /// The formula, in words.
    pub basis: String,
}

impl Prediction {
    /// Relative error of the measurement against the prediction.
    pub fn relative_error(&self) -> f64 {
        if self.predicted == 0.0 {
            if self.measured == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (self.measured - self.predicted) / self.predicted
        }
    }
}
