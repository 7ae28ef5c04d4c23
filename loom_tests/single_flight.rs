//! `lock_free`'s single-flight refresh: [`TicketCore`] and its per-credential [`SingleFlight`].
//!
//! Each thread is one request, following `LockFree`'s protocol step by step on the production
//! core: take a ticket and resolve it; a token inside the margin means `Refresh { index,
//! version }`, and the request calls `flight.begin(version)`: `Lead` runs the flight (refresh,
//! [`TicketCore::publish_refresh`], `land`, `clear`, as `Shared::run_flight` does), `Follow`
//! waits and asks again, `Landed` resolves the same ticket again. Inside the refresh-ahead
//! window a request keeps its still-valid token and leads a background flight only if
//! `begin_ahead` says so. The async shell waits for a landing on a `tokio::sync::Notify`
//! registered before it calls `begin` and notified at `land` and at `clear`; here a follower
//! waits on a [`Signal`] used the same way, so a landing between `begin` and the wait is not
//! missed and a follower nobody wakes is a deadlock loom reports. (tokio's `Notify` itself, and
//! the spawned flight task, are exercised by the randomized schedules of
//! `tests/schedule_stress.rs`.)
//!
//! What the models prove:
//! - exactly one refresh per credential and expiry, however many requests find it expired,
//!   including requests in the refresh-ahead window racing one inside the margin;
//! - every waiter ends with a token at least as new as the one it started from (the refreshed
//!   one);
//! - a leader's failure reaches every waiter: the credential is disabled once, every waiter
//!   that joined sees `Landed(Failed)`, and every request is served by the other credential;
//! - afterwards the slot is cleared (not running, the landing recorded) and a later request for
//!   a newer expiry leads a new flight.

use crate::support::{fresh_token, policy, refreshed, Signal, IN_AHEAD_WINDOW, IN_MARGIN, MODEL, NOW};
use credpool::model::{Account, Change, EpochMs};
use credpool::strategy::lock_free::{FlightResult, Join, Resolved, TicketCore};
use credpool::strategy::Pick;
use credpool::sync::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The shared state of a model: the core, and refreshes started per credential.
struct World {
    core: TicketCore,
    /// Notified when a flight lands or clears (the strategy's per-credential `Notify`).
    landed: Signal,
    refreshes: Vec<AtomicUsize>,
    /// What a refresh of credential `i` returns.
    refresh: fn(usize) -> Change,
}

impl World {
    fn new(accounts: Vec<Account>, refresh: fn(usize) -> Change) -> Arc<World> {
        let refreshes = (0..accounts.len()).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(World {
            core: TicketCore::new(policy(100), accounts),
            landed: Signal::new(),
            refreshes,
            refresh,
        })
    }

    /// A flight's leader: refresh, publish, land, clear.
    fn lead(&self, index: usize) {
        self.refreshes[index].fetch_add(1, Ordering::SeqCst);
        let change = (self.refresh)(index);
        let result = if change.disables() {
            FlightResult::Failed
        } else {
            FlightResult::Refreshed
        };
        let version = self.core.publish_refresh(index, &change);
        let flight = self.core.flight(index);
        flight.land(version, result);
        self.landed.notify();
        flight.clear();
        self.landed.notify();
    }

    /// One request at `now`: its pick (or `None` when exhausted) and every landing it waited for.
    fn request(&self, now: EpochMs) -> (Option<Pick>, Vec<FlightResult>) {
        let ticket = self.core.take_ticket();
        let mut landings = Vec::new();
        loop {
            match self.core.resolve(ticket, MODEL, now) {
                Resolved::Ready { pick, ahead } => {
                    if let Some(seen) = ahead {
                        if self.core.flight(pick.index).begin_ahead(seen) {
                            self.lead(pick.index);
                        }
                    }
                    return (Some(pick), landings);
                }
                Resolved::Exhausted => return (None, landings),
                Resolved::Refresh { index, version } => loop {
                    // Registered before looking at the slot, as `wait_for_refresh` does.
                    let ticket = self.landed.ticket();
                    match self.core.flight(index).begin(version) {
                        Join::Landed(result) => {
                            landings.push(result);
                            break;
                        }
                        Join::Lead => self.lead(index),
                        Join::Follow => self.landed.wait(ticket),
                    }
                },
            }
        }
    }

    fn refreshes(&self, index: usize) -> usize {
        self.refreshes[index].load(Ordering::SeqCst)
    }
}

/// `threads` requests, request `t` at `now(t)`; every request's outcome.
fn run(world: &Arc<World>, threads: usize, now: fn(usize) -> EpochMs) -> Vec<(Option<Pick>, Vec<FlightResult>)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let world = world.clone();
            thread::spawn(move || world.request(now(t)))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Credential `i` with a token issued at [`NOW`] (inside the margin at [`IN_MARGIN`]).
fn expiring(i: usize) -> Account {
    Account::synthetic(i, NOW, 3600)
}

/// Credential `i` with a token valid well past [`IN_MARGIN`].
fn lasting(i: usize) -> Account {
    Account::synthetic(i, NOW, 4 * 3600)
}

/// After the flight of credential `index` (version `landed`): the slot is free, and a request
/// that saw the landed version (its token expiring in turn) can lead the next flight.
fn assert_slot_cleared(world: &World, index: usize, landed: u64) {
    let flight = world.core.flight(index);
    assert!(!flight.is_running(), "the slot stayed running");
    assert_eq!(flight.landed(), landed);
    assert_eq!(
        world.core.snapshot().versions[index],
        landed,
        "landed but not published"
    );
    assert_eq!(flight.begin(landed), Join::Lead, "a later refresh could not start");
}

#[test]
fn one_refresh_and_every_waiter_gets_the_new_token() {
    // 3 requests find credential 0's token inside the margin.
    loom::model(|| {
        let world = World::new(vec![expiring(0)], |i| refreshed(i, IN_MARGIN));
        for (pick, landings) in run(&world, 3, |_| IN_MARGIN) {
            let pick = pick.expect("credential 0 is refreshed, not exhausted");
            assert_eq!(
                pick.token,
                fresh_token(0),
                "a waiter got a token older than the refreshed one"
            );
            assert!(landings.iter().all(|r| *r == FlightResult::Refreshed));
        }
        assert_eq!(world.refreshes(0), 1, "refreshes of one expiry");
        assert_slot_cleared(&world, 0, 1);
    });
}

#[test]
fn a_failed_refresh_reaches_every_waiter() {
    // Credential 0 expires and its refresh fails; credential 1 is valid. 3 requests.
    loom::model(|| {
        let world = World::new(vec![expiring(0), lasting(1)], |_| Change::Disabled);
        for (pick, landings) in run(&world, 3, |_| IN_MARGIN) {
            let pick = pick.expect("credential 1 serves");
            assert_eq!(pick.index, 1, "a request got the credential whose refresh failed");
            assert!(
                landings.iter().all(|r| *r == FlightResult::Failed),
                "a waiter saw {landings:?}, not the failure"
            );
        }
        assert_eq!(world.refreshes(0), 1, "the failed credential was refreshed again");
        assert_eq!(world.refreshes(1), 0);
        assert!(world.core.snapshot().accounts[0].disabled);
        assert_slot_cleared(&world, 0, 1);
    });
}

#[test]
fn refresh_ahead_and_margin_requests_share_one_flight() {
    // Two requests in the refresh-ahead window (they keep the valid token and may start a
    // background flight) race one inside the margin (which must wait for a flight).
    loom::model(|| {
        let world = World::new(vec![expiring(0)], |i| refreshed(i, IN_MARGIN));
        let now = |t| if t == 0 { IN_MARGIN } else { IN_AHEAD_WINDOW };
        let outcomes = run(&world, 3, now);
        assert_eq!(world.refreshes(0), 1, "one expiry, one flight");
        let (margin_pick, _) = &outcomes[0];
        assert_eq!(
            margin_pick.as_ref().map(|p| p.token.clone()),
            Some(fresh_token(0)),
            "the request inside the margin did not get the refreshed token"
        );
        assert_slot_cleared(&world, 0, 1);
    });
}
