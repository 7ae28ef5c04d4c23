//! The consistency audit: after a run, does the persisted `accounts.toml` hold what the store
//! acknowledged?
//!
//! The store is wrapped in an [`AuditedStore`] that counts, per account, the call-counting updates
//! and the disables it acknowledged, and the last refreshed token it acknowledged. At the end the
//! file is read back: a lost update is an acknowledged `total_calls` increment missing from the
//! file, a resurrected account one whose acknowledged disable is not there, a stale token an
//! account whose last acknowledged refresh was overwritten by an older token, and an unreadable
//! file loses everything.
//!
//! Each acknowledgement is also a *moment* ([`AuditedStore::moment`]): the runner takes one as a
//! request starts acquiring, to ask afterwards whether its account's disable had already been
//! acknowledged by then ([`crate::metrics::served`]).
//!
//! Writes made by other code than the store (`as_shipped` replays the shipped proxy's own storage
//! over the same file) are reported through [`AccountStore::acknowledge`] and counted alike.

use crate::future::BoxFuture;
use crate::model::{Account, AccountId, AccountsFile, Change};
use crate::store::{AccountStore, StoreError, StoreMode, StoreStats};
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
    /// Accounts whose last acknowledged refreshed token the final file does not hold (a stale
    /// write put an older token back).
    #[serde(default)]
    pub stale_tokens: u64,
    /// The final file parsed.
    pub file_readable: bool,
    /// The final file held no accounts at all (the seed's wiped pool).
    pub file_empty: bool,
    /// Accounts the final file shows disabled.
    #[serde(default)]
    pub disabled_on_disk: u64,
    /// The longest series ban the final file holds, ms past the run's end (0: none left).
    #[serde(default)]
    pub longest_ban_ms: i64,
}

impl Audit {
    /// [`Audit::longest_ban_ms`] in hours.
    pub fn longest_ban_hours(&self) -> f64 {
        self.longest_ban_ms as f64 / 3_600_000.0
    }
}

#[derive(Default)]
struct Acks {
    /// Changes acknowledged so far: the moment of the last one (see [`AuditedStore::moment`]).
    seq: u64,
    calls: HashMap<AccountId, u64>,
    /// Accounts whose disable was acknowledged (and not undone by an enable), with the moment
    /// of the first acknowledgement.
    disabled: HashMap<AccountId, u64>,
    /// Accounts whose disable was acknowledged at some moment of the run.
    ever_disabled: std::collections::HashSet<AccountId>,
    /// The last refreshed token acknowledged per account (redacted in `Debug`).
    tokens: HashMap<AccountId, crate::secret::Secret>,
}

impl Acks {
    fn record(&mut self, id: &AccountId, change: &Change) {
        self.seq += 1;
        if change.counts_a_call() {
            *self.calls.entry(id.clone()).or_default() += 1;
        }
        if change.disables() {
            self.disabled.entry(id.clone()).or_insert(self.seq);
            self.ever_disabled.insert(id.clone());
        }
        match change {
            Change::Enabled => {
                self.disabled.remove(id);
            }
            Change::Refreshed { grant, .. } => {
                self.tokens.insert(id.clone(), grant.access_token.clone());
            }
            _ => {}
        }
    }
}

/// A store decorator that remembers what was acknowledged.
pub struct AuditedStore {
    inner: Arc<dyn AccountStore>,
    acks: crate::sync::Mutex<Acks>,
    /// Whole-file writes made by other code than the store ([`AccountStore::note_write`]),
    /// added to the inner store's `writes` so the figure counts every write the file saw.
    foreign_writes: std::sync::atomic::AtomicU64,
}

impl AuditedStore {
    pub fn new(inner: Arc<dyn AccountStore>) -> Self {
        AuditedStore {
            inner,
            acks: crate::sync::Mutex::new(Acks::default()),
            foreign_writes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The present moment in the order of acknowledgements: the number of changes acknowledged
    /// so far. A change acknowledged before a moment `m` was taken has a moment at most `m`.
    pub fn moment(&self) -> u64 {
        self.acks.lock().seq
    }

    /// Whether the store had acknowledged a disable of `id` (not undone since) at `moment`.
    pub fn disabled_at(&self, id: &AccountId, moment: u64) -> bool {
        self.acks.lock().disabled.get(id).is_some_and(|&at| at <= moment)
    }

    /// Whether the store acknowledged a disable of `id` at any moment of the run so far.
    pub fn ever_disabled(&self, id: &AccountId) -> bool {
        self.acks.lock().ever_disabled.contains(id)
    }

    /// Compares the acknowledged updates with the final file `text` (None: missing). `initial`
    /// is the pool as it was written at the start; `end` is the run's last instant (epoch ms),
    /// which bans left in the file are measured from.
    pub fn audit(&self, initial: &[Account], text: Option<&str>, end: crate::model::EpochMs) -> Audit {
        let acks = self.acks.lock();
        let acknowledged: u64 = acks.calls.values().sum();
        let parsed = text.and_then(|t| AccountsFile::parse(Path::new("audit"), t).ok());
        let Some(file) = parsed else {
            return Audit {
                acknowledged,
                persisted: 0,
                lost_updates: acknowledged,
                resurrected: acks.disabled.len() as u64,
                stale_tokens: acks.tokens.len() as u64,
                file_readable: false,
                file_empty: true,
                disabled_on_disk: 0,
                longest_ban_ms: 0,
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
        let stale_tokens = acks
            .tokens
            .iter()
            .filter(|(id, token)| !file.accounts.iter().any(|f| &f.id == *id && &f.access_token == *token))
            .count() as u64;
        Audit {
            acknowledged,
            persisted,
            lost_updates: acknowledged - persisted,
            resurrected,
            stale_tokens,
            file_readable: true,
            file_empty: file.accounts.is_empty(),
            disabled_on_disk: file.accounts.iter().filter(|a| a.disabled).count() as u64,
            longest_ban_ms: file
                .accounts
                .iter()
                .flat_map(|a| a.bans.iter().filter_map(|(_, until)| *until))
                .map(|until| (until - end).max(0))
                .max()
                .unwrap_or(0),
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
            // Kept for the record only once acknowledged; a change is small, and cloning it
            // keeps the inner store's signature.
            let record = change.clone();
            self.inner.update(id, change).await?;
            self.acks.lock().record(id, &record);
            Ok(())
        })
    }

    fn stats(&self) -> StoreStats {
        let mut stats = self.inner.stats();
        stats.writes += self.foreign_writes.load(std::sync::atomic::Ordering::Relaxed);
        stats
    }

    fn backend(&self) -> Option<Arc<dyn crate::store::backend::Backend>> {
        self.inner.backend()
    }

    fn acknowledge(&self, id: &AccountId, change: &Change) {
        self.acks.lock().record(id, change);
    }

    fn note_write(&self) {
        self.foreign_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
