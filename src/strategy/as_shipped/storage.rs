//! The shipped proxy's `FileStorageManager` (commit a30aa35), replayed over a [`Backend`].
//!
//! Four operations, each as the shipped code did it, each step charged on the process'
//! [`EventLoop`]:
//!
//! | replica | shipped method | lock | what it does |
//! |---|---|---|---|
//! | [`ShippedStorage::get_state`] | `get_credential_state` | none | read and parse the file, return one account's record |
//! | [`ShippedStorage::update_state`] | `update_credential_state` | the storage lock | read and parse, put the caller's record in place of the account's, dump, write, read back to verify, ~7 log lines |
//! | [`ShippedStorage::load_accounts`] | `load_antigravity_accounts` | none | read and parse the whole file |
//! | [`ShippedStorage::save_accounts`] | `save_antigravity_accounts` | **none** | refuse an empty pool over a non-empty file, dump, write |
//!
//! Every write goes through **one temp file name shared by all writers**
//! ([`Backend::open_shared_temp`]): open it (truncating), write, back up the file, rename. The
//! storage lock serialises `update_state` inside one process only; `save_accounts` (the 429 path,
//! a refreshed token) takes no lock at all. Hence the defects credpool measures:
//!
//! - **stale-read lost update**: callers read a record with `get_state` outside the lock and hand
//!   the whole record back to `update_state`, which writes it over whatever others wrote between;
//! - **shared temp name**: two saves that overlap truncate and write the same temp file (the tail
//!   of a longer text stays behind a shorter one: duplicate keys, an unparsable file), the second
//!   rename finds no temp file ("missing temp file"), and a rename of a temp file another writer
//!   has just truncated leaves an empty `accounts.toml` for a reader to find;
//! - **empty pool**: a save built from a read that caught that empty file has no accounts, and the
//!   refusal to empty a non-empty pool checks a file that is, at that moment, empty too.
//!
//! Errors are returned (and counted in [`ShippedStorageStats`]); the shipped callers logged them
//! and carried on.

use super::event_loop::EventLoop;
use crate::costs::Step;
use crate::model::{Account, AccountId, AccountsFile};
use crate::store::backend::Backend;
use crate::store::{AccountStore, StoreError};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Log lines `update_credential_state` writes before its file write (the account's old and new
/// state, the updates, "Writing to ..."), after it ("Successfully saved"), and after its verifying
/// read ("Verified"): seven in all, as measured.
const LOG_LINES_BEFORE_WRITE: u32 = 5;
const LOG_LINES_AFTER_WRITE: u32 = 1;
const LOG_LINES_AFTER_VERIFY: u32 = 1;

/// What the storage did and what went wrong, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShippedStorageStats {
    /// `update_state` calls that reported success.
    pub state_writes: u64,
    /// `save_accounts` calls that reported success.
    pub saves: u64,
    /// Renames that found the shared temp file gone (another writer had renamed it).
    pub missing_temp_file: u64,
    /// Reads that found a file that does not parse.
    pub unparsable_reads: u64,
    /// Reads that found a file with no accounts at all (caught empty, or wiped).
    pub empty_reads: u64,
    /// Saves refused because they would have replaced a non-empty pool with an empty one.
    pub refused_empty_saves: u64,
}

/// The replica of one process' `FileStorageManager`.
pub struct ShippedStorage {
    backend: Arc<dyn Backend>,
    /// The process' one thread, shared with the credential manager.
    event_loop: Arc<EventLoop>,
    /// `FileStorageManager._lock`: an `asyncio.Lock`, so a tokio mutex (held across awaits,
    /// FIFO). It excludes `update_state` calls of this process from each other, nothing more.
    lock: tokio::sync::Mutex<()>,
    /// The run's store, told of every whole-file write (so its `writes` counts this replica's
    /// writes too); `None` in tests that read [`ShippedStorageStats`] instead.
    tally: Option<Arc<dyn AccountStore>>,
    state_writes: AtomicU64,
    saves: AtomicU64,
    missing_temp_file: AtomicU64,
    unparsable_reads: AtomicU64,
    empty_reads: AtomicU64,
    refused_empty_saves: AtomicU64,
}

impl ShippedStorage {
    pub fn new(backend: Arc<dyn Backend>, event_loop: Arc<EventLoop>) -> Self {
        ShippedStorage {
            backend,
            event_loop,
            lock: tokio::sync::Mutex::new(()),
            tally: None,
            state_writes: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            missing_temp_file: AtomicU64::new(0),
            unparsable_reads: AtomicU64::new(0),
            empty_reads: AtomicU64::new(0),
            refused_empty_saves: AtomicU64::new(0),
        }
    }

    /// The same replica, reporting each whole-file write it makes to `store`
    /// ([`AccountStore::note_write`]).
    pub fn reporting_writes_to(mut self, store: Arc<dyn AccountStore>) -> Self {
        self.tally = Some(store);
        self
    }

    pub fn stats(&self) -> ShippedStorageStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShippedStorageStats {
            state_writes: get(&self.state_writes),
            saves: get(&self.saves),
            missing_temp_file: get(&self.missing_temp_file),
            unparsable_reads: get(&self.unparsable_reads),
            empty_reads: get(&self.empty_reads),
            refused_empty_saves: get(&self.refused_empty_saves),
        }
    }

    /// `get_credential_state`: account `id` as the file holds it now, read without any lock.
    pub async fn get_state(&self, id: &AccountId) -> Result<Account, StoreError> {
        let file = self.read().await?;
        file.find(id)
            .map(|i| file.accounts[i].clone())
            .ok_or_else(|| StoreError::UnknownAccount(id.clone()))
    }

    /// `update_credential_state`: under the storage lock, puts `state` (a whole record the caller
    /// read earlier, maybe long ago) in place of its account's record and writes the file.
    pub async fn update_state(&self, state: &Account) -> Result<(), StoreError> {
        let _lock = self.lock.lock().await;
        self.event_loop.run(Step::FileLock, || ()).await;
        let result = self.update_locked(state).await;
        self.event_loop.run(Step::FileLock, || ()).await;
        if result.is_ok() {
            self.state_writes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn update_locked(&self, state: &Account) -> Result<(), StoreError> {
        let mut file = self.read().await?;
        let i = file
            .find(&state.id)
            .ok_or_else(|| StoreError::UnknownAccount(state.id.clone()))?;
        // One stretch of code with no await: `account.update(state)` (every field of the
        // caller's copy, stale or not), the log lines, `toml.dumps`.
        let text = {
            let turn = self.event_loop.enter().await;
            turn.spend(Step::StateUpdate).await;
            file.accounts[i] = state.clone();
            turn.repeat(Step::LogLine, LOG_LINES_BEFORE_WRITE).await;
            turn.spend(Step::TomlDump).await;
            file.to_toml_string()
        };
        self.write(&text, LOG_LINES_AFTER_WRITE).await?;
        // The verifying read: a file another writer has broken meanwhile fails the update.
        self.read().await?;
        self.event_loop
            .enter()
            .await
            .repeat(Step::LogLine, LOG_LINES_AFTER_VERIFY)
            .await;
        Ok(())
    }

    /// `load_antigravity_accounts`: the whole file, read without any lock. An unparsable file is
    /// an error (the fix's first layer: never "no accounts"), but an empty one is an empty pool.
    pub async fn load_accounts(&self) -> Result<AccountsFile, StoreError> {
        self.read().await
    }

    /// `save_antigravity_accounts`: writes `file` with no lock at all, refusing only to replace a
    /// non-empty pool with an empty one (checked against the file as it is at that moment).
    pub async fn save_accounts(&self, file: &mut AccountsFile) -> Result<(), StoreError> {
        if file.accounts.is_empty() {
            let current = self.read().await?;
            if !current.accounts.is_empty() {
                self.refused_empty_saves.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::WouldEmptyPool);
            }
        }
        let text = self.event_loop.run(Step::TomlDump, || file.to_toml_string()).await;
        self.write(&text, 0).await?;
        self.saves.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the file (an `await`: one turn) and parses it (the next turn, when the read returns).
    async fn read(&self) -> Result<AccountsFile, StoreError> {
        let label = self.backend.label();
        let read = self.event_loop.run(Step::FileRead, || self.backend.read()).await;
        let text = match read {
            Ok(Some(text)) => text,
            Ok(None) => return Err(StoreError::Missing(label)),
            Err(source) => {
                self.unparsable_reads.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Io { path: label, source });
            }
        };
        let parsed = self
            .event_loop
            .run(Step::TomlParse, || AccountsFile::parse(Path::new(&label), &text))
            .await;
        match parsed {
            Ok(file) => {
                if file.accounts.is_empty() {
                    self.empty_reads.fetch_add(1, Ordering::Relaxed);
                }
                Ok(file)
            }
            Err(e) => {
                self.unparsable_reads.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Invalid(e))
            }
        }
    }

    /// The shipped atomic write: open the shared temp name (truncating it) and write it, each an
    /// `await` on which other requests run; then back up and rename, followed by `log_lines` log
    /// lines in the same turn. The measured 1.0 ms (temp write, backup copy, replace, cleanup) is
    /// spent before the rename.
    async fn write(&self, text: &str, log_lines: u32) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.backend.label(),
            source,
        };
        let opened = {
            let _turn = self.event_loop.enter().await;
            self.backend.open_shared_temp()
        };
        let mut temp = opened.map_err(io)?;
        let written = {
            let _turn = self.event_loop.enter().await;
            temp.write(text)
        };
        written.map_err(io)?;
        let turn = self.event_loop.enter().await;
        turn.spend(Step::FileWrite).await;
        let replaced = self.backend.replace_with_shared_temp(true);
        if let Err(e) = &replaced {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.missing_temp_file.fetch_add(1, Ordering::Relaxed);
            }
        }
        replaced.map_err(io)?;
        if let Some(store) = &self.tally {
            store.note_write();
        }
        turn.repeat(Step::LogLine, log_lines).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::Costs;
    use crate::model::Change;
    use crate::store::backend::MemoryBackend;

    fn storage(accounts: usize) -> (Arc<MemoryBackend>, Arc<ShippedStorage>) {
        let file = AccountsFile::from_accounts((0..accounts).map(|i| Account::synthetic(i, 0, 3600)).collect());
        let backend = Arc::new(MemoryBackend::new(Some(file.clone().to_toml_string())));
        let event_loop = Arc::new(EventLoop::new(Costs::default()));
        (backend.clone(), Arc::new(ShippedStorage::new(backend, event_loop)))
    }

    fn on_disk(backend: &MemoryBackend) -> AccountsFile {
        AccountsFile::parse(Path::new("m"), &backend.contents().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_state_read_before_another_write_puts_the_old_record_back() {
        let (backend, storage) = storage(2);
        let id = AccountId::from("account0@example.com");
        let mut early = storage.get_state(&id).await.unwrap();
        let mut late = storage.get_state(&id).await.unwrap();
        late.apply(&Change::Disabled);
        storage.update_state(&late).await.unwrap();
        assert!(on_disk(&backend).accounts[0].disabled);
        early.apply(&Change::Success { at: 0 });
        storage.update_state(&early).await.unwrap();
        let file = on_disk(&backend);
        assert!(!file.accounts[0].disabled, "the stale record re-enabled the account");
        assert_eq!(file.accounts[0].total_calls, 1);
        assert_eq!(storage.stats().state_writes, 2);
    }

    #[tokio::test]
    async fn an_empty_pool_is_saved_only_over_an_empty_file() {
        let (backend, storage) = storage(1);
        let mut empty = AccountsFile::default();
        let refused = storage.save_accounts(&mut empty).await;
        assert!(matches!(refused, Err(StoreError::WouldEmptyPool)), "{refused:?}");
        assert_eq!(on_disk(&backend).accounts.len(), 1);
        backend.truncate().unwrap();
        storage.save_accounts(&mut empty).await.unwrap();
        assert!(on_disk(&backend).accounts.is_empty());
        assert_eq!(storage.stats().refused_empty_saves, 1);
        assert_eq!(storage.stats().empty_reads, 1);
    }
}
