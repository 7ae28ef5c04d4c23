//! `locked`: the seed's fix, replayed faithfully.
//!
//! An in-process async lock around read-modify-write, a temp file and rename, a backup restored if
//! the replace fails, a parse failure that is reported instead of read as "empty", and a refusal to
//! replace a non-empty pool with an empty one. What it still leaves open, by design, because the
//! shipped fix left it open: no fsync (a power cut can lose the rename) and a lock that only works
//! inside one process (two processes still lose updates). [`super::durable`] closes both.

use super::backend::{AtomicWrite, Backend};
use super::{AccountStore, BoxFuture, StoreError, StoreMode, StoreStats};
use crate::costs::{Costs, Step};
use crate::model::{AccountId, AccountsFile, Change};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct LockedStore {
    backend: Arc<dyn Backend>,
    costs: Costs,
    /// An async mutex, because the read-modify-write it guards awaits (file costs, real I/O), and
    /// the seed's fix used `asyncio.Lock`. It serialises writers of *this process* only.
    lock: tokio::sync::Mutex<()>,
    updates: AtomicU64,
    writes: AtomicU64,
}

impl LockedStore {
    pub fn new(backend: Arc<dyn Backend>, costs: Costs) -> Self {
        LockedStore { backend, costs, lock: tokio::sync::Mutex::new(()), updates: AtomicU64::new(0), writes: AtomicU64::new(0) }
    }
}

/// Reads and parses the file: a missing file is [`StoreError::Missing`], an unparsable one is
/// [`StoreError::Invalid`] (never "no accounts"). Shared by every mode that validates.
pub(crate) fn read_parsed(backend: &dyn Backend) -> Result<AccountsFile, StoreError> {
    let label = backend.label();
    match backend.read() {
        Ok(Some(text)) => Ok(AccountsFile::parse(Path::new(&label), &text)?),
        Ok(None) => Err(StoreError::Missing(label)),
        Err(source) => Err(StoreError::Io { path: label, source }),
    }
}

/// Applies `change` to account `id` in `file`.
pub(crate) fn apply_change(file: &mut AccountsFile, id: &AccountId, change: &Change) -> Result<(), StoreError> {
    let i = file.find(id).ok_or_else(|| StoreError::UnknownAccount(id.clone()))?;
    file.accounts[i].apply(change);
    Ok(())
}

/// Serialises `file` and replaces the stored file atomically, refusing to empty a pool.
/// Returns the number of fsyncs.
pub(crate) fn write_validated(
    backend: &dyn Backend,
    file: &mut AccountsFile,
    had_accounts: bool,
    how: AtomicWrite,
) -> Result<u32, StoreError> {
    if had_accounts && file.accounts.is_empty() {
        return Err(StoreError::WouldEmptyPool);
    }
    let text = file.to_toml_string();
    backend.write_atomic(&text, how).map_err(|source| StoreError::Io { path: backend.label(), source })
}

impl AccountStore for LockedStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Locked
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        Box::pin(async move {
            self.costs.charge(Step::FileRead).await;
            read_parsed(self.backend.as_ref())
        })
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            self.costs.charge(Step::FileLock).await;
            self.costs.charge(Step::FileRead).await;
            let mut file = read_parsed(self.backend.as_ref())?;
            let had_accounts = !file.accounts.is_empty();
            apply_change(&mut file, id, &change)?;
            self.costs.charge(Step::StateUpdate).await;
            self.costs.charge(Step::FileWrite).await;
            write_validated(self.backend.as_ref(), &mut file, had_accounts, AtomicWrite { fsync: false, backup: true })?;
            self.costs.charge(Step::FileLock).await;
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.updates.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    fn stats(&self) -> StoreStats {
        StoreStats { updates: self.updates.load(Ordering::Relaxed), writes: self.writes.load(Ordering::Relaxed), fsyncs: 0 }
    }
}
