//! Little's law on an open load: L = λ W.
//!
//! λ is the measured throughput and W the measured mean latency; L, the time-averaged number of
//! requests in the system, is measured independently by integrating the in-flight count over time.
//! In a steady state the two agree; a system that is still filling up (overload) does not.

use super::Prediction;

pub fn predict(throughput_rps: f64, mean_latency_ms: f64, measured_in_flight: f64) -> Prediction {
    Prediction {
        name: "littles_law.in_flight".into(),
        predicted: throughput_rps * mean_latency_ms / 1e3,
        measured: measured_in_flight,
        unit: "requests".into(),
        basis: "Little's law: mean requests in the system = throughput × mean latency".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn law() {
        let p = super::predict(100.0, 50.0, 5.0);
        assert_eq!(p.predicted, 5.0);
        assert_eq!(p.relative_error(), 0.0);
    }
}
