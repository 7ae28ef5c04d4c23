//! The shipped clear of an expired series ban: a file write on every request once a ban is over.
//!
//! When `get_valid_credential` finds the account's `<series>_banned_until` in the past, the
//! shipped code clears it in `accounts.toml` (a load and an unlocked save, under
//! `_operation_lock`) but never in its in-memory copy. The next request finds the same expired
//! value in memory and clears the file again: from the moment a ban expires, every request on
//! that account rewrites the whole file, until the process restarts or the account is banned
//! anew. Measurable as the run's `store_writes` (every write of the replica is reported to the
//! store's tally), which grows with the requests served after the expiry.

use super::{step, AsShipped};
use crate::costs::Step;
use crate::metrics::steps;
use crate::model::{Account, AccountId, EpochMs};
use crate::strategy::env::Counters;

/// Whether `account` holds a ban on `series` that is over at `now` (a value, not cleared).
pub(super) fn has_expired_ban(account: &Account, series: &str, now: EpochMs) -> bool {
    account.ban_until(series).is_some_and(|until| now >= until)
}

impl AsShipped {
    /// Clears `id`'s ban on `series` in the file: load, set `""`, save with no lock. The
    /// in-memory value is left as it was, as shipped.
    pub(super) async fn clear_expired_ban(&self, id: &AccountId, series: &str) {
        steps::enter(step::CLEARING_EXPIRED_BAN);
        match self.storage.load_accounts().await {
            Ok(mut file) => {
                if let Some(i) = file.find(id) {
                    if let Some(ban) = file.accounts[i].bans.iter_mut().find(|(s, _)| s == series) {
                        ban.1 = None;
                    }
                }
                if self.storage.save_accounts(&mut file).await.is_err() {
                    Counters::bump(&self.counters.store_errors);
                }
            }
            Err(_) => Counters::bump(&self.counters.store_errors),
        }
        // "Series ban expired, cleared".
        self.event_loop.enter().await.repeat(Step::LogLine, 1).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_ban_that_is_over_counts_as_expired() {
        let mut a = Account::synthetic(0, 0, 3600);
        assert!(!has_expired_ban(&a, "claude_series", 10));
        a.set_ban("claude_series", 10);
        assert!(!has_expired_ban(&a, "claude_series", 9));
        assert!(has_expired_ban(&a, "claude_series", 10));
        assert!(!has_expired_ban(&a, "gemini_3_series", 10));
    }
}
