//! `credpool bench-summary [--dir DIR]`: one Markdown table of the latest `cargo bench` results,
//! with the ratios and the verdict on each performance claim (see [`crate::report::bench`]).

use super::{CliResult, Failure};
use crate::report::bench;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BenchSummaryArgs {
    /// criterion's output folder (default: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion,
    /// else target/criterion, as criterion itself chooses).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: BenchSummaryArgs) -> CliResult {
    let dir = args.dir.unwrap_or_else(default_dir);
    let results = bench::load(&dir).map_err(Failure::BadInput)?;
    print!("{}", bench::render(&results));
    Ok(())
}

fn default_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}
