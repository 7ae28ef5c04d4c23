//! `credpool`: parse the command line, run it, print the error, exit 0, 1 or 2.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = credpool::cli::Cli::parse();
    match credpool::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("credpool: {failure}");
            failure.exit_code()
        }
    }
}
