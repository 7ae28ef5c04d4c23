//! One OAuth credential, typed where credpool models a field.
//!
//! Only the fields that the policy reads or writes are here. Everything else in an account's
//! table (quota counters, project lists, fields of other proxy versions) stays in the
//! [`AccountsFile`](super::AccountsFile) document untouched, so a save never drops data.

use super::time::EpochMs;
use crate::secret::Secret;
use std::fmt;
use std::sync::Arc;

/// How an account is named in commands, reports and audits: its email, else its `user_id`,
/// else its position in the file (`#3`). Never a token.
///
/// Shared (`Arc<str>`), not owned, because every lease carries its account's id: cloning it must
/// not allocate on a strategy's hot path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub Arc<str>);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for AccountId {
    fn from(s: &str) -> Self {
        AccountId(s.into())
    }
}

impl From<String> for AccountId {
    fn from(s: String) -> Self {
        AccountId(s.into())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A credential and its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Account {
    pub id: AccountId,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// A disabled account is never handed out. Set by a failed refresh or an auto-ban code.
    pub disabled: bool,
    /// Token lifetime in seconds, from the last refresh. Missing means "refresh before use".
    pub expires_in: Option<i64>,
    /// When the token was obtained (epoch ms). Missing means "refresh before use".
    pub timestamp: Option<EpochMs>,
    /// HTTP error codes seen since the last success, in order, without repeats.
    pub error_codes: Vec<u16>,
    pub last_success: Option<String>,
    /// Series bans: (`claude_series`, until epoch ms). Read from keys `<series>_banned_until`;
    /// an empty string there means "not banned" and is kept as such.
    pub bans: Vec<(String, Option<EpochMs>)>,
    /// Requests completed on this account. The consistency audit counts lost updates with it.
    pub total_calls: u64,
    /// The policy's backed-off ban after a refresh failed with a 5xx or a timeout (see
    /// [`super::RefreshBackoff`]): the account is skipped until then, and its refresh is tried
    /// again after. In memory only (not a key of the file): a restart retries at once.
    pub refresh_backoff_until: Option<EpochMs>,
    /// Refreshes failed in a row with a 5xx or a timeout, which the backoff doubles by.
    pub refresh_failures: u32,
}

impl Account {
    /// A fresh account with a valid token, for simulations and tests.
    pub fn synthetic(index: usize, now: EpochMs, lifetime_s: i64) -> Account {
        Account {
            id: AccountId::from(format!("account{index}@example.com")),
            access_token: Secret::new(format!("sim-access-{index}-0")),
            refresh_token: Secret::new(format!("sim-refresh-{index}")),
            expires_in: Some(lifetime_s),
            timestamp: Some(now),
            ..Account::default()
        }
    }

    /// When the token expires (epoch ms), if both expiry fields are present.
    pub fn expires_at(&self) -> Option<EpochMs> {
        match (self.expires_in, self.timestamp) {
            (Some(e), Some(t)) => Some(t.saturating_add(e.saturating_mul(1000))),
            _ => None,
        }
    }

    /// Whether `series` is banned at `now`.
    pub fn is_banned(&self, series: &str, now: EpochMs) -> bool {
        self.bans
            .iter()
            .any(|(s, until)| s == series && until.is_some_and(|u| now < u))
    }

    /// Whether a backed-off refresh failure keeps this account out of selection at `now`.
    pub fn backing_off(&self, now: EpochMs) -> bool {
        self.refresh_backoff_until.is_some_and(|until| now < until)
    }

    pub fn ban_until(&self, series: &str) -> Option<EpochMs> {
        self.bans.iter().find(|(s, _)| s == series).and_then(|(_, u)| *u)
    }

    pub(crate) fn set_ban(&mut self, series: &str, until: EpochMs) {
        match self.bans.iter_mut().find(|(s, _)| s == series) {
            Some(entry) => entry.1 = Some(until),
            None => self.bans.push((series.to_string(), Some(until))),
        }
    }
}

/// The proxy's expiry rule on an expiry instant alone (what the fleet's shared state keeps): a
/// token expiring at `expires_at` must be refreshed at `now` when `now >= expires_at - margin`,
/// or when its expiry is unknown.
pub fn expires_within(expires_at: Option<EpochMs>, now: EpochMs, margin_ms: i64) -> bool {
    match expires_at {
        Some(at) => now >= at - margin_ms,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_within_the_margin_or_without_expiry_fields() {
        let mut a = Account::synthetic(0, 0, 3600);
        assert!(!expires_within(a.expires_at(), 0, 300_000));
        assert!(!expires_within(a.expires_at(), 3_299_999, 300_000));
        assert!(expires_within(a.expires_at(), 3_300_000, 300_000));
        a.timestamp = None;
        assert!(expires_within(a.expires_at(), 0, 300_000));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let a = Account::synthetic(0, 0, 3600);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("sim-access"));
        assert!(!dbg.contains("sim-refresh"));
    }

    #[test]
    fn bans_expire() {
        let mut a = Account::synthetic(0, 0, 3600);
        a.set_ban("claude_series", 1000);
        assert!(a.is_banned("claude_series", 999));
        assert!(!a.is_banned("claude_series", 1000));
        assert!(!a.is_banned("gemini_3_series", 0));
    }
}
