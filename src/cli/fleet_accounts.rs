//! `credpool accounts import FILE --redis URL` and `credpool accounts export --redis URL FILE`:
//! moving accounts between the system of record (an accounts file) and a fleet's shared pool.
//!
//! `import` validates FILE exactly as `check` does (a file that does not parse, or holds no
//! account, is refused with its line and column, and Redis is not touched), then seeds the pool
//! (an empty pool gets every account; a present one only the ids it lacks: import adds, never
//! removes or overwrites) and writes back the bans still running. `export` writes what the
//! shared pool holds to a new file, mode 0600 through the store's atomic write (temp file,
//! fsync, rename, directory fsync); it never replaces an existing file, since that would put
//! soft state over a system of record. Refresh tokens are not in Redis, so an exported file has
//! none. No output of either command contains a token.

use super::accounts::read_pool;
use super::{CliResult, Failure};
use crate::fleet::{seeding, RedisPool, RedisTimeouts, SeedAnswer, SharedPool};
use crate::model::{Account, AccountsFile};
use crate::store::backend::{AtomicWrite, Backend};
use crate::store::file_backend::FileBackend;
use std::path::Path;
use std::time::Duration;

/// The pool name when none is given.
pub const DEFAULT_POOL: &str = "credpool";

/// Checks a Redis URL before anything connects: `redis://host[:port][/db]` or
/// `redis+unix:///path` (no TLS: the crate is built without it).
pub fn check_redis_url(url: &str) -> Result<(), Failure> {
    let ok_scheme = url.starts_with("redis://") || url.starts_with("redis+unix://") || url.starts_with("unix://");
    if !ok_scheme {
        return Err(Failure::BadInput(format!(
            "--redis {url:?}: expected a URL of the form redis://HOST[:PORT][/DB] or redis+unix:///PATH"
        )));
    }
    ::redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| Failure::BadInput(format!("--redis {url:?}: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))
}

fn open(url: &str, pool: &str) -> Result<RedisPool, Failure> {
    check_redis_url(url)?;
    let timeouts = RedisTimeouts {
        response: Duration::from_secs(5),
        connect: Duration::from_secs(5),
    };
    RedisPool::open(url, pool, timeouts).map_err(|e| Failure::BadInput(format!("--pool/--redis: {e}")))
}

pub fn import(file: &Path, url: &str, pool: &str) -> CliResult {
    let accounts = read_pool(file)?.accounts;
    let runtime = runtime()?;
    let _inside = runtime.enter();
    let shared = open(url, pool)?;
    let now = chrono::Utc::now().timestamp_millis();
    let (answer, bans) = runtime
        .block_on(seeding::seed_from(&shared, &accounts, now, true))
        .map_err(|e| Failure::BadInput(format!("{url}: {e}; nothing was imported")))?;
    match answer {
        SeedAnswer::Seeded(n) => println!("{}: {n} account(s) loaded into pool {pool:?} ({bans} ban(s) running)", file.display()),
        SeedAnswer::Added(n) | SeedAnswer::Present(n) => println!(
            "{}: pool {pool:?} was there; {n} account(s) it lacked added, the others left as they are ({bans} ban(s) running written as max(old, new))",
            file.display()
        ),
    }
    Ok(())
}

pub fn export(url: &str, file: &Path, pool: &str) -> CliResult {
    if file.exists() {
        return Err(Failure::BadInput(format!(
            "{}: exists: export writes a new file and never replaces one (an accounts file is the \
             system of record; the shared pool is soft state)",
            file.display()
        )));
    }
    let runtime = runtime()?;
    let _inside = runtime.enter();
    let shared = open(url, pool)?;
    let snapshot = runtime
        .block_on(shared.snapshot())
        .map_err(|e| Failure::BadInput(format!("{url}: {e}; nothing was written")))?;
    if snapshot.is_empty() {
        return Err(Failure::BadInput(format!(
            "pool {pool:?} at {url} holds no account: expected an imported (or seeded) pool; nothing was written"
        )));
    }
    let accounts: Vec<Account> = snapshot
        .into_iter()
        .map(|a| Account {
            id: a.id,
            access_token: a.token,
            disabled: a.disabled,
            // The shared pool keeps the expiry instant only: `timestamp` is that instant and
            // `expires_in` 0, which the expiry rule reads exactly.
            expires_in: a.expires_at.map(|_| 0),
            timestamp: a.expires_at,
            bans: a
                .bans
                .into_iter()
                .map(|(series, until)| (series, Some(until)))
                .collect(),
            ..Account::default()
        })
        .collect();
    let text = AccountsFile::from_accounts(accounts).to_toml_string();
    let backend = FileBackend::new(file);
    let written = backend.lock_cross_process().and_then(|_guard| {
        backend.write_atomic(
            &text,
            AtomicWrite {
                fsync: true,
                backup: false,
            },
        )
    });
    written.map_err(|e| Failure::BadInput(format!("{}: cannot write: {e}", file.display())))?;
    let n = read_pool(file)?.accounts.len();
    println!(
        "{}: {n} account(s) of pool {pool:?} written (mode 0600; no refresh tokens: they stay in the system of record)",
        file.display()
    );
    Ok(())
}
