//! `group_commit`: many updates, one durable write.
//!
//! `durable` pays two fsyncs and a rename per update, so concurrent updates queue behind each
//! other's disk flushes. Here concurrent updates are coalesced: while one batch is being written,
//! the updates that arrive meanwhile gather into the next batch, which is then written with one
//! read, one temp file, two fsyncs and one rename, under the same cross-process lock and with the
//! same validation as `durable`. An update still returns only once its change is on disk.
//!
//! The design is leader/follower around a **synchronous core** ([`Core`]): a mutex of the `sync`
//! facade around {pending changes, next sequence number, committed sequence number, whether a
//! leader is writing}, changed only by small functions that never await, so loom can explore
//! every interleaving of them (`loom_tests/`). The async parts wait around the core:
//!
//! 1. An update takes a sequence number and queues its change ([`Core::enqueue`]). If no leader
//!    is active it becomes the leader.
//! 2. The leader takes the whole pending batch ([`Core::take_batch`]), writes it durably
//!    ([`write_batch`]), records each update's result and marks the batch committed
//!    ([`Core::finish`]), and loops while more is pending; when nothing is, it steps down in the
//!    same critical section that found the queue empty, so no queued change is ever left without
//!    a leader.
//! 3. Every update (the leader's own included) waits on a `tokio::sync::watch` of the committed
//!    sequence number until it covers its own, then takes its result ([`Core::take_result`]).
//!
//! The leader's loop runs in a spawned task rather than inside the update that became leader: a
//! caller may give up on its update (a timeout, a cancelled request), and if the writing loop
//! lived in that caller's future, dropping it would strand every follower. A spawned leader
//! always finishes its batch; should it ever stop early (a panic, a runtime shutting down), its
//! drop guard fails every outstanding update instead of leaving it waiting.
//!
//! Errors: a batch that cannot be read, validated or written fails every update in it with
//! [`StoreError::Batch`] (nothing was written); a change for an unknown account fails that update
//! alone, and the rest of its batch is written.

use super::backend::Backend;
use super::durable::{cross_process_lock, DURABLE_WRITE};
use super::locked::{read_modify_write, read_parsed};
use super::seq_window::SeqWindow;
use super::{AccountStore, StoreError, StoreMode, StoreStats};
use crate::costs::{Costs, Step};
use crate::future::BoxFuture;
use crate::model::{AccountId, AccountsFile, Change};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;

/// One update waiting for its batch.
#[derive(Debug)]
pub struct Queued {
    pub seq: u64,
    pub id: AccountId,
    pub change: Change,
}

/// What [`Core::enqueue`] made the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No leader was active: the caller must start the writing loop.
    Leader,
    /// A leader is active and will write this change in a coming batch.
    Follower,
}

#[derive(Debug)]
struct CoreState {
    /// Changes not yet taken by a leader, in sequence order.
    pending: Vec<Queued>,
    /// The next update's sequence number. Starts at 1, so `committed == 0` means "none yet".
    next_seq: u64,
    /// Every update with `seq <= committed` has its result in `results` (or has been abandoned).
    /// Batches are taken whole, in order, so the committed updates are always a prefix.
    committed: u64,
    /// A leader is writing or about to: new updates only queue.
    leader_active: bool,
    /// Results of committed updates, until their callers take them (committed in sequence order,
    /// taken in any).
    results: SeqWindow<Result<(), StoreError>>,
    /// Updates whose callers stopped waiting before their result arrived: the result is dropped
    /// on arrival instead of being kept forever.
    /// (Almost always empty: a `BTreeSet` answers "not there" without hashing.)
    abandoned: BTreeSet<u64>,
}

/// The synchronous state machine of group commit. Public so `loom_tests/` can drive the
/// production transitions from loom threads; the store is its only other user.
#[derive(Debug)]
pub struct Core {
    /// A sync mutex (from the `sync` facade, so loom can swap it): every critical section below
    /// is a few field updates and never awaits.
    state: crate::sync::Mutex<CoreState>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

impl Core {
    pub fn new() -> Core {
        Core {
            state: crate::sync::Mutex::new(CoreState {
                pending: Vec::new(),
                next_seq: 1,
                committed: 0,
                leader_active: false,
                results: SeqWindow::new(),
                abandoned: BTreeSet::new(),
            }),
        }
    }

    /// Queues a change; returns its sequence number and whether the caller must lead.
    pub fn enqueue(&self, id: AccountId, change: Change) -> (u64, Role) {
        let mut s = self.state.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.pending.push(Queued { seq, id, change });
        if s.leader_active {
            (seq, Role::Follower)
        } else {
            s.leader_active = true;
            (seq, Role::Leader)
        }
    }

    /// The leader's next batch: everything pending. `None` when nothing is, and then the leader
    /// has stepped down (in this same critical section, so a concurrent [`Core::enqueue`] either
    /// queued before it and is in a batch, or comes after it and becomes the next leader).
    pub fn take_batch(&self) -> Option<Vec<Queued>> {
        let mut s = self.state.lock();
        debug_assert!(s.leader_active, "only the leader takes batches");
        if s.pending.is_empty() {
            s.leader_active = false;
            None
        } else {
            Some(std::mem::take(&mut s.pending))
        }
    }

    /// The leader, after writing a batch: records each update's result and marks the batch
    /// committed. Returns the committed sequence number, for the waiters.
    pub fn finish(&self, results: Vec<(u64, Result<(), StoreError>)>) -> u64 {
        let mut s = self.state.lock();
        for (seq, result) in results {
            debug_assert!(seq > s.committed, "batches commit in sequence order");
            s.committed = s.committed.max(seq);
            if !s.abandoned.remove(&seq) {
                s.results.insert(seq, result);
            }
        }
        s.committed
    }

    /// The leader stopping before its batch is done: every update not yet committed (in flight
    /// or pending) fails with `error`, and leadership is released. Returns the committed number.
    pub fn fail_all(&self, error: Arc<StoreError>) -> u64 {
        let mut s = self.state.lock();
        s.pending.clear();
        for seq in s.committed + 1..s.next_seq {
            if !s.abandoned.remove(&seq) {
                s.results.insert(seq, Err(StoreError::Batch(Arc::clone(&error))));
            }
        }
        s.committed = s.next_seq - 1;
        s.leader_active = false;
        s.committed
    }

    /// Updates queued and not yet taken by a leader.
    pub fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// The committed sequence number.
    pub fn committed(&self) -> u64 {
        self.state.lock().committed
    }

    /// Update `seq`'s result, once its batch is committed (`None` before).
    pub fn take_result(&self, seq: u64) -> Option<Result<(), StoreError>> {
        let mut s = self.state.lock();
        if seq > s.committed {
            return None;
        }
        s.results.remove(seq)
    }

    /// Update `seq`'s caller stopped waiting: drop its result now or when it arrives. Its change
    /// may still be written (it may already be in a batch being written).
    pub fn abandon(&self, seq: u64) {
        let mut s = self.state.lock();
        if s.results.remove(seq).is_none() && seq > s.committed {
            s.abandoned.insert(seq);
        }
    }

    /// Results held for callers that have not taken them yet (for tests: must drain to zero).
    pub fn held_results(&self) -> usize {
        let s = self.state.lock();
        s.results.len() + s.abandoned.len()
    }
}

pub struct GroupCommitStore {
    inner: Arc<Inner>,
}

/// Shared with the spawned leader task, hence behind an `Arc`.
struct Inner {
    backend: Arc<dyn Backend>,
    costs: Costs,
    core: Core,
    /// The committed sequence number, mirrored from the core so updates can wait for it
    /// asynchronously. Only a leader publishes, and there is one at a time.
    committed: watch::Sender<u64>,
    tally: super::tally::Tally,
}

impl GroupCommitStore {
    pub fn new(backend: Arc<dyn Backend>, costs: Costs) -> Self {
        GroupCommitStore {
            inner: Arc::new(Inner {
                backend,
                costs,
                core: Core::new(),
                committed: watch::Sender::new(0),
                tally: Default::default(),
            }),
        }
    }

    /// The core, for tests that check it drains.
    pub fn core(&self) -> &Core {
        &self.inner.core
    }
}

impl Inner {
    fn publish(&self, committed: u64) {
        self.committed.send_modify(|c| *c = (*c).max(committed));
    }

    /// Writes one batch (see [`write_batch`]) and counts the write in the stats.
    async fn write_batch(&self, batch: &[Queued]) -> Vec<(u64, Result<(), StoreError>)> {
        let written = write_batch(&self.backend, &self.costs, batch).await;
        if written.wrote {
            self.tally.wrote(written.fsyncs);
        }
        written.results
    }
}

/// What [`write_batch`] did with one batch.
#[derive(Debug)]
pub struct BatchWritten {
    /// One result per update of the batch, keyed by its sequence number: what [`Core::finish`]
    /// takes.
    pub results: Vec<(u64, Result<(), StoreError>)>,
    /// Whether the file was written (not when the batch failed, or every change in it did).
    pub wrote: bool,
    /// fsyncs the write did.
    pub fsyncs: u32,
}

/// The leader's write of one batch: under the cross-process lock, one read, every change applied,
/// one durable write. Public (with [`Core`]) so `loom_tests/` drives the production write; with
/// zero costs and the memory backend it never awaits anything, so it completes on its first poll.
pub async fn write_batch(backend: &Arc<dyn Backend>, costs: &Costs, batch: &[Queued]) -> BatchWritten {
    costs.charge(Step::FileLock).await;
    let changes: Vec<(&AccountId, &Change)> = batch.iter().map(|q| (&q.id, &q.change)).collect();
    let applied = async {
        let _file_lock = cross_process_lock(backend).await?;
        read_modify_write(backend.as_ref(), costs, &changes, DURABLE_WRITE).await
    }
    .await;
    costs.charge(Step::FileLock).await;
    let seqs = batch.iter().map(|q| q.seq);
    match applied {
        Ok(applied) => BatchWritten {
            results: seqs.zip(applied.results).collect(),
            wrote: applied.wrote,
            fsyncs: applied.fsyncs,
        },
        Err(e) => {
            let e = Arc::new(e);
            BatchWritten {
                results: seqs.map(|seq| (seq, Err(StoreError::Batch(Arc::clone(&e))))).collect(),
                wrote: false,
                fsyncs: 0,
            }
        }
    }
}

/// At most this many scheduler rounds a leader waits for more updates before a write.
const GATHER_ROUNDS: usize = 8;

/// The leader's loop: batches until nothing is pending.
///
/// Before taking each batch the leader yields to the scheduler until a round adds no update to
/// the queue (at most [`GATHER_ROUNDS`] rounds), so updates that are ready to be queued, above
/// all the next updates of the callers whose batch was just committed, join this batch instead
/// of waiting a whole write for the next. Without it, writers in a closed loop split into groups
/// that alternate batches (measured with 256 writers on two worker threads: 127 updates per
/// write instead of about 256); one yield was not enough, because a worker runs up to 61 queued
/// tasks before it resumes a yielded one. A round costs microseconds; a durable write,
/// milliseconds.
async fn lead(inner: Arc<Inner>) {
    let mut leadership = Leadership {
        inner: &inner,
        finished: false,
    };
    loop {
        let mut queued = inner.core.pending();
        for _ in 0..GATHER_ROUNDS {
            tokio::task::yield_now().await;
            let now = inner.core.pending();
            if now == queued {
                break;
            }
            queued = now;
        }
        let Some(batch) = inner.core.take_batch() else {
            break;
        };
        let results = inner.write_batch(&batch).await;
        let committed = inner.core.finish(results);
        inner.publish(committed);
    }
    leadership.finished = true;
}

/// Fails every outstanding update if the leader task stops before stepping down.
struct Leadership<'a> {
    inner: &'a Inner,
    finished: bool,
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let error = StoreError::Io {
                path: self.inner.backend.label(),
                source: std::io::Error::other("the group-commit writer stopped before finishing its batch"),
            };
            let committed = self.inner.core.fail_all(Arc::new(error));
            self.inner.publish(committed);
        }
    }
}

/// Abandons an update's result if its caller stops waiting.
struct Waiting<'a> {
    core: &'a Core,
    seq: u64,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.core.abandon(self.seq);
        }
    }
}

impl AccountStore for GroupCommitStore {
    fn mode(&self) -> StoreMode {
        StoreMode::GroupCommit
    }

    fn load(&self) -> BoxFuture<'_, Result<AccountsFile, StoreError>> {
        Box::pin(async move {
            self.inner.costs.charge_read().await;
            read_parsed(self.inner.backend.as_ref())
        })
    }

    fn update<'a>(&'a self, id: &'a AccountId, change: Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let (seq, role) = inner.core.enqueue(id.clone(), change);
            let mut waiting = Waiting {
                core: &inner.core,
                seq,
                done: false,
            };
            if role == Role::Leader {
                tokio::spawn(lead(Arc::clone(inner)));
            }
            let mut committed = inner.committed.subscribe();
            // The sender lives in `inner`, which outlives this borrow: the wait cannot fail.
            let _ = committed.wait_for(|c| *c >= seq).await.map(drop);
            let result = inner.core.take_result(seq).unwrap_or_else(|| {
                Err(StoreError::Io {
                    path: inner.backend.label(),
                    source: std::io::Error::other("group commit lost track of an update's result"),
                })
            });
            waiting.done = true;
            if result.is_ok() {
                inner.tally.updated();
            }
            result
        })
    }

    fn stats(&self) -> StoreStats {
        self.inner.tally.stats()
    }

    fn backend(&self) -> Option<Arc<dyn Backend>> {
        Some(self.inner.backend.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Account;
    use crate::store::backend::MemoryBackend;

    fn id(n: usize) -> AccountId {
        AccountId::from(format!("account{n}@example.com"))
    }

    fn code(c: u16) -> Change {
        Change::Error {
            code: c,
            ban: None,
            disable: false,
        }
    }

    #[test]
    fn first_updater_leads_and_the_leader_steps_down_only_when_nothing_is_pending() {
        let core = Core::new();
        assert_eq!(core.enqueue(id(0), code(500)), (1, Role::Leader));
        assert_eq!(core.enqueue(id(0), code(501)), (2, Role::Follower));
        let batch = core.take_batch().unwrap();
        assert_eq!(batch.iter().map(|q| q.seq).collect::<Vec<_>>(), vec![1, 2]);
        // Arrives while the batch is being written: joins the next batch, not a new leader.
        assert_eq!(core.enqueue(id(0), code(502)), (3, Role::Follower));
        assert_eq!(core.take_result(1).map(|r| r.is_ok()), None, "not committed yet");
        assert_eq!(core.finish(vec![(1, Ok(())), (2, Err(StoreError::WouldEmptyPool))]), 2);
        assert!(matches!(core.take_result(1), Some(Ok(()))));
        assert!(matches!(core.take_result(2), Some(Err(StoreError::WouldEmptyPool))));
        assert_eq!(core.take_batch().unwrap().len(), 1);
        core.finish(vec![(3, Ok(()))]);
        assert!(core.take_batch().is_none());
        // Leadership was released: the next updater leads.
        assert_eq!(core.enqueue(id(0), code(503)), (4, Role::Leader));
    }

    #[test]
    fn abandoned_results_are_not_kept() {
        let core = Core::new();
        core.enqueue(id(0), code(500));
        core.enqueue(id(0), code(501));
        core.abandon(1); // before commit
        let batch = core.take_batch().unwrap();
        core.finish(batch.into_iter().map(|q| (q.seq, Ok(()))).collect());
        assert_eq!(core.held_results(), 1);
        core.abandon(2); // after commit, before taking
        assert_eq!(core.held_results(), 0);
    }

    #[test]
    fn fail_all_answers_every_outstanding_update_and_releases_leadership() {
        let core = Core::new();
        core.enqueue(id(0), code(500));
        let _in_flight = core.take_batch().unwrap();
        core.enqueue(id(0), code(501));
        assert_eq!(core.fail_all(Arc::new(StoreError::WouldEmptyPool)), 2);
        for seq in [1, 2] {
            assert!(matches!(core.take_result(seq), Some(Err(StoreError::Batch(_)))));
        }
        assert_eq!(core.enqueue(id(0), code(502)).1, Role::Leader);
    }

    fn memory_store(accounts: usize) -> (Arc<MemoryBackend>, GroupCommitStore) {
        let mut file = AccountsFile::from_accounts((0..accounts).map(|i| Account::synthetic(i, 0, 3600)).collect());
        let backend = Arc::new(MemoryBackend::new(Some(file.to_toml_string())));
        (backend.clone(), GroupCommitStore::new(backend, Costs::default()))
    }

    #[tokio::test]
    async fn concurrent_updates_share_writes_and_all_land() {
        let (backend, store) = memory_store(1);
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..50u16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.update(&id(0), code(400 + i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let text = backend.contents().unwrap();
        let file = AccountsFile::parse(std::path::Path::new("m"), &text).unwrap();
        assert_eq!(file.accounts[0].error_codes.len(), 50);
        assert_eq!(file.accounts[0].total_calls, 50);
        let stats = store.stats();
        assert_eq!(stats.updates, 50);
        assert!(stats.writes < 50, "{stats:?}");
        assert_eq!(stats.fsyncs, 2 * stats.writes);
        assert_eq!(store.core().held_results(), 0);
    }

    #[tokio::test]
    async fn an_unknown_account_fails_alone_and_a_bad_file_fails_the_whole_batch() {
        let (backend, store) = memory_store(1);
        let (known, unknown) = (id(0), id(9));
        let (good, bad) = tokio::join!(store.update(&known, code(500)), store.update(&unknown, code(501)));
        assert!(good.is_ok());
        assert!(matches!(bad, Err(StoreError::UnknownAccount(_))));

        backend.write_in_place("[[accounts]\n").unwrap();
        let (a, b) = tokio::join!(store.update(&known, code(502)), store.update(&known, code(503)));
        for r in [a, b] {
            match r {
                Err(StoreError::Batch(e)) => assert!(matches!(*e, StoreError::Invalid(_)), "{e}"),
                other => panic!("expected a batch error, got {other:?}"),
            }
        }
        assert_eq!(
            backend.contents().as_deref(),
            Some("[[accounts]\n"),
            "a bad file is never written"
        );
    }
}

#[cfg(test)]
mod virtual_time_tests {
    use super::*;
    use crate::store::durable::tests::{costs, memory};
    use crate::store::durable::DurableStore;
    use std::time::Duration;

    /// Ten concurrent updates, one per account; the virtual time until all are done.
    async fn ten_updates(store: Arc<dyn AccountStore>) -> Duration {
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .update(&AccountId::from(format!("account{i}@example.com")), Change::Disabled)
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn ten_concurrent_updates_cost_one_durable_write_instead_of_ten() {
        // Costs (ms): lock 1, read 10, state update 100, write 1000, fsync 10000.
        let durable: Arc<dyn AccountStore> = Arc::new(DurableStore::new(memory(10), costs()));
        // One after another, each: 2 + 10 + 100 + 1000 + 20000.
        assert_eq!(ten_updates(durable.clone()).await, Duration::from_millis(10 * 21_112));
        assert_eq!(durable.stats().writes, 10);

        // On a current-thread runtime all ten queue before the spawned leader first runs: one
        // batch, one read, ten state updates, one write, two fsyncs.
        let grouped: Arc<dyn AccountStore> = Arc::new(GroupCommitStore::new(memory(10), costs()));
        assert_eq!(
            ten_updates(grouped.clone()).await,
            Duration::from_millis(2 + 10 + 10 * 100 + 1000 + 20_000)
        );
        assert_eq!(
            grouped.stats(),
            StoreStats {
                updates: 10,
                writes: 1,
                fsyncs: 2
            }
        );
    }
}
