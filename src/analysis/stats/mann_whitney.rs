//! The two-sided Mann-Whitney U test of two independent samples (here: one figure per
//! repetition of OLD and of NEW).
//!
//! `U` is the first sample's statistic, `R₁ - n₁(n₁+1)/2` with mid-ranks for ties (as
//! `scipy.stats.mannwhitneyu` reports it). The p-value is:
//! - **exact** when there are no ties and `n₁ + n₂ ≤ EXACT_MAX_TOTAL`: `2 · P(U ≥ max(U₁, U₂))`
//!   under the null, from the exact distribution of `U` (the coefficients of the Gaussian
//!   binomial `[n₁+n₂ choose n₁]_q`, computed in `i128`, exact to the last count);
//! - **asymptotic** otherwise: the normal approximation with the tie-corrected variance
//!   `n₁n₂/12 · ((n+1) - Σ(t³-t)/(n(n-1)))` and a continuity correction of 0.5.
//!
//! Both agree with scipy's `method="exact"` and `method="asymptotic"` (the fixtures in
//! `tests/fixtures/mann_whitney.json`, written by `scripts/mann_whitney_fixtures.py`).

use super::normal;

/// Largest `n₁ + n₂` for which the exact distribution is used (C(100, 50) ≈ 1e29 fits in i128).
pub const EXACT_MAX_TOTAL: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Exact,
    Asymptotic,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// `U` of the first sample.
    pub u: f64,
    /// Two-sided.
    pub p_value: f64,
    pub method: Method,
}

/// The test with the method chosen as the module comment says. `None` if a sample is empty.
pub fn test(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let ranked = rank(x, y)?;
    let method = if !ranked.ties && x.len() + y.len() <= EXACT_MAX_TOTAL {
        Method::Exact
    } else {
        Method::Asymptotic
    };
    Some(with_ranks(&ranked, x.len(), y.len(), method))
}

/// The test with a given method (the exact one refuses ties and large samples: `None`).
pub fn test_with(x: &[f64], y: &[f64], method: Method) -> Option<MannWhitney> {
    let ranked = rank(x, y)?;
    if method == Method::Exact && (ranked.ties || x.len() + y.len() > EXACT_MAX_TOTAL) {
        return None;
    }
    Some(with_ranks(&ranked, x.len(), y.len(), method))
}

struct Ranked {
    /// Sum of the first sample's mid-ranks.
    r1: f64,
    /// Σ(t³ - t) over the groups of tied values.
    tie_term: f64,
    ties: bool,
}

fn rank(x: &[f64], y: &[f64]) -> Option<Ranked> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut r1, mut tie_term, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Positions i..=j (0-based) share the mid-rank of ranks i+1..=j+1.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        r1 += mid * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    Some(Ranked {
        r1,
        tie_term,
        ties: tie_term > 0.0,
    })
}

fn with_ranks(r: &Ranked, n1: usize, n2: usize, method: Method) -> MannWhitney {
    let (a, b) = (n1 as f64, n2 as f64);
    let u1 = r.r1 - a * (a + 1.0) / 2.0;
    let u = u1.max(a * b - u1);
    let p = match method {
        Method::Exact => 2.0 * exact_sf(u.round() as usize, n1, n2),
        Method::Asymptotic => {
            let n = a + b;
            let var = a * b / 12.0 * ((n + 1.0) - r.tie_term / (n * (n - 1.0)));
            if var <= 0.0 {
                // Every value equal: no evidence of any difference.
                1.0
            } else {
                2.0 * normal::sf((u - a * b / 2.0 - 0.5) / var.sqrt())
            }
        }
    };
    MannWhitney {
        u: u1,
        p_value: p.clamp(0.0, 1.0),
        method,
    }
}

/// `P(U ≥ u)` under the null for sample sizes `m`, `n`, no ties.
fn exact_sf(u: usize, m: usize, n: usize) -> f64 {
    let counts = u_distribution(m, n);
    let total: i128 = counts.iter().sum();
    let upper: i128 = counts.iter().skip(u).sum();
    upper as f64 / total as f64
}

/// How many of the C(m+n, m) orderings give `U = k`, for `k` in `0..=m·n`: the coefficients of
/// `∏_{i=1..m} (1 - q^{n+i}) / (1 - q^i)`, built one factor at a time (each step's result is a
/// Gaussian binomial, whose coefficients are non-negative integers).
fn u_distribution(m: usize, n: usize) -> Vec<i128> {
    let max = m * n;
    let mut c = vec![0i128; max + 1];
    c[0] = 1;
    for i in 1..=m {
        // Multiply by (1 - q^{n+i}).
        for k in (n + i..=max).rev() {
            c[k] -= c[k - n - i];
        }
        // Divide by (1 - q^i): b[k] = a[k] + b[k - i].
        for k in i..=max {
            c[k] += c[k - i];
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_distribution_counts_every_ordering() {
        // m = n = 2: U takes 0,1,2,2,3,4 over the 6 orderings.
        assert_eq!(u_distribution(2, 2), vec![1, 1, 2, 1, 1]);
        for (m, n) in [(3, 4), (5, 5), (10, 7), (50, 50)] {
            let c = u_distribution(m, n);
            let total: i128 = c.iter().sum();
            let binom = (1..=m as i128).fold(1i128, |acc, k| acc * (n as i128 + k) / k);
            assert_eq!(total, binom, "m={m} n={n}");
            assert!(c.iter().all(|&v| v >= 0));
            // Symmetric about m·n/2.
            assert!(c.iter().eq(c.iter().rev()));
        }
    }

    #[test]
    fn completely_separated_samples_give_the_smallest_p() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        let t = test(&x, &y).unwrap();
        assert_eq!(t.method, Method::Exact);
        assert_eq!(t.u, 0.0);
        // 2 / C(10, 5).
        assert!((t.p_value - 2.0 / 252.0).abs() < 1e-15);
        let same = test(&[3.0, 3.0], &[3.0, 3.0]).unwrap();
        assert_eq!((same.method, same.p_value), (Method::Asymptotic, 1.0));
        assert!(test(&[], &[1.0]).is_none());
    }
}
