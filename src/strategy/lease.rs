//! What a strategy hands out: a [`Lease`] on one credential, with the time it took to get it.

use crate::model::AccountId;
use crate::secret::Secret;
use crate::store::StoreError;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// One request as a strategy sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Request number in the run; keys the upstream's random draws.
    pub number: u64,
    /// Which user sent it (the key of `sharded`).
    pub user: u32,
    /// The model asked for, which decides the series a 429 bans.
    pub model: Arc<str>,
}

impl Request {
    pub fn new(number: u64, user: u32, model: impl Into<Arc<str>>) -> Self {
        Request {
            number,
            user,
            model: model.into(),
        }
    }
}

/// Where the acquisition's time went. `lock_wait + hold + refresh_wait` is the acquire latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcquireTiming {
    /// Waiting for a lock, a queue or a shard.
    pub lock_wait: Duration,
    /// Holding it (selection work, persistence under the lock), refresh excluded.
    pub hold: Duration,
    /// Waiting for a token refresh (own or another request's).
    pub refresh_wait: Duration,
}

impl AcquireTiming {
    pub fn total(&self) -> Duration {
        self.lock_wait + self.hold + self.refresh_wait
    }

    /// The breakdown of an acquisition asked for at `asked` and ending now, given the time it
    /// spent waiting for locks and for refreshes: everything else is `hold`, so the three always
    /// add up to the acquisition's latency.
    pub fn since(asked: tokio::time::Instant, lock_wait: Duration, refresh_wait: Duration) -> AcquireTiming {
        let hold = asked.elapsed().saturating_sub(lock_wait + refresh_wait);
        AcquireTiming {
            lock_wait,
            hold,
            refresh_wait,
        }
    }
}

/// A credential handed out for one request.
pub struct Lease {
    /// Position of the credential in the pool.
    pub index: usize,
    pub id: AccountId,
    /// Redacted in `Debug`.
    pub token: Secret,
    pub timing: AcquireTiming,
    /// Strategy-private state that must be released with the lease (a `queue_pool` check-out).
    /// Dropping the lease drops it, which is how a cancelled request gives its credential back.
    pub(crate) held: Option<Box<dyn Any + Send>>,
}

impl Lease {
    pub fn new(index: usize, id: AccountId, token: Secret, timing: AcquireTiming) -> Self {
        Lease {
            index,
            id,
            token,
            timing,
            held: None,
        }
    }
}

/// A credential a strategy's core has chosen for a request: what a [`Lease`] is made from once
/// the strategy knows how long the acquisition took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    pub id: AccountId,
    /// Redacted in `Debug`.
    pub token: Secret,
}

impl Pick {
    pub fn into_lease(self, timing: AcquireTiming) -> Lease {
        Lease::new(self.index, self.id, self.token, timing)
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("token", &self.token)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// Why no credential could be handed out (or an outcome not recorded).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    #[error("no usable credential: every account is disabled or banned for this model")]
    Exhausted,
    #[error("store: {0}")]
    Store(Arc<StoreError>),
}

impl From<StoreError> for AcquireError {
    fn from(e: StoreError) -> Self {
        AcquireError::Store(Arc::new(e))
    }
}
