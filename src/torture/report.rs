//! A torture run's figures, its verdict, and how they are printed (a table, or JSON).
//!
//! The verdict fails the run (exit 1) when an acknowledged update is missing from the final file,
//! when the checker ever saw the file unreadable, empty or missing accounts, when the final file is
//! unreadable, or when the run itself went wrong (a store error, a writer that crashed on its own,
//! the timeout). Each failing finding is named, with what it means for the mode under test.

use super::reader::ReadCounts;
use super::supervisor::{is_crash_safe, Ledger};
use super::trace::Layout;
use super::{Config, Progress};
use crate::model::AccountsFile;
use crate::store::StoreMode;
use std::fmt::Write;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub mode: StoreMode,
    pub file: String,
    pub processes: u64,
    pub updates_per_process: u64,
    pub concurrency: usize,
    pub seed: u64,
    pub kill: bool,
    pub max_kills: u64,
    #[serde(flatten)]
    pub progress: Progress,
    /// Updates whose `Ok` reached the supervisor.
    pub updates_acknowledged: u64,
    /// Updates (acknowledged or not) whose trace is in the final file.
    pub updates_found_on_disk: u64,
    /// Acknowledged, and not in the final file.
    pub lost_acknowledged_updates: u64,
    /// In the final file but never acknowledged: the process was killed after the write and before
    /// its ack. Not a loss.
    pub unacknowledged_found_on_disk: u64,
    /// Updates the store answered with an error.
    pub failed_updates: u64,
    pub first_store_error: Option<String>,
    #[serde(flatten)]
    pub reads: ReadCounts,
    pub final_file_readable: bool,
    pub final_accounts: usize,
    pub final_file_problem: Option<String>,
    /// Temp files left next to the file (writers killed between creating and renaming them).
    pub leftover_temp_files: usize,
    /// Whether the file, its backup, lock file and temp files were left in place.
    pub files_kept: bool,
    pub wall_time_s: f64,
    pub passed: bool,
    /// One sentence per failing finding, or why the run passed.
    pub verdict: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        layout: &Layout,
        ledgers: &[Ledger],
        progress: &Progress,
        reads: ReadCounts,
        final_file: Result<AccountsFile, String>,
        leftover_temp_files: usize,
    ) -> Report {
        let (mut acked, mut found, mut lost, mut unacked_found, mut failed) = (0, 0, 0, 0, 0);
        let mut first_store_error = None;
        for (w, ledger) in ledgers.iter().enumerate() {
            for i in 0..config.updates {
                let on_disk = final_file.as_ref().is_ok_and(|f| layout.is_on_disk(f, w as u64, i));
                let was_acked = ledger.acked[i as usize];
                acked += u64::from(was_acked);
                found += u64::from(on_disk);
                lost += u64::from(was_acked && !on_disk);
                unacked_found += u64::from(!was_acked && on_disk);
                failed += u64::from(ledger.failed[i as usize]);
            }
            if first_store_error.is_none() {
                first_store_error.clone_from(&ledger.first_error);
            }
        }
        let mut r = Report {
            mode: config.mode,
            file: config.file.display().to_string(),
            processes: config.processes,
            updates_per_process: config.updates,
            concurrency: config.concurrency,
            seed: config.seed,
            kill: config.kill,
            max_kills: config.max_kills,
            progress: progress.clone(),
            updates_acknowledged: acked,
            updates_found_on_disk: found,
            lost_acknowledged_updates: lost,
            unacknowledged_found_on_disk: unacked_found,
            failed_updates: failed,
            first_store_error,
            reads,
            final_file_readable: final_file.is_ok(),
            final_accounts: final_file.as_ref().map(|f| f.accounts.len()).unwrap_or(0),
            final_file_problem: final_file.err(),
            leftover_temp_files,
            files_kept: config.keep,
            wall_time_s: 0.0,
            passed: false,
            verdict: Vec::new(),
        };
        r.judge();
        r
    }

    /// Sets `passed` and `verdict`.
    fn judge(&mut self) {
        let mode = self.mode;
        let mut v = Vec::new();
        if self.lost_acknowledged_updates > 0 {
            v.push(format!(
                "LOST {} acknowledged updates: the store said Ok and the change is not in the file.{}",
                self.lost_acknowledged_updates,
                match mode {
                    StoreMode::Locked if self.processes > 1 =>
                        " `locked` locks inside one process only: processes read the same version and the later rename drops the other's change (the seed's fix still loses data across processes).",
                    StoreMode::Naive =>
                        " `naive` has no lock at all: concurrent read-modify-writes overwrite each other (the seed's pre-fix bug).",
                    _ => "",
                }
            ));
        }
        let r = &self.reads;
        if r.unparsable > 0 || r.empty_pool > 0 || r.short_pool > 0 {
            v.push(format!(
                "the checker saw the file unreadable in {} of {} reads, with no accounts in {} and with accounts missing in {}{}{}",
                r.unparsable,
                r.reads,
                r.empty_pool,
                r.short_pool,
                r.first_problem
                    .as_ref()
                    .map(|p| format!(" (first: {p})"))
                    .unwrap_or_default(),
                if mode == StoreMode::Naive {
                    ": `naive` truncates the file and rewrites it in place, so a reader can catch it empty or half-written, and a writer that read the empty file saves an empty pool (the seed's wiped pool)"
                } else {
                    ""
                }
            ));
        }
        if let Some(p) = &self.final_file_problem {
            v.push(format!("the final file is unreadable: {p}"));
        } else if self.final_accounts < (self.processes * Layout::new(self.updates_per_process).lanes) as usize {
            v.push(format!("the final file holds only {} accounts", self.final_accounts));
        }
        if self.failed_updates > 0 {
            v.push(format!(
                "the store refused {} updates (first: {})",
                self.failed_updates,
                self.first_store_error.as_deref().unwrap_or("?")
            ));
        }
        if self.progress.abnormal_exits > 0 {
            v.push(format!(
                "{} writer processes exited on their own without finishing ({})",
                self.progress.abnormal_exits,
                self.progress.first_abnormal.as_deref().unwrap_or("?")
            ));
        }
        if self.progress.timed_out {
            v.push("the run timed out before every update was done".into());
        }
        self.passed = v.is_empty();
        if self.passed {
            let kills = if self.kill {
                format!(" across {} SIGKILLs", self.progress.kills)
            } else {
                String::new()
            };
            v.push(format!(
                "no acknowledged update lost and the file always readable{kills}{}",
                if is_crash_safe(mode) || self.processes == 1 {
                    ""
                } else {
                    " (this time: the mode gives no such guarantee across processes)"
                }
            ));
        }
        self.verdict = v;
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "credpool torture: store {}, {} processes x {} updates ({} in flight each), seed {}",
            self.mode, self.processes, self.updates_per_process, self.concurrency, self.seed
        );
        let _ = writeln!(s, "file: {}", self.file);
        let row = |s: &mut String, label: &str, value: String, note: &str| {
            let _ = writeln!(s, "  {label:<38} {value:>10}  {note}");
        };
        row(
            &mut s,
            "updates acknowledged",
            self.updates_acknowledged.to_string(),
            "",
        );
        row(
            &mut s,
            "updates found on disk",
            self.updates_found_on_disk.to_string(),
            "",
        );
        row(
            &mut s,
            "  of which never acknowledged",
            self.unacknowledged_found_on_disk.to_string(),
            "killed after the write, before the ack: not a loss",
        );
        row(
            &mut s,
            "LOST acknowledged updates",
            self.lost_acknowledged_updates.to_string(),
            if self.lost_acknowledged_updates > 0 {
                "<- data loss"
            } else {
                ""
            },
        );
        row(
            &mut s,
            "failed updates (store error)",
            self.failed_updates.to_string(),
            "",
        );
        row(&mut s, "reads by the checker", self.reads.reads.to_string(), "");
        row(
            &mut s,
            "  unparsable (or missing)",
            self.reads.unparsable.to_string(),
            "",
        );
        row(&mut s, "  empty pool", self.reads.empty_pool.to_string(), "");
        row(&mut s, "  accounts missing", self.reads.short_pool.to_string(), "");
        row(
            &mut s,
            "final file",
            if self.final_file_readable {
                format!("{} accounts", self.final_accounts)
            } else {
                "UNREADABLE".into()
            },
            "",
        );
        row(
            &mut s,
            "leftover temp files",
            self.leftover_temp_files.to_string(),
            if self.files_kept {
                "kept"
            } else {
                "removed after counting"
            },
        );
        let kills = if self.kill {
            format!("{} (max {})", self.progress.kills, self.max_kills)
        } else {
            "off".into()
        };
        row(&mut s, "kills (SIGKILL)", kills, "");
        row(
            &mut s,
            "  during an update",
            self.progress.kills_mid_update.to_string(),
            "an update handed to the store, not yet answered",
        );
        row(&mut s, "restarts", self.progress.restarts.to_string(), "");
        row(&mut s, "wall time", format!("{:.1} s", self.wall_time_s), "");
        let _ = writeln!(s, "verdict: {}", if self.passed { "PASS" } else { "FAIL" });
        for line in &self.verdict {
            let _ = writeln!(s, "  - {line}");
        }
        s
    }
}
