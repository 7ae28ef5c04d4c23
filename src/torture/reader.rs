//! The checker that reads the file while the writers work, the way a proxy reads its pool.
//!
//! A reader must never see a file it cannot parse, nor a pool with fewer accounts than the file
//! was created with: that is what a proxy that reads at the wrong moment turns into "no accounts"
//! (the seed's wiped pool). Every read goes through [`FileBackend::read`] and
//! [`AccountsFile::parse`], the production path, on a thread of its own.

use crate::model::AccountsFile;
use crate::store::backend::Backend;
use crate::store::file_backend::FileBackend;
use std::path::{Path, PathBuf};
// A stop flag between two OS threads of a test harness, not state loom should model: std's.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the checker saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadCounts {
    pub reads: u64,
    /// Reads that failed: the file did not parse, was missing, or could not be read.
    pub unparsable: u64,
    /// Reads that parsed to no accounts at all (an empty file, or `accounts = []`).
    pub empty_pool: u64,
    /// Reads that parsed, with some but fewer accounts than the file was created with.
    pub short_pool: u64,
    /// The first failed read's error, for the report (errors never carry tokens).
    pub first_problem: Option<String>,
}

impl ReadCounts {
    /// One read of `path`, classified.
    pub fn check(&mut self, path: &Path, expected_accounts: usize) {
        self.reads += 1;
        let backend = FileBackend::new(path);
        let problem = match backend.read() {
            Ok(Some(text)) => match AccountsFile::parse(path, &text) {
                Ok(file) if file.accounts.is_empty() => {
                    self.empty_pool += 1;
                    return;
                }
                Ok(file) if file.accounts.len() < expected_accounts => {
                    self.short_pool += 1;
                    return;
                }
                Ok(_) => return,
                Err(e) => e.to_string(),
            },
            Ok(None) => format!("{}: no such file", path.display()),
            Err(e) => format!("{}: {e}", path.display()),
        };
        self.unparsable += 1;
        self.first_problem.get_or_insert(problem);
    }
}

/// Reads `path` every `pause` until `stop` is set; returns what it saw.
pub fn spawn(
    path: PathBuf,
    expected_accounts: usize,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<ReadCounts> {
    std::thread::spawn(move || {
        let mut counts = ReadCounts::default();
        while !stop.load(Ordering::Acquire) {
            counts.check(&path, expected_accounts);
            std::thread::sleep(pause);
        }
        counts
    })
}
