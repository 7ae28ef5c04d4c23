//! The consistency audit: after a run, does the persisted `accounts.toml` hold what the store
//! acknowledged?
//!
//! The store is wrapped in an [`AuditedStore`] that counts, per account, the call-counting updates
//! and the disables it acknowledged. At the end the file is read back: a lost update is an
//! acknowledged `total_calls` increment missing from the file, a resurrected account one whose
//! acknowledged disable is not there, and an unreadable file loses everything.

use crate::model::{Account, AccountId, AccountsFile, Change};
use crate::store::{AccountStore, BoxFuture, StoreError, StoreMode, StoreStats};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The audit's findings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Call-counting updates the store acknowledged.
    pub acknowledged: u64,
    /// Of those, how many the final file holds.
    pub persisted: u64,
    /// `acknowledged - persisted` (all of them when the file is unreadable).
    pub lost_updates: u64,
    /// Accounts whose acknowledged disable the final file does not show.
    pub resurrected: u64,
    /// The final file parsed.
    pub file_readable: bool,
    /// The final file held no accounts at all (the seed's wiped pool).
    pub file_empty: bool,
    /// Accounts the final file shows disabled.
    #[serde(default)]
    pub disabled_on_disk: u64,
}

#[derive(Default)]
struct Acks {
    calls: HashMap<AccountId, u64>,
    disabled: HashMap<AccountId, bool>,
}

/// A store decorator that remembers what was acknowledged.
pub struct AuditedStore {
    inner: Arc<dyn AccountStore>,
    acks: crate::sync::Mutex<Acks>,
}

impl AuditedStore {
    pub fn new(inner: Arc<dyn AccountStore>) -> Self {
        AuditedStore {
            inner,
            acks: crate::sync::Mutex::new(Acks::default()),
        }
    }

    /// Compares the acknowledged updates with the final file `text` (None: missing). `initial`
    /// is the pool as it was written at the start.
    pub fn audit(&self, initial: &[Account], text: Option<&str>) -> Audit {
        let acks = self.acks.lock();
        let acknowledged: u64 = acks.calls.values().sum();
        let parsed = text.and_then(|t| AccountsFile::parse(Path::new("audit"), t).ok());
        let Some(file) = parsed else {
            return Audit {
                acknowledged,
                persisted: 0,
                lost_updates: acknowledged,
                resurrected: acks.disabled.len() as u64,
                file_readable: false,
                file_empty: true,
                disabled_on_disk: 0,
            };
        };
        let mut persisted = 0;
        for a in initial {
            let before = a.total_calls;
            let after = file
                .accounts
                .iter()
                .find(|f| f.id == a.id)
                .map(|f| f.total_calls)
                .unwrap_or(before);
            let acked = acks.calls.get(&a.id).copied().unwrap_or(0);
            persisted += after.saturating_sub(before).min(acked);
        }
        let resurrected = acks
            .disabled
            .keys()
            .filter(|id| !file.accounts.iter().any(|f| &f.id == *id && f.disabled))
            .count() as u64;
        Audit {
            acknowledged,
            persisted,
            lost_updates: acknowledged - persisted,
            resurrected,
            file_readable: true,
            file_empty: file.accounts.is_empty(),
            disabled_on_disk: file.accounts.iter().filter(|a| a.disabled).count() as u64,
        }
    }
}

impl AccountStore for AuditedStore {
    fn mode(&self) -> StoreMode {
        self.inner.mode()
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        self.inner.load()
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let counts = change.counts_a_call();
            let disables = change.disables();
            let enables = matches!(change, Change::Enabled);
            self.inner.update(id, change).await?;
            let mut acks = self.acks.lock();
            if counts {
                *acks.calls.entry(id.clone()).or_default() += 1;
            }
            if disables {
                acks.disabled.insert(id.clone(), true);
            }
            if enables {
                acks.disabled.remove(id);
            }
            Ok(())
        })
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}
