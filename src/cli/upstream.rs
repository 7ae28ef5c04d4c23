//! `credpool upstream --listen ADDR [--scenario FILE] [--journal FILE] [--accounts-out FILE]`:
//! the stateful mock of Google ([`crate::mock`]) as a process.
//!
//! The scenario's `[upstream]` table sets latencies and faults and its `[pool]` the accounts the
//! mock knows; without a scenario the mock knows one account whose token lasts an hour and
//! answers at once. `--accounts-out` writes those accounts, with the mock's refresh and access
//! tokens, as an `accounts.toml` (mode 0600, never over an existing file) for a proxy to load.
//! The process prints `listening on http://ADDR` once it accepts connections, serves until
//! SIGTERM or SIGINT, drains, writes the journal (`.csv` or `.jsonl`), and exits 0.

use super::{CliResult, Failure};
use crate::mock::server::DEFAULT_JOURNAL_CAPACITY;
use crate::mock::{JournalFormat, Mock};
use crate::model::{Account, AccountsFile};
use crate::store::file_backend::FileBackend;
use crate::upstream::faults::UpstreamModel;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest journal a process may allocate (32 bytes a record: 3.2 GB).
const MAX_JOURNAL_CAPACITY: usize = 100_000_000;

#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// Address to serve on: loopback only, e.g. 127.0.0.1:8085 (port 0 picks a free one).
    #[arg(long)]
    pub listen: SocketAddr,
    /// A scenario file: `[upstream]` for latencies and faults, `[pool]` for the accounts.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Where to write the journal at shutdown: a `.csv` or `.jsonl` file.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Write the seeded accounts (with the mock's tokens) to this new accounts.toml.
    #[arg(long)]
    pub accounts_out: Option<PathBuf>,
    /// Journal records kept in memory; requests beyond are counted as dropped.
    #[arg(long, default_value_t = DEFAULT_JOURNAL_CAPACITY)]
    pub journal_capacity: usize,
}

pub fn run(args: UpstreamArgs) -> CliResult {
    let format = args
        .journal
        .as_deref()
        .map(JournalFormat::of_path)
        .transpose()
        .map_err(Failure::BadInput)?;
    if args.journal_capacity > MAX_JOURNAL_CAPACITY {
        return Err(Failure::BadInput(format!(
            "--journal-capacity {} is too large: expected at most {MAX_JOURNAL_CAPACITY}",
            args.journal_capacity
        )));
    }
    if !args.listen.ip().is_loopback() {
        return Err(Failure::BadInput(format!(
            "--listen {}: the mock serves loopback only, expected e.g. 127.0.0.1:8085",
            args.listen
        )));
    }
    let (mock, accounts) = match &args.scenario {
        Some(path) => {
            let plan = crate::scenario::plan::load(path).map_err(|e| Failure::BadInput(e.to_string()))?;
            super::print_warnings(&plan);
            Mock::from_plan(&plan, args.journal_capacity)
        }
        None => {
            let mock = Mock::new(UpstreamModel::default(), args.journal_capacity);
            let mut account = Account::synthetic(0, mock.now_ms(), 3600);
            let seeded = mock.seed_account(account.expires_at().unwrap_or(0));
            account.access_token = seeded.access_token;
            account.refresh_token = seeded.refresh_token;
            (mock, vec![account])
        }
    };
    if let Some(path) = &args.accounts_out {
        let text = AccountsFile::from_accounts(accounts).to_toml_string();
        FileBackend::new(path)
            .create(&text)
            .map_err(|e| Failure::BadInput(format!("{}: cannot create the accounts file: {e}", path.display())))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let running = mock
            .start(args.listen)
            .await
            .map_err(|e| Failure::BadInput(format!("--listen {}: {e}", args.listen)))?;
        println!("listening on {}", running.url());
        let _ = std::io::stdout().flush();
        wait_for_signal().await?;
        running.stop().await;
        Ok::<(), Failure>(())
    })?;
    let journal = mock.journal();
    if let (Some(path), Some(format)) = (&args.journal, format) {
        journal
            .write_file(path, format)
            .map_err(|e| Failure::BadInput(format!("{}: cannot write the journal: {e}", path.display())))?;
        eprintln!(
            "credpool upstream: {} requests journaled to {}, {} dropped (capacity {})",
            journal.len(),
            path.display(),
            journal.dropped(),
            journal.capacity()
        );
    }
    Ok(())
}

/// SIGTERM or SIGINT.
async fn wait_for_signal() -> CliResult {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Failure::BadInput(format!("cannot watch SIGTERM: {e}")))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Failure::BadInput(format!("cannot watch SIGINT: {e}")))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
