//! What one `accounts.toml` update costs in each store mode, on a real file on the real disk.
//!
//! `store_update/<mode>/<writers>`: `writers` tasks on a two-worker runtime, each making one
//! update per iteration (so an iteration is one round of `writers` updates, always exactly
//! `writers` of them in flight); throughput is updates per second. Every sample starts from a
//! fresh file in a temporary directory under `target/bench-tmp/` (inside the project, so on the
//! project's disk: a tmpfs would make fsync free and the comparison meaningless).
//!
//! Beside criterion's timing, each case counts what the store did (its [`StoreStats`]) and audits
//! the file after every sample: every acknowledged update must be in it (each one adds a call to
//! an account's `total_calls`). The counts go to `credpool-stats.json` next to criterion's results
//! (read by `credpool bench-summary`) and to the terminal. `naive` loses updates by design and is
//! only reported; any other mode losing one fails the benchmark.

use credpool::costs::Costs;
use credpool::model::{Account, AccountId, AccountsFile, Change};
use credpool::store::backend::FileBackend;
use credpool::store::{self, StoreMode, StoreStats};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CREDENTIALS: usize = 4;
const WRITERS: [usize; 3] = [1, 16, 256];
/// Any fixed instant: the time a success records.
const AT: i64 = 1_764_374_400_000;

/// What one benchmark case's samples did, summed.
#[derive(Default, Debug, serde::Serialize)]
struct CaseStats {
    mode: &'static str,
    writers: usize,
    /// Updates the store acknowledged (returned `Ok`).
    acknowledged: u64,
    /// Updates that returned an error (only `naive` has any: it reads its own wiped file).
    failed: u64,
    /// Acknowledged updates missing from the file at the end of their sample.
    lost: u64,
    /// Samples whose file no longer parsed at the end.
    corrupt_files: u64,
    /// The store's own counters.
    writes: u64,
    fsyncs: u64,
    fsyncs_per_update: f64,
    writes_per_update: f64,
}

/// Where benchmark scratch files go: `target/bench-tmp` (or under `$CARGO_TARGET_DIR`).
fn scratch_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let root = target.join("bench-tmp");
    std::fs::create_dir_all(&root).expect("cannot create target/bench-tmp");
    root
}

/// Where criterion writes its results (the same rule criterion follows, minus `cargo metadata`).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}

fn accounts_text() -> String {
    let accounts: Vec<Account> = (0..CREDENTIALS).map(|i| Account::synthetic(i, AT, 3600)).collect();
    AccountsFile::from_accounts(accounts).to_toml_string()
}

/// One sample: a fresh file, `writers` tasks making `rounds` updates each. Returns the timed part
/// and adds the sample's counts to `stats`.
fn sample(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    mode: StoreMode,
    writers: usize,
    rounds: u64,
    stats: &mut CaseStats,
) -> Duration {
    let dir = tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(root)
        .expect("a scratch directory");
    let path = dir.path().join("accounts.toml");
    let backend = Arc::new(FileBackend::new(&path));
    backend.create(&accounts_text()).expect("the accounts file");
    let store = store::open(mode, backend, Costs::default());
    let (elapsed, acknowledged, failed) = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Barrier::new(writers + 1));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (store, gate) = (store.clone(), gate.clone());
                tokio::spawn(async move {
                    let id = AccountId::from(format!("account{}@example.com", w % CREDENTIALS));
                    gate.wait().await;
                    let mut ok = 0u64;
                    for _ in 0..rounds {
                        if store.update(&id, Change::Success { at: AT }).await.is_ok() {
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let start = Instant::now();
        gate.wait().await;
        let mut ok = 0;
        for h in handles {
            ok += h.await.expect("a writer panicked");
        }
        let elapsed = start.elapsed();
        (elapsed, ok, writers as u64 * rounds - ok)
    });
    let StoreStats { writes, fsyncs, .. } = store.stats();
    stats.acknowledged += acknowledged;
    stats.failed += failed;
    stats.writes += writes;
    stats.fsyncs += fsyncs;
    let text = std::fs::read_to_string(&path).expect("the accounts file is still there");
    match AccountsFile::parse(&path, &text) {
        Ok(file) => {
            let counted: u64 = file.accounts.iter().map(|a| a.total_calls).sum();
            stats.lost += acknowledged.saturating_sub(counted);
        }
        Err(_) => {
            stats.corrupt_files += 1;
            stats.lost += acknowledged;
        }
    }
    elapsed
}

fn store_update(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let root = scratch_root();
    let mut group = c.benchmark_group("store_update");
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for &writers in &WRITERS {
        group.throughput(Throughput::Elements(writers as u64));
        for mode in StoreMode::ALL {
            let stats = RefCell::new(CaseStats {
                mode: mode.name(),
                writers,
                ..CaseStats::default()
            });
            group.bench_function(BenchmarkId::new(mode.name(), writers), |b| {
                b.iter_custom(|rounds| sample(&rt, &root, mode, writers, rounds, &mut stats.borrow_mut()))
            });
            let mut stats = stats.into_inner();
            if stats.acknowledged + stats.failed == 0 {
                continue; // filtered out on the command line: keep the last run's counts
            }
            if stats.acknowledged > 0 {
                stats.fsyncs_per_update = stats.fsyncs as f64 / stats.acknowledged as f64;
                stats.writes_per_update = stats.writes as f64 / stats.acknowledged as f64;
            }
            println!(
                "store_update/{}/{}: {} updates acknowledged, {} failed, {} lost, {} corrupt files; \
                 {:.4} fsyncs and {:.4} writes per update",
                stats.mode,
                stats.writers,
                stats.acknowledged,
                stats.failed,
                stats.lost,
                stats.corrupt_files,
                stats.fsyncs_per_update,
                stats.writes_per_update
            );
            if mode != StoreMode::Naive {
                assert_eq!(stats.lost, 0, "{mode} lost acknowledged updates: {stats:?}");
                assert_eq!(stats.failed, 0, "{mode} failed updates: {stats:?}");
            }
            write_stats(&stats);
        }
    }
    group.finish();
}

/// Writes a case's counts beside criterion's results for it.
fn write_stats(stats: &CaseStats) {
    let dir = criterion_home()
        .join("store_update")
        .join(stats.mode)
        .join(stats.writers.to_string());
    if std::fs::create_dir_all(&dir).is_ok() {
        let json = serde_json::to_string_pretty(stats).expect("plain numbers serialise");
        if let Err(e) = std::fs::write(dir.join("credpool-stats.json"), json) {
            eprintln!("{}: cannot write the store counts: {e}", dir.display());
        }
    }
}

criterion_group!(benches, store_update);
criterion_main!(benches);
