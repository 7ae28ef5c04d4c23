//! State changes as data.
//!
//! The pool decides a [`Change`] once; the same value is applied to the in-memory state and handed
//! to the store to persist. Because a change is data and not a closure, the store can batch it
//! (group commit), the audit can count it, and a lost update is a change that was acknowledged but
//! is not in the file.

use super::account::Account;
use super::time::{to_plain, EpochMs};
use crate::secret::Secret;

/// What the upstream API said about a request made with a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// HTTP 429, with what its body said about when to retry.
    RateLimited {
        /// `quotaResetTimeStamp`-style absolute reset time, epoch ms.
        reset_at: Option<EpochMs>,
        /// `retryDelay`-style relative delay, ms.
        retry_delay_ms: Option<i64>,
        /// `quotaResetDelay` as the body wrote it, when it had one: credpool reads it into
        /// `retry_delay_ms`; `as_shipped` reads it again with the shipped proxy's parser.
        quota_reset_delay: Option<String>,
    },
    /// Any other HTTP status: 401, 403, 404, 5xx.
    Status(u16),
}

impl Outcome {
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Success => 200,
            Outcome::RateLimited { .. } => 429,
            Outcome::Status(s) => *s,
        }
    }
}

/// A new token from the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub expires_in: i64,
}

/// Why a refresh failed. Every kind disables the account (the proxy does not retry).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefreshFailure {
    #[error("token endpoint said invalid_grant")]
    InvalidGrant,
    #[error("token endpoint answered HTTP {0}")]
    Server(u16),
    #[error("token endpoint timed out")]
    Timeout,
    #[error("token endpoint unreachable: {0}")]
    Network(String),
    #[error("account has no refresh token")]
    NoRefreshToken,
}

/// One change to one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A request succeeded: clear `error_codes`, set `last_success`, count the call.
    Success { at: EpochMs },
    /// A request failed with `code`: record it, count the call, maybe ban a series or disable.
    Error {
        code: u16,
        ban: Option<(String, EpochMs)>,
        disable: bool,
    },
    /// A refresh succeeded.
    Refreshed { grant: TokenGrant, at: EpochMs },
    /// Disabled by a failed refresh or by an operator.
    Disabled,
    /// A refresh failed with a 5xx or a timeout and the policy backs off instead of disabling
    /// ([`super::RefreshBackoff`]): skipped for `first_ms` doubled per failure in a row, at most
    /// `max_ms`, from `at`.
    RefreshBackedOff { at: EpochMs, first_ms: i64, max_ms: i64 },
    /// Re-enabled by an operator.
    Enabled,
}

impl Change {
    /// Whether this change counts one completed request (what the audit counts).
    pub fn counts_a_call(&self) -> bool {
        matches!(self, Change::Success { .. } | Change::Error { .. })
    }

    pub fn disables(&self) -> bool {
        matches!(self, Change::Disabled | Change::Error { disable: true, .. })
    }

    /// Whether this change can alter what [`PoolState::select`](super::PoolState::select) picks
    /// (a disable, a ban, a new token). Plain success/error bookkeeping cannot, so a strategy may
    /// record it without taking its selection lock, as the proxy's router does.
    pub fn affects_selection(&self) -> bool {
        match self {
            Change::Success { .. } => false,
            Change::Error { ban, disable, .. } => ban.is_some() || *disable,
            Change::Refreshed { .. } | Change::Disabled | Change::Enabled | Change::RefreshBackedOff { .. } => true,
        }
    }
}

impl Account {
    /// Applies a change. The same function serves the in-memory pool and every store mode.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Success { at } => {
                self.error_codes.clear();
                self.last_success = Some(to_plain(*at));
                self.total_calls += 1;
            }
            Change::Error { code, ban, disable } => {
                if !self.error_codes.contains(code) {
                    self.error_codes.push(*code);
                }
                if let Some((series, until)) = ban {
                    self.set_ban(series, *until);
                }
                if *disable {
                    self.disabled = true;
                }
                self.total_calls += 1;
            }
            Change::Refreshed { grant, at } => {
                self.access_token = grant.access_token.clone();
                self.expires_in = Some(grant.expires_in);
                self.timestamp = Some(*at);
                self.refresh_backoff_until = None;
                self.refresh_failures = 0;
            }
            Change::RefreshBackedOff { at, first_ms, max_ms } => {
                let doubling = self.refresh_failures.min(32);
                let span = first_ms.saturating_mul(1_i64 << doubling).min(*max_ms);
                self.refresh_failures = self.refresh_failures.saturating_add(1);
                self.refresh_backoff_until = Some(at.saturating_add(span));
            }
            Change::Disabled => self.disabled = true,
            Change::Enabled => self.disabled = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_clears_error_codes_and_counts() {
        let mut a = Account::synthetic(0, 0, 3600);
        a.apply(&Change::Error {
            code: 500,
            ban: None,
            disable: false,
        });
        a.apply(&Change::Error {
            code: 500,
            ban: None,
            disable: false,
        });
        assert_eq!(a.error_codes, vec![500]);
        a.apply(&Change::Success { at: 1_764_395_921_000 });
        assert!(a.error_codes.is_empty());
        assert_eq!(a.last_success.as_deref(), Some("2025-11-29 05:58:41"));
        assert_eq!(a.total_calls, 3);
    }

    #[test]
    fn refresh_updates_token_and_expiry() {
        let mut a = Account::synthetic(0, 0, 3600);
        let grant = TokenGrant {
            access_token: Secret::new("new"),
            expires_in: 10,
        };
        a.apply(&Change::Refreshed { grant, at: 5 });
        assert_eq!(a.access_token.expose(), "new");
        assert_eq!(a.expires_at(), Some(10_005));
    }
}
