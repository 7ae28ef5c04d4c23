//! The upstream a proxy talks to: the OAuth token endpoint and the model API.
//!
//! Two implementations of each: [`simulated`] sleeps on tokio's clock for a latency drawn from the
//! scenario's seed (virtual time, deterministic, common random numbers across strategies), and
//! [`http`] talks to a wiremock server on 127.0.0.1 with a real HTTP client (real mode).
//!
//! Draws are keyed by *what* is asked (request number, credential, refresh number), never by the
//! order in which a strategy happens to ask, so every strategy sees the same upstream.

pub mod dist;
pub mod draw;
pub mod faults;
pub mod http;
pub mod simulated;

use crate::future::BoxFuture;
use crate::model::{Outcome, RefreshFailure, TokenGrant};
use crate::secret::Secret;

/// The OAuth token endpoint (`grant_type=refresh_token`).
pub trait TokenEndpoint: Send + Sync + 'static {
    /// Exchanges `refresh_token` of credential `credential` for a new access token. `attempt`
    /// counts refreshes of this credential (0 for the first), which keys the fault draws.
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>>;
}

/// The model API a request is forwarded to.
///
/// Not object-safe on purpose: the runner is generic over it, so the simulated upstream's call is
/// a plain future stored inside the request's own (no allocation per simulated request; an
/// implementation with a large future, like the HTTP client's, boxes it itself).
pub trait Api: Send + Sync + 'static {
    /// Makes request number `request` with `token` on credential `credential`.
    fn call<'a>(
        &'a self,
        request: u64,
        credential: usize,
        token: &'a Secret,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'a;
}
