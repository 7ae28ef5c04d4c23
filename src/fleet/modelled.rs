//! [`ModelledPool`]: the [`SharedPool`] semantics in memory, for virtual-time simulations.
//!
//! Every operation is atomic (one critical section on a mutex, never held across an await) and
//! costs one round trip: half of `redis_rtt` on the crate's [`Clock`] before it is applied and
//! half after, as a request to a real server is applied somewhere in the middle of its round
//! trip. N simulated instances can share one `ModelledPool` (an `Arc`), as N processes share one
//! Redis. The semantics are those of the Lua scripts in `src/fleet/scripts/`, line for line;
//! `tests/fleet_redis.rs` runs the same random operation sequences against both and requires
//! identical answers. Lease TTLs and ban deadlines are read on the model's clock, where Redis
//! reads its own (`TIME`, `PX`).
//!
//! For fault scenarios the model can be taken down ([`ModelledPool::set_down`]: every operation
//! answers [`SharedError::Unreachable`]) and restarted with nothing kept
//! ([`ModelledPool::restart_empty`]).

use super::shared_pool::{
    AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, SeedAccount, SeedAnswer, SharedAccount, SharedError,
    SharedPool, SharedResult, WriteAnswer, EVERY_SERIES,
};
use crate::clock::Clock;
use crate::future::BoxFuture;
use crate::model::{AccountId, EpochMs};
use crate::secret::Secret;
use crate::sync::{AtomicBool, Mutex, Ordering};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One account's fields (the hashes `ids`, `tok`, `gen`, `exp`, `dis`, `by` at one slot).
#[derive(Clone, Debug)]
struct Entry {
    id: AccountId,
    token: Secret,
    generation: u64,
    expires_at: Option<EpochMs>,
    disabled: bool,
    /// `owner@generation` of the last commit.
    by: Option<String>,
}

/// Everything Redis would hold for one pool.
#[derive(Debug, Default)]
struct State {
    /// `meta.next`; `None` until seeded.
    next_slot: Option<u64>,
    entries: BTreeMap<u64, Entry>,
    /// `(slot, series)` -> deadline. Kept apart from `entries`, as in Redis, where a delete drops
    /// only the series it is told.
    bans: HashMap<(u64, String), EpochMs>,
    ticket: u64,
    /// slot -> (owner, expires at epoch ms on the model's clock).
    leases: HashMap<u64, (String, EpochMs)>,
}

pub struct ModelledPool {
    state: Mutex<State>,
    clock: Clock,
    /// The modelled cost of one operation's round trip.
    redis_rtt: Duration,
    down: AtomicBool,
}

impl ModelledPool {
    pub fn new(clock: Clock, redis_rtt: Duration) -> ModelledPool {
        ModelledPool {
            state: Mutex::new(State::default()),
            clock,
            redis_rtt,
            down: AtomicBool::new(false),
        }
    }

    /// While down, every operation answers [`SharedError::Unreachable`] (after its round trip).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A restart with nothing on disk: everything is gone.
    pub fn restart_empty(&self) {
        *self.state.lock() = State::default();
    }

    /// One operation: half a round trip, `apply` atomically, the other half.
    async fn op<T>(&self, apply: impl FnOnce(&mut State, EpochMs) -> T) -> SharedResult<T> {
        let half = self.clock.spend(self.redis_rtt / 2);
        if !half.is_zero() {
            tokio::time::sleep(half).await;
        }
        let answer = if self.down.load(Ordering::SeqCst) {
            Err(SharedError::Unreachable("the modelled Redis is down".into()))
        } else {
            let now = self.clock.now_ms();
            Ok(apply(&mut self.state.lock(), now))
        };
        if !half.is_zero() {
            tokio::time::sleep(half).await;
        }
        answer
    }
}

impl State {
    fn lease_holder(&self, slot: u64, now: EpochMs) -> Option<&str> {
        self.leases
            .get(&slot)
            .filter(|(_, until)| now < *until)
            .map(|(owner, _)| owner.as_str())
    }
}

impl SharedPool for ModelledPool {
    fn acquire<'a>(
        &'a self,
        calls_per_rotation: u64,
        series: Option<&'a str>,
        again: Option<u64>,
    ) -> BoxFuture<'a, SharedResult<AcquireAnswer>> {
        Box::pin(self.op(move |s, now| {
            if s.next_slot.is_none() {
                return AcquireAnswer::Unseeded;
            }
            let usable: Vec<u64> = s
                .entries
                .iter()
                .filter(|(slot, e)| {
                    let free = |series: &str| {
                        s.bans
                            .get(&(**slot, series.to_string()))
                            .is_none_or(|until| *until <= now)
                    };
                    !e.disabled && free(EVERY_SERIES) && series.is_none_or(free)
                })
                .map(|(slot, _)| *slot)
                .collect();
            if usable.is_empty() {
                return AcquireAnswer::Exhausted;
            }
            let ticket = match again {
                Some(t) => t,
                None => {
                    s.ticket += 1;
                    s.ticket - 1
                }
            };
            let slot = usable[((ticket / calls_per_rotation.max(1)) % usable.len() as u64) as usize];
            let e = &s.entries[&slot];
            AcquireAnswer::Ready(Acquired {
                ticket,
                slot,
                id: e.id.clone(),
                token: e.token.clone(),
                generation: e.generation,
                expires_at: e.expires_at,
            })
        }))
    }

    fn ban<'a>(&'a self, slot: u64, series: &'a str, until: EpochMs) -> BoxFuture<'a, SharedResult<WriteAnswer>> {
        Box::pin(self.op(move |s, _| {
            if !s.entries.contains_key(&slot) {
                return WriteAnswer::Gone;
            }
            let kept = s.bans.entry((slot, series.to_string())).or_insert(until);
            *kept = (*kept).max(until);
            WriteAnswer::Done { ban_until: Some(*kept) }
        }))
    }

    fn disable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>> {
        Box::pin(self.op(move |s, _| match s.entries.get_mut(&slot) {
            Some(e) => {
                e.disabled = true;
                WriteAnswer::Done { ban_until: None }
            }
            None => WriteAnswer::Gone,
        }))
    }

    fn enable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>> {
        Box::pin(self.op(move |s, _| match s.entries.get_mut(&slot) {
            Some(e) => {
                e.disabled = false;
                WriteAnswer::Done { ban_until: None }
            }
            None => WriteAnswer::Gone,
        }))
    }

    fn lease<'a>(
        &'a self,
        slot: u64,
        owner: &'a str,
        ttl: Duration,
        seen: u64,
    ) -> BoxFuture<'a, SharedResult<LeaseAnswer>> {
        Box::pin(self.op(move |s, now| {
            let Some(e) = s.entries.get(&slot) else {
                return LeaseAnswer::Gone;
            };
            if e.disabled {
                return LeaseAnswer::Disabled;
            }
            let generation = e.generation;
            if generation != seen {
                return LeaseAnswer::Stale { generation };
            }
            let until = now + ttl.as_millis().max(1) as EpochMs;
            match s.lease_holder(slot, now) {
                None => {
                    s.leases.insert(slot, (owner.to_string(), until));
                    LeaseAnswer::Acquired { generation }
                }
                Some(holder) if holder == owner => {
                    s.leases.insert(slot, (owner.to_string(), until));
                    LeaseAnswer::Acquired { generation }
                }
                Some(_) => LeaseAnswer::Held { generation },
            }
        }))
    }

    fn release<'a>(&'a self, slot: u64, owner: &'a str) -> BoxFuture<'a, SharedResult<bool>> {
        Box::pin(self.op(move |s, now| {
            if s.lease_holder(slot, now) == Some(owner) {
                s.leases.remove(&slot);
                true
            } else {
                false
            }
        }))
    }

    fn commit<'a>(
        &'a self,
        slot: u64,
        generation: u64,
        token: &'a Secret,
        expires_at: Option<EpochMs>,
        owner: &'a str,
    ) -> BoxFuture<'a, SharedResult<CommitAnswer>> {
        Box::pin(self.op(move |s, now| {
            let releases = s.lease_holder(slot, now) == Some(owner);
            let Some(e) = s.entries.get_mut(&slot) else {
                return CommitAnswer::Gone;
            };
            let mark = format!("{owner}@{generation}");
            if e.generation == generation {
                e.token = token.clone();
                e.expires_at = expires_at;
                e.generation += 1;
                e.by = Some(mark);
                let committed = e.generation;
                if releases {
                    s.leases.remove(&slot);
                }
                return CommitAnswer::Committed { generation: committed };
            }
            if e.by.as_deref() == Some(mark.as_str()) {
                return CommitAnswer::Committed {
                    generation: e.generation,
                };
            }
            CommitAnswer::Stale {
                generation: e.generation,
            }
        }))
    }

    fn delete<'a>(&'a self, slot: u64, series: &'a [String]) -> BoxFuture<'a, SharedResult<bool>> {
        Box::pin(self.op(move |s, _| {
            let existed = s.entries.remove(&slot).is_some();
            for series in series {
                s.bans.remove(&(slot, series.clone()));
            }
            s.leases.remove(&slot);
            existed
        }))
    }

    fn seed<'a>(
        &'a self,
        accounts: &'a [SeedAccount],
        generation_base: u64,
        add_missing: bool,
    ) -> BoxFuture<'a, SharedResult<SeedAnswer>> {
        Box::pin(self.op(move |s, _| {
            let present = s.next_slot.is_some();
            if present && !add_missing {
                return SeedAnswer::Present(s.entries.len() as u64);
            }
            let mut known: std::collections::HashSet<AccountId> = s.entries.values().map(|e| e.id.clone()).collect();
            let mut slot = s.next_slot.unwrap_or(0);
            let mut added = 0;
            for a in accounts {
                if known.insert(a.id.clone()) {
                    s.entries.insert(
                        slot,
                        Entry {
                            id: a.id.clone(),
                            token: a.token.clone(),
                            generation: generation_base,
                            expires_at: a.expires_at,
                            disabled: a.disabled,
                            by: None,
                        },
                    );
                    slot += 1;
                    added += 1;
                }
            }
            s.next_slot = Some(slot);
            if present {
                SeedAnswer::Added(added)
            } else {
                SeedAnswer::Seeded(added)
            }
        }))
    }

    fn snapshot(&self) -> BoxFuture<'_, SharedResult<Vec<SharedAccount>>> {
        Box::pin(self.op(|s, _| {
            s.entries
                .iter()
                .map(|(slot, e)| {
                    let mut bans: Vec<(String, EpochMs)> = s
                        .bans
                        .iter()
                        .filter(|((b, _), _)| b == slot)
                        .map(|((_, series), until)| (series.clone(), *until))
                        .collect();
                    bans.sort();
                    SharedAccount {
                        slot: *slot,
                        id: e.id.clone(),
                        token: e.token.clone(),
                        generation: e.generation,
                        expires_at: e.expires_at,
                        disabled: e.disabled,
                        bans,
                    }
                })
                .collect()
        }))
    }
}
