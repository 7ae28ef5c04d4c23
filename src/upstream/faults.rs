//! What the upstream answers: latencies, status rates, fault windows. Shared by the simulated and
//! the HTTP upstream, so both modes make the same keyed decisions for the same request.

use super::dist::LatencyDist;
use super::draw::{self, Stream};
use crate::model::Outcome;
pub use crate::scenario::spec::RateLimitBody;
use std::time::Duration;

/// Status-code rates for API calls (each in 0..=1; their sum at most 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatusRates {
    pub status_429: f64,
    pub status_5xx: f64,
    pub status_401: f64,
    pub status_403: f64,
}

/// A time window with different rates (a 429 storm, an outage of the token endpoint).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultWindow {
    pub from: Duration,
    pub until: Duration,
    pub rates: StatusRates,
    pub refresh_failure_rate: f64,
    /// Share of refreshes the token endpoint answers with HTTP 503 inside the window (an outage).
    pub refresh_5xx_rate: f64,
    /// Extra API latency added inside the window (slow bodies).
    pub extra_latency: Duration,
    /// Share of API requests whose connection the mock closes unanswered inside the window.
    pub reset_rate: f64,
}

/// What only a server on the wire does (`credpool upstream`): the 429 body's retry information,
/// connection resets, slow bodies, SSE framing. The virtual-time simulator ignores it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireModel {
    /// `None`: `retry_info` when the model has a `retry_delay`, else `neither` (see
    /// [`UpstreamModel::rate_limit_body`]).
    pub rate_limit_body: Option<RateLimitBody>,
    pub reset_rate: f64,
    pub slow_body_rate: f64,
    pub slow_body: Duration,
    pub sse_chunks: u32,
    pub sse_interval: Duration,
}

impl Default for WireModel {
    fn default() -> Self {
        WireModel {
            rate_limit_body: None,
            reset_rate: 0.0,
            slow_body_rate: 0.0,
            slow_body: Duration::ZERO,
            sse_chunks: 3,
            sse_interval: Duration::from_millis(10),
        }
    }
}

/// The wire-level fault drawn for one API request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireFault {
    /// Close the connection without an answer.
    pub reset: bool,
    /// Time between the headers and the body (a slow body, or a fault window's extra latency).
    pub body_delay: Duration,
}

/// Everything the upstream decides, keyed by request, credential and refresh number.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamModel {
    pub seed: u64,
    pub api_latency: LatencyDist,
    pub refresh_latency: LatencyDist,
    pub rates: StatusRates,
    /// Share of refreshes answered `invalid_grant`.
    pub refresh_failure_rate: f64,
    /// Share of refreshes answered HTTP 503 (drawn from the same number as `invalid_grant`, in the
    /// slice above it, so adding this rate leaves the other draws as they were).
    pub refresh_5xx_rate: f64,
    /// Credentials whose refresh always fails (a revoked refresh token: `invalid_grant`).
    pub failing_refresh: Vec<usize>,
    /// Credentials whose refresh the token endpoint never answers in time (always a timeout).
    pub hanging_refresh: Vec<usize>,
    /// Credentials whose refresh the token endpoint always answers with HTTP 503.
    pub erroring_refresh: Vec<usize>,
    /// Credentials whose access token the API rejects with 401 on every call (revoked).
    pub revoked: Vec<usize>,
    /// The token endpoint's answer takes longer than this: the proxy gives up (30 s in the proxy).
    pub refresh_timeout: Duration,
    /// What a 429 body says: a retry delay, or nothing (then the policy's default ban applies).
    pub retry_delay: Option<Duration>,
    /// Lifetime of a freshly refreshed token, seconds.
    pub token_lifetime_s: i64,
    pub faults: Vec<FaultWindow>,
    pub wire: WireModel,
}

impl Default for UpstreamModel {
    fn default() -> Self {
        UpstreamModel {
            seed: 0,
            api_latency: LatencyDist::default(),
            refresh_latency: LatencyDist::default(),
            rates: StatusRates::default(),
            refresh_failure_rate: 0.0,
            refresh_5xx_rate: 0.0,
            failing_refresh: Vec::new(),
            hanging_refresh: Vec::new(),
            erroring_refresh: Vec::new(),
            revoked: Vec::new(),
            refresh_timeout: Duration::from_secs(30),
            retry_delay: None,
            token_lifetime_s: 3600,
            faults: Vec::new(),
            wire: WireModel::default(),
        }
    }
}

/// The API's answer to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiAnswer {
    pub latency: Duration,
    pub outcome: Outcome,
}

/// The token endpoint's answer to one refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshAnswer {
    pub latency: Duration,
    /// `false`: `invalid_grant`, or a server error when `server_error` says so.
    pub ok: bool,
    /// The answer is HTTP 503 instead of a grant.
    pub server_error: bool,
    /// The answer comes after the proxy's timeout (whatever it would have said).
    pub timed_out: bool,
}

impl UpstreamModel {
    fn window(&self, at: Duration) -> Option<&FaultWindow> {
        self.faults.iter().find(|w| at >= w.from && at < w.until)
    }

    /// The answer to API request `request` on `credential`, made `at` after the run started.
    pub fn api(&self, request: u64, credential: usize, at: Duration) -> ApiAnswer {
        let window = self.window(at);
        let rates = window.map(|w| w.rates).unwrap_or(self.rates);
        let mut latency = self.api_latency.sample(self.seed, Stream::ApiLatency, request);
        if let Some(w) = window {
            latency += w.extra_latency;
        }
        let u = draw::uniform(self.seed, Stream::ApiStatus, request);
        let outcome = if self.revoked.contains(&credential) {
            Outcome::Status(401)
        } else if u < rates.status_429 {
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: self.retry_delay.map(|d| d.as_millis() as i64),
                quota_reset_delay: None,
            }
        } else if u < rates.status_429 + rates.status_5xx {
            Outcome::Status(503)
        } else if u < rates.status_429 + rates.status_5xx + rates.status_401 {
            Outcome::Status(401)
        } else if u < rates.status_429 + rates.status_5xx + rates.status_401 + rates.status_403 {
            Outcome::Status(403)
        } else {
            Outcome::Success
        };
        ApiAnswer { latency, outcome }
    }

    /// What a 429 body carries: the scenario's choice, else `retry_info` when there is a delay
    /// to tell and `neither` when there is none.
    pub fn rate_limit_body(&self) -> RateLimitBody {
        match (self.wire.rate_limit_body, self.retry_delay) {
            (Some(b), _) => b,
            (None, Some(_)) => RateLimitBody::RetryInfo,
            (None, None) => RateLimitBody::Neither,
        }
    }

    /// The wire-level fault for API request `request`, made `at` after the start. A fault
    /// window's `extra_latency` is spent here, after the headers, by a server on the wire; the
    /// simulator adds it to the latency instead ([`Self::api`]), so both spend the same total.
    pub fn wire_fault(&self, request: u64, at: Duration) -> WireFault {
        let window = self.window(at);
        let reset_rate = window.map(|w| w.reset_rate).unwrap_or(self.wire.reset_rate);
        let u = draw::uniform(self.seed, Stream::Wire, request);
        let slow = draw::uniform2(self.seed, Stream::Wire, request) < self.wire.slow_body_rate;
        let mut body_delay = if slow { self.wire.slow_body } else { Duration::ZERO };
        if let Some(w) = window {
            body_delay += w.extra_latency;
        }
        WireFault {
            reset: u < reset_rate,
            body_delay,
        }
    }

    /// The API latency before the headers on the wire: [`Self::api`]'s latency without a fault
    /// window's extra (which [`Self::wire_fault`] spends after the headers).
    pub fn header_latency(&self, request: u64) -> Duration {
        self.api_latency.sample(self.seed, Stream::ApiLatency, request)
    }

    /// The answer to refresh number `attempt` of `credential`, asked `at` after the start.
    pub fn refresh(&self, credential: usize, attempt: u64, at: Duration) -> RefreshAnswer {
        let key = (credential as u64) << 32 | attempt;
        let latency = self.refresh_latency.sample(self.seed, Stream::RefreshLatency, key);
        let (invalid_rate, error_rate) = self
            .window(at)
            .map(|w| (w.refresh_failure_rate, w.refresh_5xx_rate))
            .unwrap_or((self.refresh_failure_rate, self.refresh_5xx_rate));
        let u = draw::uniform(self.seed, Stream::RefreshFailure, key);
        let invalid = self.failing_refresh.contains(&credential) || u < invalid_rate;
        let server_error = !invalid
            && (self.erroring_refresh.contains(&credential) || (u >= invalid_rate && u < invalid_rate + error_rate));
        let hangs = self.hanging_refresh.contains(&credential);
        RefreshAnswer {
            latency: if hangs {
                self.refresh_timeout
            } else {
                latency.min(self.refresh_timeout)
            },
            ok: !invalid && !server_error,
            server_error,
            timed_out: hangs || latency > self.refresh_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_faults_have_their_rates_and_leave_the_other_draws_alone() {
        let plain = UpstreamModel {
            seed: 5,
            rates: StatusRates {
                status_429: 0.2,
                ..StatusRates::default()
            },
            api_latency: LatencyDist::Exponential {
                mean: crate::duration::Span::from_millis(100),
            },
            ..UpstreamModel::default()
        };
        let mut faulty = plain.clone();
        faulty.wire.reset_rate = 0.3;
        faulty.wire.slow_body_rate = 0.1;
        faulty.wire.slow_body = Duration::from_millis(50);
        let n = 20_000;
        let at = Duration::ZERO;
        let resets = (0..n).filter(|&k| faulty.wire_fault(k, at).reset).count();
        let slow = (0..n)
            .filter(|&k| !faulty.wire_fault(k, at).body_delay.is_zero())
            .count();
        assert!((5_700..6_300).contains(&resets), "{resets}");
        assert!((1_800..2_200).contains(&slow), "{slow}");
        for k in 0..1_000 {
            assert_eq!(plain.api(k, 0, at), faulty.api(k, 0, at));
            assert_eq!(plain.wire_fault(k, at), WireFault::default());
        }
        // A window's extra latency: before the headers in the simulator, after them on the wire.
        faulty.faults.push(FaultWindow {
            from: Duration::ZERO,
            until: Duration::from_secs(1),
            rates: plain.rates,
            refresh_failure_rate: 0.0,
            refresh_5xx_rate: 0.0,
            extra_latency: Duration::from_millis(7),
            reset_rate: 0.0,
        });
        let w = faulty.wire_fault(3, at);
        assert!(!w.reset);
        assert_eq!(
            faulty.api(3, 0, at).latency,
            faulty.header_latency(3) + Duration::from_millis(7)
        );
        assert!(w.body_delay >= Duration::from_millis(7));
    }
}
