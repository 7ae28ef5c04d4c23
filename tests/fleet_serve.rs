//! The fleet in real time: N `credpool serve --strategy fleet` processes over one private
//! `redis-server` and one accounts file (tests/common/fleet.rs), with the faults of issue 16:
//! instances killed or paused while holding a refresh lease, Redis restarted with nothing on
//! disk, a fault proxy between one instance and Redis, instances started and stopped under load.
//! Each test is bounded and leaves no process behind (the harness kills them on drop).

#[path = "common/fleet.rs"]
mod fleet_common;
#[path = "common/serve.rs"]
mod serve_common;

use credpool::fleet::fault_proxy::{Fault, FaultProxy};
use fleet_common::{Fleet, FleetSetup};
use serve_common::audit;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls spread round-robin over the running instances by `clients` concurrent clients, each
/// doing `per_client` lease+complete pairs. Returns (answered, acknowledged per account).
async fn load(fleet: &Arc<Fleet>, clients: usize, per_client: usize) -> (u64, HashMap<String, u64>) {
    let running = fleet.running();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let fleet = fleet.clone();
            let running = running.clone();
            tokio::spawn(async move {
                let mut acked = HashMap::new();
                for k in 0..per_client {
                    let i = running[(c + k) % running.len()];
                    if let Some(account) = fleet.call(i).await {
                        *acked.entry(account).or_insert(0u64) += 1;
                    }
                }
                acked
            })
        })
        .collect();
    let mut total = HashMap::new();
    for t in tasks {
        for (a, n) in t.await.unwrap() {
            *total.entry(a).or_insert(0) += n;
        }
    }
    (total.values().sum(), total)
}

fn file_calls(fleet: &Fleet) -> u64 {
    audit(&fleet.accounts).0.values().map(|&v| v as u64).sum()
}

fn refreshes_per_expiry(fleet: &Fleet, accounts: usize) -> f64 {
    fleet.tokens.total() as f64 / accounts as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_refresh_each_expired_account_once() {
    let setup = FleetSetup {
        accounts: 6,
        expired: true,
        token_delay: Duration::from_millis(200),
        ..FleetSetup::default()
    };
    let fleet = Arc::new(Fleet::start(&setup, 3).await);
    let (answered, _) = load(&fleet, 12, 6).await;
    assert_eq!(answered, 72, "every call answered\n{}", fleet.logs());
    let per = refreshes_per_expiry(&fleet, setup.accounts);
    println!("refresh calls per account expiry across 3 instances: {per:.2}");
    assert_eq!(per, 1.0, "refreshes: {:?}", fleet.tokens.refreshes.lock().unwrap());
    for n in fleet.tokens.refreshes.lock().unwrap().values() {
        assert_eq!(*n, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_exactly_k_calls_per_turn_fleet_wide() {
    let setup = FleetSetup {
        accounts: 4,
        calls_per_rotation: 3,
        ..FleetSetup::default()
    };
    let fleet = Fleet::start(&setup, 3).await;
    // One call at a time, instance after instance: the order of the leases is the order of the
    // tickets, so the sequence of accounts is the rotation itself.
    let mut seq = Vec::new();
    for k in 0..48 {
        seq.push(
            fleet
                .call(k % 3)
                .await
                .unwrap_or_else(|| panic!("call {k} unanswered\n{}", fleet.logs())),
        );
    }
    let start = seq.iter().position(|a| *a != seq[0]).unwrap_or(0) % 3;
    // The first ticket may fall anywhere in a turn (the pool was seeded by the first call):
    // from the first whole turn on, each turn is one account, K calls, accounts in cycle.
    let aligned: Vec<&[String]> = seq[start..].chunks_exact(3).collect();
    for t in &aligned {
        assert!(t.iter().all(|a| *a == t[0]), "a turn of mixed accounts: {seq:?}");
    }
    for w in aligned.windows(5) {
        assert_eq!(w[0][0], w[4][0], "turns cycle through the 4 accounts: {seq:?}");
    }
    let mut per: HashMap<&str, u64> = HashMap::new();
    for a in &seq {
        *per.entry(a.as_str()).or_default() += 1;
    }
    let (max, min) = (per.values().max().unwrap(), per.values().min().unwrap());
    println!(
        "rotation over 3 instances: {} turns of exactly 3, max/min calls per account {max}/{min}",
        aligned.len()
    );
    assert!(*max as f64 / *min as f64 <= 1.5, "{per:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_is_outwaited_by_the_ttl() {
    let setup = FleetSetup {
        accounts: 20,
        expired: true,
        calls_per_rotation: 1,
        token_delay: Duration::from_millis(800),
        refresh_timeout: Duration::from_secs(1),
        refresh_lease_ttl: Duration::from_millis(1500),
        ..FleetSetup::default()
    };
    let mut fleet = Fleet::start(&setup, 3).await;
    // Instance 0 takes the leases of (about) every account and is killed mid-refresh.
    let base = fleet.base(0).to_string();
    let client = fleet.client.clone();
    let holders: Vec<_> = (0..20)
        .map(|_| {
            let (c, b) = (client.clone(), base.clone());
            // Raw: these requests die with the instance (no answer to unwrap).
            tokio::spawn(async move {
                let body = serde_json::json!({"model": serve_common::MODEL, "user": "u"});
                c.post(format!("{b}/v1/lease")).json(&body).send().await.is_ok()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.kill(0);
    for h in holders {
        let _ = h.await;
    }
    let started = Instant::now();
    let fleet = Arc::new(fleet);
    let (answered, _) = load(&fleet, 8, 10).await;
    assert_eq!(answered, 80, "every call to the survivors answered\n{}", fleet.logs());
    let per = refreshes_per_expiry(&fleet, setup.accounts);
    println!(
        "SIGKILL of a lease holder: survivors answered 80/80 in {:?}, refresh calls per expiry {per:.2}",
        started.elapsed()
    );
    assert!(per <= 1.05, "{:?}", fleet.tokens.refreshes.lock().unwrap());
    assert_eq!(
        fleet.tokens.refreshes.lock().unwrap().len(),
        20,
        "every account refreshed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_lease_holder_is_fenced_out() {
    let setup = FleetSetup {
        accounts: 1,
        expired: true,
        token_delay: Duration::from_millis(600),
        refresh_timeout: Duration::from_secs(1),
        refresh_lease_ttl: Duration::from_millis(1500),
        ..FleetSetup::default()
    };
    let fleet = Fleet::start(&setup, 2).await;
    let (c, b) = (fleet.client.clone(), fleet.base(0).to_string());
    let paused = tokio::spawn(async move { serve_common::lease(&c, &b, None, serve_common::MODEL, "u").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    fleet.signal(0, libc::SIGSTOP);
    // Instance 1 waits out the lease, refreshes and commits.
    let account = fleet.call(1).await;
    assert!(account.is_some(), "{}", fleet.logs());
    tokio::time::sleep(Duration::from_millis(1700)).await;
    fleet.signal(0, libc::SIGCONT);
    let (status, _, _) = paused.await.unwrap();
    assert_eq!(status, 200, "the paused holder answers after SIGCONT\n{}", fleet.logs());
    let stale = fleet.metric(0, "credpool_fleet_stale_commits_total").await;
    println!("SIGSTOP/SIGCONT of a lease holder: its stale commits {stale}");
    assert!(stale >= 1.0, "the late result was fenced out\n{}", fleet.logs());
    // The account is still served, by both, and not disabled by the late holder.
    assert!(fleet.call(0).await.is_some() && fleet.call(1).await.is_some());
    let listing = serve_common::get_json(&fleet.client, &format!("{}/v1/accounts", fleet.base(1))).await;
    assert_eq!(listing["accounts"][0]["disabled"], false, "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_account_and_the_load_keeps_answers() {
    let setup = FleetSetup::default();
    let mut fleet = Fleet::start(&setup, 2).await;
    let (answered_before, _) = load_ref(&fleet, 4, 5).await;
    // A 429 bans one account's series before the restart: the ban is in the file, and must be
    // relearned from it when the pool is seeded again.
    let (status, body, _) = serve_common::lease(&fleet.client, fleet.base(0), None, serve_common::MODEL, "u").await;
    assert_eq!(status, 200);
    let banned = body["account"].as_str().unwrap().to_string();
    let (status, _) = serve_common::complete(
        &fleet.client,
        fleet.base(0),
        None,
        body["lease"].as_str().unwrap(),
        serde_json::json!({"status": 429, "retry_delay": "600s"}),
    )
    .await;
    assert_eq!(status, 204);
    fleet.redis.stop();
    let (during, _) = load_ref(&fleet, 4, 5).await;
    fleet.redis.restart();
    let restarted = Instant::now();
    let mut probing = 0;
    for i in 0..2 {
        while fleet.metric(i, "credpool_fleet_degraded").await != 0.0 {
            assert!(
                restarted.elapsed() < Duration::from_secs(8),
                "instance {i} never left degraded mode\n{}",
                fleet.logs()
            );
            probing += u64::from(fleet.call(i).await.is_some());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let back = restarted.elapsed();
    let (after, per_account) = load_ref(&fleet, 4, 10).await;
    println!(
        "Redis restarted: answered {answered_before}/20 before, {during}/20 down, both instances back {back:?} \
         after the restart, {after}/40 after"
    );
    assert_eq!((answered_before, during, after), (20, 20, 40), "{}", fleet.logs());
    assert!(
        !per_account.contains_key(&banned),
        "the ban on {banned} was relearned: {per_account:?}"
    );
    assert_eq!(
        per_account.len(),
        setup.accounts - 1,
        "every other account served after the restart"
    );
    for i in 0..2 {
        assert!(fleet.metric(i, "credpool_fleet_degraded_entries_total").await >= 1.0);
        assert_eq!(
            fleet.metric(i, "credpool_fleet_degraded").await,
            0.0,
            "back from degraded\n{}",
            fleet.logs()
        );
    }
    let total = answered_before + 1 + during + probing + after;
    for i in 0..2 {
        assert_eq!(
            fleet.instances[i].take().unwrap().terminate(Duration::from_secs(10)),
            Some(0)
        );
    }
    assert_eq!(file_calls(&fleet), total, "every acknowledged outcome is in the file");
}

async fn load_ref(fleet: &Fleet, clients: usize, per_client: usize) -> (u64, HashMap<String, u64>) {
    let running = fleet.running();
    let mut all = HashMap::new();
    let results = futures_util::future::join_all((0..clients).map(|c| {
        let running = running.clone();
        async move {
            let mut acked = Vec::new();
            for k in 0..per_client {
                if let Some(a) = fleet.call(running[(c + k) % running.len()]).await {
                    acked.push(a);
                }
            }
            acked
        }
    }))
    .await;
    for a in results.into_iter().flatten() {
        *all.entry(a).or_insert(0) += 1;
    }
    (all.values().sum(), all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_proxy_to_redis_degrades_one_instance_and_it_comes_back() {
    let setup = FleetSetup::default();
    let (mut fleet, setup) = Fleet::new(&setup).await;
    let url = fleet.redis.url();
    fleet.start_instance(&setup, &url);
    let proxy = FaultProxy::start(([127, 0, 0, 1], fleet.redis.port()).into())
        .await
        .unwrap();
    fleet.start_instance(&setup, &proxy.url());
    let total = std::cell::Cell::new(0u64);
    let phase = |name: &str, n: u64| {
        println!("fault proxy {name}: {n}/10 answered");
        total.set(total.get() + n);
        n
    };
    assert_eq!(phase("pass", load_ref(&fleet, 2, 5).await.0), 10);
    proxy.set(Fault::Delay(Duration::from_millis(50)));
    assert_eq!(phase("delay 50ms", load_ref(&fleet, 2, 5).await.0), 10);
    assert_eq!(
        fleet.metric(1, "credpool_fleet_degraded").await,
        0.0,
        "50 ms is within the timeout"
    );
    for fault in [Fault::Blackhole, Fault::Drop] {
        proxy.set(fault);
        assert_eq!(phase(&format!("{fault:?}"), load_ref(&fleet, 2, 5).await.0), 10);
        assert_eq!(
            fleet.metric(1, "credpool_fleet_degraded").await,
            1.0,
            "{fault:?}: degraded"
        );
        proxy.set(Fault::Pass);
        let healed = Instant::now();
        while fleet.metric(1, "credpool_fleet_degraded").await != 0.0 {
            assert!(
                healed.elapsed() < Duration::from_secs(8),
                "{fault:?} healed: instance 1 never left degraded mode (connections made: {})\n{}",
                proxy.connections(),
                fleet.logs()
            );
            total.set(total.get() + u64::from(fleet.call(1).await.is_some()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "after {fault:?}: left degraded mode {:?} after healing",
            healed.elapsed()
        );
    }
    assert!(fleet.metric(1, "credpool_fleet_shared_errors_total").await >= 1.0);
    assert_eq!(
        fleet.metric(0, "credpool_fleet_degraded_entries_total").await,
        0.0,
        "instance 0 untouched"
    );
    for i in 0..2 {
        assert_eq!(
            fleet.instances[i].take().unwrap().terminate(Duration::from_secs(10)),
            Some(0)
        );
    }
    assert_eq!(
        file_calls(&fleet),
        total.get(),
        "no acknowledged outcome missing from the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_and_stopped_during_the_load() {
    let setup = FleetSetup {
        accounts: 4,
        calls_per_rotation: 1,
        ..FleetSetup::default()
    };
    let fleet = Arc::new(tokio::sync::RwLock::new(Fleet::start(&setup, 2).await));
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (fleet, stop, acked, failed) = (fleet.clone(), stop.clone(), acked.clone(), failed.clone());
            tokio::spawn(async move {
                let mut k = c;
                while !stop.load(Ordering::Relaxed) {
                    let f = fleet.read().await;
                    let running = f.running();
                    let i = running[k % running.len()];
                    k += 1;
                    match f.call(i).await {
                        Some(_) => acked.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let url = fleet.read().await.redis.url();
        fleet.write().await.start_instance(&setup, &url);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut f = fleet.write().await;
        let first = f.running()[0];
        let gone = f.instances[first].take().unwrap();
        assert_eq!(gone.terminate(Duration::from_secs(10)), Some(0));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let mut f = fleet.write().await;
    for i in f.running() {
        assert_eq!(
            f.instances[i].take().unwrap().terminate(Duration::from_secs(10)),
            Some(0)
        );
    }
    let (a, e) = (acked.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("instances started and stopped under load: {a} calls acknowledged, {e} refused");
    assert_eq!(e, 0, "{}", f.logs());
    assert_eq!(file_calls(&f), a, "every acknowledged outcome is in the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_disable_on_one_instance_is_seen_by_the_others() {
    let setup = FleetSetup {
        accounts: 2,
        calls_per_rotation: 1,
        ..FleetSetup::default()
    };
    let fleet = Fleet::start(&setup, 2).await;
    let admin = |i: usize, verb: &str| format!("{}/v1/accounts/acct0@example.com/{verb}", fleet.base(i));
    let status = fleet.client.post(admin(0, "disable")).send().await.unwrap().status();
    assert_eq!(status, 200);
    for _ in 0..6 {
        let served = fleet.call(1).await.expect("answered");
        assert_ne!(
            served, "acct0@example.com",
            "instance 1 served an account disabled on instance 0"
        );
    }
    let status = fleet.client.post(admin(0, "enable")).send().await.unwrap().status();
    assert_eq!(status, 200);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(fleet.call(1).await.expect("answered"));
    }
    assert!(seen.contains("acct0@example.com"), "enabled again fleet-wide: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_acquisitions_racing_to_seed_an_empty_pool_are_all_answered() {
    // Two fresh instances over an empty Redis, eight first calls at once: every instance finds
    // the pool unseeded, one seeding wins, and every call is answered.
    let fleet = Fleet::start(&FleetSetup::default(), 2).await;
    let (answered, _) = load_ref(&fleet, 8, 1).await;
    assert_eq!(answered, 8, "{}", fleet.logs());
}
