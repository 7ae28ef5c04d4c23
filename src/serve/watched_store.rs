//! The store as serve uses it: the configured store, watched so that serve knows (1) whether the
//! writes a completion made reached the file, before it acknowledges the completion, and (2)
//! when no write is in flight, before it exits.
//!
//! Strategies persist through [`crate::strategy::Env::persist`], which counts a failed write and
//! carries on (a proxy keeps serving when its bookkeeping write fails). serve must not answer
//! `204` for an outcome that is not in the file, so each completion runs inside [`watch`], and
//! a failed update made by that task marks it (a tokio task-local: no change to the strategies).
//! Refreshes that `lock_free` persists from tasks of its own are outside any watch; their
//! failures are still counted and logged.

use crate::future::BoxFuture;
use crate::model::{AccountId, AccountsFile, Change};
use crate::store::{AccountStore, StoreError, StoreMode, StoreStats};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

tokio::task_local! {
    /// Set when an update made inside [`watch`] failed.
    static FAILED: Cell<bool>;
}

pub struct WatchedStore {
    inner: Arc<dyn AccountStore>,
    /// Updates started and not yet answered.
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
    failures: AtomicU64,
}

impl WatchedStore {
    pub fn new(inner: Arc<dyn AccountStore>) -> WatchedStore {
        WatchedStore {
            inner,
            pending: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            failures: AtomicU64::new(0),
        }
    }

    /// Updates that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Waits until no update is in flight (or `timeout` passes); returns the updates still in
    /// flight. With `group_commit` that is the last batch's durable write.
    pub async fn flushed(&self, timeout: Duration) -> usize {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let pending = self.pending.load(Ordering::Acquire);
            if pending == 0 {
                return 0;
            }
            if tokio::time::timeout_at(until, idle).await.is_err() {
                return self.pending.load(Ordering::Acquire);
            }
        }
    }
}

/// Runs `work` (a completion); returns its output and whether every store update it made
/// succeeded.
pub async fn watch<F: Future>(work: F) -> (F::Output, bool) {
    FAILED
        .scope(Cell::new(false), async move {
            let out = work.await;
            (out, !FAILED.with(Cell::get))
        })
        .await
}

/// Counts an update as answered however its future ends (done, or dropped).
struct Answered<'a>(&'a WatchedStore);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl AccountStore for WatchedStore {
    fn mode(&self) -> StoreMode {
        self.inner.mode()
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        self.inner.load()
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.pending.fetch_add(1, Ordering::AcqRel);
            let _answered = Answered(self);
            let result = self.inner.update(id, change).await;
            if let Err(e) = &result {
                self.failures.fetch_add(1, Ordering::Relaxed);
                // A store error names the file and the account, never a token.
                tracing::error!(account = %id, error = %e, "store update failed");
                let _ = FAILED.try_with(|f| f.set(true));
            }
            result
        })
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}
