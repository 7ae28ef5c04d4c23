//! `lock_free`'s synchronous core: the snapshot cell, the rotation tickets, and each credential's
//! slot (its padded counters and its [`SingleFlight`]). Maps a ticket to a credential with no
//! lock, publishes refreshes, bans and disables as new snapshots, and counts plain bookkeeping
//! outside them. Synchronous so that `loom_tests/` can drive it from threads; the async shell is
//! [`LockFree`](super::LockFree).

use super::replicas::{replica, Padded, REPLICAS};
use super::single_flight::SingleFlight;
use super::snapshot::Snapshot;
use super::Pick;
use crate::model::ticket::{pick_by_ticket, ticket_position};
use crate::model::time::to_plain;
use crate::model::{Account, AccountId, Change, EpochMs, Policy, RefreshDue};
use crate::secret::Secret;
use crate::strategy::ticket_blocks::TicketBlocks;
use crate::sync::{AtomicI64, AtomicU64, Ordering, SnapshotCell};

/// What a ticket resolves to on the current snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Use this credential. `ahead` is `Some(version)` when its token is inside the refresh-ahead
    /// window: start a background refresh unless one is running.
    Ready {
        pick: Pick,
        ahead: Option<u64>,
    },
    /// The credential's token is inside the margin: wait for (or start) the refresh that
    /// publishes `version + 1`, then resolve the same ticket again.
    Refresh {
        index: usize,
        version: u64,
    },
    Exhausted,
}

/// One credential's mutable state outside the snapshot.
#[derive(Debug)]
pub struct Slot {
    /// Calls completed with plain bookkeeping (not in the snapshot's `total_calls`), counted on
    /// the counter of the completing thread's [`replica`] and summed when read.
    calls: [Padded<AtomicU64>; REPLICAS],
    /// Latest success, epoch ms (`EpochMs::MIN` for none yet).
    last_success: AtomicI64,
    pub flight: SingleFlight,
}

/// The synchronous core: snapshot, ticket, per-credential slots. No lock on the acquire path.
#[derive(Debug)]
pub struct TicketCore {
    pub(super) policy: Policy,
    pub(super) snapshot: SnapshotCell<Snapshot>,
    /// Where tickets come from: blocks of consecutive tickets, one block per replica at a time.
    pub(super) tickets: TicketBlocks,
    slots: Box<[Padded<Slot>]>,
}

impl TicketCore {
    pub fn new(policy: Policy, accounts: Vec<Account>) -> Self {
        let n = accounts.len();
        let snapshot = Snapshot::new(accounts, vec![0; n], &policy);
        let slots = (0..n)
            .map(|_| {
                Padded(Slot {
                    calls: std::array::from_fn(|_| Padded(AtomicU64::new(0))),
                    last_success: AtomicI64::new(EpochMs::MIN),
                    flight: SingleFlight::default(),
                })
            })
            .collect();
        TicketCore {
            tickets: TicketBlocks::new(policy.calls_per_rotation),
            snapshot: SnapshotCell::new(crate::sync::Arc::new(snapshot)),
            policy,
            slots,
        }
    }

    /// The next rotation ticket of the current thread's [`replica`] (see [`TicketBlocks`]).
    #[inline]
    pub fn take_ticket(&self) -> u64 {
        self.tickets.take(replica())
    }

    /// Tickets reserved so far: every ticket handed out is below this (see [`TicketBlocks`] for
    /// the reserved ones that are never handed out).
    pub fn tickets_reserved(&self) -> u64 {
        self.tickets.reserved()
    }

    /// Maps `ticket` to a credential on the current snapshot, for `model` at `now`.
    #[inline]
    pub fn resolve(&self, ticket: u64, model: &str, now: EpochMs) -> Resolved {
        self.resolve_on(&self.snapshot.load(), ticket, model, now, replica())
    }

    /// [`resolve`](Self::resolve) on `snap`. The common case, inline: no ban active and no
    /// enabled token near its refresh-ahead window, so the usable set is `live` and no expiry
    /// check is needed; everything else (bans, expiry, an empty pool) in
    /// [`resolve_slowly`](Self::resolve_slowly).
    /// (`replica`: the current thread's [`replica`], read once per acquisition.)
    #[inline]
    pub(super) fn resolve_on(
        &self,
        snap: &Snapshot,
        ticket: u64,
        model: &str,
        now: EpochMs,
        replica: usize,
    ) -> Resolved {
        if snap.bans_until <= now && now < snap.fresh_until {
            if let Some(position) = ticket_position(ticket, self.policy.calls_per_rotation, snap.live.len()) {
                return Resolved::Ready {
                    pick: snap.pick(snap.live[position], replica),
                    ahead: None,
                };
            }
        }
        self.resolve_slowly(snap, ticket, model, now, replica)
    }

    #[inline(never)]
    fn resolve_slowly(&self, snap: &Snapshot, ticket: u64, model: &str, now: EpochMs, replica: usize) -> Resolved {
        let index = if now >= snap.bans_until {
            // No ban is active: the usable set is the enabled set, precomputed.
            match ticket_position(ticket, self.policy.calls_per_rotation, snap.live.len()) {
                Some(position) => snap.live[position],
                None => return Resolved::Exhausted,
            }
        } else {
            match pick_by_ticket(&self.policy, &snap.accounts, ticket, model, now) {
                Some(i) => i,
                None => return Resolved::Exhausted,
            }
        };
        let account = &snap.accounts[index];
        let version = snap.versions[index];
        let due = if now < snap.fresh_until {
            RefreshDue::No
        } else {
            self.policy.refresh_due(account, now)
        };
        let ahead = match due {
            RefreshDue::Now => return Resolved::Refresh { index, version },
            RefreshDue::Ahead => Some(version),
            RefreshDue::No => None,
        };
        Resolved::Ready {
            pick: snap.pick(index, replica),
            ahead,
        }
    }

    /// Credential `index` on the current snapshot, whatever its token's age, unless it is
    /// disabled: for a request whose wait for a refresh of `index` saw a new token land, and
    /// serves it even if it is already due (a lifetime shorter than the refresh took, or zero),
    /// rather than waiting for refresh after refresh (see [`crate::model::refresh_window`]).
    pub fn pick_refreshed(&self, index: usize) -> Option<Pick> {
        let snap = self.snapshot.load();
        (!snap.accounts[index].disabled).then(|| snap.pick(index, replica()))
    }

    pub fn flight(&self, index: usize) -> &SingleFlight {
        &self.slots[index].flight
    }

    /// What a refresh of credential `index` needs: its refresh token and id.
    pub fn refresh_source(&self, index: usize) -> (Secret, AccountId) {
        let snap = self.snapshot.load();
        let a = &snap.accounts[index];
        (a.refresh_token.clone(), a.id.clone())
    }

    /// Publishes a refresh's result (a new token, or disabled) as the credential's next version,
    /// which it returns. Only a flight's leader calls this.
    pub fn publish_refresh(&self, index: usize, change: &Change) -> u64 {
        self.snapshot
            .rcu(|cur| cur.with_change(index, change, true, &self.policy))
            .versions[index]
    }

    /// Counts a success on credential `index` without its time (one relaxed `fetch_add` on the
    /// credential's own lines).
    #[inline]
    pub fn count_success(&self, index: usize) {
        self.slots[index].calls[replica()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records an outcome's change. A change that can alter selection (a ban, a disable) replaces
    /// the snapshot; plain bookkeeping (a success, a 5xx) only counts the call, and a success's
    /// time, on the credential's padded counters. Error codes are not kept in memory, as in every
    /// strategy: they are file bookkeeping.
    ///
    /// Returns whether the change disabled a credential that was enabled: requests in flight on a
    /// dead credential all report it, and the disable is counted once. (`rcu` may run its closure
    /// more than once; the last run is the one published, so its answer is the one kept.)
    pub fn complete(&self, index: usize, change: &Change) -> bool {
        if change.affects_selection() {
            let mut newly_disabled = false;
            self.snapshot.rcu(|cur| {
                newly_disabled = change.disables() && !cur.accounts[index].disabled;
                cur.with_change(index, change, false, &self.policy)
            });
            return newly_disabled;
        }
        let slot = &self.slots[index];
        if change.counts_a_call() {
            slot.calls[replica()].fetch_add(1, Ordering::Relaxed);
        }
        if let Change::Success { at } = change {
            slot.last_success.fetch_max(*at, Ordering::Relaxed);
        }
        false
    }

    /// An operator's switch: a new snapshot with credential `index` disabled or enabled; returns
    /// whether its state changed. (As for every disable here, an acquisition that resolved on
    /// the old snapshot may still use the credential once.)
    pub fn switch(&self, index: usize, change: &Change) -> bool {
        let mut changed = false;
        self.snapshot.rcu(|cur| {
            // Not a refresh: the credential's version stays.
            let next = cur.with_change(index, change, false, &self.policy);
            changed = next.accounts[index].disabled != cur.accounts[index].disabled;
            next
        });
        changed
    }

    /// The current snapshot (as published; fast-path successes are not in it).
    pub fn snapshot(&self) -> crate::sync::Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The accounts with the calls counted on the padded counters added back.
    pub fn accounts(&self) -> Vec<Account> {
        let snap = self.snapshot.load_full();
        snap.accounts
            .iter()
            .zip(self.slots.iter())
            .map(|(a, slot)| {
                let mut a = a.clone();
                a.total_calls += slot.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
                let last = slot.last_success.load(Ordering::Relaxed);
                if last != EpochMs::MIN {
                    a.last_success = Some(to_plain(last));
                }
                a
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::single_flight::{FlightResult, Join};
    use super::*;
    use crate::model::{Outcome, TokenGrant};

    const MODEL: &str = "gemini-3-pro";

    fn core(n: usize, k: u64, lifetime_s: i64) -> TicketCore {
        let policy = Policy {
            calls_per_rotation: k,
            ..Policy::default()
        };
        TicketCore::new(policy, (0..n).map(|i| Account::synthetic(i, 0, lifetime_s)).collect())
    }

    fn ready(c: &TicketCore, now: EpochMs) -> usize {
        match c.resolve(c.take_ticket(), MODEL, now) {
            Resolved::Ready { pick, .. } => pick.index,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn tickets_rotate_every_k_and_skip_disabled_accounts() {
        let c = core(3, 2, 3600);
        let picks: Vec<usize> = (0..6).map(|_| ready(&c, 0)).collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2]);
        c.complete(1, &Change::Disabled);
        assert!((0..8).all(|_| ready(&c, 0) != 1));
    }

    #[test]
    fn banned_accounts_are_skipped_until_the_ban_ends() {
        let c = core(2, 1, 36_000);
        let ban = c.policy.outcome_change(
            MODEL,
            0,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        );
        c.complete(0, &ban);
        assert!((0..4).all(|_| ready(&c, 0) == 1));
        let after = c.policy.default_ban_ms;
        let picks: Vec<usize> = (0..4).map(|_| ready(&c, after)).collect();
        assert!(picks.contains(&0) && picks.contains(&1), "{picks:?}");
    }

    #[test]
    fn refresh_ahead_window_and_margin() {
        let c = core(1, 100, 3600); // expires at 3_600_000; ahead from 3_000_000; margin from 3_300_000
        assert!(matches!(
            c.resolve(0, MODEL, 2_999_999),
            Resolved::Ready { ahead: None, .. }
        ));
        assert!(matches!(
            c.resolve(0, MODEL, 3_000_000),
            Resolved::Ready { ahead: Some(0), .. }
        ));
        assert_eq!(
            c.resolve(0, MODEL, 3_300_000),
            Resolved::Refresh { index: 0, version: 0 }
        );
    }

    #[test]
    fn single_flight_leads_once_and_delivers_the_result() {
        let c = core(1, 100, 0);
        let f = c.flight(0);
        assert_eq!(f.begin(0), Join::Lead);
        assert_eq!(f.begin(0), Join::Follow);
        assert!(!f.begin_ahead(0));
        let grant = TokenGrant {
            access_token: Secret::new("new"),
            expires_in: 3600,
        };
        let v = c.publish_refresh(0, &Change::Refreshed { grant, at: 0 });
        assert_eq!(v, 1);
        f.land(v, FlightResult::Refreshed);
        // Followers of version 0 see it landed; a request already on version 1 does not lead a
        // second refresh while the leader is still persisting.
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Refreshed));
        assert_eq!(f.begin(1), Join::Follow);
        f.clear();
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Refreshed));
        assert_eq!(f.begin(1), Join::Lead, "the cleared slot lets a later refresh start");
        assert!(matches!(c.resolve(0, MODEL, 0), Resolved::Ready { ahead: None, .. }));
    }

    #[test]
    fn a_failed_flight_disables_and_waiters_move_on() {
        let c = core(2, 100, 0);
        assert_eq!(c.resolve(0, MODEL, 0), Resolved::Refresh { index: 0, version: 0 });
        let f = c.flight(0);
        assert_eq!(f.begin(0), Join::Lead);
        let v = c.publish_refresh(0, &Change::Disabled);
        f.land(v, FlightResult::Failed);
        assert_eq!(f.begin(0), Join::Landed(FlightResult::Failed));
        // The same ticket now resolves to the next credential.
        assert_eq!(c.resolve(0, MODEL, 0), Resolved::Refresh { index: 1, version: 0 });
    }

    #[test]
    fn plain_bookkeeping_is_counted_without_a_snapshot_swap() {
        let c = core(1, 100, 3600);
        let before = c.snapshot();
        c.complete(0, &Change::Success { at: 2_000 });
        c.complete(
            0,
            &Change::Error {
                code: 500,
                ban: None,
                disable: false,
            },
        );
        c.complete(0, &Change::Success { at: 1_000 });
        c.count_success(0);
        assert!(
            crate::sync::Arc::ptr_eq(&before, &c.snapshot()),
            "plain bookkeeping swapped the snapshot"
        );
        let a = &c.accounts()[0];
        assert_eq!(a.total_calls, 4);
        assert_eq!(a.last_success.as_deref(), Some(to_plain(2_000).as_str()));
        // A ban does replace it, and counts its call there.
        c.complete(
            0,
            &Change::Error {
                code: 429,
                ban: Some(("gemini_3_series".into(), 10)),
                disable: false,
            },
        );
        assert!(!crate::sync::Arc::ptr_eq(&before, &c.snapshot()));
        assert_eq!(c.accounts()[0].total_calls, 5);
    }

    proptest::proptest! {
        /// The snapshot's `fresh_until` shortcut never changes what the policy decides: a ticket
        /// resolves to `Refresh` exactly when the token is inside the margin, and carries `ahead`
        /// exactly when it is inside the refresh-ahead window.
        #[test]
        fn the_expiry_shortcut_agrees_with_the_policy(
            lifetimes in proptest::collection::vec(proptest::option::of(0i64..7_200), 1..5),
            now in 0i64..8_000_000,
            ticket in 0u64..1_000,
        ) {
            let accounts: Vec<Account> = lifetimes
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut a = Account::synthetic(i, 0, l.unwrap_or(0));
                    a.expires_in = *l;
                    a
                })
                .collect();
            let policy = Policy { calls_per_rotation: 1, ..Policy::default() };
            let c = TicketCore::new(policy.clone(), accounts.clone());
            let (index, got) = match c.resolve(ticket, MODEL, now) {
                Resolved::Ready { pick, ahead: None } => (pick.index, RefreshDue::No),
                Resolved::Ready { pick, ahead: Some(_) } => (pick.index, RefreshDue::Ahead),
                Resolved::Refresh { index, .. } => (index, RefreshDue::Now),
                Resolved::Exhausted => panic!("a healthy pool is never exhausted"),
            };
            proptest::prop_assert_eq!(got, policy.refresh_due(&accounts[index], now));
        }
    }

    #[test]
    fn threads_lease_their_own_copies_and_their_counts_add_up() {
        let c = std::sync::Arc::new(core(1, 100, 3600));
        let threads = REPLICAS + 1;
        let picks: Vec<Pick> = (0..threads)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let pick = match c.resolve(c.take_ticket(), MODEL, 0) {
                        Resolved::Ready { pick, .. } => pick,
                        other => panic!("expected Ready, got {other:?}"),
                    };
                    c.count_success(pick.index);
                    pick
                })
                .join()
                .unwrap()
            })
            .collect();
        let a = &c.snapshot().accounts[0];
        assert!(picks.iter().all(|p| p.id == a.id && p.token == a.access_token));
        // Threads are numbered as they first ask, so successive threads use different copies.
        let copies: std::collections::HashSet<usize> = picks
            .iter()
            .map(|p| std::sync::Arc::as_ptr(&p.id.0) as *const u8 as usize)
            .collect();
        assert!(copies.len() >= 2, "every thread cloned the same Arc");
        assert!(copies.len() <= REPLICAS);
        assert_eq!(c.accounts()[0].total_calls, threads as u64);
    }

    #[test]
    fn counters_sit_on_their_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Padded<Slot>>(), 128);
        assert!(std::mem::size_of::<Padded<Slot>>().is_multiple_of(128));
    }
}
