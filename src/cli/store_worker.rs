//! `credpool store-worker` (hidden): one process of a multi-process store test.
//!
//! Applies `--updates N` distinct updates to the first account of `--file` through store mode
//! `--mode`, `--concurrency` of them at a time, and prints one JSON line with what it did. Update
//! `i` of worker `w` records HTTP code `100 + (w * N + i) mod 500` and counts one call, so as long
//! as the workers' updates number at most 500 every update leaves its own trace in the file.
//! `tests/store.rs` starts several of these at once on one file and counts what survived.
//!
//! `--start-at-ms` makes every worker wait for the same wall-clock instant, so their updates
//! overlap instead of depending on how fast each process happened to start.
//!
//! With `--torture`, it is a writer of `credpool torture` instead: it does the updates numbered in
//! `--indices` with the layout and line protocol of [`crate::torture::worker`] (one line per
//! acknowledgement, so a supervisor that kills it still knows what it acknowledged).

use super::{CliResult, Failure};
use crate::costs::Costs;
use crate::model::Change;
use crate::store::file_backend::FileBackend;
use crate::store::{self, StoreMode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct StoreWorkerArgs {
    /// naive, locked, durable or group_commit.
    #[arg(long)]
    pub mode: StoreMode,
    #[arg(long)]
    pub file: PathBuf,
    /// This worker's number, which makes its codes distinct from the other workers'.
    #[arg(long)]
    pub worker: u64,
    #[arg(long)]
    pub updates: u64,
    /// Updates in flight at once in this process (default: all of them).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Wall-clock instant (epoch ms) to start at.
    #[arg(long)]
    pub start_at_ms: Option<i64>,
    /// Be a writer of `credpool torture` (see `crate::torture::worker`).
    #[arg(long)]
    pub torture: bool,
    /// `--torture`: the update numbers to do, as `0-99,120,130-199` (default: all of them).
    #[arg(long)]
    pub indices: Option<String>,
}

/// The code update `i` of worker `w` records.
pub fn code_of(worker: u64, updates: u64, i: u64) -> u16 {
    (100 + (worker * updates + i) % 500) as u16
}

pub fn run(args: StoreWorkerArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
    if args.torture {
        let indices = match &args.indices {
            Some(text) => crate::torture::worker::decode_ranges(text).map_err(Failure::BadInput)?,
            None => (0..args.updates).collect(),
        };
        if let Some(bad) = indices.iter().find(|&&i| i >= args.updates) {
            return Err(Failure::BadInput(format!(
                "--indices names update {bad}: expected numbers below --updates {}",
                args.updates
            )));
        }
        let spec = crate::torture::worker::WorkerSpec {
            mode: args.mode,
            file: args.file,
            worker: args.worker,
            updates: args.updates,
            indices,
            concurrency: args.concurrency.unwrap_or(1),
        };
        runtime.block_on(crate::torture::worker::run(spec));
        return Ok(());
    }
    runtime.block_on(work(args))
}

async fn work(args: StoreWorkerArgs) -> CliResult {
    let store = store::open(args.mode, Arc::new(FileBackend::new(&args.file)), Costs::default());
    let first = store.load().await.map_err(|e| Failure::BadInput(e.to_string()))?;
    let id = first
        .accounts
        .first()
        .map(|a| a.id.clone())
        .ok_or_else(|| Failure::BadInput(format!("{}: no accounts to update", args.file.display())))?;
    if let Some(at) = args.start_at_ms {
        let wait = at - chrono::Utc::now().timestamp_millis();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
    let concurrency = args.concurrency.unwrap_or(args.updates as usize).max(1);
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.updates {
        let (store, id, gate) = (store.clone(), id.clone(), gate.clone());
        let change = Change::Error {
            code: code_of(args.worker, args.updates, i),
            ban: None,
            disable: false,
        };
        tasks.spawn(async move {
            let _permit = gate.acquire().await;
            store.update(&id, change).await
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let stats = store.stats();
    println!(
        "{}",
        serde_json::json!({
            "worker": args.worker,
            "mode": args.mode.name(),
            "updates": stats.updates,
            "writes": stats.writes,
            "fsyncs": stats.fsyncs,
            "errors": errors.len(),
        })
    );
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Failure::Expectation(format!(
            "{} of {} updates failed; first: {first}",
            errors.len(),
            args.updates
        ))),
    }
}
