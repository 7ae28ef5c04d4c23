//! `locked`: the seed's fix, replayed faithfully.
//!
//! An in-process async lock around read-modify-write, a temp file and rename, a backup restored if
//! the replace fails, a parse failure that is reported instead of read as "empty", and a refusal to
//! replace a non-empty pool with an empty one. What it still leaves open, by design, because the
//! shipped fix left it open: no fsync (a power cut can lose the rename) and a lock that only works
//! inside one process (two processes still lose updates). [`super::durable`] closes both.

use super::backend::{AtomicWrite, Backend};
use super::{AccountStore, StoreError, StoreMode, StoreStats};
use crate::costs::{Costs, Step};
use crate::future::BoxFuture;
use crate::model::{AccountId, AccountsFile, Change};
use std::path::Path;
use std::sync::Arc;

pub struct LockedStore {
    backend: Arc<dyn Backend>,
    costs: Costs,
    /// An async mutex, because the read-modify-write it guards awaits (file costs, real I/O), and
    /// the seed's fix used `asyncio.Lock`. It serialises writers of *this process* only.
    lock: tokio::sync::Mutex<()>,
    tally: super::tally::Tally,
}

impl LockedStore {
    pub fn new(backend: Arc<dyn Backend>, costs: Costs) -> Self {
        LockedStore {
            backend,
            costs,
            lock: tokio::sync::Mutex::new(()),
            tally: Default::default(),
        }
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
    backend.write_atomic(&text, how).map_err(|source| StoreError::Io {
        path: backend.label(),
        source,
    })
}

/// What [`read_modify_write`] did.
#[derive(Debug)]
pub(crate) struct Applied {
    /// One result per change, in order: an unknown account fails its own change only.
    pub results: Vec<Result<(), StoreError>>,
    /// Whether the file was written (not when every change failed).
    pub wrote: bool,
    /// fsyncs the write reported (each one charged as [`Step::Fsync`]).
    pub fsyncs: u32,
}

/// The read-modify-write of every validating mode, run once the caller holds its locks: read
/// and parse (an unparsable or missing file fails the whole call and is not touched), apply each
/// change, and write the result once with `how`. `locked` and `durable` pass one change,
/// `group_commit` a whole batch. Charges each step where it happens.
pub(crate) async fn read_modify_write(
    backend: &dyn Backend,
    costs: &Costs,
    changes: &[(&AccountId, &Change)],
    how: AtomicWrite,
) -> Result<Applied, StoreError> {
    costs.charge_read().await;
    let mut file = read_parsed(backend)?;
    let had_accounts = !file.accounts.is_empty();
    let mut results = Vec::with_capacity(changes.len());
    for (id, change) in changes {
        let result = apply_change(&mut file, id, change);
        if result.is_ok() {
            costs.charge(Step::StateUpdate).await;
        }
        results.push(result);
    }
    if results.iter().all(Result::is_err) {
        return Ok(Applied {
            results,
            wrote: false,
            fsyncs: 0,
        });
    }
    costs.charge(Step::TomlDump).await;
    costs.charge(Step::FileWrite).await;
    let fsyncs = write_validated(backend, &mut file, had_accounts, how)?;
    for _ in 0..fsyncs {
        costs.charge(Step::Fsync).await;
    }
    Ok(Applied {
        results,
        wrote: true,
        fsyncs,
    })
}

/// The single result of a one-change [`read_modify_write`].
pub(crate) fn only_result(applied: &mut Applied) -> Result<(), StoreError> {
    applied.results.pop().unwrap_or(Ok(()))
}

impl AccountStore for LockedStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Locked
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        Box::pin(async move {
            self.costs.charge_read().await;
            read_parsed(self.backend.as_ref())
        })
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            self.costs.charge(Step::FileLock).await;
            let how = AtomicWrite {
                fsync: false,
                backup: true,
            };
            let mut applied = read_modify_write(self.backend.as_ref(), &self.costs, &[(id, &change)], how).await?;
            self.costs.charge(Step::FileLock).await;
            if applied.wrote {
                self.tally.wrote(0);
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
mod tests {
    use super::*;
    use crate::store::backend::MemoryBackend;

    const ONE: &str = "[[accounts]]\nemail = \"a@example.com\"\n";

    #[test]
    fn an_empty_pool_never_replaces_a_non_empty_one() {
        let backend = MemoryBackend::new(Some(ONE.to_string()));
        let mut file = read_parsed(&backend).unwrap();
        let had_accounts = !file.accounts.is_empty();
        file.accounts.clear();
        let how = AtomicWrite {
            fsync: true,
            backup: true,
        };
        let refused = write_validated(&backend, &mut file, had_accounts, how);
        assert!(matches!(refused, Err(StoreError::WouldEmptyPool)), "{refused:?}");
        assert_eq!(backend.contents().as_deref(), Some(ONE));
    }

    #[tokio::test]
    async fn a_batch_writes_once_and_an_all_failed_batch_writes_nothing() {
        let backend = MemoryBackend::new(Some(ONE.to_string()));
        let (a, b) = (AccountId::from("a@example.com"), AccountId::from("b@example.com"));
        let ok = Change::Error {
            code: 500,
            ban: None,
            disable: false,
        };
        let how = AtomicWrite::default();
        let applied = read_modify_write(&backend, &Costs::default(), &[(&a, &ok), (&b, &ok)], how)
            .await
            .unwrap();
        assert!(applied.wrote);
        assert!(applied.results[0].is_ok());
        assert!(matches!(applied.results[1], Err(StoreError::UnknownAccount(_))));
        let written = backend.contents().unwrap();
        assert!(written.contains("error_codes = [500]"), "{written}");

        let applied = read_modify_write(&backend, &Costs::default(), &[(&b, &ok)], how)
            .await
            .unwrap();
        assert!(!applied.wrote);
        assert_eq!(backend.contents().unwrap(), written);
    }
}
