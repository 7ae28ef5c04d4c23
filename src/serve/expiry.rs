//! When each leased token expires, for the lease API's `expires_at`.
//!
//! A strategy's [`Lease`](crate::strategy::Lease) carries the credential and its token, not the
//! token's expiry. serve learns expiries where tokens are made: the accounts file at start, and
//! every grant of the token endpoint, which serve wraps ([`ExpiryBook::endpoint`]) before handing
//! it to the strategy. A grant is recorded before the strategy publishes its token, so a lease's
//! token is always one the book has seen; the book keeps the last two tokens per credential,
//! because a lease resolved on the snapshot just before a refresh landed still holds the old one.

use crate::clock::Clock;
use crate::future::BoxFuture;
use crate::model::{Account, EpochMs, RefreshFailure, TokenGrant};
use crate::secret::Secret;
use crate::upstream::TokenEndpoint;
use parking_lot::Mutex;
use std::sync::Arc;

/// (token, expires at) of a credential's latest and previous tokens.
type Entries = [Option<(Secret, EpochMs)>; 2];

pub struct ExpiryBook {
    credentials: Box<[Mutex<Entries>]>,
}

impl ExpiryBook {
    pub fn new(accounts: &[Account]) -> ExpiryBook {
        ExpiryBook {
            credentials: accounts
                .iter()
                .map(|a| Mutex::new([a.expires_at().map(|at| (a.access_token.clone(), at)), None]))
                .collect(),
        }
    }

    fn record(&self, index: usize, token: Secret, expires_at: EpochMs) {
        if let Some(entries) = self.credentials.get(index) {
            let mut e = entries.lock();
            e[1] = e[0].take();
            e[0] = Some((token, expires_at));
        }
    }

    /// When `token` of credential `index` expires, if the book knows it.
    pub fn expires_at(&self, index: usize, token: &Secret) -> Option<EpochMs> {
        let e = self.credentials.get(index)?.lock();
        e.iter().flatten().find(|(t, _)| t == token).map(|(_, at)| *at)
    }

    /// `inner`, with every grant it makes recorded here on `clock`.
    pub fn endpoint(self: &Arc<Self>, inner: Arc<dyn TokenEndpoint>, clock: Clock) -> Arc<dyn TokenEndpoint> {
        Arc::new(Recording {
            book: self.clone(),
            inner,
            clock,
        })
    }
}

struct Recording {
    book: Arc<ExpiryBook>,
    inner: Arc<dyn TokenEndpoint>,
    clock: Clock,
}

impl TokenEndpoint for Recording {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            let result = self.inner.refresh(credential, attempt, refresh_token).await;
            match &result {
                Ok(grant) => {
                    // Read after the answer, as the policy's own `at` is: never later than the
                    // expiry the file gets.
                    let at = self.clock.now_ms() + grant.expires_in.saturating_mul(1000);
                    self.book.record(credential, grant.access_token.clone(), at);
                    tracing::info!(credential, expires_in = grant.expires_in, "token refreshed");
                }
                Err(failure) => tracing::warn!(credential, %failure, "token refresh failed; the account is disabled"),
            }
            result
        })
    }
}
