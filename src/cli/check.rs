//! `credpool check FILE`: placeholder.
use super::CliResult;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// An accounts.toml or a scenario file.
    pub files: Vec<PathBuf>,
}

pub fn run(_args: CheckArgs) -> CliResult {
    Ok(())
}
