//! Loading the shared pool from the system of record: what the `fleet` strategy does when it
//! finds the pool empty (a fresh or restarted Redis), and what `credpool accounts import` does.
//!
//! The accounts file holds everything the shared pool can lose: each account's id, current
//! access token and expiry, disabled flag, and the series bans persisted with the 429s that set
//! them. Seeding writes the accounts (one script, so concurrent seeders cannot interleave: the
//! first wins, the others find the pool present), then writes back every ban still running, as
//! `max(old, new)`, so a ban is relearned from the file rather than from the next 429; a refresh
//! backoff still running is written back as a ban of [`EVERY_SERIES`], as the fleet keeps it.

use super::shared_pool::{SeedAccount, SeedAnswer, SharedPool, SharedResult, EVERY_SERIES};
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
    let mut bans = 0;
    if accounts.iter().any(|a| !running_bans(a, now).is_empty()) {
        for shared in pool.snapshot().await? {
            let Some(a) = accounts.iter().find(|a| a.id == shared.id) else {
                continue;
            };
            for (series, until) in running_bans(a, now) {
                pool.ban(shared.slot, series, until).await?;
                bans += 1;
            }
        }
    }
    Ok((answer, bans))
}

/// The bans of `account` still running at `now`, as the shared pool keeps them: each series'
/// ban, and a refresh backoff as a ban of [`EVERY_SERIES`].
fn running_bans(account: &Account, now: EpochMs) -> Vec<(&str, EpochMs)> {
    let series = account
        .bans
        .iter()
        .filter_map(|(series, until)| until.map(|u| (series.as_str(), u)));
    let backoff = account.refresh_backoff_until.map(|u| (EVERY_SERIES, u));
    series.chain(backoff).filter(|(_, until)| *until > now).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::fleet::ModelledPool;
    use std::time::Duration;

    #[tokio::test]
    async fn running_bans_and_a_running_backoff_are_written_back_and_expired_ones_not() {
        let now = chrono::Utc::now().timestamp_millis();
        let mut banned = Account::synthetic(0, now, 3600);
        banned.set_ban("claude_series", now + 60_000);
        banned.set_ban("gemini_3_series", now - 60_000);
        let mut backing_off = Account::synthetic(1, now, 3600);
        backing_off.refresh_backoff_until = Some(now + 5_000);
        let mut backed_off = Account::synthetic(2, now, 3600);
        backed_off.refresh_backoff_until = Some(now - 5_000);
        let pool = ModelledPool::new(Clock::wall(), Duration::ZERO);
        let (answer, bans) = seed_from(&pool, &[banned, backing_off, backed_off], now, false)
            .await
            .unwrap();
        assert_eq!((answer, bans), (SeedAnswer::Seeded(3), 2));
        let shared = pool.snapshot().await.unwrap();
        let kept: Vec<Vec<&str>> = shared
            .iter()
            .map(|a| a.bans.iter().map(|(s, _)| s.as_str()).collect())
            .collect();
        assert_eq!(kept, [vec!["claude_series"], vec![EVERY_SERIES], vec![]]);
    }
}
