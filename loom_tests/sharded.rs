//! `sharded`: stealing from other shards never deadlocks and never hands out a disabled
//! credential.
//!
//! [`ShardedCore`] holds one lock per shard and takes at most one at a time: a request whose home
//! shard is dry releases it before trying the next shard in its search order. The model makes
//! requests of two users steal in opposite directions around three shards while their home
//! shards' credentials are disabled, and a third thread reads every account (each shard locked
//! in turn). Loom reports a deadlock if every thread ever blocks on a lock; none may. A request
//! that starts after both disables returned must be served by the one credential left.

use crate::support::{accounts, policy, MODEL, NOW};
use credpool::model::Change;
use credpool::strategy::sharded::{ShardPick, ShardedCore};
use credpool::sync::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn stealing_in_opposite_directions_neither_deadlocks_nor_serves_a_disabled_credential() {
    loom::model(|| {
        // 3 shards of one credential each; user u's home is shard u.
        let core = Arc::new(ShardedCore::new(policy(1), accounts(3), 0));
        let disabled = Arc::new(AtomicBool::new(false));
        let requests: Vec<_> = [0u32, 1]
            .into_iter()
            .map(|user| {
                let (core, disabled) = (core.clone(), disabled.clone());
                thread::spawn(move || {
                    // User 0 searches 0, 1, 2; user 1 searches 1, 2, 0.
                    let after = disabled.load(Ordering::Acquire);
                    match core.select(user, MODEL, NOW) {
                        ShardPick::Ready(p) => {
                            if after {
                                assert_eq!(p.index, 2, "user {user} got disabled credential {}", p.index);
                            }
                        }
                        other => panic!("credential 2 is always usable, user {user} got {other:?}"),
                    }
                })
            })
            .collect();
        let admin = {
            let (core, disabled) = (core.clone(), disabled.clone());
            thread::spawn(move || {
                core.apply(0, &Change::Disabled);
                core.apply(1, &Change::Disabled);
                disabled.store(true, Ordering::Release);
                let all = core.accounts();
                assert!(all[0].disabled && all[1].disabled && !all[2].disabled);
            })
        };
        for h in requests {
            h.join().unwrap();
        }
        admin.join().unwrap();
        for user in 0..3 {
            assert!(matches!(core.select(user, MODEL, NOW), ShardPick::Ready(p) if p.index == 2));
        }
    });
}
