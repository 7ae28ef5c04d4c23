//! `accounts.toml` persistence: four modes behind one trait.
//!
//! The modes replay the history of the seed's data-loss bug and go beyond its fix:
//!
//! | mode | in-process lock | write | fsync | cross-process lock | updates per write |
//! |---|---|---|---|---|---|
//! | [`naive`] | none | truncate in place | no | no | 1 |
//! | [`locked`] | async mutex | temp + rename, backup | no | no | 1 |
//! | [`durable`] | async mutex | temp + rename, backup | file + dir | lock file | 1 |
//! | [`group_commit`] | leader/follower | as `durable` | file + dir | lock file | all pending |
//!
//! Where the bytes live is a [`backend::Backend`]: real files ([`backend::FileBackend`]) for real
//! mode, tests and `credpool torture`, or memory ([`backend::MemoryBackend`]) for virtual-time runs
//! and loom models. The store charges modelled file costs through [`Costs`], in real mode too: there
//! the runner wraps the file in a [`paced_backend::PacedBackend`], so the real I/O's time is made
//! up by the modelled costs that follow it instead of added to them.
//!
//! Invariants of every mode but `naive`: a file that cannot be parsed is never overwritten; an
//! empty pool never replaces a non-empty one; an update returns only once it is in the file.

pub mod backend;
pub mod crash_fs;
pub mod durable;
pub mod file_backend;
pub mod fs;
pub mod group_commit;
pub mod locked;
pub mod naive;
pub mod paced_backend;
mod seq_window;
mod tally;

use crate::costs::Costs;
use crate::future::BoxFuture;
use crate::input_error::InputError;
use crate::model::{AccountId, AccountsFile, Change};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The four store modes, by the names scenario files and the CLI use.
///
/// There is deliberately no `Default`: `naive` loses data by design and must only ever be named
/// explicitly, and a caller with a real file should choose between the others knowingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreMode {
    Naive,
    Locked,
    Durable,
    GroupCommit,
}

impl StoreMode {
    pub const ALL: [StoreMode; 4] = [
        StoreMode::Naive,
        StoreMode::Locked,
        StoreMode::Durable,
        StoreMode::GroupCommit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StoreMode::Naive => "naive",
            StoreMode::Locked => "locked",
            StoreMode::Durable => "durable",
            StoreMode::GroupCommit => "group_commit",
        }
    }
}

impl fmt::Display for StoreMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StoreMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StoreMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown store mode {s:?}: expected one of naive, locked, durable, group_commit"))
    }
}

/// Why a store operation failed. No variant carries a token.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not a valid accounts file. It was left untouched.
    #[error("{0} (left untouched)")]
    Invalid(#[from] InputError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The update names an account the file does not have.
    #[error("no account {0} in the file")]
    UnknownAccount(AccountId),
    /// The write would replace a non-empty pool with an empty one (the fix's layer 3).
    #[error("refusing to replace a non-empty pool with an empty one")]
    WouldEmptyPool,
    /// The file does not exist and the caller did not ask to create it.
    #[error("{0}: no such file (a missing accounts file is not an empty pool)")]
    Missing(String),
    /// The group-commit writer failed; every update in its batch gets this error.
    #[error("group commit failed: {0}")]
    Batch(Arc<StoreError>),
}

/// What a store did, for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Updates acknowledged to callers.
    pub updates: u64,
    /// Whole-file writes.
    pub writes: u64,
    /// fsync calls (file and directory).
    pub fsyncs: u64,
}

/// An accounts store.
pub trait AccountStore: Send + Sync + 'static {
    fn mode(&self) -> StoreMode;

    /// Reads and parses the current file.
    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>>;

    /// Applies `change` to account `id` and persists it. Returns once the change is in the file
    /// (for `naive`, once its own write is done, which another writer may already have undone).
    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>>;

    fn stats(&self) -> StoreStats;

    /// Where this store keeps its bytes. `as_shipped` replays the shipped proxy's own storage
    /// code over the very same file, so a run's audit reads what it wrote.
    fn backend(&self) -> Option<Arc<dyn backend::Backend>> {
        None
    }

    /// Tells the store that `change` to account `id` was written to its file by other code (the
    /// shipped proxy's own storage, replayed by `as_shipped`) and acknowledged to the caller. Only
    /// the audit listens: a plain store has nothing to do.
    fn acknowledge(&self, _id: &AccountId, _change: &Change) {}

    /// Tells the store that other code (the shipped proxy's own storage, replayed by
    /// `as_shipped`) wrote its whole file once, so `writes` in [`StoreStats`] counts every write
    /// the file saw. Only the audit's wrapper counts them: a plain store has nothing to do.
    fn note_write(&self) {}
}

/// Builds a store of `mode` over `backend`, charging `costs` for file steps.
pub fn open(mode: StoreMode, backend: Arc<dyn backend::Backend>, costs: Costs) -> Arc<dyn AccountStore> {
    match mode {
        StoreMode::Naive => Arc::new(naive::NaiveStore::new(backend, costs)),
        StoreMode::Locked => Arc::new(locked::LockedStore::new(backend, costs)),
        StoreMode::Durable => Arc::new(durable::DurableStore::new(backend, costs)),
        StoreMode::GroupCommit => Arc::new(group_commit::GroupCommitStore::new(backend, costs)),
    }
}
