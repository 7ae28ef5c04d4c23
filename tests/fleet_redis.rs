//! The fleet's shared state against a real `redis-server` (each test starts its own on a free
//! loopback port, see tests/common/redis_server.rs): the Lua scripts' semantics, the in-memory
//! model's agreement with them, and the faults (script cache flushed, Redis paused, killed and
//! restarted with nothing on disk). Several `RedisPool` handles on one server stand for several
//! instances. Short by default; `CREDPOOL_LONG=1` runs more sequences and more requests.

mod common;

use common::redis_server::RedisServer;
use common::{Fixture, TokenDouble};
use credpool::clock::Clock;
use credpool::costs::Costs;
use credpool::fleet::{
    AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, ModelledPool, RedisPool, RedisTimeouts, SeedAccount,
    SeedAnswer, SharedPool, WriteAnswer, EVERY_SERIES,
};
use credpool::model::{Account, AccountId, Change, EpochMs, Outcome, Policy};
use credpool::secret::Secret;
use credpool::store::StoreMode;
use credpool::strategy::fleet::{Fleet, FleetOptions};
use credpool::strategy::{CredentialManager, Request, StrategyOptions};
use credpool::upstream::draw::{index, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn long() -> bool {
    std::env::var("CREDPOOL_LONG").is_ok_and(|v| v == "1")
}

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

fn seeds(n: usize) -> Vec<SeedAccount> {
    (0..n)
        .map(|i| SeedAccount {
            id: AccountId::from(format!("account{i}@example.com")),
            token: Secret::new(format!("tok-{i}-0")),
            expires_at: Some(now_ms() + 3_600_000),
            disabled: false,
        })
        .collect()
}

fn open(server: &RedisServer, pool: &str) -> RedisPool {
    RedisPool::open(&server.url(), pool, RedisTimeouts::default()).expect("open the pool")
}

async fn ready(pool: &dyn SharedPool, k: u64, series: Option<&str>) -> Acquired {
    match pool.acquire(k, series, None).await.expect("acquire") {
        AcquireAnswer::Ready(a) => a,
        other => panic!("expected an account, got {other:?}"),
    }
}

/// One random operation of the differential test, drawn from `seed` at step `step`.
#[derive(Debug)]
enum Op {
    Acquire {
        k: u64,
        series: Option<&'static str>,
        again: bool,
    },
    Ban {
        slot: u64,
        series: &'static str,
        ahead: bool,
    },
    Disable(u64),
    Enable(u64),
    Lease {
        slot: u64,
        owner: &'static str,
        seen: u64,
    },
    Release {
        slot: u64,
        owner: &'static str,
    },
    Commit {
        slot: u64,
        generation: u64,
        owner: &'static str,
    },
    Delete(u64),
    Seed {
        accounts: usize,
        add_missing: bool,
    },
    Snapshot,
}

const BASE: u64 = 1_000;
const OWNERS: [&str; 3] = ["a", "b", "c"];
const SERIES: [&str; 2] = ["claude_series", "gemini_3_series"];

fn draw_op(seed: u64, step: u64) -> Op {
    let d = |what: u64, n: u64| index(seed, Stream::Sample, step * 16 + what, n);
    // Most sequences start on a seeded pool (one in five starts unseeded).
    if step == 0 && !seed.is_multiple_of(5) {
        return Op::Seed {
            accounts: 2 + (seed % 5) as usize,
            add_missing: false,
        };
    }
    let slot = d(1, 6);
    match d(0, 20) {
        0..=5 => Op::Acquire {
            k: 1 + d(2, 3),
            series: [None, Some(SERIES[0]), Some(SERIES[1])][d(3, 3) as usize],
            again: d(4, 4) == 0,
        },
        6..=7 => Op::Ban {
            slot,
            // The refresh backoff's ban of every series among them: it keeps every series out.
            series: [SERIES[0], SERIES[1], EVERY_SERIES][d(2, 3) as usize],
            ahead: d(3, 3) != 0,
        },
        8 => Op::Disable(slot),
        9 => Op::Enable(slot),
        10..=12 => Op::Lease {
            slot,
            owner: OWNERS[d(2, 3) as usize],
            seen: BASE + d(3, 3),
        },
        13 => Op::Release {
            slot,
            owner: OWNERS[d(2, 3) as usize],
        },
        14..=16 => Op::Commit {
            slot,
            generation: BASE + d(2, 3),
            owner: OWNERS[d(3, 3) as usize],
        },
        17 => Op::Delete(slot),
        18 => Op::Seed {
            accounts: 1 + d(2, 6) as usize,
            add_missing: d(3, 2) == 0,
        },
        _ => Op::Snapshot,
    }
}

/// Runs `op` on `pool`; the answer as text (tokens compared through `PartialEq` first: the
/// Debug text redacts them, so the token is spelled out here, in a test, on purpose).
async fn apply(pool: &dyn SharedPool, op: &Op, last_ticket: &mut Option<u64>, step: u64) -> String {
    let series_list: Vec<String> = SERIES.iter().map(|s| s.to_string()).collect();
    match op {
        Op::Acquire { k, series, again } => {
            let answer = pool
                .acquire(*k, *series, if *again { *last_ticket } else { None })
                .await;
            if let Ok(AcquireAnswer::Ready(a)) = &answer {
                *last_ticket = Some(a.ticket);
                return format!("{answer:?} token={}", a.token.expose());
            }
            format!("{answer:?}")
        }
        Op::Ban { slot, series, ahead } => {
            // Far from now either way, so the server's clock and the model's agree.
            let until = if *ahead {
                now_ms() + 3_600_000
            } else {
                now_ms() - 3_600_000
            };
            // Deadlines differ between the two runs by the milliseconds between them: compare
            // only whether the kept deadline is ahead.
            match pool.ban(*slot, series, until).await {
                Ok(WriteAnswer::Done { ban_until }) => format!("ban done ahead={}", ban_until.unwrap() > now_ms()),
                other => format!("{other:?}"),
            }
        }
        Op::Disable(slot) => format!("{:?}", pool.disable(*slot).await),
        Op::Enable(slot) => format!("{:?}", pool.enable(*slot).await),
        Op::Lease { slot, owner, seen } => {
            format!("{:?}", pool.lease(*slot, owner, Duration::from_secs(60), *seen).await)
        }
        Op::Release { slot, owner } => format!("{:?}", pool.release(*slot, owner).await),
        Op::Commit {
            slot,
            generation,
            owner,
        } => {
            let token = Secret::new(format!("fresh-{step}"));
            format!(
                "{:?}",
                pool.commit(*slot, *generation, &token, Some(7_000 + step as i64), owner)
                    .await
            )
        }
        Op::Delete(slot) => format!("{:?}", pool.delete(*slot, &series_list).await),
        Op::Seed { accounts, add_missing } => {
            let mut list = seeds(*accounts);
            for a in &mut list {
                a.expires_at = Some(5_000);
            }
            format!("{:?}", pool.seed(&list, BASE, *add_missing).await)
        }
        Op::Snapshot => {
            let snap = pool.snapshot().await.expect("snapshot");
            let rows: Vec<String> = snap
                .iter()
                .map(|a| {
                    let bans: Vec<String> = a.bans.iter().map(|(s, u)| format!("{s}:{}", *u > now_ms())).collect();
                    format!(
                        "{} {} {} {} {:?} {} {:?}",
                        a.slot,
                        a.id,
                        a.token.expose(),
                        a.generation,
                        a.expires_at,
                        a.disabled,
                        bans
                    )
                })
                .collect();
            rows.join("; ")
        }
    }
}

/// The same seeded operation sequences against real Redis and the model: identical answers.
#[tokio::test]
async fn the_model_answers_exactly_as_the_lua_scripts_do() {
    let server = RedisServer::start();
    let sequences = if long() { 400 } else { 40 };
    let steps = 60;
    for seed in 0..sequences {
        let real = open(&server, &format!("diff{seed}"));
        let model = ModelledPool::new(Clock::wall(), Duration::ZERO);
        let (mut real_ticket, mut model_ticket) = (None, None);
        for step in 0..steps {
            let op = draw_op(seed, step);
            let want = apply(&real, &op, &mut real_ticket, step).await;
            let got = apply(&model, &op, &mut model_ticket, step).await;
            assert_eq!(got, want, "sequence {seed}, step {step}: {op:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet strategy: several instances (each its own `RedisPool` handle) on one server, sharing
// one system of record (an in-memory accounts file through the locked store).

const MODEL: &str = "gemini-3-pro-preview";

/// Accounts whose tokens are valid for an hour from now (real time: Redis reads its own clock).
fn fresh_accounts(n: usize) -> Vec<Account> {
    (0..n).map(|i| Account::synthetic(i, now_ms(), 3600)).collect()
}

/// Accounts whose tokens expire now (inside the refresh margin).
fn expired_accounts(n: usize) -> Vec<Account> {
    (0..n)
        .map(|i| Account::synthetic(i, now_ms() - 3_600_000, 3600))
        .collect()
}

fn fixture(accounts: Vec<Account>, policy: Policy, tokens: Arc<TokenDouble>) -> Fixture {
    let mut f = Fixture::with(
        accounts,
        policy,
        tokens,
        StoreMode::Locked,
        Costs::default(),
        StrategyOptions::default(),
    );
    f.env.clock = Clock::wall();
    f
}

fn policy(k: u64) -> Policy {
    Policy {
        calls_per_rotation: k,
        auto_ban_codes: vec![401],
        ..Policy::default()
    }
}

/// Options for tests: short leases and probes, so faults play out in well under a second.
fn quick(owner: &str) -> FleetOptions {
    FleetOptions {
        lease_ttl: Duration::from_millis(300),
        refresh_timeout: Duration::from_millis(200),
        probe_interval: Duration::from_millis(50),
        lease_poll: Duration::from_millis(10),
        owner: Some(owner.to_string()),
    }
}

fn instances(server: &RedisServer, pool: &str, f: &Fixture, n: usize) -> Vec<Arc<Fleet>> {
    (0..n)
        .map(|i| {
            Arc::new(Fleet::new(
                f.env.clone(),
                Arc::new(open(server, pool)),
                quick(&format!("inst{i}")),
            ))
        })
        .collect()
}

fn request(number: u64) -> Request {
    Request::new(number, 0, MODEL)
}

/// Acquires and completes with `outcome`; the account's id.
async fn serve(fleet: &Fleet, number: u64, outcome: Outcome) -> AccountId {
    let req = request(number);
    let lease = fleet.acquire(&req).await.expect("acquire");
    let id = lease.id.clone();
    fleet.complete(lease, &req, outcome).await.expect("complete");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_exactly_k_calls_per_turn_across_instances() {
    let server = RedisServer::start();
    let (n, k, handles) = (4usize, 5u64, 4usize);
    // The scripts alone, from several handles at once: tickets are dense and each block of K
    // consecutive tickets is served by one account, the accounts taking turns in slot order.
    let pools: Vec<Arc<RedisPool>> = (0..handles).map(|_| Arc::new(open(&server, "rot"))).collect();
    pools[0].seed(&seeds(n), 0, false).await.unwrap();
    let per_handle = if long() { 2_000 } else { 100 };
    let tasks: Vec<_> = pools
        .iter()
        .map(|p| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..per_handle {
                    let a = ready(&*p, k, None).await;
                    got.push((a.ticket, a.slot));
                }
                got
            })
        })
        .collect();
    let mut all: Vec<(u64, u64)> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let total = (handles * per_handle) as u64;
    assert_eq!(
        all.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    for (ticket, slot) in &all {
        assert_eq!(*slot, (ticket / k) % n as u64, "ticket {ticket}");
    }

    // Through the strategy: four instances, N·K·turns calls, every account served equally.
    let f = fixture(fresh_accounts(n), policy(k), TokenDouble::new(n, Duration::ZERO, &[]));
    let fleet = instances(&server, "rot-strategy", &f, handles);
    let calls = n * k as usize * 10;
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let inst = fleet[i % handles].clone();
            tokio::spawn(async move { serve(&inst, i as u64, Outcome::Success).await })
        })
        .collect();
    let mut per_account: HashMap<AccountId, usize> = HashMap::new();
    for t in tasks {
        *per_account.entry(t.await.unwrap()).or_default() += 1;
    }
    assert_eq!(per_account.len(), n);
    assert!(per_account.values().all(|c| *c == calls / n), "{per_account:?}");
}

#[tokio::test]
async fn a_ban_keeps_the_later_deadline_and_every_instance_skips_it() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(2), policy(1), TokenDouble::new(2, Duration::ZERO, &[]));
    let fleet = instances(&server, "bans", &f, 2);
    // Instance 0 serves account 0 and gets a 429 naming a reset in 30 minutes: a 1 h ban.
    let req = request(0);
    let lease = fleet[0].acquire(&req).await.unwrap();
    assert_eq!(lease.index, 0);
    let reset = now_ms() + 1_800_000;
    fleet[0]
        .complete(
            lease,
            &req,
            Outcome::RateLimited {
                reset_at: Some(reset),
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        )
        .await
        .unwrap();
    // Instance 1, which never saw the 429, skips account 0 from its next acquisition on.
    for i in 1..6 {
        assert_eq!(
            serve(&fleet[1], i, Outcome::Success).await.as_str(),
            "account1@example.com"
        );
    }
    // A shorter ban afterwards does not shorten it: max(old, new).
    let pool = open(&server, "bans");
    let kept = pool.snapshot().await.unwrap()[0].bans.clone();
    assert_eq!(kept.len(), 1);
    let (series, until) = kept[0].clone();
    assert_eq!(
        pool.ban(0, &series, now_ms() + 1_000).await.unwrap(),
        WriteAnswer::Done { ban_until: Some(until) }
    );
    assert_eq!(
        pool.ban(0, &series, until + 5).await.unwrap(),
        WriteAnswer::Done {
            ban_until: Some(until + 5)
        }
    );
    // Another series is not banned: a claude model still reaches account 0.
    let claude = Request::new(9, 0, "claude-sonnet-4-5");
    let got: Vec<usize> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            let l = fleet[1].acquire(&claude).await.unwrap();
            v.push(l.index);
            fleet[1].complete(l, &claude, Outcome::Success).await.unwrap();
        }
        v
    };
    assert!(got.contains(&0), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_outage_backs_off_fleet_wide_then_the_account_is_refreshed_again() {
    let server = RedisServer::start();
    // Account 0's first refresh meets a 503; with a refresh backoff that is a 400 ms ban of every
    // series, not a disable.
    let tokens = TokenDouble::with_outage(2, Duration::ZERO, &[(0, 1)]);
    let backoff = Policy {
        refresh_backoff: Some(credpool::model::RefreshBackoff {
            first_ms: 400,
            max_ms: 400,
        }),
        ..policy(1)
    };
    let f = fixture(expired_accounts(2), backoff, tokens.clone());
    let fleet = instances(&server, "backoff", &f, 2);
    // Instance 0's request meets the outage on account 0 and is served by account 1.
    assert_eq!(
        serve(&fleet[0], 0, Outcome::Success).await.as_str(),
        "account1@example.com"
    );
    assert_eq!((tokens.calls(0), tokens.calls(1)), (1, 1));
    let pool = open(&server, "backoff");
    let shared = pool.snapshot().await.unwrap();
    assert!(!shared[0].disabled);
    assert_eq!(shared[0].bans.len(), 1, "{:?}", shared[0].bans);
    assert_eq!(shared[0].bans[0].0, EVERY_SERIES);
    // Instance 1, which never met the outage, skips account 0 while the backoff runs, for a
    // claude model as for a gemini one, and tries no refresh of it.
    for (i, model) in [MODEL, "claude-sonnet-4-5", MODEL].into_iter().enumerate() {
        let req = Request::new(1 + i as u64, 0, model);
        let lease = fleet[1].acquire(&req).await.unwrap();
        assert_eq!(lease.index, 1, "{model}");
        fleet[1].complete(lease, &req, Outcome::Success).await.unwrap();
    }
    assert_eq!(tokens.calls(0), 1);
    // Once it ends, the next acquisition that reaches account 0 refreshes it (once) and serves it.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let served: Vec<AccountId> = {
        let mut v = Vec::new();
        for n in 10..14 {
            v.push(serve(&fleet[1], n, Outcome::Success).await);
        }
        v
    };
    assert!(
        served.iter().any(|id| id.as_str() == "account0@example.com"),
        "{served:?}"
    );
    assert_eq!(tokens.calls(0), 2);
    let on_disk = &f.persisted()[0];
    assert!(
        !on_disk.disabled && on_disk.refresh_backoff_until.is_none(),
        "{on_disk:?}"
    );
}

#[tokio::test]
async fn a_disable_is_seen_by_every_instance_on_its_next_acquisition_and_reaches_the_file() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(3), policy(1), TokenDouble::new(3, Duration::ZERO, &[]));
    let fleet = instances(&server, "dis", &f, 4);
    // Instance 0's request on account 1 gets a 401, an auto-ban code: account 1 is disabled.
    let mut number = 0;
    loop {
        let req = request(number);
        number += 1;
        let lease = fleet[0].acquire(&req).await.unwrap();
        if lease.index == 1 {
            fleet[0].complete(lease, &req, Outcome::Status(401)).await.unwrap();
            break;
        }
        fleet[0].complete(lease, &req, Outcome::Success).await.unwrap();
    }
    for inst in &fleet {
        for _ in 0..6 {
            number += 1;
            assert_ne!(
                serve(inst, number, Outcome::Success).await.as_str(),
                "account1@example.com"
            );
        }
    }
    assert!(f.persisted()[1].disabled, "the system of record holds the disable");
    assert!(open(&server, "dis").snapshot().await.unwrap()[1].disabled);
}

#[tokio::test]
async fn an_operators_switch_on_one_instance_reaches_every_instance() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(3), policy(1), TokenDouble::new(3, Duration::ZERO, &[]));
    let fleet = instances(&server, "switch", &f, 3);
    // The first acquisition seeds the shared pool from the system of record. (A switch before
    // that reaches the fleet through the file: serve writes it to the store first.)
    let mut number = 0;
    serve(&fleet[1], number, Outcome::Success).await;
    assert!(
        fleet[0].switch(2, &Change::Disabled).await,
        "enabled -> disabled is a change"
    );
    assert!(
        !fleet[0].switch(2, &Change::Disabled).await,
        "disabled -> disabled is not"
    );
    for inst in &fleet {
        for _ in 0..6 {
            number += 1;
            assert_ne!(
                serve(inst, number, Outcome::Success).await.as_str(),
                "account2@example.com"
            );
        }
    }
    assert!(open(&server, "switch").snapshot().await.unwrap()[2].disabled);
    // Enabled again from another instance: every instance may lease it on its next turns.
    fleet[1].switch(2, &Change::Enabled).await;
    let mut seen = false;
    for _ in 0..6 {
        number += 1;
        seen |= serve(&fleet[2], number, Outcome::Success).await.as_str() == "account2@example.com";
    }
    assert!(seen, "an enable reaches the other instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_instances_racing_refresh_each_generation_once() {
    let server = RedisServer::start();
    let (n, instances_n, per_instance) = (3usize, 6usize, 8usize);
    let tokens = TokenDouble::new(n, Duration::from_millis(40), &[]);
    let f = fixture(expired_accounts(n), policy(1), tokens.clone());
    let fleet = instances(&server, "sf", &f, instances_n);
    let tasks: Vec<_> = (0..instances_n * per_instance)
        .map(|i| {
            let inst = fleet[i % instances_n].clone();
            tokio::spawn(async move {
                let req = request(i as u64);
                let lease = inst.acquire(&req).await.expect("acquire");
                let fresh = lease.token.expose().starts_with("fresh-");
                inst.complete(lease, &req, Outcome::Success).await.unwrap();
                fresh
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap(), "a request was handed an expired token");
    }
    for i in 0..n {
        assert_eq!(
            tokens.calls(i),
            1,
            "account {i}: refreshes across {instances_n} instances"
        );
    }
    let snap = open(&server, "sf").snapshot().await.unwrap();
    let base = snap.iter().map(|a| a.generation).min().unwrap() - 1;
    assert!(snap.iter().all(|a| a.generation == base + 1), "one commit per account");
    let persisted = f.persisted();
    assert!(persisted.iter().all(|a| a.access_token.expose().starts_with("fresh-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_lease_holder_is_fenced_out_after_another_instance_refreshed() {
    let server = RedisServer::start();
    // Instance A's token endpoint answers after 700 ms: longer than its 300 ms lease, as if the
    // process had been stopped mid-refresh. Instance B's answers at once.
    let slow = TokenDouble::new(1, Duration::from_millis(700), &[]);
    let fast = TokenDouble::new(1, Duration::ZERO, &[]);
    let fa = fixture(expired_accounts(1), policy(1), slow.clone());
    let fb = fixture(expired_accounts(1), policy(1), fast.clone());
    let a = Arc::new(Fleet::new(fa.env.clone(), Arc::new(open(&server, "fence")), quick("A")));
    let b = Fleet::new(fb.env.clone(), Arc::new(open(&server, "fence")), quick("B"));
    let a_task = {
        let a = a.clone();
        tokio::spawn(async move { a.acquire(&request(0)).await.map(|l| l.token) })
    };
    // B asks once A holds the lease; it gets it only after the TTL, refreshes and commits.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lease = b
        .acquire(&request(1))
        .await
        .expect("B acquires after A's lease ran out");
    assert!(lease.token.expose().starts_with("fresh-0-"), "B's own refresh");
    assert_eq!(fast.calls(0), 1);
    let b_token = lease.token.clone();
    // A's refresh ends late: its commit is rejected by the generation fence, and A serves the
    // token B committed (it resolves its ticket again).
    let a_token = a_task.await.unwrap().expect("A acquires");
    assert_eq!(slow.calls(0), 1);
    assert_eq!(a.stats().stale_commits, 1, "A's late commit was rejected");
    assert_eq!(b.stats().stale_commits, 0);
    assert!(a_token == b_token, "A serves the committed token, not its own");
    let snap = open(&server, "fence").snapshot().await.unwrap();
    assert!(snap[0].token == b_token);
}

#[tokio::test]
async fn scripts_flushed_from_the_server_are_loaded_again() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(2), policy(1), TokenDouble::new(2, Duration::ZERO, &[]));
    let fleet = instances(&server, "flush", &f, 1);
    serve(&fleet[0], 0, Outcome::Success).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sha = redis::Script::new(include_str!("../src/fleet/scripts/acquire.lua"))
        .get_hash()
        .to_string();
    let exists = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let sha = sha.clone();
        async move {
            let v: Vec<i64> = redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(&sha)
                .query_async(&mut conn)
                .await
                .unwrap();
            v[0]
        }
    };
    assert_eq!(exists(&mut conn).await, 1);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    assert_eq!(exists(&mut conn).await, 0);
    // NOSCRIPT answered, the script loaded again, the acquisition served.
    serve(&fleet[0], 1, Outcome::Success).await;
    assert_eq!(exists(&mut conn).await, 1);
    assert_eq!(fleet[0].stats().degraded_entries, 0);
}

/// Acquires until the instance is out of degraded mode (bounded): the probe interval is 50 ms.
async fn until_shared(fleet: &Fleet, from: u64) -> u64 {
    let mut number = from;
    for _ in 0..200 {
        number += 1;
        let req = request(number);
        if let Ok(lease) = fleet.acquire(&req).await {
            fleet.complete(lease, &req, Outcome::Success).await.unwrap();
        }
        if !fleet.is_degraded() {
            return number;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still degraded after 200 acquisitions");
}

#[tokio::test]
async fn a_restart_with_nothing_on_disk_loses_no_account_and_relearns_bans() {
    let mut server = RedisServer::start();
    let f = fixture(fresh_accounts(3), policy(1), TokenDouble::new(3, Duration::ZERO, &[]));
    let fleet = instances(&server, "restart", &f, 2);
    // Account 0 is banned (a 429; the ban reaches the system of record with the outcome).
    let req = request(0);
    let lease = fleet[0].acquire(&req).await.unwrap();
    assert_eq!(lease.index, 0);
    fleet[0]
        .complete(
            lease,
            &req,
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        )
        .await
        .unwrap();
    let seeded_before: u64 = fleet.iter().map(|i| i.stats().reseeds).sum();
    assert_eq!(
        seeded_before, 1,
        "the first acquisition found the pool empty and seeded it"
    );
    server.stop();
    server.restart();
    let number = until_shared(&fleet[1], 1).await;
    let snap = open(&server, "restart").snapshot().await.unwrap();
    assert_eq!(snap.len(), 3, "every account is back, seeded from the system of record");
    assert_eq!(snap[0].bans.len(), 1, "the ban came back from the system of record");
    let seeded: u64 = fleet.iter().map(|i| i.stats().reseeds).sum();
    assert_eq!(seeded, 2, "one instance seeded the restarted pool");
    for i in 0..6 {
        for inst in &fleet {
            let got = serve(inst, number + 1 + i, Outcome::Success).await;
            if !inst.is_degraded() {
                assert_ne!(got.as_str(), "account0@example.com");
            }
        }
    }
}

#[tokio::test]
async fn a_deleted_account_is_not_resurrected() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(3), policy(1), TokenDouble::new(3, Duration::ZERO, &[]));
    let fleet = instances(&server, "del", &f, 2);
    // Instance 1 holds a lease on account 1 when an operator deletes it.
    let mut number = 0;
    let (held, held_req) = loop {
        let req = request(number);
        number += 1;
        let lease = fleet[1].acquire(&req).await.unwrap();
        if lease.index == 1 {
            break (lease, req);
        }
        fleet[1].complete(lease, &req, Outcome::Success).await.unwrap();
    };
    let admin = open(&server, "del");
    assert!(admin.delete(1, &["gemini_3_series".to_string()]).await.unwrap());
    // Late writes from an instance that still knows it: every one answers Gone and writes nothing.
    assert_eq!(
        admin.ban(1, "gemini_3_series", now_ms() + 1_000).await.unwrap(),
        WriteAnswer::Gone
    );
    assert_eq!(admin.disable(1).await.unwrap(), WriteAnswer::Gone);
    assert_eq!(
        admin.lease(1, "x", Duration::from_secs(1), 0).await.unwrap(),
        LeaseAnswer::Gone
    );
    assert_eq!(
        admin.commit(1, 0, &Secret::new("late"), None, "x").await.unwrap(),
        CommitAnswer::Gone
    );
    // An instance seeding a present pool (its whole map, as a restart would) changes nothing.
    assert_eq!(admin.seed(&seeds(3), 0, false).await.unwrap(), SeedAnswer::Present(2));
    // The held lease completes with a 429 after the delete: its ban does not bring it back.
    fleet[1]
        .complete(
            held,
            &held_req,
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: None,
                quota_reset_delay: None,
            },
        )
        .await
        .unwrap();
    for i in 0..8 {
        let got = serve(&fleet[i % 2], number + i as u64, Outcome::Success).await;
        assert_ne!(got.as_str(), "account1@example.com");
    }
    let ids: Vec<String> = admin
        .snapshot()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(ids, ["account0@example.com", "account2@example.com"]);
}

#[tokio::test]
async fn degraded_mode_is_entered_when_redis_dies_and_left_when_it_returns() {
    let mut server = RedisServer::start();
    let f = fixture(fresh_accounts(2), policy(1), TokenDouble::new(2, Duration::ZERO, &[]));
    let fleet = instances(&server, "deg", &f, 1);
    let inst = &fleet[0];
    serve(inst, 0, Outcome::Success).await;
    serve(inst, 1, Outcome::Success).await;
    server.stop();
    // Served from the local copy, explicitly.
    let req = request(2);
    let lease = inst.acquire(&req).await.expect("served locally");
    assert!(inst.is_degraded());
    // A 429 while degraded: a local ban, queued for the shared pool.
    let banned = lease.index;
    inst.complete(
        lease,
        &req,
        Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms: None,
            quota_reset_delay: None,
        },
    )
    .await
    .unwrap();
    for i in 3..9 {
        assert_ne!(
            serve(inst, i, Outcome::Success).await,
            f.env.accounts[banned].id,
            "local ban"
        );
    }
    let st = inst.stats();
    assert_eq!(st.degraded_entries, 1);
    assert!(st.degraded_acquisitions >= 7, "{st:?}");
    server.restart();
    until_shared(inst, 10).await;
    let st = inst.stats();
    assert_eq!((st.degraded_entries, st.degraded_exits), (1, 1));
    let snap = open(&server, "deg").snapshot().await.unwrap();
    assert_eq!(snap.len(), 2);
    assert_eq!(
        snap[banned].bans.len(),
        1,
        "the ban learned while degraded reached the shared pool"
    );
}

#[tokio::test]
async fn a_redis_that_stops_answering_is_an_outage_until_it_answers_again() {
    let server = RedisServer::start();
    let f = fixture(fresh_accounts(2), policy(1), TokenDouble::new(2, Duration::ZERO, &[]));
    let fleet = instances(&server, "stopped", &f, 1);
    let inst = &fleet[0];
    serve(inst, 0, Outcome::Success).await;
    // SIGSTOP: the connection stays open and nothing answers; the command times out (500 ms),
    // which may have been applied, and the request is served locally.
    server.signal(libc::SIGSTOP);
    let started = std::time::Instant::now();
    serve(inst, 1, Outcome::Success).await;
    let waited = started.elapsed();
    assert!(inst.is_degraded());
    assert!(
        waited >= Duration::from_millis(400),
        "no timeout was waited for: {waited:?}"
    );
    assert_eq!(inst.stats().degraded_entries, 1);
    // A 429 while degraded, on the account this instance never acquired through the shared pool
    // (its slot is looked up when the change is written): queued, and written when the pool
    // answers again (the server kept its state, so only the replay can put the ban there).
    let req = request(2);
    let lease = inst.acquire(&req).await.expect("served locally");
    assert_eq!(lease.index, 1, "local rotation moved on");
    let banned = lease.id.clone();
    inst.complete(
        lease,
        &req,
        Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms: None,
            quota_reset_delay: None,
        },
    )
    .await
    .unwrap();
    server.signal(libc::SIGCONT);
    until_shared(inst, 3).await;
    assert_eq!(inst.stats().degraded_exits, 1);
    assert_eq!(
        inst.stats().reseeds,
        1,
        "the pool was seeded once, at the start: no restart"
    );
    let snap = open(&server, "stopped").snapshot().await.unwrap();
    let kept = snap.iter().find(|a| a.id == banned).unwrap();
    assert_eq!(kept.bans.len(), 1, "the ban made while degraded was replayed");
    for i in 300..304 {
        assert_ne!(serve(inst, i, Outcome::Success).await, banned);
    }
}
