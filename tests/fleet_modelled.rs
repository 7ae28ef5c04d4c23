//! N `fleet` instances in one virtual-time simulation over one modelled Redis
//! (`fleet::ModelledPool`, each operation a round trip on the paused clock), beside N `lock_free`
//! instances, each with its own memory, over the same accounts file: the fleet defect the shared
//! state removes (one refresh per instance per expiry) shown on the same inputs.

mod common;

use common::*;
use credpool::fleet::ModelledPool;
use credpool::model::Outcome;
use credpool::strategy::fleet::{Fleet, FleetOptions};
use credpool::strategy::lock_free::LockFree;
use credpool::strategy::{CredentialManager, Request};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: usize = 4;
const INSTANCES: usize = 4;
const PER_INSTANCE: usize = 24;
const K: u64 = 3;

/// Every instance serves `PER_INSTANCE` concurrent requests; the accounts' ids, per account.
async fn burst<M: CredentialManager>(instances: &[Arc<M>]) -> HashMap<String, usize> {
    let tasks: Vec<_> = (0..INSTANCES * PER_INSTANCE)
        .map(|i| {
            let inst = instances[i % INSTANCES].clone();
            tokio::spawn(async move {
                let req = Request::new(i as u64, 0, MODEL);
                let lease = inst.acquire(&req).await.expect("acquire");
                let id = lease.id.to_string();
                inst.complete(lease, &req, Outcome::Success).await.unwrap();
                id
            })
        })
        .collect();
    let mut per_account = HashMap::new();
    for t in tasks {
        *per_account.entry(t.await.unwrap()).or_default() += 1;
    }
    per_account
}

#[tokio::test(start_paused = true)]
async fn fleet_instances_refresh_once_per_expiry_where_separate_instances_refresh_once_each() {
    let tokens = TokenDouble::new(ACCOUNTS, Duration::from_millis(500), &[]);
    let f = Fixture::new((0..ACCOUNTS).map(expired).collect(), policy(K), tokens.clone());
    let redis = Arc::new(ModelledPool::new(f.env.clock, Duration::from_micros(200)));
    let fleet: Vec<Arc<Fleet>> = (0..INSTANCES)
        .map(|i| {
            let options = FleetOptions {
                owner: Some(format!("sim{i}")),
                ..FleetOptions::default()
            };
            Arc::new(Fleet::new(f.env.clone(), redis.clone(), options))
        })
        .collect();
    let per_account = burst(&fleet).await;
    for i in 0..ACCOUNTS {
        assert_eq!(
            tokens.calls(i),
            1,
            "account {i}: one refresh across {INSTANCES} instances"
        );
    }
    // One ticket counter: every account served exactly its share (whole turns of K).
    assert_eq!(per_account.len(), ACCOUNTS);
    assert!(
        per_account.values().all(|c| *c == INSTANCES * PER_INSTANCE / ACCOUNTS),
        "{per_account:?}"
    );

    // The same inputs, four lock_free instances: each refreshes every account itself.
    let tokens = TokenDouble::new(ACCOUNTS, Duration::from_millis(500), &[]);
    let f = Fixture::new((0..ACCOUNTS).map(expired).collect(), policy(K), tokens.clone());
    let separate: Vec<Arc<LockFree>> = (0..INSTANCES).map(|_| Arc::new(LockFree::new(f.env.clone()))).collect();
    burst(&separate).await;
    for i in 0..ACCOUNTS {
        assert_eq!(
            tokens.calls(i),
            INSTANCES as u64,
            "account {i}: one refresh per instance"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_that_waited_on_a_failed_seeding_is_served_from_the_local_copy() {
    use credpool::store::backend::Backend;
    let tokens = TokenDouble::new(ACCOUNTS, Duration::ZERO, &[]);
    let f = Fixture::new((0..ACCOUNTS).map(healthy).collect(), policy(K), tokens);
    // The system of record cannot be read, so the one seeding of the empty pool fails; the
    // requests that waited for it find the pool still empty.
    f.backend.write_in_place("[[accounts]\nnot toml").unwrap();
    // Reading it takes a modelled millisecond, so the other requests wait on the seeding turn.
    let mut env = f.env.clone();
    let read = credpool::costs::Costs {
        file_read: Duration::from_millis(1),
        ..credpool::costs::Costs::default()
    };
    env.store = credpool::store::open(credpool::store::StoreMode::Locked, f.backend.clone(), read);
    let redis = Arc::new(ModelledPool::new(env.clock, Duration::from_micros(200)));
    let fleet = Arc::new(Fleet::new(env, redis, FleetOptions::default()));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.acquire(&Request::new(i, 0, MODEL)).await.map(|l| l.id) })
        })
        .collect();
    for t in tasks {
        let served = t.await.unwrap();
        assert!(served.is_ok(), "{served:?}");
    }
    let figures = fleet.figures();
    assert_eq!(figures.degraded_acquisitions, 4, "{figures:?}");
}
