//! `credpool list`: the strategies and the scenarios credpool knows.

use super::{CliResult, Failure};
use crate::scenario::suite;
use crate::strategy::StrategyName;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
}

pub fn run(args: ListArgs) -> CliResult {
    let files = suite::discover(&args.paths).map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut out = String::from("strategies:\n");
    for s in StrategyName::ALL {
        let _ = writeln!(out, "  {:<14} {}", s.as_str(), s.summary());
    }
    out.push_str("\nscenarios:\n");
    let plans: Vec<_> = files.iter().map(|f| (f, suite::check(f))).collect();
    let width = plans
        .iter()
        .map(|(f, p)| p.as_ref().map_or(f.display().to_string().len(), |p| p.name.len()))
        .max();
    let width = width.unwrap_or(0);
    for (f, plan) in plans {
        let _ = match plan {
            Ok(p) => writeln!(out, "  {:<width$} {:<8} {}", p.name, p.mode.as_str(), p.description),
            Err(e) => writeln!(out, "  {:<width$} INVALID  {e}", f.display()),
        };
    }
    // A closed pipe (`credpool list | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}
