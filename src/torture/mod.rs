//! `credpool torture`: crash-test a store mode on a real disk, with real processes and SIGKILL.
//!
//! N writer processes apply M distinct updates each to one fresh accounts file, through the store
//! mode under test, while a checker thread reads the file over and over. With `--kill`, the
//! supervisor SIGKILLs writers at random moments and restarts them with the updates they still
//! owe, until every update is done. At the end the file is read once more and every acknowledged
//! update is looked for, one by one:
//!
//! - [`trace`]: what an update is, so that each leaves its own trace in the file;
//! - [`worker`]: the writer process (the hidden `credpool store-worker --torture`);
//! - [`supervisor`]: starting, killing, restarting, and collecting acknowledgements;
//! - [`reader`]: the checker that reads while the writers write;
//! - [`report`]: the figures, the verdict, the table and the JSON.
//!
//! What counts as lost: an update whose `Ok` reached its process (which then reported it to the
//! supervisor) and whose trace is not in the final file. An update whose process was killed before
//! its ack is not lost, whether or not it reached the disk; those found on disk are counted apart.
//!
//! The harness's own threads share plain `std` mutexes and atomics: they coordinate OS threads of
//! a test harness, not state that `loom_tests/` models.

pub mod reader;
pub mod report;
pub mod supervisor;
pub mod trace;
pub mod worker;

pub use report::Report;

use crate::model::AccountsFile;
use crate::store::backend::Backend;
use crate::store::file_backend::FileBackend;
use crate::store::StoreMode;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trace::Layout;

/// A torture run, as the command line describes it.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `credpool` binary the workers run (this one, re-executed).
    pub exe: PathBuf,
    /// The accounts file to create and torture. It must not exist.
    pub file: PathBuf,
    pub mode: StoreMode,
    pub processes: u64,
    /// Updates per process.
    pub updates: u64,
    /// Updates in flight at once in each process (lets `group_commit` batch).
    pub concurrency: usize,
    pub kill: bool,
    /// Stop killing after this many kills (the updates still all get done).
    pub max_kills: u64,
    /// Mean time between kills (each gap is uniform in 0..2× this).
    pub kill_interval: Duration,
    pub seed: u64,
    /// Pause between two reads of the checker.
    pub read_pause: Duration,
    /// Give up (and fail) after this long.
    pub timeout: Duration,
    /// Keep the file, its backup and lock file, and leftover temp files afterwards.
    pub keep: bool,
}

/// What happened to the processes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// SIGKILLs delivered to a running writer.
    pub kills: u64,
    /// Of those, kills of a process that had an update handed to the store and not yet answered.
    pub kills_mid_update: u64,
    pub restarts: u64,
    /// Writers that exited on their own without finishing (a crash that was not ours).
    pub abnormal_exits: u64,
    pub first_abnormal: Option<String>,
    pub timed_out: bool,
}

/// Why a torture run could not start (bad input: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Checks the configuration, creates the file, runs the writers and checks the result.
pub fn run(config: &Config) -> Result<Report, SetupError> {
    validate(config)?;
    let layout = Layout::new(config.updates);
    let backend = FileBackend::new(&config.file);
    backend
        .create(&layout.initial_file(config.processes))
        .map_err(|e| SetupError(format!("{}: cannot create the file: {e}", config.file.display())))?;
    let expected_accounts = (config.processes * layout.lanes) as usize;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let checker = reader::spawn(config.file.clone(), expected_accounts, config.read_pause, stop.clone());
    let supervised = supervisor::supervise(config);
    stop.store(true, Ordering::Release);
    let reads = checker.join().unwrap_or_default();
    let (ledgers, progress) = supervised.map_err(SetupError)?;
    let wall_time = started.elapsed();

    let final_text = backend.read();
    let final_file = match &final_text {
        Ok(Some(text)) => AccountsFile::parse(&config.file, text).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("{}: no such file", config.file.display())),
        Err(e) => Err(format!("{}: {e}", config.file.display())),
    };
    let temp_files = backend.temp_files().unwrap_or_default();
    let mut report = Report::new(
        config,
        &layout,
        &ledgers,
        &progress,
        reads,
        final_file,
        temp_files.len(),
    );
    report.wall_time_s = wall_time.as_secs_f64();
    if !config.keep {
        for t in &temp_files {
            let _ = std::fs::remove_file(t);
        }
        if report.passed {
            for p in [backend.path(), backend.backup_path(), backend.lock_path()] {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    report.files_kept = config.keep || !report.passed;
    Ok(report)
}

fn validate(c: &Config) -> Result<(), SetupError> {
    let bad = |m: String| Err(SetupError(m));
    if c.processes == 0 || c.processes > 256 {
        return bad(format!("--processes {}: expected 1 to 256", c.processes));
    }
    if c.updates == 0 || c.updates > 1_000_000 {
        return bad(format!("--updates {}: expected 1 to 1000000", c.updates));
    }
    if c.concurrency == 0 || c.concurrency > 1024 {
        return bad(format!("--concurrency {}: expected 1 to 1024", c.concurrency));
    }
    if c.kill_interval.is_zero() {
        return bad("--kill-interval-ms 0: expected a positive interval".into());
    }
    if std::fs::symlink_metadata(&c.file).is_ok() {
        return bad(format!(
            "{}: already exists: torture writes a fresh file of fake accounts and never touches an \
             existing one; expected a path that does not exist yet",
            c.file.display()
        ));
    }
    let dir = match c.file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return bad(format!(
            "{}: no such directory: expected the file's directory to exist",
            dir.display()
        ));
    }
    Ok(())
}
