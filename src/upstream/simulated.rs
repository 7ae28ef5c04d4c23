//! The upstream in virtual time: answers decided by [`UpstreamModel`], latency spent on tokio's
//! clock. Under the paused clock a 500 ms refresh costs no wall time at all.

use super::faults::UpstreamModel;
use super::{Api, TokenEndpoint};
use crate::clock::Clock;
use crate::future::BoxFuture;
use crate::model::{Outcome, RefreshFailure, TokenGrant};
use crate::secret::Secret;
use std::sync::Arc;

/// Simulated token endpoint and API.
#[derive(Clone, Debug)]
pub struct SimulatedUpstream {
    pub model: Arc<UpstreamModel>,
    pub clock: Clock,
}

impl SimulatedUpstream {
    pub fn new(model: UpstreamModel, clock: Clock) -> Self {
        SimulatedUpstream {
            model: Arc::new(model),
            clock,
        }
    }
}

/// Spends modelled duration `d` on `clock` (scaled in virtual runs).
async fn spend(clock: &Clock, d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(clock.spend(d)).await;
    }
}

impl TokenEndpoint for SimulatedUpstream {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            let answer = self.model.refresh(credential, attempt, self.clock.elapsed());
            spend(&self.clock, answer.latency).await;
            if refresh_token.is_empty() {
                return Err(RefreshFailure::NoRefreshToken);
            }
            if answer.timed_out {
                return Err(RefreshFailure::Timeout);
            }
            if answer.server_error {
                return Err(RefreshFailure::Server(503));
            }
            if !answer.ok {
                return Err(RefreshFailure::InvalidGrant);
            }
            Ok(TokenGrant {
                access_token: Secret::new(format!("sim-access-{credential}-{}", attempt + 1)),
                expires_in: self.model.token_lifetime_s,
            })
        })
    }
}

impl Api for SimulatedUpstream {
    fn call<'a>(
        &'a self,
        request: u64,
        credential: usize,
        _token: &'a Secret,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'a {
        let answer = self.model.api(request, credential, self.clock.elapsed());
        // The sleep inline rather than through `spend`: a nested `async fn` would store its
        // arguments beside its own state, in every simulated request in flight.
        async move {
            if !answer.latency.is_zero() {
                tokio::time::sleep(self.clock.spend(answer.latency)).await;
            }
            match answer.outcome {
                // What the wire would say: the scenario's 429 body, read by the client's parser,
                // so a virtual run bans exactly as a real one (RetryInfo, ErrorInfo, both, neither).
                Outcome::RateLimited { .. } => {
                    let now = self.clock.now_ms();
                    let body = crate::mock::google::rate_limited(
                        self.model.rate_limit_body(),
                        self.model.retry_delay.unwrap_or_default(),
                        now,
                        "simulated",
                    );
                    crate::model::parse_error_body(&body).into_outcome()
                }
                other => other,
            }
        }
    }
}
