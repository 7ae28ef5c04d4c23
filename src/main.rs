//! `credpool`: parse the command line, run it, print the error, exit 0, 1 or 2.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: `credpool serve` allocates per request, and glibc's
/// malloc and free were about a fifth of its instructions (docs/benchmarks.md#serve).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
