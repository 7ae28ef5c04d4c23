//! `lock_free`'s immutable view of the pool: the accounts, their refresh versions, and what the
//! acquire path precomputes from them (the enabled set, when the last ban ends, until when no
//! token needs an expiry check, each replica's copies of ids and tokens). Replaced as a whole by
//! [`TicketCore`](super::TicketCore), never changed in place.

use super::replicas::REPLICAS;
use super::Pick;
use crate::model::{Account, AccountId, Change, EpochMs, Policy};
use crate::secret::Secret;

/// One replica's copy of a credential's id and access token.
type LeaseCopy = (AccountId, Secret);

/// An immutable view of the pool. Replaced as a whole, never changed in place.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub accounts: Vec<Account>,
    /// Refreshes published per credential. A request that saw version `v` with a token inside the
    /// margin waits for the flight that publishes `v + 1`.
    pub versions: Vec<u64>,
    /// Enabled accounts in pool order: the usable set for every model once no ban is active.
    pub(super) live: Vec<usize>,
    /// No ban outlasts this instant (`EpochMs::MIN` when there is none): from then on `live` is
    /// the usable set and selection needs no scan.
    pub(super) bans_until: EpochMs,
    /// Until this instant no enabled account's token is inside its refresh-ahead window (nor,
    /// then, the margin), so an acquisition needs no expiry check (`EpochMs::MIN` when a token
    /// has no expiry: then every acquisition checks).
    pub(super) fresh_until: EpochMs,
    /// `copies[r * n + i]` (`n` accounts): replica `r`'s own copy of credential `i`'s id and
    /// access token (equal strings, separate allocations), which leases taken on replica `r`'s
    /// threads clone. Built replica by replica, so one credential's copies are not neighbours in
    /// memory. (One flat slice: one bounds check and one indirection on the hot path.)
    pub(super) copies: Box<[LeaseCopy]>,
}

impl Snapshot {
    /// `policy` places each token's refresh points ([`Policy::refresh_points`]).
    pub(super) fn new(accounts: Vec<Account>, versions: Vec<u64>, policy: &Policy) -> Snapshot {
        let live = accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.disabled)
            .map(|(i, _)| i)
            .collect();
        let bans_until = accounts
            .iter()
            .filter(|a| !a.disabled)
            .flat_map(|a| a.bans.iter().filter_map(|(_, until)| *until))
            .max()
            .unwrap_or(EpochMs::MIN);
        // The same points as `Policy::refresh_due`, so `now < fresh_until` implies it is `No`
        // for every enabled account.
        let fresh_until = accounts
            .iter()
            .filter(|a| !a.disabled)
            .map(|a| {
                let lifetime_ms = a.expires_in.map(|s| s.saturating_mul(1000));
                policy
                    .refresh_points(a.timestamp, lifetime_ms)
                    .map_or(EpochMs::MIN, |p| p.ahead_at)
            })
            .min()
            .unwrap_or(EpochMs::MAX);
        let copies = (0..REPLICAS)
            .flat_map(|_| {
                accounts
                    .iter()
                    .map(|a| (AccountId::from(a.id.as_str()), Secret::new(a.access_token.expose())))
            })
            .collect();
        Snapshot {
            accounts,
            versions,
            live,
            bans_until,
            fresh_until,
            copies,
        }
    }

    /// Credential `index`, leased on `replica`'s copies of its id and token.
    #[inline]
    pub(super) fn pick(&self, index: usize, replica: usize) -> Pick {
        let (id, token) = &self.copies[replica * self.accounts.len() + index];
        Pick {
            index,
            id: id.clone(),
            token: token.clone(),
        }
    }

    /// This snapshot with `change` applied to account `index` (and its version bumped for a
    /// published refresh).
    pub(super) fn with_change(&self, index: usize, change: &Change, refresh: bool, policy: &Policy) -> Snapshot {
        let mut accounts = self.accounts.clone();
        accounts[index].apply(change);
        let mut versions = self.versions.clone();
        if refresh {
            versions[index] += 1;
        }
        Snapshot::new(accounts, versions, policy)
    }
}
