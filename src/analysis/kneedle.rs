//! Kneedle: where a curve bends (Satopää, Albrecht, Irwin and Raghavan, "Finding a 'Kneedle' in a
//! Haystack: Detecting Knee Points in System Behavior", ICDCS workshops 2011).
//!
//! The offline algorithm of the paper, without its optional smoothing step (a sweep has a handful
//! of points, each already an aggregate of thousands of requests):
//!
//! 1. normalise x and y to the unit square;
//! 2. turn the curve into a concave increasing one (a latency curve is convex increasing: it is
//!    mirrored through the centre of the square, `(x, y) -> (1 - x, 1 - y)`);
//! 3. take the difference curve `d = y - x`, the height above the diagonal;
//! 4. at each local maximum `i` of `d` set a threshold `d[i] - S × mean step of x`;
//! 5. the local maximum is a knee if `d` falls below its threshold before the next local maximum.
//!
//! `S`, the sensitivity, is how much of a drop (in mean x steps) counts: smaller finds knees
//! sooner, larger is more conservative. The paper uses S = 1, and so does credpool; the value is
//! always reported beside the knee. For a latency-against-load curve the difference is
//! `x - y`: largest where latency is still low relative to the load, just before it climbs.

/// Which way the curve bends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Rises quickly, then flattens (the paper's worked example, throughput against load).
    ConcaveIncreasing,
    /// Flat, then rises steeply (latency against offered load).
    ConvexIncreasing,
}

/// The sensitivity credpool uses (the paper's).
pub const DEFAULT_SENSITIVITY: f64 = 1.0;

/// The knees of `(x, y)` (x strictly increasing), as indices into the input, in order of x.
/// Fewer than three points, or a flat x or y, have none.
pub fn knees(x: &[f64], y: &[f64], shape: Shape, sensitivity: f64) -> Vec<usize> {
    let n = x.len().min(y.len());
    if n < 3 {
        return Vec::new();
    }
    let unit = |v: &[f64]| -> Option<Vec<f64>> {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (hi > lo && hi.is_finite() && lo.is_finite()).then(|| v.iter().map(|a| (a - lo) / (hi - lo)).collect())
    };
    let (Some(xn), Some(yn)) = (unit(&x[..n]), unit(&y[..n])) else {
        return Vec::new();
    };
    // In the concave frame, point k of the transformed curve is input point `index(k)`.
    let mirrored = shape == Shape::ConvexIncreasing;
    let index = |k: usize| if mirrored { n - 1 - k } else { k };
    let (u, v): (Vec<f64>, Vec<f64>) = if mirrored {
        (
            xn.iter().rev().map(|a| 1.0 - a).collect(),
            yn.iter().rev().map(|a| 1.0 - a).collect(),
        )
    } else {
        (xn, yn)
    };
    let d: Vec<f64> = u.iter().zip(&v).map(|(a, b)| b - a).collect();
    let mean_step = (u[n - 1] - u[0]) / (n - 1) as f64;
    let is_max = |k: usize| k > 0 && k + 1 < n && d[k] > d[k - 1] && d[k] >= d[k + 1];
    let mut found = Vec::new();
    let mut candidate: Option<(usize, f64)> = None;
    for (k, &dk) in d.iter().enumerate().skip(1) {
        if let Some((at, threshold)) = candidate {
            if dk < threshold {
                found.push(index(at));
                candidate = None;
            }
        }
        if is_max(k) {
            candidate = Some((k, dk - sensitivity * mean_step));
        }
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hockey_stick_bends_at_its_corner() {
        // Latency flat at 10 until load 5, then climbing steeply.
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&l| if l <= 5.0 { 10.0 } else { 10.0 + 100.0 * (l - 5.0) })
            .collect();
        assert_eq!(knees(&x, &y, Shape::ConvexIncreasing, 1.0), vec![4]);
    }

    #[test]
    fn a_straight_line_has_no_knee() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        assert!(knees(&x, &x, Shape::ConcaveIncreasing, 1.0).is_empty());
        assert!(knees(&x, &x, Shape::ConvexIncreasing, 1.0).is_empty());
        assert!(knees(&x[..2], &x[..2], Shape::ConvexIncreasing, 1.0).is_empty());
    }

    #[test]
    fn higher_sensitivity_is_more_conservative() {
        // A mild bend: a large S asks for a bigger drop than the curve gives.
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| v * v).collect();
        assert!(!knees(&x, &y, Shape::ConvexIncreasing, 0.5).is_empty());
        assert!(knees(&x, &y, Shape::ConvexIncreasing, 10.0).is_empty());
    }
}
