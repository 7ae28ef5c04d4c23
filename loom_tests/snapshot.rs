//! A token and its expiry are never observed torn, and no publication is lost.
//!
//! A refresh replaces a credential's token and its expiry fields together. A reader that saw the
//! new expiry with the old token would hand out a token the policy believes valid when it is
//! not (or the reverse). In every core the selection checks the expiry and copies the token
//! from one consistent view: `lock_free` from one immutable snapshot loaded from the
//! [`SnapshotCell`](credpool::sync::SnapshotCell), the others under their lock. The models refresh
//! credential 0 (its old token inside the margin) while a reader selects at that instant:
//! a credential handed out as ready must carry the refreshed token.
//!
//! For `lock_free`, a ban on credential 1 is published at the same time as the refresh: both
//! are read-copy-update swaps of the whole snapshot, so the model also proves that concurrent
//! publications do not lose each other, and that a snapshot's token, expiry and version always
//! belong together.

use crate::support::{accounts, fresh_token, policy, refreshed, IN_MARGIN, MODEL, NOW};
use credpool::model::{Outcome, Policy};
use credpool::strategy::lock_free::{Resolved, Snapshot, TicketCore};
use credpool::strategy::queue_pool::{QueueCore, TokenState};
use credpool::strategy::rwlock::{RwLockCore, WritePick};
use credpool::strategy::sharded::{ShardPick, ShardedCore};
use credpool::strategy::Pick;
use loom::sync::Arc;
use loom::thread;

/// Every account of `snap` is either entirely before its refresh (version 0: the original token
/// and issue time) or entirely after it (version 1: the refreshed token, issued at `IN_MARGIN`).
fn assert_consistent(snap: &Snapshot) {
    let original = accounts(snap.accounts.len());
    for (i, a) in snap.accounts.iter().enumerate() {
        match snap.versions[i] {
            0 => assert!(
                a.access_token == original[i].access_token && a.timestamp == original[i].timestamp,
                "version 0 of credential {i} is torn"
            ),
            1 => assert!(
                a.access_token == fresh_token(i) && a.timestamp == Some(IN_MARGIN),
                "version 1 of credential {i} is torn"
            ),
            v => panic!("credential {i} at version {v}: one refresh was published"),
        }
    }
}

/// A pick handed out as ready at `IN_MARGIN`, where credential 0's old token is expiring.
fn assert_ready_is_fresh(pick: &Pick) {
    if pick.index == 0 {
        assert_eq!(
            pick.token,
            fresh_token(0),
            "an expiring token was handed out as ready (torn read)"
        );
    }
}

#[test]
fn lock_free_snapshots_are_never_torn_and_publications_are_not_lost() {
    loom::model(|| {
        let core = Arc::new(TicketCore::new(policy(100), accounts(2)));
        let ban = Policy::default().outcome_change(
            MODEL,
            NOW,
            &Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        );
        let refresher = {
            let core = core.clone();
            thread::spawn(move || core.publish_refresh(0, &refreshed(0, IN_MARGIN)))
        };
        let banner = {
            let (core, ban) = (core.clone(), ban.clone());
            thread::spawn(move || core.complete(1, &ban))
        };
        // The reader: resolve ticket 0 (credential 0 for this model while it is usable) and look
        // at a whole snapshot.
        match core.resolve(0, MODEL, IN_MARGIN) {
            Resolved::Ready { pick, .. } => assert_ready_is_fresh(&pick),
            Resolved::Refresh { index, version } => assert_eq!((index, version), (0, 0)),
            Resolved::Exhausted => panic!("credential 0 is never disabled here"),
        }
        assert_consistent(&core.snapshot());
        assert_eq!(refresher.join().unwrap(), 1);
        banner.join().unwrap();
        let last = core.snapshot();
        assert_consistent(&last);
        assert_eq!(last.versions, vec![1, 0], "the refresh was lost");
        assert!(
            last.accounts[1].is_banned("gemini_3_series", NOW),
            "the ban was lost (overwritten by the refresh's swap)"
        );
    });
}

#[test]
fn rwlock_selection_never_sees_a_torn_token() {
    loom::model(|| {
        let core = Arc::new(RwLockCore::new(policy(100), accounts(1)));
        let refresher = {
            let core = core.clone();
            thread::spawn(move || core.apply(0, &refreshed(0, IN_MARGIN)))
        };
        if let Some(pick) = core.read_select(MODEL, IN_MARGIN) {
            assert_ready_is_fresh(&pick);
        }
        match core.write_select(MODEL, IN_MARGIN) {
            WritePick::Ready(pick) => assert_ready_is_fresh(&pick),
            WritePick::NeedsRefresh { index, .. } => assert_eq!(index, 0),
            WritePick::Exhausted => panic!("nothing is disabled"),
        }
        refresher.join().unwrap();
    });
}

#[test]
fn queue_pool_holder_never_sees_a_torn_token() {
    loom::model(|| {
        let core = Arc::new(QueueCore::new(policy(100), accounts(1), 2));
        let refresher = {
            let core = core.clone();
            thread::spawn(move || core.apply(0, &refreshed(0, IN_MARGIN), IN_MARGIN))
        };
        match core.token_state(0, IN_MARGIN) {
            TokenState::Ready(pick) => assert_ready_is_fresh(&pick),
            TokenState::NeedsRefresh(_) => {}
            TokenState::Disabled => panic!("nothing is disabled"),
        }
        refresher.join().unwrap();
    });
}

#[test]
fn sharded_selection_never_sees_a_torn_token() {
    loom::model(|| {
        let core = Arc::new(ShardedCore::new(policy(100), accounts(1), 1));
        let refresher = {
            let core = core.clone();
            thread::spawn(move || core.apply(0, &refreshed(0, IN_MARGIN)))
        };
        match core.select(0, MODEL, IN_MARGIN) {
            ShardPick::Ready(pick) => assert_ready_is_fresh(&pick),
            ShardPick::NeedsRefresh { index, .. } => assert_eq!(index, 0),
            ShardPick::Exhausted => panic!("nothing is disabled"),
        }
        refresher.join().unwrap();
    });
}
