//! `credpool list`: the strategies and the scenarios credpool knows.

use super::{CliResult, Failure};
use crate::scenario::suite;
use crate::strategy::StrategyName;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
}

pub fn run(args: ListArgs) -> CliResult {
    println!("strategies:");
    for s in StrategyName::ALL {
        println!("  {:<14} {}", s.as_str(), s.summary());
    }
    let files = suite::discover(&args.paths).map_err(|e| Failure::BadInput(e.to_string()))?;
    println!("\nscenarios:");
    for f in files {
        match suite::check(&f) {
            Ok(p) => println!("  {:<28} {:<8} {}", p.name, p.mode.as_str(), p.description),
            Err(e) => println!("  {:<28} INVALID  {e}", f.display()),
        }
    }
    Ok(())
}
