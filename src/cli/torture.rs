//! `credpool torture --store MODE [--processes N] [--updates M] [--kill] [--kills K] [--seed S] FILE`:
//! crash-test a store mode on this disk (see [`crate::torture`]). Prints a table (or `--json`);
//! exits 1 when an acknowledged update was lost or the file was ever unreadable, 2 on bad input.

use super::{CliResult, Failure};
use crate::store::StoreMode;
use crate::torture::{self, Config};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct TortureArgs {
    /// The store mode to torture: naive, locked, durable or group_commit.
    #[arg(long = "store")]
    pub mode: StoreMode,
    /// Writer processes.
    #[arg(long, default_value_t = 4)]
    pub processes: u64,
    /// Distinct updates each process applies.
    #[arg(long, default_value_t = 200)]
    pub updates: u64,
    /// Updates in flight at once in each process.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// SIGKILL writer processes at random moments and restart them.
    #[arg(long)]
    pub kill: bool,
    /// With --kill: stop killing after this many kills.
    #[arg(long, default_value_t = 200)]
    pub kills: u64,
    /// With --kill: mean time between kills, in milliseconds (each gap is uniform in 0..2x).
    #[arg(long, default_value_t = 10)]
    pub kill_interval_ms: u64,
    /// Seeds the kill moments and victims.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout_s: u64,
    /// Keep the file, its backup, lock file and leftover temp files (kept anyway on failure).
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to create the accounts file to torture. It must not exist: torture never touches an
    /// existing file.
    pub file: PathBuf,
}

pub fn run(args: TortureArgs) -> CliResult {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::BadInput(format!("cannot find the credpool binary to re-execute: {e}")))?;
    let config = Config {
        exe,
        file: args.file,
        mode: args.mode,
        processes: args.processes,
        updates: args.updates,
        concurrency: args.concurrency,
        kill: args.kill,
        max_kills: args.kills,
        kill_interval: Duration::from_millis(args.kill_interval_ms),
        seed: args.seed,
        read_pause: Duration::from_millis(1),
        timeout: Duration::from_secs(args.timeout_s),
        keep: args.keep,
    };
    let report = torture::run(&config).map_err(|e| Failure::BadInput(e.to_string()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report always serialises")
        );
    } else {
        print!("{}", report.table());
    }
    if report.passed {
        Ok(())
    } else {
        Err(Failure::Expectation(format!(
            "torture of {} failed: {} finding(s), see the verdict above",
            report.mode,
            report.verdict.len()
        )))
    }
}
