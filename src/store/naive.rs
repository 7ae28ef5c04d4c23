//! `naive`: the pre-fix code, kept to replay the data-loss bug. Never use it for real data.
//!
//! What it does, step by step, as the proxy did before the "five layers" fix:
//!
//! 1. no lock of any kind;
//! 2. read the file and parse it, and **read a file that fails to parse, or is empty, as "no
//!    accounts"** (the historical bug: a reader that caught another writer's truncated file saw
//!    an empty pool);
//! 3. apply the change to the parsed copy;
//! 4. truncate the real file, then write the new text into it in place.
//!
//! Two ways to lose data follow. Two updates that both read before either writes lose one of
//! them (the lost update). And an update that reads the truncated file of a concurrent writer
//! finds no accounts, so it writes back an empty pool (the wipe): the file is written even when
//! the change found no account, as the proxy saved its whole list unconditionally; the caller
//! gets [`StoreError::UnknownAccount`] but the damage is done.
//!
//! A missing file is still [`StoreError::Missing`] here: the bug being replayed is about
//! unparsable and empty files, and no mode turns a missing file into a pool by itself.
//!
//! The mode is chosen only by name (`naive`): [`super::StoreMode`] has no default, and no command
//! of credpool that touches a user's file uses it.
//!
//! For tests, [`NaiveStore::with_yield_point`] installs a hook awaited between the read and the
//! write; a barrier there makes every update read before any writes, so the lost update is
//! deterministic instead of a matter of timing.

use super::backend::Backend;
use super::locked::apply_change;
use super::{AccountStore, StoreError, StoreMode, StoreStats};
use crate::costs::{Costs, Step};
use crate::future::BoxFuture;
use crate::model::{AccountId, AccountsFile, Change};
use std::path::Path;
use std::sync::Arc;

/// Awaited by every update between its read and its write.
pub type YieldPoint = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

pub struct NaiveStore {
    backend: Arc<dyn Backend>,
    costs: Costs,
    /// A test's handle on the read-to-write gap; `None` in every real use.
    yield_point: Option<YieldPoint>,
    tally: super::tally::Tally,
}

impl NaiveStore {
    pub fn new(backend: Arc<dyn Backend>, costs: Costs) -> Self {
        NaiveStore {
            backend,
            costs,
            yield_point: None,
            tally: Default::default(),
        }
    }

    /// Awaits `hook()` in every update after the read and before the write.
    pub fn with_yield_point(mut self, hook: YieldPoint) -> Self {
        self.yield_point = Some(hook);
        self
    }

    /// The pre-fix read: a file that fails to parse, or is empty, is "no accounts" (the bug).
    fn read_lenient(&self) -> Result<AccountsFile, StoreError> {
        let label = self.backend.label();
        match self.backend.read() {
            Ok(Some(text)) => Ok(AccountsFile::parse(Path::new(&label), &text).unwrap_or_default()),
            Ok(None) => Err(StoreError::Missing(label)),
            Err(source) => Err(StoreError::Io { path: label, source }),
        }
    }
}

impl AccountStore for NaiveStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Naive
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        Box::pin(async move {
            self.costs.charge_read().await;
            self.read_lenient()
        })
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // The bytes are read at once; reading and parsing them then takes `file_read` (and
            // `toml_parse`), during
            // which another writer may replace the file: the read is already stale.
            let mut file = self.read_lenient()?;
            self.costs.charge_read().await;
            let applied = apply_change(&mut file, id, &change);
            self.costs.charge(Step::StateUpdate).await;
            if let Some(hook) = &self.yield_point {
                hook().await;
            }
            self.costs.charge(Step::TomlDump).await;
            let text = file.to_toml_string();
            let io = |source| StoreError::Io {
                path: self.backend.label(),
                source,
            };
            self.backend.truncate().map_err(io)?;
            // Charged between the halves: in virtual time, readers see the empty file meanwhile.
            self.costs.charge(Step::FileWrite).await;
            self.backend.write_in_place(&text).map_err(io)?;
            self.tally.wrote(0);
            applied?;
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
    use crate::store::durable::tests::memory;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_read_during_a_truncating_write_wipes_the_pool() {
        let backend: Arc<MemoryBackend> = memory(2);
        let costs = Costs {
            file_write: Duration::from_millis(10),
            ..Costs::default()
        };
        let store = Arc::new(NaiveStore::new(backend.clone(), costs));
        let id = AccountId::from("account0@example.com");
        let writer = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.update(&id, Change::Disabled).await })
        };
        // 5 ms in, the first update's file is truncated and not yet rewritten.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let late = store.update(&id, Change::Enabled).await;
        assert!(matches!(late, Err(StoreError::UnknownAccount(_))), "{late:?}");
        writer.await.unwrap().unwrap();
        let left = AccountsFile::parse(Path::new("m"), &backend.contents().unwrap()).unwrap();
        assert!(left.accounts.is_empty(), "the late writer saved the empty pool it read");
    }
}
