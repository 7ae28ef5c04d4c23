//! The fleet strategy's instance-local core, [`LocalPool`] (its degraded mode), from threads:
//!
//! - requests that find the shared pool gone at the same time enter degraded mode once (one
//!   entry counted), and requests that find it back leave it once (one exit, one replay);
//! - a change made while degraded is either queued and then handed to the one request that
//!   leaves degraded mode, or told that degraded mode is over (so its caller writes it to the
//!   shared pool itself): never dropped between the two, never replayed twice;
//! - while degraded, one request per probe interval tries the shared pool.

use crate::support::{accounts, policy, NOW};
use credpool::fleet::degraded::LocalPool;
use credpool::model::{Change, PoolState};
use loom::sync::Arc;
use loom::thread;

fn local() -> LocalPool {
    LocalPool::new(PoolState::new(policy(1), accounts(2)), 1_000)
}

/// Runs `f` on two threads at once; both answers.
fn both<T: Send + 'static>(l: &Arc<LocalPool>, f: fn(&LocalPool) -> T) -> (T, T) {
    let a = {
        let l = l.clone();
        thread::spawn(move || f(&l))
    };
    let b = f(l);
    (a.join().unwrap(), b)
}

#[test]
fn an_outage_is_entered_once_and_left_once() {
    loom::model(|| {
        let l = Arc::new(local());
        let (a, b) = both(&l, |l| l.enter(NOW));
        assert!(a ^ b, "entered {a} and {b}: one entry per outage");
        assert!(l.is_degraded());
        let (a, b) = both(&l, |l| l.leave().is_some());
        assert!(a ^ b, "left {a} and {b}: one exit per outage");
        assert!(!l.is_degraded());
    });
}

#[test]
fn a_change_made_while_degraded_is_replayed_exactly_once_or_handed_back() {
    loom::model(|| {
        let l = Arc::new(local());
        l.enter(NOW);
        let queuer = {
            let l = l.clone();
            thread::spawn(move || l.queue(1, Change::Disabled))
        };
        let leaver = {
            let l = l.clone();
            thread::spawn(move || l.leave())
        };
        let queued = queuer.join().unwrap();
        let replay = leaver.join().unwrap().expect("the only leaver left degraded mode");
        let replayed = replay.iter().filter(|(i, c)| *i == 1 && *c == Change::Disabled).count();
        assert_eq!(
            replayed,
            usize::from(queued),
            "queued: {queued}, replayed {replayed} times (a queued change must be replayed once; one \
             handed back must not be)"
        );
        assert_eq!(l.leave(), None, "nothing left to replay");
    });
}

#[test]
fn one_request_per_interval_probes_the_shared_pool() {
    loom::model(|| {
        let l = Arc::new(local());
        l.enter(NOW);
        let (a, b) = both(&l, |l| l.probe_due(NOW + 1_000));
        assert!(a ^ b, "probed {a} and {b} in the same interval");
        assert!(!l.probe_due(NOW + 1_999));
        assert!(l.probe_due(NOW + 2_000));
    });
}
