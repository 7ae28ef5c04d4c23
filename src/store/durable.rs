//! `durable`: `locked`, with the two holes the seed's fix left open closed.
//!
//! - **Across processes**: an advisory lock on `<file>.lock` is held across the whole
//!   read-modify-write, so two proxy processes can no longer interleave their reads and writes
//!   (under `locked` they still lose updates; `tests/store.rs` shows both).
//! - **Across power cuts**: the temp file is fsynced before the rename and the directory after
//!   it, so an acknowledged update survives a crash. Each fsync is charged as [`Step::Fsync`].
//!
//! Everything else (validation, the refusal to empty a pool, the backup) is `locked`'s code,
//! reused through `locked::read_modify_write`.
//!
//! Lock order: the in-process async lock first, then the file lock. Tasks of this process queue
//! on the async lock without occupying a thread; only the one holding it can wait for the file
//! lock, and that wait (another *process* holds it) is moved off the runtime's thread by
//! `cross_process_lock`.

use super::backend::{AtomicWrite, Backend, CrossProcessGuard};
use super::locked::{only_result, read_modify_write};
use super::{AccountStore, StoreError, StoreMode, StoreStats};
use crate::costs::{Costs, Step};
use crate::future::BoxFuture;
use crate::model::{AccountId, AccountsFile, Change};
use std::sync::Arc;

/// How `durable` and `group_commit` write: fsynced, with a backup.
pub(crate) const DURABLE_WRITE: AtomicWrite = AtomicWrite {
    fsync: true,
    backup: true,
};

pub struct DurableStore {
    backend: Arc<dyn Backend>,
    costs: Costs,
    /// Serialises this process's writers before they contend for the file lock (an async mutex:
    /// the critical section awaits costs and, for a contended file lock, a blocking thread).
    lock: tokio::sync::Mutex<()>,
    tally: super::tally::Tally,
}

impl DurableStore {
    pub fn new(backend: Arc<dyn Backend>, costs: Costs) -> Self {
        DurableStore {
            backend,
            costs,
            lock: tokio::sync::Mutex::new(()),
            tally: Default::default(),
        }
    }
}

/// Takes the backend's cross-process lock without stalling the runtime: an uncontended lock
/// (always, for the memory backend) is taken inline, with no thread hop, so virtual-time runs on
/// a current-thread runtime stay deterministic; a contended one is waited for on tokio's
/// blocking pool, which both runtime flavours have (`block_in_place` would panic on a
/// current-thread runtime). If the caller is cancelled during that wait, the blocking thread
/// still gets the lock and releases it at once when its result is dropped.
pub(crate) async fn cross_process_lock(backend: &Arc<dyn Backend>) -> Result<Box<dyn CrossProcessGuard>, StoreError> {
    let io = |source| StoreError::Io {
        path: backend.label(),
        source,
    };
    if let Some(guard) = backend.try_lock_cross_process().map_err(io)? {
        return Ok(guard);
    }
    let b = Arc::clone(backend);
    match tokio::task::spawn_blocking(move || b.lock_cross_process()).await {
        Ok(locked) => locked.map_err(io),
        Err(join) => Err(io(std::io::Error::other(format!(
            "waiting for the lock file failed: {join}"
        )))),
    }
}

impl AccountStore for DurableStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Durable
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        Box::pin(async move {
            // Readers need no lock: every write is a rename, so a reader sees a whole file.
            self.costs.charge_read().await;
            super::locked::read_parsed(self.backend.as_ref())
        })
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            self.costs.charge(Step::FileLock).await;
            let applied = async {
                let _file_lock = cross_process_lock(&self.backend).await?;
                read_modify_write(self.backend.as_ref(), &self.costs, &[(id, &change)], DURABLE_WRITE).await
            }
            .await;
            self.costs.charge(Step::FileLock).await;
            let mut applied = applied?;
            if applied.wrote {
                self.tally.wrote(applied.fsyncs);
            }
            only_result(&mut applied)?;
            self.tally.updated();
            Ok(())
        })
    }

    fn stats(&self) -> StoreStats {
        self.tally.stats()
    }

    fn backend(&self) -> Option<Arc<dyn Backend>> {
        Some(self.backend.clone())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Account;
    use crate::store::backend::MemoryBackend;
    use std::time::Duration;

    /// Every file step costs a distinct number of milliseconds, so the total names the steps.
    pub(crate) fn costs() -> Costs {
        Costs {
            file_lock: Duration::from_millis(1),
            file_read: Duration::from_millis(10),
            state_update: Duration::from_millis(100),
            file_write: Duration::from_millis(1000),
            fsync: Duration::from_millis(10_000),
            ..Costs::default()
        }
    }

    pub(crate) fn memory(accounts: usize) -> Arc<MemoryBackend> {
        let mut file = AccountsFile::from_accounts((0..accounts).map(|i| Account::synthetic(i, 0, 3600)).collect());
        Arc::new(MemoryBackend::new(Some(file.to_toml_string())))
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_charges_lock_read_update_write_and_two_fsyncs_in_virtual_time() {
        let store = DurableStore::new(memory(1), costs());
        let id = AccountId::from("account0@example.com");
        let start = tokio::time::Instant::now();
        store.update(&id, Change::Disabled).await.unwrap();
        // Lock taken and released (2 × 1), read 10, update 100, write 1000, two fsyncs 20000.
        assert_eq!(start.elapsed(), Duration::from_millis(21_112));
        assert_eq!(
            store.stats(),
            StoreStats {
                updates: 1,
                writes: 1,
                fsyncs: 2
            }
        );
    }
}
