//! A simulated power cut (`credpool::store::crash_fs`): the production stores and the production
//! file backend write through a model of the page cache, and the power goes after the update
//! returned, or in the middle of it, after any filesystem call.
//!
//! - `locked` (the seed's fix: temp file and rename, no fsync) can lose an update it acknowledged:
//!   the rename was never made durable, so the old file comes back; and if the kernel wrote the
//!   directory entry back before the data, the file comes back empty.
//! - `durable` and `group_commit` (temp file fsynced, renamed, directory fsynced) keep every
//!   acknowledged update whatever the kernel wrote back, and a cut in the middle of a write leaves
//!   the old file or the new one, never a broken one.
//! - `naive` (truncate and rewrite in place) can leave an empty file even when everything it wrote
//!   reached the disk.

use credpool::costs::Costs;
use credpool::model::{AccountId, AccountsFile, Change};
use credpool::store::crash_fs::{CrashFs, Writeback};
use credpool::store::file_backend::FileBackend;
use credpool::store::{self, AccountStore, StoreMode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const OLD: &str = "[[accounts]]\nemail = \"alice@example.com\"\naccess_token = \"ya29.FAKE\"\nerror_codes = [429]\n";

fn alice() -> AccountId {
    AccountId("alice@example.com".into())
}

fn code(c: u16) -> Change {
    Change::Error {
        code: c,
        ban: None,
        disable: false,
    }
}

/// A model filesystem holding `/acc/accounts.toml` = [`OLD`], created durably.
fn machine() -> (CrashFs, PathBuf) {
    let fs = CrashFs::new();
    fs.mkdir("/acc");
    let path = PathBuf::from("/acc/accounts.toml");
    FileBackend::with_fs(&path, Arc::new(fs.clone())).create(OLD).unwrap();
    (fs, path)
}

fn store_on(mode: StoreMode, fs: &CrashFs, path: &Path) -> Arc<dyn AccountStore> {
    store::open(
        mode,
        Arc::new(FileBackend::with_fs(path, Arc::new(fs.clone()))),
        Costs::default(),
    )
}

/// What the disk holds after the crash, as the codes alice has; `None` when the file is gone or
/// unparsable; `Some(None)` when it parses with no alice (an empty pool).
fn alice_codes_on_disk(fs: &CrashFs, path: &Path) -> Option<Option<Vec<u16>>> {
    let bytes = fs.on_disk(path)?;
    let text = String::from_utf8(bytes).ok()?;
    let file = AccountsFile::parse(path, &text).ok()?;
    Some(file.find(&alice()).map(|i| file.accounts[i].error_codes.clone()))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("a store hung on the model filesystem")
}

#[tokio::test]
async fn locked_can_lose_an_acknowledged_update_or_the_whole_file() {
    for (writeback, expected) in [
        // The rename was still in the page cache: the old file is back, the update is gone.
        (Writeback::Nothing, Some(Some(vec![429]))),
        // The new data reached the disk, but not the rename: same loss.
        (Writeback::Data, Some(Some(vec![429]))),
        // The rename reached the disk before the data: the file is there, and empty: no pool.
        (Writeback::Entries, Some(None)),
        (Writeback::Everything, Some(Some(vec![429, 503]))),
    ] {
        let (fs, path) = machine();
        bounded(store_on(StoreMode::Locked, &fs, &path).update(&alice(), code(503)))
            .await
            .expect("locked acknowledges the update");
        fs.crash(writeback);
        assert_eq!(alice_codes_on_disk(&fs, &path), expected, "{writeback:?}");
        if writeback == Writeback::Entries {
            assert_eq!(fs.on_disk(&path), Some(Vec::new()), "a zero-length file");
        }
    }
}

#[tokio::test]
async fn durable_and_group_commit_keep_acknowledged_updates_whatever_is_written_back() {
    for mode in [StoreMode::Durable, StoreMode::GroupCommit] {
        for writeback in Writeback::ALL {
            let (fs, path) = machine();
            bounded(store_on(mode, &fs, &path).update(&alice(), code(503)))
                .await
                .unwrap();
            fs.crash(writeback);
            assert_eq!(
                alice_codes_on_disk(&fs, &path),
                Some(Some(vec![429, 503])),
                "{mode} {writeback:?}"
            );
        }
    }
}

/// Filesystem calls one update of `mode` makes on a fresh machine.
async fn calls_of_one_update(mode: StoreMode) -> u64 {
    let (fs, path) = machine();
    let before = fs.calls();
    bounded(store_on(mode, &fs, &path).update(&alice(), code(503)))
        .await
        .unwrap();
    fs.calls() - before
}

/// What a crash after `k` calls of an update left, for every writeback.
#[derive(Debug, Default)]
struct Outcomes {
    cases: u64,
    /// The update returned Ok and is not on disk.
    acknowledged_lost: u64,
    /// The file is missing, unparsable, or parses with no account.
    broken_or_empty: u64,
    /// The old version (the update not applied).
    old: u64,
    /// The new version.
    new: u64,
}

async fn cut_at_every_call(mode: StoreMode) -> Outcomes {
    let calls = calls_of_one_update(mode).await;
    assert!(calls >= 3, "{mode}: {calls} calls");
    let mut o = Outcomes::default();
    for k in 0..=calls {
        for writeback in Writeback::ALL {
            let (fs, path) = machine();
            fs.cut_power_after(fs.calls() + k);
            let acknowledged = bounded(store_on(mode, &fs, &path).update(&alice(), code(503)))
                .await
                .is_ok();
            assert_eq!(acknowledged, k == calls, "{mode}: only an update that finished says Ok");
            fs.crash(writeback);
            o.cases += 1;
            match alice_codes_on_disk(&fs, &path) {
                Some(Some(codes)) if codes == [429, 503] => o.new += 1,
                Some(Some(codes)) if codes == [429] => {
                    o.old += 1;
                    o.acknowledged_lost += u64::from(acknowledged);
                }
                other => {
                    o.broken_or_empty += 1;
                    o.acknowledged_lost += u64::from(acknowledged);
                    eprintln!("{mode}: cut after {k} of {calls} calls, {writeback:?}: {other:?}");
                }
            }
        }
    }
    o
}

#[tokio::test]
async fn a_cut_at_any_call_leaves_durable_and_group_commit_old_or_new_never_broken() {
    for mode in [StoreMode::Durable, StoreMode::GroupCommit] {
        let o = cut_at_every_call(mode).await;
        eprintln!("{mode}: {o:?}");
        assert_eq!(o.broken_or_empty, 0, "{mode}: {o:?}");
        assert_eq!(o.acknowledged_lost, 0, "{mode}: {o:?}");
        assert!(o.old > 0 && o.new > 0, "{mode}: both outcomes occur: {o:?}");
    }
}

#[tokio::test]
async fn a_cut_at_any_call_can_cost_locked_its_update_or_its_file() {
    let o = cut_at_every_call(StoreMode::Locked).await;
    eprintln!("locked: {o:?}");
    assert!(o.acknowledged_lost > 0, "{o:?}");
    assert!(o.broken_or_empty > 0, "{o:?}");
}

#[tokio::test]
async fn naive_can_leave_an_empty_file_even_with_everything_written_back() {
    let calls = calls_of_one_update(StoreMode::Naive).await;
    let mut empty = 0;
    for k in 0..calls {
        let (fs, path) = machine();
        fs.cut_power_after(fs.calls() + k);
        let _ = bounded(store_on(StoreMode::Naive, &fs, &path).update(&alice(), code(503))).await;
        fs.crash(Writeback::Everything);
        if fs.on_disk(&path) == Some(Vec::new()) {
            empty += 1;
        }
    }
    // Between the truncating open and the rewrite, the file is empty on disk too.
    assert!(empty > 0, "no cut left naive's file empty in {calls} calls");
}

#[tokio::test]
async fn a_cut_during_a_group_commit_batch_loses_no_acknowledged_update() {
    // Eight concurrent updates share batches; whatever call the power goes at, every update that
    // was acknowledged is on disk afterwards.
    let (fs, path) = machine();
    let before = fs.calls();
    let store = store_on(StoreMode::GroupCommit, &fs, &path);
    let all = (0..8u16).map(|i| {
        let store = store.clone();
        async move { store.update(&alice(), code(500 + i)).await }
    });
    bounded(futures_join_all(all)).await;
    let calls = fs.calls() - before;
    for k in 0..=calls {
        for writeback in Writeback::ALL {
            let (fs, path) = machine();
            fs.cut_power_after(fs.calls() + k);
            let store = store_on(StoreMode::GroupCommit, &fs, &path);
            let results = bounded(futures_join_all((0..8u16).map(|i| {
                let store = store.clone();
                async move { (500 + i, store.update(&alice(), code(500 + i)).await.is_ok()) }
            })))
            .await;
            fs.crash(writeback);
            let codes = alice_codes_on_disk(&fs, &path)
                .flatten()
                .unwrap_or_else(|| panic!("cut after {k}, {writeback:?}: the file is broken"));
            for (c, acknowledged) in results {
                if acknowledged {
                    assert!(codes.contains(&c), "cut after {k}, {writeback:?}: lost {c}: {codes:?}");
                }
            }
        }
    }
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
