//! Leases handed out and not yet completed, with their deadline, and what became of the recent
//! ones (completed, reclaimed) so a late or repeated completion gets a precise answer.
//!
//! A lease holds the strategy's [`Lease`], whose drop gives the credential back (a `queue_pool`
//! permit included), and the [`Request`] it was taken for (the strategy's `complete` needs it).
//! A lease not completed within the TTL is *reclaimed*: dropped by the reaper and counted, so a
//! client that crashed leaks nothing. The table is bounded (`max_leases`), and so is the memory of
//! finished leases (each is forgotten a minute, or one TTL if shorter, after it finished).
//!
//! Sixteen shards, each a short `parking_lot` mutex around a map, picked by the id's low bits
//! (random): 64 concurrent clients on two cores rarely meet on one lock, and no lock is held
//! across an await (taking a lease out is the only thing done under it).

use super::lease_id::LeaseId;
use crate::strategy::{Lease, Request};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: usize = 16;

/// How long a finished lease is remembered (at most; never longer than the TTL): long enough for
/// a retried completion to get its `409`, short enough that the memory of finished leases stays
/// small (at 5,000 completions a second, 300,000 entries of a few dozen bytes).
const REMEMBER: Duration = Duration::from_secs(60);

/// A lease in flight.
pub struct Live {
    pub lease: Lease,
    pub request: Request,
    pub issued: Instant,
    deadline: Instant,
}

/// What became of a lease that is no longer in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Completed,
    Reclaimed,
}

/// Why a lease could not be taken out for completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// Never issued, or finished so long ago it is forgotten.
    Unknown,
    /// Completed already.
    Completed,
    /// Not completed within the TTL; its credential went back to the pool.
    Reclaimed,
}

#[derive(Default)]
struct Shard {
    live: HashMap<LeaseId, Live>,
    /// Finished leases and when to forget them.
    finished: HashMap<LeaseId, (Finished, Instant)>,
}

pub struct LeaseTable {
    shards: Box<[Mutex<Shard>]>,
    ttl: Duration,
    /// How long finished leases are remembered: `min(ttl, REMEMBER)`.
    remember: Duration,
    max: usize,
    in_flight: AtomicUsize,
    reclaimed: AtomicU64,
    /// Woken when the table empties: the drain on shutdown waits on it.
    emptied: tokio::sync::Notify,
}

impl LeaseTable {
    pub fn new(ttl: Duration, max: usize) -> LeaseTable {
        LeaseTable {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            ttl,
            remember: ttl.min(REMEMBER),
            max,
            in_flight: AtomicUsize::new(0),
            reclaimed: AtomicU64::new(0),
            emptied: tokio::sync::Notify::new(),
        }
    }

    fn shard(&self, id: LeaseId) -> &Mutex<Shard> {
        &self.shards[(id.0 as usize) % SHARDS]
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Leases in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Leases reclaimed after their TTL so far.
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Room for one more lease? (Checked before acquiring, so a full table does not take a
    /// credential it cannot hold.) A race may overshoot by the number of concurrent requests.
    pub fn has_room(&self) -> bool {
        self.in_flight() < self.max
    }

    /// Records a lease under `id` (fresh, random: never already there).
    pub fn insert(&self, id: LeaseId, lease: Lease, request: Request) {
        let issued = Instant::now();
        let live = Live {
            lease,
            request,
            issued,
            deadline: issued + self.ttl,
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.shard(id).lock().live.insert(id, live);
    }

    /// Takes lease `id` out for completion; from now on it is [`Finished::Completed`] (a second
    /// completion, even a concurrent one, gets [`TakeError::Completed`]).
    pub fn take(&self, id: LeaseId) -> Result<Live, TakeError> {
        let mut shard = self.shard(id).lock();
        match shard.live.remove(&id) {
            Some(live) => {
                shard
                    .finished
                    .insert(id, (Finished::Completed, Instant::now() + self.remember));
                drop(shard);
                self.left();
                Ok(live)
            }
            None => Err(match shard.finished.get(&id) {
                Some((Finished::Completed, _)) => TakeError::Completed,
                Some((Finished::Reclaimed, _)) => TakeError::Reclaimed,
                None => TakeError::Unknown,
            }),
        }
    }

    /// Takes lease `id` out without remembering it: for leases whose id never left serve (the
    /// reverse proxy's), which no client can complete again. `None` if it was reclaimed.
    pub fn release(&self, id: LeaseId) -> Option<Live> {
        let live = self.shard(id).lock().live.remove(&id)?;
        self.left();
        Some(live)
    }

    fn left(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.emptied.notify_waiters();
        }
    }

    /// Reclaims every lease past its deadline (dropping it gives its credential back) and
    /// forgets finished leases past their memory; returns how many were reclaimed.
    pub fn reap(&self, now: Instant) -> usize {
        let mut reclaimed = 0;
        for shard in self.shards.iter() {
            let expired: Vec<Live> = {
                let mut s = shard.lock();
                s.finished.retain(|_, (_, forget_at)| *forget_at > now);
                let ids: Vec<LeaseId> = s
                    .live
                    .iter()
                    .filter(|(_, l)| l.deadline <= now)
                    .map(|(id, _)| *id)
                    .collect();
                let forget_at = now + self.remember;
                ids.into_iter()
                    .filter_map(|id| {
                        s.finished.insert(id, (Finished::Reclaimed, forget_at));
                        s.live.remove(&id)
                    })
                    .collect()
            };
            // Dropped outside the shard's lock: a `queue_pool` permit wakes a waiter on drop.
            for live in expired {
                drop(live);
                reclaimed += 1;
                self.reclaimed.fetch_add(1, Ordering::Relaxed);
                self.left();
            }
        }
        reclaimed
    }

    /// Runs [`reap`](Self::reap) every tenth of the TTL (at most every second) until the table is
    /// dropped by everyone else.
    pub async fn reap_forever(self: std::sync::Arc<Self>) {
        let every = (self.ttl / 10).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let n = self.reap(Instant::now());
            if n > 0 {
                tracing::warn!(reclaimed = n, "leases not completed within the TTL were reclaimed");
            }
        }
    }

    /// Waits until no lease is in flight, or `timeout` passes; returns the leases still in flight.
    pub async fn drained(&self, timeout: Duration) -> usize {
        let until = Instant::now() + timeout;
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.in_flight() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(until, emptied).await.is_err() {
                return self.in_flight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;
    use crate::secret::Secret;
    use crate::strategy::AcquireTiming;

    fn lease() -> (Lease, Request) {
        (
            Lease::new(0, AccountId::from("a"), Secret::new("t"), AcquireTiming::default()),
            Request::new(0, 0, "m"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn complete_once_reclaim_after_ttl() {
        let t = LeaseTable::new(Duration::from_secs(10), 8);
        let (l, r) = lease();
        t.insert(LeaseId(1), l, r);
        let (l, r) = lease();
        t.insert(LeaseId(2), l, r);
        assert_eq!(t.in_flight(), 2);
        assert!(t.take(LeaseId(1)).is_ok());
        assert_eq!(t.take(LeaseId(1)).err(), Some(TakeError::Completed));
        assert_eq!(t.take(LeaseId(3)).err(), Some(TakeError::Unknown));
        let (l, r) = lease();
        t.insert(LeaseId(4), l, r);
        assert!(t.release(LeaseId(4)).is_some());
        assert!(t.release(LeaseId(4)).is_none());
        assert_eq!(
            t.take(LeaseId(4)).err(),
            Some(TakeError::Unknown),
            "released leases are not remembered"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(t.reap(Instant::now()), 1);
        assert_eq!((t.in_flight(), t.reclaimed()), (0, 1));
        assert_eq!(t.take(LeaseId(2)).err(), Some(TakeError::Reclaimed));
        // Finished leases are forgotten one TTL later (shorter than a minute here).
        tokio::time::advance(Duration::from_secs(11)).await;
        t.reap(Instant::now());
        assert_eq!(t.take(LeaseId(2)).err(), Some(TakeError::Unknown));
        assert_eq!(t.drained(Duration::from_secs(1)).await, 0);
    }
}
