//! [`RedisPool`]: the [`SharedPool`] on a real Redis, one Lua script per operation.
//!
//! Each operation is one `EVALSHA` of its script (`src/fleet/scripts/*.lua`, compiled in with
//! `include_str!`) on one multiplexed connection ([`ConnectionManager`], which reconnects by
//! itself). A server that lost its script cache (a restart, `SCRIPT FLUSH`) answers `NOSCRIPT`;
//! redis-rs's [`Script`] then loads the script and sends it again, once. A script runs atomically
//! on the server, so no other client's command interleaves with it: that is why these are Lua
//! scripts and not `WATCH`/`MULTI` (a `WATCH` belongs to one connection, and a multiplexed one is
//! shared by every request of the instance; a `MULTI` cannot branch on what it reads).
//!
//! Timeouts: a command without an answer within the response timeout is
//! [`SharedError::Ambiguous`] (it may have been applied); a connection that cannot be made is
//! [`SharedError::Unreachable`].
//!
//! **Reconnect after a response timeout.** `ConnectionManager` reconnects only when its
//! connection reports an error (reset, EOF); a response timeout is not one (redis-rs 1.8 files it
//! as "retry immediately"), so a connection on a dead path that never resets (a blackhole, a
//! partitioned peer) would be kept, and every later command would time out on it forever, even
//! once the network is back. Here a timeout replaces the connection with a fresh one (made
//! lazily, on the next command): tested by `tests/fleet_serve.rs` through the fault proxy, where
//! the instance never left degraded mode before this (one connection made, ever).

use super::keys::Keys;
use super::reply::Reply;
use super::shared_pool::{
    AcquireAnswer, Acquired, CommitAnswer, LeaseAnswer, SeedAccount, SeedAnswer, SharedAccount, SharedError,
    SharedPool, SharedResult, WriteAnswer,
};
use crate::future::BoxFuture;
use crate::model::{AccountId, EpochMs};
use crate::secret::Secret;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, Script, ScriptInvocation, Value};
use std::sync::Mutex;
use std::time::Duration;

/// The scripts, one per operation, hashed once.
struct Scripts {
    acquire: Script,
    ban: Script,
    disable: Script,
    enable: Script,
    lease: Script,
    release: Script,
    commit: Script,
    delete: Script,
    seed: Script,
    snapshot: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            acquire: Script::new(include_str!("scripts/acquire.lua")),
            ban: Script::new(include_str!("scripts/ban.lua")),
            disable: Script::new(include_str!("scripts/disable.lua")),
            enable: Script::new(include_str!("scripts/enable.lua")),
            lease: Script::new(include_str!("scripts/lease.lua")),
            release: Script::new(include_str!("scripts/release.lua")),
            commit: Script::new(include_str!("scripts/commit.lua")),
            delete: Script::new(include_str!("scripts/delete.lua")),
            seed: Script::new(include_str!("scripts/seed.lua")),
            snapshot: Script::new(include_str!("scripts/snapshot.lua")),
        }
    }
}

/// How long to wait for Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// For an answer to a command already sent (then: [`SharedError::Ambiguous`]).
    pub response: Duration,
    /// For a connection to be made.
    pub connect: Duration,
}

impl Default for RedisTimeouts {
    /// Short: a proxy in front of users cannot wait for a Redis that is gone; it goes degraded.
    fn default() -> Self {
        RedisTimeouts {
            response: Duration::from_millis(500),
            connect: Duration::from_millis(500),
        }
    }
}

/// The shared pool `pool` on the Redis at a `redis://` URL.
pub struct RedisPool {
    /// Cloned per operation: clones share one multiplexed connection. Numbered, so that of
    /// several operations that time out on one connection only the first replaces it.
    conn: Mutex<(u64, ConnectionManager)>,
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    keys: Keys,
    scripts: Scripts,
}

impl RedisPool {
    /// Connects lazily: an instance may start while Redis is down (and run degraded). Call it
    /// inside a tokio runtime (the connection's tasks are spawned on it).
    pub fn open(url: &str, pool: &str, timeouts: RedisTimeouts) -> Result<RedisPool, String> {
        super::keys::valid_pool_name(pool)?;
        let client = ::redis::Client::open(url).map_err(|e| format!("redis URL {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeouts.response))
            .set_connection_timeout(Some(timeouts.connect))
            // One quick retry of a dropped connection, then the error goes to the caller (which
            // goes degraded and probes again later).
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| format!("redis URL {url:?}: {e}"))?;
        Ok(RedisPool {
            conn: Mutex::new((0, conn)),
            client,
            config,
            keys: Keys::new(pool),
            scripts: Scripts::new(),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs one script invocation (EVALSHA; on NOSCRIPT the script is loaded and run again).
    async fn run(&self, script: &'static str, invocation: &ScriptInvocation<'_>) -> SharedResult<Reply> {
        let value: Value = self.invoke(invocation).await?;
        Reply::new(script, value)
    }

    /// One invocation on the current connection; a response timeout replaces the connection.
    async fn invoke<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> SharedResult<T> {
        let (epoch, mut conn) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match invocation.invoke_async(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_timeout() {
                    self.reconnect(epoch);
                }
                Err(classify(e))
            }
        }
    }

    /// Replaces connection `epoch` (if it is still the current one) with a new lazy one; the old
    /// one closes when the last operation holding a clone of it ends.
    fn reconnect(&self, epoch: u64) {
        let mut current = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != epoch {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(fresh) => {
                *current = (epoch + 1, fresh);
                tracing::info!("fleet: Redis response timeout, the connection is replaced");
            }
            Err(e) => tracing::warn!(error = %e, "fleet: cannot make a new Redis connection"),
        }
    }
}

/// Maps a redis-rs error to what the caller can do about it. The message never holds arguments
/// (tokens travel as arguments): redis-rs errors carry the server's message, not the command.
fn classify(e: ::redis::RedisError) -> SharedError {
    if e.is_timeout() {
        SharedError::Ambiguous
    } else if e.is_connection_refusal() {
        SharedError::Unreachable(e.to_string())
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
        // The command may have gone out before the connection broke.
        SharedError::Ambiguous
    } else {
        SharedError::Protocol(e.to_string())
    }
}

fn ms_arg(ms: Option<EpochMs>) -> String {
    ms.map(|m| m.to_string()).unwrap_or_default()
}

fn write_answer(mut r: Reply, with_until: bool) -> SharedResult<WriteAnswer> {
    match r.string("the answer")?.as_str() {
        "gone" => Ok(WriteAnswer::Gone),
        "done" => Ok(WriteAnswer::Done {
            ban_until: if with_until {
                r.optional_ms("the ban deadline")?
            } else {
                None
            },
        }),
        other => Err(r.unknown(other)),
    }
}

impl SharedPool for RedisPool {
    fn acquire<'a>(
        &'a self,
        calls_per_rotation: u64,
        series: Option<&'a str>,
        again: Option<u64>,
    ) -> BoxFuture<'a, SharedResult<AcquireAnswer>> {
        Box::pin(async move {
            let k = &self.keys;
            let mut inv = self.scripts.acquire.prepare_invoke();
            inv.key(&k.meta)
                .key(&k.ids)
                .key(&k.tok)
                .key(&k.gen)
                .key(&k.exp)
                .key(&k.dis)
                .key(&k.bans)
                .key(&k.ticket)
                .arg(calls_per_rotation)
                .arg(series.unwrap_or(""))
                .arg(again.map(|t| t.to_string()).unwrap_or_default());
            let mut r = self.run("acquire", &inv).await?;
            match r.string("the answer")?.as_str() {
                "unseeded" => Ok(AcquireAnswer::Unseeded),
                "exhausted" => Ok(AcquireAnswer::Exhausted),
                "ready" => Ok(AcquireAnswer::Ready(Acquired {
                    ticket: r.uint("the ticket")?,
                    slot: r.uint("the slot")?,
                    id: AccountId::from(r.string("the id")?),
                    token: Secret::new(r.optional_string("the token")?.unwrap_or_default()),
                    generation: r.uint("the generation")?,
                    expires_at: r.optional_ms("the expiry")?,
                })),
                other => Err(r.unknown(other)),
            }
        })
    }

    fn ban<'a>(&'a self, slot: u64, series: &'a str, until: EpochMs) -> BoxFuture<'a, SharedResult<WriteAnswer>> {
        Box::pin(async move {
            let mut inv = self.scripts.ban.prepare_invoke();
            inv.key(&self.keys.ids)
                .key(&self.keys.bans)
                .arg(slot)
                .arg(series)
                .arg(until);
            write_answer(self.run("ban", &inv).await?, true)
        })
    }

    fn disable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>> {
        Box::pin(async move {
            let mut inv = self.scripts.disable.prepare_invoke();
            inv.key(&self.keys.ids).key(&self.keys.dis).arg(slot);
            write_answer(self.run("disable", &inv).await?, false)
        })
    }

    fn enable(&self, slot: u64) -> BoxFuture<'_, SharedResult<WriteAnswer>> {
        Box::pin(async move {
            let mut inv = self.scripts.enable.prepare_invoke();
            inv.key(&self.keys.ids).key(&self.keys.dis).arg(slot);
            write_answer(self.run("enable", &inv).await?, false)
        })
    }

    fn lease<'a>(
        &'a self,
        slot: u64,
        owner: &'a str,
        ttl: Duration,
        seen: u64,
    ) -> BoxFuture<'a, SharedResult<LeaseAnswer>> {
        Box::pin(async move {
            let mut inv = self.scripts.lease.prepare_invoke();
            inv.key(&self.keys.ids)
                .key(&self.keys.gen)
                .key(self.keys.lease(slot))
                .key(&self.keys.dis)
                .arg(slot)
                .arg(owner)
                .arg(ttl.as_millis().max(1) as u64)
                .arg(seen);
            let mut r = self.run("lease", &inv).await?;
            let tag = r.string("the answer")?;
            match tag.as_str() {
                "gone" => return Ok(LeaseAnswer::Gone),
                "disabled" => return Ok(LeaseAnswer::Disabled),
                _ => {}
            }
            let generation = r.uint("the generation")?;
            match tag.as_str() {
                "acquired" => Ok(LeaseAnswer::Acquired { generation }),
                "held" => Ok(LeaseAnswer::Held { generation }),
                "stale" => Ok(LeaseAnswer::Stale { generation }),
                other => Err(r.unknown(other)),
            }
        })
    }

    fn release<'a>(&'a self, slot: u64, owner: &'a str) -> BoxFuture<'a, SharedResult<bool>> {
        Box::pin(async move {
            let mut inv = self.scripts.release.prepare_invoke();
            inv.key(self.keys.lease(slot)).arg(owner);
            let released: i64 = self.invoke(&inv).await?;
            Ok(released == 1)
        })
    }

    fn commit<'a>(
        &'a self,
        slot: u64,
        generation: u64,
        token: &'a Secret,
        expires_at: Option<EpochMs>,
        owner: &'a str,
    ) -> BoxFuture<'a, SharedResult<CommitAnswer>> {
        Box::pin(async move {
            let k = &self.keys;
            let mut inv = self.scripts.commit.prepare_invoke();
            inv.key(&k.ids)
                .key(&k.tok)
                .key(&k.gen)
                .key(&k.exp)
                .key(k.lease(slot))
                .key(&k.by)
                .arg(slot)
                .arg(generation)
                .arg(token.expose())
                .arg(ms_arg(expires_at))
                .arg(owner);
            let mut r = self.run("commit", &inv).await?;
            let tag = r.string("the answer")?;
            if tag == "gone" {
                return Ok(CommitAnswer::Gone);
            }
            let generation = r.uint("the generation")?;
            match tag.as_str() {
                "committed" => Ok(CommitAnswer::Committed { generation }),
                "stale" => Ok(CommitAnswer::Stale { generation }),
                other => Err(r.unknown(other)),
            }
        })
    }

    fn delete<'a>(&'a self, slot: u64, series: &'a [String]) -> BoxFuture<'a, SharedResult<bool>> {
        Box::pin(async move {
            let k = &self.keys;
            let mut inv = self.scripts.delete.prepare_invoke();
            inv.key(&k.ids)
                .key(&k.tok)
                .key(&k.gen)
                .key(&k.exp)
                .key(&k.dis)
                .key(&k.by)
                .key(&k.bans)
                .key(k.lease(slot))
                .arg(slot);
            for s in series {
                inv.arg(s.as_str());
            }
            let existed: i64 = self.invoke(&inv).await?;
            Ok(existed == 1)
        })
    }

    fn seed<'a>(
        &'a self,
        accounts: &'a [SeedAccount],
        generation_base: u64,
        add_missing: bool,
    ) -> BoxFuture<'a, SharedResult<SeedAnswer>> {
        Box::pin(async move {
            let k = &self.keys;
            let mut inv = self.scripts.seed.prepare_invoke();
            inv.key(&k.meta)
                .key(&k.ids)
                .key(&k.tok)
                .key(&k.gen)
                .key(&k.exp)
                .key(&k.dis)
                .arg(generation_base)
                .arg(if add_missing { "1" } else { "0" });
            for a in accounts {
                inv.arg(a.id.as_str())
                    .arg(a.token.expose())
                    .arg(ms_arg(a.expires_at))
                    .arg(if a.disabled { "1" } else { "0" });
            }
            let mut r = self.run("seed", &inv).await?;
            let tag = r.string("the answer")?;
            let n = r.uint("the count")?;
            match tag.as_str() {
                "seeded" => Ok(SeedAnswer::Seeded(n)),
                "present" => Ok(SeedAnswer::Present(n)),
                "added" => Ok(SeedAnswer::Added(n)),
                other => Err(r.unknown(other)),
            }
        })
    }

    fn snapshot(&self) -> BoxFuture<'_, SharedResult<Vec<SharedAccount>>> {
        Box::pin(async move {
            let k = &self.keys;
            let mut inv = self.scripts.snapshot.prepare_invoke();
            inv.key(&k.meta)
                .key(&k.ids)
                .key(&k.tok)
                .key(&k.gen)
                .key(&k.exp)
                .key(&k.dis)
                .key(&k.bans);
            let mut r = self.run("snapshot", &inv).await?;
            let mut rows = r.nested("the accounts")?;
            let mut bans = r.nested("the bans")?;
            let mut accounts = Vec::new();
            while rows.remaining() > 0 {
                let mut row = rows.nested("an account")?;
                accounts.push(SharedAccount {
                    slot: row.uint("the slot")?,
                    id: AccountId::from(row.string("the id")?),
                    token: Secret::new(row.optional_string("the token")?.unwrap_or_default()),
                    generation: row.uint("the generation")?,
                    expires_at: row.optional_ms("the expiry")?,
                    disabled: row.int("the disabled flag")? == 1,
                    bans: Vec::new(),
                });
            }
            while bans.remaining() > 0 {
                let field = bans.string("a ban's field")?;
                let until = bans.int("a ban's deadline")?;
                let Some((slot, series)) = field.split_once('|') else {
                    return Err(bans.unknown(&field));
                };
                let slot: u64 = slot.parse().map_err(|_| bans.unknown(&field))?;
                if let Some(a) = accounts.iter_mut().find(|a| a.slot == slot) {
                    a.bans.push((series.to_string(), until));
                }
            }
            for a in &mut accounts {
                a.bans.sort();
            }
            Ok(accounts)
        })
    }
}
