//! The accounts store on real files and real processes: what each mode loses, and what it never
//! does (overwrite an unparsable file, empty a pool, invent a missing file, widen permissions,
//! drop fields it does not model).

use credpool::costs::Costs;
use credpool::model::{AccountId, AccountsFile, Change};
use credpool::store::backend::Backend;
use credpool::store::file_backend::FileBackend;
use credpool::store::naive::NaiveStore;
use credpool::store::{self, AccountStore, StoreError, StoreMode};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// The realistic example of reference-behaviour.md (fake values).
const REAL: &str = include_str!("fixtures/reference-accounts.toml");

const INITIAL_CALLS: u64 = 52;
const SAFE_MODES: [StoreMode; 3] = [StoreMode::Locked, StoreMode::Durable, StoreMode::GroupCommit];

fn alice() -> AccountId {
    AccountId::from("alice@example.com")
}

fn code(c: u16) -> Change {
    Change::Error {
        code: c,
        ban: None,
        disable: false,
    }
}

/// A temp directory holding `accounts.toml` with `text`.
fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.toml");
    FileBackend::new(&path).create(text).unwrap();
    (dir, path)
}

fn open(mode: StoreMode, path: &Path) -> Arc<dyn AccountStore> {
    store::open(mode, Arc::new(FileBackend::new(path)), Costs::default())
}

/// Alice's error codes and call count as the file now says.
fn alice_on_disk(path: &Path) -> (Vec<u16>, u64) {
    let text = fs::read_to_string(path).unwrap();
    let file = AccountsFile::parse(path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let a = &file.accounts[file.find(&alice()).unwrap()];
    (a.error_codes.clone(), a.total_calls)
}

fn mode_bits(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// 100 tasks, update `i` recording code `100 + i`; returns how many were acknowledged.
async fn hundred_updates(store: Arc<dyn AccountStore>) -> usize {
    let tasks: Vec<_> = (0..100u16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.update(&alice(), code(100 + i)).await })
        })
        .collect();
    let mut acknowledged = 0;
    for t in tasks {
        t.await.unwrap().unwrap();
        acknowledged += 1;
    }
    acknowledged
}

#[tokio::test]
async fn naive_loses_all_but_one_of_100_concurrent_updates() {
    let (_dir, path) = file_with(REAL);
    // Every update waits here after its read until all 100 have read: each then writes back its
    // own copy, and the last write wins. The yield point makes this exact, not timing-dependent.
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let naive =
        NaiveStore::new(Arc::new(FileBackend::new(&path)), Costs::default()).with_yield_point(Arc::new(move || {
            let barrier = barrier.clone();
            Box::pin(async move {
                barrier.wait().await;
            })
        }));
    let store: Arc<dyn AccountStore> = Arc::new(naive);
    let acknowledged = timeout(Duration::from_secs(10), hundred_updates(store.clone()))
        .await
        .unwrap();
    assert_eq!(acknowledged, 100, "naive acknowledges every update...");
    let (codes, calls) = alice_on_disk(&path);
    let survivors = (100..200).filter(|c| codes.contains(c)).count();
    assert_eq!(survivors, 1, "...but only the last writer's survives: {codes:?}");
    assert_eq!(calls, INITIAL_CALLS + 1);
    assert_eq!(store.stats().writes, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_durable_and_group_commit_lose_none_of_100_concurrent_updates() {
    for mode in SAFE_MODES {
        let (dir, path) = file_with(REAL);
        let store = open(mode, &path);
        let acknowledged = timeout(Duration::from_secs(20), hundred_updates(store.clone()))
            .await
            .unwrap();
        assert_eq!(acknowledged, 100);
        let (codes, calls) = alice_on_disk(&path);
        let missing: Vec<u16> = (100..200).filter(|c| !codes.contains(c)).collect();
        assert!(missing.is_empty(), "{mode} lost codes {missing:?}");
        assert!(codes.contains(&429), "{mode} lost the original code");
        assert_eq!(calls, INITIAL_CALLS + 100, "{mode}");
        let stats = store.stats();
        assert_eq!(stats.updates, 100, "{mode}");
        match mode {
            // One write per update; durable fsyncs each temp file and the directory.
            StoreMode::Locked => assert_eq!((stats.writes, stats.fsyncs), (100, 0)),
            StoreMode::Durable => assert_eq!((stats.writes, stats.fsyncs), (100, 200)),
            // Updates that arrive during a write share the next one.
            _ => {
                assert!(stats.writes * 5 <= stats.updates, "{mode}: {stats:?}");
                assert_eq!(stats.fsyncs, 2 * stats.writes);
            }
        }
        assert!(
            temp_files(dir.path()).is_empty(),
            "{mode} left {:?}",
            temp_files(dir.path())
        );
    }
}

/// What one store-worker process reported.
struct WorkerReport {
    ok: bool,
    stderr: String,
    /// Its JSON line: `updates`, `writes`, `fsyncs`, `errors`.
    stats: serde_json::Value,
}

/// Starts `WORKERS` store-worker processes on `path`, each applying `UPDATES_PER_WORKER` updates
/// with `CONCURRENCY` in flight, all starting at the same instant; waits for them.
fn run_workers(mode: StoreMode, path: &Path) -> Vec<WorkerReport> {
    // Far enough ahead that every process is up (a debug binary starts in a few ms).
    let start_at = chrono::Utc::now().timestamp_millis() + 300;
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(env!("CARGO_BIN_EXE_credpool"))
                .args(["store-worker", "--mode", mode.name(), "--file"])
                .arg(path)
                .args(["--worker", &w.to_string(), "--updates", &UPDATES_PER_WORKER.to_string()])
                .args([
                    "--concurrency",
                    &CONCURRENCY.to_string(),
                    "--start-at-ms",
                    &start_at.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            WorkerReport {
                ok: out.status.success(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                stats: serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}")),
            }
        })
        .collect()
}

/// Sum of one statistic over the workers.
fn total(reports: &[WorkerReport], key: &str) -> u64 {
    reports.iter().map(|r| r.stats[key].as_u64().unwrap()).sum()
}

/// REAL without its error code, so the workers' codes (100..) are all new.
fn real_without_codes() -> String {
    REAL.replace("error_codes = [429]", "error_codes = []")
}

const WORKERS: u64 = 4;
const UPDATES_PER_WORKER: u64 = 50;
/// Updates in flight at once inside each worker: enough for group commit to batch within a
/// process, few enough that each process still writes several times and contends for the lock.
const CONCURRENCY: usize = 8;

/// Updates the workers lost: acknowledged by a worker, absent from the file.
fn lost_by_workers(path: &Path) -> u64 {
    let (codes, calls) = alice_on_disk(path);
    let expected = WORKERS * UPDATES_PER_WORKER;
    let by_calls = expected - (calls - INITIAL_CALLS);
    let by_codes = expected - codes.len() as u64;
    assert_eq!(by_calls, by_codes, "calls and codes disagree on what was lost");
    by_calls
}

#[test]
fn durable_and_group_commit_lose_nothing_across_processes() {
    for mode in [StoreMode::Durable, StoreMode::GroupCommit] {
        let (dir, path) = file_with(&real_without_codes());
        let reports = run_workers(mode, &path);
        for r in &reports {
            assert!(r.ok, "{mode} worker failed: {}", r.stderr);
        }
        assert_eq!(total(&reports, "updates"), WORKERS * UPDATES_PER_WORKER, "{mode}");
        assert_eq!(lost_by_workers(&path), 0, "{mode}");
        let writes = total(&reports, "writes");
        match mode {
            StoreMode::Durable => assert_eq!(writes, WORKERS * UPDATES_PER_WORKER),
            _ => assert!(writes * 2 <= WORKERS * UPDATES_PER_WORKER, "{mode}: {writes} writes"),
        }
        assert_eq!(mode_bits(&path), 0o600);
        assert!(
            temp_files(dir.path()).is_empty(),
            "{mode} left {:?}",
            temp_files(dir.path())
        );
    }
}

#[test]
fn locked_loses_updates_across_processes() {
    // The seed's fix locks inside one process only: two processes still read the same version
    // and the later rename drops the other's change. Four processes each run 50 read-modify-write
    // cycles (a fraction of a millisecond each, none of it excluded across processes) over the
    // same ~0.1 s, started at the same instant, so most cycles overlap another process's (about
    // three quarters of the updates were lost in every round measured); a single lost update is
    // enough to show the defect. Scheduling could in principle serialise a round, so a few rounds
    // are allowed before the test says the defect did not show.
    let mut losses = Vec::new();
    for _round in 0..5 {
        let (_dir, path) = file_with(&real_without_codes());
        let reports = run_workers(StoreMode::Locked, &path);
        for r in &reports {
            // Every update is acknowledged: the loss is silent, which is the point.
            assert!(r.ok, "locked worker failed: {}", r.stderr);
        }
        assert_eq!(total(&reports, "updates"), WORKERS * UPDATES_PER_WORKER);
        let lost = lost_by_workers(&path);
        losses.push(lost);
        if lost > 0 {
            return;
        }
    }
    panic!(
        "locked lost nothing in {} rounds ({losses:?}): the cross-process race did not show",
        losses.len()
    );
}

#[tokio::test]
async fn an_unparsable_file_is_never_overwritten_except_by_naive() {
    let broken = "[[accounts]]\nemail = \"alice@example.com\"\ndisabled = \n";
    for mode in SAFE_MODES {
        let (dir, path) = file_with(broken);
        let err = open(mode, &path).update(&alice(), code(500)).await.unwrap_err();
        let invalid = match &err {
            StoreError::Invalid(e) => e,
            StoreError::Batch(inner) => match inner.as_ref() {
                StoreError::Invalid(e) => e,
                other => panic!("{mode}: {other}"),
            },
            other => panic!("{mode}: {other}"),
        };
        assert_eq!(invalid.path, path, "{mode}");
        assert_eq!(invalid.position.map(|p| p.line), Some(3), "{mode}: {err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), broken, "{mode} touched the file");
        assert!(
            !dir.path().join("accounts.toml.bak").exists(),
            "{mode} made a backup of a file it never wrote"
        );
    }
    // The historical bug, kept on purpose: naive reads the broken file as "no accounts" and
    // writes that empty pool over it.
    let (_dir, path) = file_with(broken);
    let err = open(StoreMode::Naive, &path)
        .update(&alice(), code(500))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(_)), "{err}");
    let after = fs::read_to_string(&path).unwrap();
    assert_ne!(after, broken);
    assert!(
        AccountsFile::parse(&path, &after).unwrap().accounts.is_empty(),
        "naive wiped the pool: {after:?}"
    );
}

#[tokio::test]
async fn an_empty_read_never_becomes_an_empty_pool_on_disk() {
    // A file caught empty (as a truncating writer leaves it for a moment) holds no accounts: the
    // update fails and nothing is written, so the moment cannot become a wiped pool.
    for mode in SAFE_MODES {
        let (dir, path) = file_with("");
        let err = open(mode, &path).update(&alice(), code(500)).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownAccount(_)), "{mode}: {err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "", "{mode}");
        assert!(!dir.path().join("accounts.toml.bak").exists(), "{mode} wrote");
    }
}

#[tokio::test]
async fn a_missing_file_is_an_error_until_created_explicitly() {
    for mode in StoreMode::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.toml");
        let store = open(mode, &path);
        let err = store.update(&alice(), code(500)).await.unwrap_err();
        let missing = match &err {
            StoreError::Missing(p) => p.clone(),
            StoreError::Batch(inner) => match inner.as_ref() {
                StoreError::Missing(p) => p.clone(),
                other => panic!("{mode}: {other}"),
            },
            other => panic!("{mode}: {other}"),
        };
        assert_eq!(missing, path.display().to_string());
        assert!(!path.exists(), "{mode} created the file");
        assert!(matches!(store.load().await, Err(StoreError::Missing(_))), "{mode}");

        FileBackend::new(&path).create(REAL).unwrap();
        store.update(&alice(), code(500)).await.unwrap();
        assert_eq!(alice_on_disk(&path), (vec![429, 500], INITIAL_CALLS + 1), "{mode}");
    }
}

#[tokio::test]
async fn written_files_are_private_whatever_the_original_mode() {
    for mode in SAFE_MODES {
        let (dir, path) = file_with(REAL);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        open(mode, &path).update(&alice(), code(500)).await.unwrap();
        // The file is the renamed temp file (same inode), so its mode is the mode the temp file
        // was created with: this checks the temp file too.
        assert_eq!(mode_bits(&path), 0o600, "{mode}");
        assert_eq!(mode_bits(&dir.path().join("accounts.toml.bak")), 0o600, "{mode}");
        if mode != StoreMode::Locked {
            assert_eq!(mode_bits(&dir.path().join("accounts.toml.lock")), 0o600, "{mode}");
        }
        assert!(temp_files(dir.path()).is_empty());
        assert_eq!(
            fs::read_to_string(dir.path().join("accounts.toml.bak")).unwrap(),
            REAL,
            "{mode}: backup"
        );
    }
}

#[tokio::test]
async fn unknown_fields_and_projects_survive_an_update() {
    // Only the two modelled keys the change touches are rewritten; every other byte stays.
    let expected = REAL
        .replace("error_codes = [429]", "error_codes = [429, 503]")
        .replace("total_calls = 52", "total_calls = 53");
    for mode in StoreMode::ALL {
        let (_dir, path) = file_with(REAL);
        open(mode, &path).update(&alice(), code(503)).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), expected, "{mode}");
    }
}

#[test]
fn the_file_backend_reports_its_path() {
    let b = FileBackend::new("/nonexistent/dir/accounts.toml");
    assert_eq!(b.label(), "/nonexistent/dir/accounts.toml");
    assert_eq!(b.read().unwrap(), None);
}
