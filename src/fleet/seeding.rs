//! Loading the shared pool from the system of record: what the `fleet` strategy does when it
//! finds the pool empty (a fresh or restarted Redis), and what `credpool accounts import` does.
//!
//! The accounts file holds everything the shared pool can lose: each account's id, current
//! access token and expiry, disabled flag, and the series bans persisted with the 429s that set
//! them. Seeding writes the accounts (one script, so concurrent seeders cannot interleave: the
//! first wins, the others find the pool present), then writes back every ban still running, as
//! `max(old, new)`, so a ban is relearned from the file rather than from the next 429.

use super::shared_pool::{SeedAccount, SeedAnswer, SharedPool, SharedResult};
use crate::model::{Account, EpochMs};

/// What the system of record says of `account`, for the shared pool.
pub fn seed_account(account: &Account) -> SeedAccount {
    SeedAccount {
        id: account.id.clone(),
        token: account.access_token.clone(),
        expires_at: account.expires_at(),
        disabled: account.disabled,
    }
}

/// The generation every account starts at when seeded at `now`: epoch microseconds, so a pool
/// seeded again after a restart starts above the generations handed out before it (as long as
/// fewer refreshes were committed per account than microseconds passed).
pub fn generation_base(now: EpochMs) -> u64 {
    (now.max(0) as u64).saturating_mul(1000)
}

/// Seeds `pool` with `accounts` (see [`SharedPool::seed`] for `add_missing`), then writes back
/// the bans still running at `now`. Returns what the seed did and how many bans were written.
pub async fn seed_from(
    pool: &dyn SharedPool,
    accounts: &[Account],
    now: EpochMs,
    add_missing: bool,
) -> SharedResult<(SeedAnswer, usize)> {
    let seeds: Vec<SeedAccount> = accounts.iter().map(seed_account).collect();
    let answer = pool.seed(&seeds, generation_base(now), add_missing).await?;
    let running = |a: &Account| a.bans.iter().any(|(_, until)| until.is_some_and(|u| u > now));
    let mut bans = 0;
    if accounts.iter().any(running) {
        for shared in pool.snapshot().await? {
            let Some(a) = accounts.iter().find(|a| a.id == shared.id) else {
                continue;
            };
            for (series, until) in &a.bans {
                if let Some(until) = until.filter(|u| *u > now) {
                    pool.ban(shared.slot, series, until).await?;
                    bans += 1;
                }
            }
        }
    }
    Ok((answer, bans))
}
