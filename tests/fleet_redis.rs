//! The fleet's shared state against a real `redis-server` (each test starts its own on a free
//! loopback port, see tests/common/redis_server.rs): the Lua scripts' semantics, the in-memory
//! model's agreement with them, and the faults (script cache flushed, Redis paused, killed and
//! restarted with nothing on disk). Several `RedisPool` handles on one server stand for several
//! instances. Short by default; `CREDPOOL_LONG=1` runs more sequences and more requests.

mod common;

use common::redis_server::RedisServer;
use credpool::clock::Clock;
use credpool::fleet::{
    AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, ModelledPool, RedisPool, RedisTimeouts, SeedAccount,
    SeedAnswer, SharedError, SharedPool, WriteAnswer,
};
use credpool::model::{AccountId, EpochMs};
use credpool::secret::Secret;
use credpool::upstream::draw::{index, Stream};
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
    Acquire { k: u64, series: Option<&'static str>, again: bool },
    Ban { slot: u64, series: &'static str, ahead: bool },
    Disable(u64),
    Enable(u64),
    Lease { slot: u64, owner: &'static str, seen: u64 },
    Release { slot: u64, owner: &'static str },
    Commit { slot: u64, generation: u64, owner: &'static str },
    Delete(u64),
    Seed { accounts: usize, add_missing: bool },
    Snapshot,
}

const BASE: u64 = 1_000;
const OWNERS: [&str; 3] = ["a", "b", "c"];
const SERIES: [&str; 2] = ["claude_series", "gemini_3_series"];

fn draw_op(seed: u64, step: u64) -> Op {
    let d = |what: u64, n: u64| index(seed, Stream::Sample, step * 16 + what, n);
    // Most sequences start on a seeded pool (one in five starts unseeded).
    if step == 0 && seed % 5 != 0 {
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
            series: SERIES[d(2, 2) as usize],
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
            let answer = pool.acquire(*k, *series, if *again { *last_ticket } else { None }).await;
            if let Ok(AcquireAnswer::Ready(a)) = &answer {
                *last_ticket = Some(a.ticket);
                return format!("{answer:?} token={}", a.token.expose());
            }
            format!("{answer:?}")
        }
        Op::Ban { slot, series, ahead } => {
            // Far from now either way, so the server's clock and the model's agree.
            let until = if *ahead { now_ms() + 3_600_000 } else { now_ms() - 3_600_000 };
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
        Op::Commit { slot, generation, owner } => {
            let token = Secret::new(format!("fresh-{step}"));
            format!("{:?}", pool.commit(*slot, *generation, &token, Some(7_000 + step as i64), owner).await)
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
