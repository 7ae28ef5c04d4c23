//! `lock_free`'s per-credential single-flight slot: at most one refresh of a credential runs at
//! a time, and every request that needs one leads it, follows it, or finds it landed. Owns the
//! protocol (`begin`, `land`, `clear`) and nothing else: the refresh itself runs in the async
//! shell ([`LockFree`](super::LockFree)), the result is published by
//! [`TicketCore`](super::TicketCore).

use crate::sync::{AtomicBool, Mutex, Ordering};

/// How a refresh flight ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlightResult {
    Refreshed,
    /// The credential is disabled; waiters move on.
    Failed,
}

/// What [`SingleFlight::begin`] tells a request that needs a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// No refresh is running and none landed since the caller's snapshot: the caller starts one.
    Lead,
    /// A refresh is running: wait for it to land.
    Follow,
    /// A refresh landed since the caller's snapshot, with this result: load the snapshot again.
    Landed(FlightResult),
}

#[derive(Debug, Default)]
struct FlightState {
    running: bool,
    /// Version of the last refresh that landed (published in the snapshot).
    landed: u64,
    last: Option<FlightResult>,
}

/// A per-credential single-flight slot: at most one refresh of a credential runs at a time, and
/// every request that needs it either leads it, follows it, or sees it already landed.
///
/// Protocol: `begin(seen)` (`seen` = the credential's version in the caller's snapshot) →
/// the leader refreshes, publishes the result in the snapshot as version `seen + 1`, calls
/// [`land`](Self::land) (followers go), and [`clear`](Self::clear)s the slot when it is entirely
/// done. Publishing before landing is what makes `Landed` mean "the snapshot has it".
#[derive(Debug, Default)]
pub struct SingleFlight {
    state: Mutex<FlightState>,
    /// Mirrors `state.running`, so the refresh-ahead path sees "already started" without the lock.
    running: AtomicBool,
}

impl SingleFlight {
    pub fn begin(&self, seen: u64) -> Join {
        let mut f = self.state.lock();
        if f.landed > seen {
            return Join::Landed(f.last.expect("a landed flight has a result"));
        }
        if f.running {
            return Join::Follow;
        }
        f.running = true;
        self.running.store(true, Ordering::Release);
        Join::Lead
    }

    /// For the refresh-ahead window: leads a new flight unless one is running (checked without
    /// the lock first) or one landed since `seen`.
    pub fn begin_ahead(&self, seen: u64) -> bool {
        !self.running.load(Ordering::Acquire) && self.begin(seen) == Join::Lead
    }

    /// The leader published its result as `version`: followers may go.
    pub fn land(&self, version: u64, result: FlightResult) {
        let mut f = self.state.lock();
        f.landed = version;
        f.last = Some(result);
    }

    /// The leader is done: a later request may start another flight.
    pub fn clear(&self) {
        let mut f = self.state.lock();
        f.running = false;
        self.running.store(false, Ordering::Release);
    }

    pub fn is_running(&self) -> bool {
        self.state.lock().running
    }

    /// Version of the last landed refresh.
    pub fn landed(&self) -> u64 {
        self.state.lock().landed
    }
}
