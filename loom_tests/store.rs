//! Stores: no lost update, persisted versions never go backwards, the last one persisted is the
//! final state.
//!
//! Every model writes through the production [`MemoryBackend`](credpool::store::backend::MemoryBackend)
//! (its content behind a `credpool::sync::Mutex`, so each read and write is a loom step), wrapped
//! to record each write's version in write order ([`RecordingBackend`]). Every update counts one
//! call on the same account with its own error code, so a lost update shows in the final file.
//!
//! - `group_commit`: its synchronous [`Core`] (enqueue, take_batch, finish, take_result,
//!   abandon) is driven from threads as `GroupCommitStore::update` drives it: an update that
//!   becomes the leader starts the writing loop in a thread of its own (the store spawns a task),
//!   which writes each batch with the production [`write_batch`] (synchronous here: zero costs,
//!   memory backend); every update waits until the published committed number covers its own
//!   (the store waits on a `tokio::sync::watch`; here on a [`Signal`] with the same
//!   check-then-wait discipline) and takes its result. A variant runs the writing loop on the leader's own thread, and one abandons an
//!   update before its result arrives (a cancelled caller): nothing may be lost or leak.
//! - `locked` and `durable`: the production `update` futures, run to completion on loom threads.
//!   Their in-process lock is a `tokio::sync::Mutex`, which is not built against loom: loom
//!   treats each of its operations as one opaque step (it does not check tokio's mutex, which
//!   tokio model-checks itself) and explores the interleavings of the stores' reads and writes
//!   around it. That is sound here because the data the race is about, the file's contents, is
//!   behind the memory backend's loom mutex, so loom sees every conflict on it; the opaque lock
//!   only removes schedules. (It would not be for state kept *inside* a tokio lock, which is why
//!   `global_mutex` has no loom model: see docs/model-checking.md.)

use crate::support::{accounts, assert_no_lost_update, block_on_tokio, toml_of, RecordingBackend, Signal};
use credpool::costs::Costs;
use credpool::model::{AccountId, Change};
use credpool::store::backend::Backend;
use credpool::store::durable::DurableStore;
use credpool::store::group_commit::{write_batch, Core, Role};
use credpool::store::locked::LockedStore;
use credpool::store::{AccountStore, StoreError};
use loom::sync::Arc;
use loom::thread::{self, JoinHandle};

fn alice() -> AccountId {
    AccountId::from("account0@example.com")
}

/// Update number `u`: one call with error code 500 + u.
fn change(u: u16) -> Change {
    Change::Error {
        code: 500 + u,
        ban: None,
        disable: false,
    }
}

fn backend() -> std::sync::Arc<RecordingBackend> {
    std::sync::Arc::new(RecordingBackend::new(toml_of(accounts(1))))
}

/// The store's handle on the recording backend (a std `Arc`: the stores take one; loom needs
/// no view of this reference count).
fn sink(backend: &std::sync::Arc<RecordingBackend>) -> std::sync::Arc<dyn Backend> {
    backend.clone()
}

/// The group-commit world: the core, the sink it writes to, and the publication of the
/// committed number that updates wait on (the store's `watch`).
struct GroupCommit {
    core: Core,
    backend: std::sync::Arc<RecordingBackend>,
    /// The same backend as the store holds it.
    sink: std::sync::Arc<dyn Backend>,
    committed: Signal,
}

impl GroupCommit {
    /// The writing loop of a group-commit leader, as the store's spawned `lead` task runs it:
    /// take a batch, write it, finish it, publish the committed number; until nothing is pending.
    fn lead(&self) {
        while let Some(batch) = self.core.take_batch() {
            let written = block_on_tokio(write_batch(&self.sink, &Costs::default(), &batch));
            self.core.finish(written.results);
            self.committed.notify();
        }
    }

    /// Waits until update `seq` is committed (as the store's `wait_for` on the watch), then
    /// takes its result.
    fn wait_for(&self, seq: u64) -> Result<(), StoreError> {
        loop {
            let ticket = self.committed.ticket();
            if self.core.committed() >= seq {
                break;
            }
            self.committed.wait(ticket);
        }
        self.core.take_result(seq).expect("a committed update has its result")
    }

    fn new() -> Arc<GroupCommit> {
        let backend = backend();
        Arc::new(GroupCommit {
            core: Core::new(),
            sink: sink(&backend),
            backend,
            committed: Signal::new(),
        })
    }

    /// Queues update `u`; a leader starts its writing loop in a thread of its own.
    fn enqueue(world: &Arc<GroupCommit>, u: u16) -> (u64, Option<JoinHandle<()>>) {
        let (seq, role) = world.core.enqueue(alice(), change(u));
        let leader = (role == Role::Leader).then(|| {
            let world = world.clone();
            thread::spawn(move || world.lead())
        });
        (seq, leader)
    }
}

#[test]
fn group_commit_loses_nothing_with_a_spawned_leader() {
    // 2 updaters; each leader runs in its own thread (at most 2: main + 4 threads).
    loom::model(|| {
        let world = GroupCommit::new();
        let updaters: Vec<_> = (0..2)
            .map(|u| {
                let world = world.clone();
                thread::spawn(move || {
                    let (seq, leader) = GroupCommit::enqueue(&world, u);
                    world.wait_for(seq).expect("the update is written");
                    leader
                })
            })
            .collect();
        let leaders: Vec<_> = updaters.into_iter().filter_map(|h| h.join().unwrap()).collect();
        for l in leaders {
            l.join().unwrap();
        }
        assert_no_lost_update(&world.backend, 2);
        assert_eq!(world.core.held_results(), 0, "results left behind");
        assert_eq!(
            world.core.enqueue(alice(), change(9)).1,
            Role::Leader,
            "leadership not released"
        );
    });
}

#[test]
fn group_commit_loses_nothing_with_the_leader_writing_on_its_own_thread() {
    // 3 updaters; the leader's writing loop runs on its thread before it waits (a schedule of
    // the spawned task), so three updates can race one writer.
    loom::model(|| {
        let world = GroupCommit::new();
        let updaters: Vec<_> = (0..3)
            .map(|u| {
                let world = world.clone();
                thread::spawn(move || {
                    let (seq, role) = world.core.enqueue(alice(), change(u));
                    if role == Role::Leader {
                        world.lead();
                    }
                    world.wait_for(seq).expect("the update is written");
                })
            })
            .collect();
        for h in updaters {
            h.join().unwrap();
        }
        assert_no_lost_update(&world.backend, 3);
        assert_eq!(world.core.held_results(), 0, "results left behind");
    });
}

#[test]
fn group_commit_abandoned_update_leaks_no_result() {
    // Update 1's caller gives up right after queueing (its change may still be written, and is:
    // it was queued); update 0 waits. Nothing is kept for the abandoned caller.
    loom::model(|| {
        let world = GroupCommit::new();
        let waiting = {
            let world = world.clone();
            thread::spawn(move || {
                let (seq, leader) = GroupCommit::enqueue(&world, 0);
                world.wait_for(seq).expect("the update is written");
                leader
            })
        };
        let abandoning = {
            let world = world.clone();
            thread::spawn(move || {
                let (seq, leader) = GroupCommit::enqueue(&world, 1);
                world.core.abandon(seq);
                leader
            })
        };
        let leaders: Vec<_> = [waiting, abandoning]
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        for l in leaders {
            l.join().unwrap();
        }
        assert_no_lost_update(&world.backend, 2);
        assert_eq!(world.core.held_results(), 0, "the abandoned update's result was kept");
    });
}

/// `updates` concurrent production `update`s of `store` on the recording backend.
fn concurrent_updates<S: AccountStore>(make: fn(std::sync::Arc<dyn Backend>) -> S, updates: u16) {
    loom::model(move || {
        let backend = backend();
        let store = Arc::new(make(sink(&backend)));
        let handles: Vec<_> = (0..updates)
            .map(|u| {
                let store = store.clone();
                thread::spawn(move || block_on_tokio(store.update(&alice(), change(u))).expect("the update is written"))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_no_lost_update(&backend, u64::from(updates));
    });
}

#[test]
fn locked_loses_nothing() {
    concurrent_updates(|b| LockedStore::new(b, Costs::default()), 3);
}

#[test]
fn durable_loses_nothing() {
    concurrent_updates(|b| DurableStore::new(b, Costs::default()), 3);
}
