//! `credpool report DIR [--out DIR]`: rewrites a run's report (index.html, summary.csv, the
//! `.hgrm` files) from its `summary.json` alone, without running anything.

use super::{CliResult, Failure};
use crate::report::{self, json};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run folder (holding summary.json), or a summary.json file.
    pub dir: PathBuf,
    /// Write the report here instead of beside the summary (summary.json is copied too).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The folder a run path stands for: the path itself, or the folder of a summary.json.
pub(crate) fn run_folder(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

pub fn run(args: ReportArgs) -> CliResult {
    let summary = json::read(&args.dir).map_err(Failure::BadInput)?;
    let out = args.out.clone().unwrap_or_else(|| run_folder(&args.dir));
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::BadInput(format!("{}: cannot create the output folder: {e}", out.display())))?;
    let write_err = |e: std::io::Error| Failure::BadInput(format!("{}: cannot write the report: {e}", out.display()));
    // The summary is the source: copied as it is (never rewritten) when the report goes elsewhere.
    let source = if args.dir.is_dir() {
        args.dir.join(json::FILE)
    } else {
        args.dir.clone()
    };
    let target = out.join(json::FILE);
    if std::fs::canonicalize(&source).ok() != std::fs::canonicalize(&target).ok() {
        std::fs::copy(&source, &target).map_err(write_err)?;
    }
    report::write_derived(&out, &summary).map_err(write_err)?;
    println!("report: {}", out.join(report::html::FILE).display());
    Ok(())
}
