//! Negative controls: models that MUST fail, which prove the other models can.
//!
//! Each runs a loom model of a known race and passes only when loom reports the violation with
//! the assertion message the race should trip (see [`expect_violation`]). If loom ever stopped
//! exploring the interleavings that matter (a bound set too low, a primitive that escaped the
//! `sync` facade, a harness that swallows panics), these tests would fail first.
//!
//! - The seed's lost update: the production `naive` store ([`NaiveStore`]: read, modify, truncate,
//!   write, no lock) over the production memory backend, two concurrent updates. The same
//!   assertion that the `locked`, `durable` and `group_commit` models pass must fail here.
//! - An unsynchronised rotation counter: a ticket taken with a load and then a store on a
//!   `credpool::sync` atomic (instead of `fetch_add`), mapped to a credential with the production
//!   rule; with K = 1, two threads and two credentials, both threads can get the same credential.

use crate::support::{accounts, assert_no_lost_update, block_on_tokio, expect_violation, toml_of, RecordingBackend};
use credpool::costs::Costs;
use credpool::model::ticket::ticket_position;
use credpool::model::{AccountId, Change};
use credpool::store::naive::NaiveStore;
use credpool::store::AccountStore;
use credpool::sync::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn loom_finds_the_naive_stores_lost_update() {
    expect_violation("lost update", || {
        let backend = std::sync::Arc::new(RecordingBackend::new(toml_of(accounts(1))));
        let store = Arc::new(NaiveStore::new(backend.clone(), Costs::default()));
        let handles: Vec<_> = (0..2u16)
            .map(|u| {
                let store = store.clone();
                thread::spawn(move || {
                    let change = Change::Error {
                        code: 500 + u,
                        ban: None,
                        disable: false,
                    };
                    // An update that read a concurrent writer's truncated file fails (and writes
                    // back the empty pool it read): only successful updates are acknowledged.
                    block_on_tokio(store.update(&AccountId::from("account0@example.com"), change)).is_ok()
                })
            })
            .collect();
        let acknowledged = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_no_lost_update(&backend, acknowledged as u64);
    });
}

/// A rotation ticket without an atomic read-modify-write: the bug `fetch_add` prevents.
struct RacyTicket(AtomicU64);

impl RacyTicket {
    fn take(&self) -> u64 {
        let t = self.0.load(Ordering::SeqCst);
        self.0.store(t + 1, Ordering::SeqCst);
        t
    }
}

#[test]
fn loom_finds_an_unsynchronised_rotation_counter() {
    expect_violation("got the same credential", || {
        let ticket = Arc::new(RacyTicket(AtomicU64::new(0)));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let ticket = ticket.clone();
                thread::spawn(move || ticket_position(ticket.take(), 1, 2).expect("two credentials"))
            })
            .collect();
        let picks: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_ne!(picks[0], picks[1], "K = 1: two threads got the same credential");
    });
}
