//! `credpool accounts list|disable|enable FILE`: placeholder, written by the store work.
use super::CliResult;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AccountsCommand {}

pub fn run(cmd: AccountsCommand) -> CliResult {
    match cmd {}
}
