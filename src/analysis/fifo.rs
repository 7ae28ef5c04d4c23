//! The exact FIFO result for a burst through one lock.
//!
//! Every request arrives at t = 0 and the lock serves them one at a time in arrival order, so the
//! k-th request acquires after `s_1 + ... + s_k`, where `s_j` is the time request j held the lock
//! (its service time). The prediction uses only the service times; the measured acquisition
//! latencies are compared against it. Any idle gap, reordering or extra wait shows up as an error.

use super::Prediction;
use std::time::Duration;

/// `service`: (acquired at, service time, measured acquisition latency including its own
/// service) per request.
pub fn predict(service: &[(Duration, Duration, Duration)]) -> Vec<Prediction> {
    if service.is_empty() {
        return Vec::new();
    }
    let mut served: Vec<_> = service.to_vec();
    served.sort_by_key(|(at, _, _)| *at);
    let mut cumulative = Duration::ZERO;
    let mut predicted = Vec::with_capacity(served.len());
    for (_, s, _) in &served {
        cumulative += *s;
        predicted.push(cumulative.as_secs_f64() * 1e3);
    }
    let measured: Vec<f64> = served.iter().map(|(_, _, latency)| latency.as_secs_f64() * 1e3).collect();
    let n = predicted.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let basis = "burst through one FIFO lock: k-th request acquires after the sum of the first k service times";
    vec![
        Prediction { name: "fifo.acquire.min".into(), predicted: min(&predicted), measured: min(&measured), unit: "ms".into(), basis: basis.into() },
        Prediction { name: "fifo.acquire.mean".into(), predicted: mean(&predicted), measured: mean(&measured), unit: "ms".into(), basis: basis.into() },
        Prediction { name: "fifo.acquire.max".into(), predicted: max(&predicted), measured: max(&measured), unit: "ms".into(), basis: basis.into() },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_service_matches_the_sum() {
        let ms = Duration::from_millis;
        // Three requests of 30 ms served back to back: acquired at 30, 60, 90.
        let service = vec![(ms(30), ms(30), ms(30)), (ms(60), ms(30), ms(60)), (ms(90), ms(30), ms(90))];
        let p = predict(&service);
        assert_eq!(p[2].predicted, 90.0);
        assert_eq!(p[2].measured, 90.0);
        assert_eq!(p[1].predicted, 60.0);
        // A gap (the third waited 10 ms more than FIFO explains) shows up as an error.
        let gap = vec![(ms(30), ms(30), ms(30)), (ms(60), ms(30), ms(60)), (ms(100), ms(30), ms(100))];
        let p = predict(&gap);
        assert_eq!(p[2].measured - p[2].predicted, 10.0);
    }
}
