//! The M/M/c queue in closed form: Poisson arrivals at rate λ, `c` servers, exponential service
//! at rate μ each, one FIFO queue. It is what `queue_pool` is under an open Poisson load whose only
//! cost is an exponential upstream call (each credential a server, held for the whole call), so
//! the sweep's measurements can be checked against exact answers.
//!
//! - Erlang C, the chance an arrival waits: with `a = λ / μ` and `ρ = a / c < 1`,
//!   `C = (a^c / c!) / (1 - ρ) / (Σ_{k<c} a^k / k! + (a^c / c!) / (1 - ρ))`.
//! - The wait W is 0 with probability `1 - C` and otherwise exponential with rate `θ = cμ - λ`.
//! - The response time is `T = W + S`, S exponential with rate μ and independent of W, so
//!   `P(T > t) = (1 - C) e^{-μt} + C (θ e^{-μt} - μ e^{-θt}) / (θ - μ)` (for θ = μ the last term
//!   is `C (1 + μt) e^{-μt}`). A percentile is the root of `P(T > t) = 1 - q`, found by bisection.
//! - Capacity is `cμ`: above it the queue grows without bound.

/// An M/M/c queue: `servers` servers, arrivals per second `lambda`, services per second per
/// server `mu`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mmc {
    pub servers: u32,
    pub lambda: f64,
    pub mu: f64,
}

impl Mmc {
    /// The saturation throughput, `cμ`.
    pub fn capacity(&self) -> f64 {
        f64::from(self.servers) * self.mu
    }

    pub fn is_stable(&self) -> bool {
        self.lambda < self.capacity()
    }

    /// Erlang C: the probability that an arrival waits (1 when unstable).
    pub fn p_wait(&self) -> f64 {
        if !self.is_stable() {
            return 1.0;
        }
        let a = self.lambda / self.mu;
        let c = self.servers;
        let rho = a / f64::from(c);
        // Terms a^k / k! built up one factor at a time (no overflowing factorials).
        let mut term = 1.0;
        let mut sum = 0.0;
        for k in 0..c {
            sum += term;
            term *= a / f64::from(k + 1);
        }
        let last = term / (1.0 - rho);
        last / (sum + last)
    }

    /// `P(T > t)`, the response time's tail, `t` in seconds.
    pub fn response_tail(&self, t: f64) -> f64 {
        if !self.is_stable() {
            return 1.0;
        }
        let c = self.p_wait();
        let mu = self.mu;
        let theta = self.capacity() - self.lambda;
        let waited = if (theta - mu).abs() < 1e-9 * mu {
            (1.0 + mu * t) * (-mu * t).exp()
        } else {
            (theta * (-mu * t).exp() - mu * (-theta * t).exp()) / (theta - mu)
        };
        (1.0 - c) * (-mu * t).exp() + c * waited
    }

    /// The response time's `q` quantile (e.g. 0.99), seconds; infinite when unstable.
    pub fn response_quantile(&self, q: f64) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        let target = 1.0 - q;
        let mut hi = 1.0 / self.mu;
        while self.response_tail(hi) > target {
            hi *= 2.0;
        }
        let mut lo = 0.0;
        for _ in 0..200 {
            let mid = (lo + hi) / 2.0;
            if self.response_tail(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    }

    /// Mean response time `C / θ + 1 / μ`, seconds.
    pub fn mean_response(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        self.p_wait() / (self.capacity() - self.lambda) + 1.0 / self.mu
    }
}

/// The highest arrival rate whose response-time `q` quantile is at most `slo` seconds (the
/// quantile grows with λ, so bisection on λ in `[0, cμ)`); `None` if even an idle system misses
/// it (`slo` below the service time's own quantile).
pub fn sustainable_rate(servers: u32, mu: f64, q: f64, slo: f64) -> Option<f64> {
    let at = |lambda: f64| Mmc { servers, lambda, mu }.response_quantile(q);
    if at(0.0) > slo {
        return None;
    }
    let (mut lo, mut hi) = (0.0, f64::from(servers) * mu);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if at(mid) <= slo {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_is_m_m_1() {
        // M/M/1: T is exponential with rate μ - λ, so p99 = ln(100) / (μ - λ) and C = ρ.
        let q = Mmc {
            servers: 1,
            lambda: 6.0,
            mu: 10.0,
        };
        assert!((q.p_wait() - 0.6).abs() < 1e-12);
        assert!((q.response_quantile(0.99) - 100f64.ln() / 4.0).abs() < 1e-9);
        assert!((q.mean_response() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn erlang_c_matches_a_textbook_value() {
        // c = 2, a = 1 (ρ = 0.5): C = (1/2 / 0.5) / (1 + 1 + 1) = 1/3.
        let q = Mmc {
            servers: 2,
            lambda: 1.0,
            mu: 1.0,
        };
        assert!((q.p_wait() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_tail_integrates_to_the_mean() {
        // ∫ P(T > t) dt = E[T]: a check of the tail formula against the mean formula.
        let q = Mmc {
            servers: 4,
            lambda: 30.0,
            mu: 10.0,
        };
        let dt = 1e-5;
        let area: f64 = (0..400_000).map(|i| q.response_tail((i as f64 + 0.5) * dt) * dt).sum();
        assert!((area - q.mean_response()).abs() / q.mean_response() < 1e-4, "{area}");
    }

    #[test]
    fn sustainable_rate_inverts_the_quantile() {
        let r = sustainable_rate(4, 10.0, 0.99, 0.8).unwrap();
        let p99 = Mmc {
            servers: 4,
            lambda: r,
            mu: 10.0,
        }
        .response_quantile(0.99);
        assert!((p99 - 0.8).abs() < 1e-6, "{r} {p99}");
        assert!(r < 40.0);
        assert!(sustainable_rate(4, 10.0, 0.99, 0.1).is_none());
    }
}
