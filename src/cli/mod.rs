//! The `credpool` command line: one file per command, parsed with clap.
//!
//! Exit codes (DESIGN.md §4): 0 ok, 1 an expectation in a scenario failed (or a torture run lost
//! data), 2 bad input or usage.

pub mod accounts;
pub mod bench_summary;
pub mod check;
pub mod compare;
pub mod fleet_accounts;
pub mod list;
pub mod report;
pub mod run;
pub mod serve;
pub mod store_worker;
pub mod sweep;
pub mod torture;
pub mod upstream;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What a command returns: success, a failed expectation, or bad input.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: the run worked but an expectation (or a data-safety check) failed.
    Expectation(String),
    /// Exit 2: bad input or usage; the message says what was expected.
    BadInput(String),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Expectation(_) => ExitCode::from(1),
            Failure::BadInput(_) => ExitCode::from(2),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Expectation(m) | Failure::BadInput(m) => f.write_str(m),
        }
    }
}

pub type CliResult = Result<(), Failure>;

#[derive(Parser, Debug)]
#[command(
    name = "credpool",
    version,
    about = "Concurrency simulation and benchmark harness for shared OAuth credential pools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect or change an accounts.toml file (through the durable store).
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Validate an accounts file or a scenario file without changing it.
    Check(check::CheckArgs),
    /// Run scenarios with every (or the chosen) strategy and write the report.
    Run(run::RunArgs),
    /// Name the strategies and the scenarios.
    List(list::ListArgs),
    /// Print the latest `cargo bench` results as one table, with the performance claims checked.
    BenchSummary(bench_summary::BenchSummaryArgs),
    /// Run one scenario at several offered rates or user counts: knee, SLO capacity, USL fit.
    Sweep(sweep::SweepArgs),
    /// Rewrite a run's HTML, CSV, .hgrm and .hlog files from its summary.json.
    Report(report::ReportArgs),
    /// Show how each percentile and the throughput moved between two runs (terminal and HTML).
    Compare(compare::CompareArgs),
    /// Serve the pool over HTTP: lease API, reverse proxy, admin, metrics (docs/serve.md).
    Serve(serve::ServeArgs),
    /// Crash-test a store mode on this disk: writer processes, SIGKILLs, a checker; exit 1 on data loss.
    Torture(torture::TortureArgs),
    /// Serve the stateful mock of Google (token endpoint, Gemini and Code Assist APIs) on loopback.
    Upstream(upstream::UpstreamArgs),
    /// A worker process of the multi-process store tests (not for people: hidden from --help).
    #[command(hide = true)]
    StoreWorker(store_worker::StoreWorkerArgs),
}

/// Prints a loaded scenario's warnings on stderr, one `file:line:column: warning: ...` a line.
pub fn print_warnings(plan: &crate::scenario::plan::Plan) {
    for w in &plan.warnings {
        eprintln!("{w}");
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> CliResult {
    match cli.command {
        Command::Accounts(cmd) => accounts::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(args),
        Command::List(args) => list::run(args),
        Command::BenchSummary(args) => bench_summary::run(args),
        Command::Report(args) => report::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Torture(args) => torture::run(args),
        Command::StoreWorker(args) => store_worker::run(args),
        Command::Upstream(args) => upstream::run(args),
    }
}
