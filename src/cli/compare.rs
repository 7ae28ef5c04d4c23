//! `credpool compare OLD NEW [--out FILE]`: how each percentile, the throughput, the errors and
//! the lost updates moved between two runs, per scenario and strategy; printed, and written as
//! `compare.html` in NEW's folder (or `--out`).

use super::report::run_folder;
use super::{CliResult, Failure};
use crate::report::{compare, html, json};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The earlier run: a run folder or its summary.json.
    pub old: PathBuf,
    /// The later run: a run folder or its summary.json.
    pub new: PathBuf,
    /// Where to write the HTML comparison (default: NEW/compare.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> CliResult {
    let old = json::read(&args.old).map_err(Failure::BadInput)?;
    let new = json::read(&args.new).map_err(Failure::BadInput)?;
    let c = compare::compare(
        &old,
        &args.old.display().to_string(),
        &new,
        &args.new.display().to_string(),
    );
    if c.pairs.is_empty() {
        return Err(Failure::BadInput(format!(
            "{} and {} have no scenario and strategy in common: nothing to compare",
            args.old.display(),
            args.new.display()
        )));
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), compare::render_terminal(&c).as_bytes());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run_folder(&args.new).join(html::compare::FILE));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::BadInput(format!("{}: cannot create the folder: {e}", parent.display())))?;
    }
    html::compare::write(&out, &c, &old, &new)
        .map_err(|e| Failure::BadInput(format!("{}: cannot write the comparison: {e}", out.display())))?;
    println!("comparison: {}", out.display());
    Ok(())
}
