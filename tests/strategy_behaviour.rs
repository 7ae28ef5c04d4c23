//! What sets each strategy apart, checked in virtual time (tokio's paused clock: latencies are
//! exact and deterministic, not measurements of this machine): `rwlock`'s readers overlap,
//! `sharded`'s shards do not wait for each other, `queue_pool` caps concurrency at
//! credentials × permits, and `lock_free` refreshes ahead of expiry without making anyone wait.
//! The properties every strategy shares are in `strategy_contract.rs`.

mod common;

use common::*;
use credpool::costs::Costs;
use credpool::model::Outcome;
use credpool::store::StoreMode;
use credpool::strategy::{AnyStrategy, CredentialManager, Request, StrategyName, StrategyOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The seed's selection path: 30 ms of modelled steps per acquisition.
fn seed_costs() -> Costs {
    Costs {
        check_rotation: Duration::from_millis(15),
        load_credential: Duration::from_millis(10),
        check_quota: Duration::from_millis(5),
        ..Costs::default()
    }
}

/// Runs `users.len()` concurrent requests (request i from `users[i]`), each holding its lease for
/// `upstream` before completing; returns each request's total latency and the most requests
/// that held a lease at once.
async fn run_concurrently(s: Arc<AnyStrategy>, users: Vec<u32>, upstream: Duration) -> (Vec<Duration>, usize) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let (s, in_flight, peak) = (s.clone(), in_flight.clone(), peak.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let req = Request::new(i as u64, user, MODEL);
                let lease = s.acquire(&req).await.expect("served");
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(upstream).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                s.complete(lease, &req, Outcome::Success).await.unwrap();
                started.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    (latencies, peak.load(Ordering::SeqCst))
}

fn build(name: StrategyName, f: &Fixture) -> Arc<AnyStrategy> {
    Arc::new(name.build(f.env.clone()))
}

fn fixture(n: usize, costs: Costs, options: StrategyOptions) -> Fixture {
    let tokens = TokenDouble::new(n, Duration::from_millis(500), &[]);
    Fixture::with(
        (0..n).map(healthy).collect(),
        policy(100),
        tokens,
        StoreMode::Locked,
        costs,
        options,
    )
}

#[tokio::test(start_paused = true)]
async fn rwlock_readers_select_side_by_side_where_global_mutex_serialises() {
    tokio::time::timeout(TIMEOUT, async {
        let options = StrategyOptions {
            record_outcomes: false,
            ..StrategyOptions::default()
        };
        let f = fixture(3, seed_costs(), options.clone());
        let (mutex, _) = run_concurrently(build(StrategyName::GlobalMutex, &f), vec![0; 10], Duration::ZERO).await;
        let f = fixture(3, seed_costs(), options);
        let (rw, _) = run_concurrently(build(StrategyName::Rwlock, &f), vec![0; 10], Duration::ZERO).await;
        // One after another: the 10th request finishes after 10 × 30 ms ...
        assert_eq!(mutex.iter().max(), Some(&Duration::from_millis(300)));
        // ... while under the read lock all ten spend their 30 ms at once.
        assert!(rw.iter().all(|d| *d == Duration::from_millis(30)), "{rw:?}");
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn rwlock_refresh_stalls_every_reader_behind_the_write_lock() {
    tokio::time::timeout(TIMEOUT, async {
        let tokens = TokenDouble::new(2, Duration::from_millis(500), &[]);
        let f = Fixture::with(
            vec![expired(0), expired(1)],
            policy(100),
            tokens.clone(),
            StoreMode::Locked,
            Costs::default(),
            StrategyOptions::default(),
        );
        let (lat, _) = run_concurrently(build(StrategyName::Rwlock, &f), vec![0; 20], Duration::ZERO).await;
        assert_eq!(tokens.total_calls(), 1);
        assert!(
            lat.iter().all(|d| *d >= Duration::from_millis(500)),
            "a reader got past the refresh: {lat:?}"
        );
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn sharded_users_of_different_shards_do_not_wait_for_each_other() {
    tokio::time::timeout(TIMEOUT, async {
        let options = StrategyOptions {
            record_outcomes: false,
            shards: 2,
            ..StrategyOptions::default()
        };
        let f = fixture(4, seed_costs(), options);
        // Five requests from user 0 (shard 0) and five from user 1 (shard 1).
        let users = vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        let (lat, _) = run_concurrently(build(StrategyName::Sharded, &f), users, Duration::ZERO).await;
        // Each shard serves its five one after another: 5 × 30 ms, not 10 × 30 ms.
        assert_eq!(lat.iter().max(), Some(&Duration::from_millis(150)), "{lat:?}");
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn queue_pool_caps_concurrency_at_credentials_times_permits() {
    tokio::time::timeout(TIMEOUT, async {
        let upstream = Duration::from_millis(100);
        for permits in [1usize, 2] {
            let options = StrategyOptions {
                permits_per_credential: permits,
                ..StrategyOptions::default()
            };
            let f = fixture(2, Costs::default(), options);
            let s = build(StrategyName::QueuePool, &f);
            let (lat, peak) = run_concurrently(s.clone(), (0..12).collect(), upstream).await;
            let cap = 2 * permits;
            assert_eq!(peak, cap, "permits {permits}");
            // 12 requests in waves of `cap`, each wave one upstream call long.
            let waves = 12usize.div_ceil(cap) as u32;
            assert_eq!(
                lat.iter().max(),
                Some(&(upstream * waves)),
                "permits {permits}: {lat:?}"
            );
            let AnyStrategy::QueuePool(q) = &*s else { unreachable!() };
            let n = q.counts();
            assert!(n.conserved() && n.idle == n.total, "{n:?}");
        }
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn lock_free_refreshes_ahead_of_expiry_and_nobody_waits() {
    tokio::time::timeout(TIMEOUT, async {
        let tokens = TokenDouble::new(1, Duration::from_millis(500), &[]);
        // Expires 7 minutes from now: inside the 10-minute refresh-ahead window, outside the
        // 5-minute margin.
        let mut account = healthy(0);
        account.timestamp = Some(T0 - HOUR_MS + 7 * 60_000);
        let old_token = account.access_token.clone();
        let f = Fixture::new(vec![account], policy(100), tokens.clone());
        let s = build(StrategyName::LockFree, &f);
        let tasks: Vec<_> = (0..100u64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let req = Request::new(i, i as u32, MODEL);
                    let lease = s.acquire(&req).await.unwrap();
                    let seen = (lease.token.clone(), lease.timing);
                    s.complete(lease, &req, Outcome::Success).await.unwrap();
                    seen
                })
            })
            .collect();
        for t in tasks {
            let (token, timing) = t.await.unwrap();
            assert_eq!(token, old_token, "the still-valid token is used meanwhile");
            assert_eq!(
                timing.total(),
                Duration::ZERO,
                "nobody waits for the refresh: {timing:?}"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(tokens.calls(0), 1, "one background refresh for the whole burst");
        let req = Request::new(100, 0, MODEL);
        let lease = s.acquire(&req).await.unwrap();
        assert!(issued_for(&lease.token, 0), "later requests get the refreshed token");
        assert_eq!(
            f.persisted()[0].access_token,
            lease.token,
            "the new token was persisted"
        );
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn lock_free_waiters_inside_the_margin_all_get_the_one_refreshed_token() {
    tokio::time::timeout(TIMEOUT, async {
        let latency = Duration::from_millis(500);
        let tokens = TokenDouble::new(1, latency, &[]);
        let f = Fixture::new(vec![expired(0)], policy(100), tokens.clone());
        let s = build(StrategyName::LockFree, &f);
        let (lat, _) = run_concurrently(s, (0..100).collect(), Duration::ZERO).await;
        assert_eq!(tokens.calls(0), 1);
        // Every request waited for the same refresh, and no longer.
        assert!(lat.iter().all(|d| *d == latency), "{lat:?}");
    })
    .await
    .expect("deadlock");
}

#[tokio::test(start_paused = true)]
async fn queue_pool_holders_of_one_credential_refresh_it_once() {
    tokio::time::timeout(TIMEOUT, async {
        let latency = Duration::from_millis(500);
        let tokens = TokenDouble::new(2, latency, &[]);
        let options = StrategyOptions {
            permits_per_credential: 3,
            ..StrategyOptions::default()
        };
        let f = Fixture::with(
            vec![expired(0), expired(1)],
            policy(100),
            tokens.clone(),
            StoreMode::Locked,
            Costs::default(),
            options,
        );
        let s = build(StrategyName::QueuePool, &f);
        // Six requests hold the six permits at once: three holders per credential.
        let (lat, peak) = run_concurrently(s, (0..6).collect(), Duration::from_millis(100)).await;
        assert_eq!(peak, 6);
        assert_eq!(
            (tokens.calls(0), tokens.calls(1)),
            (1, 1),
            "one refresher per credential"
        );
        assert!(
            lat.iter().all(|d| *d == latency + Duration::from_millis(100)),
            "{lat:?}"
        );
    })
    .await
    .expect("deadlock");
}
