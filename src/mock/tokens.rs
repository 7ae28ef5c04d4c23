//! The mock's memory of every credential it knows: refresh tokens, the access tokens it issued
//! (account, generation, expiry) and revocations.
//!
//! Tokens are opaque random strings, never an encoding of the account: the mock answers from this
//! registry, as Google does, so a proxy that sends an old, foreign or made-up token is caught.
//! Generation 0 is the access token an account was seeded with; each successful refresh issues the
//! next generation. An older generation stays valid until its own expiry (Google does not revoke
//! a token when it issues another). Revoking an account revokes its refresh token and every access
//! token it was ever issued.
//!
//! One `RwLock` over the whole registry: API calls only read it (a shared lock, no allocation);
//! refreshes, seeding and revocation write, and are rare. Keys are never printed (no `Debug`).

use crate::model::EpochMs;
use crate::secret::Secret;
use crate::upstream::draw::{self, Stream};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the mock issued an access token as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issued {
    pub account: u32,
    pub generation: u32,
    pub expires_at_ms: EpochMs,
}

/// What an access token presented to the API is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid(Issued),
    /// Issued by the mock, but past its expiry.
    Expired(Issued),
    /// Issued by the mock to an account whose grant was revoked since.
    Revoked(Issued),
    /// Never issued by this mock.
    Unknown,
}

/// The answer to a refresh token presented to `/token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshCheck {
    /// Known and live: the account, and how many refreshes it had before this one (keys the
    /// upstream model's draws, as in virtual time).
    Live {
        account: u32,
        attempt: u64,
    },
    Revoked {
        account: u32,
    },
    Unknown,
}

/// A seeded account's credentials, for the harness to write into the target's accounts file.
#[derive(Clone, Debug)]
pub struct SeededAccount {
    pub index: u32,
    pub refresh_token: Secret,
    pub access_token: Secret,
    pub expires_at_ms: EpochMs,
}

struct AccountState {
    revoked: bool,
    /// The latest generation issued.
    generation: u32,
    /// Refresh requests seen (successful or not).
    refreshes: u64,
}

#[derive(Default)]
struct Inner {
    accounts: Vec<AccountState>,
    refresh: HashMap<Box<str>, u32>,
    access: HashMap<Box<str>, Issued>,
}

/// Every token the mock knows.
pub struct TokenRegistry {
    inner: RwLock<Inner>,
    /// Makes this process's tokens differ from another run's (not a secret: a mock's tokens only
    /// need to be unique and unguessable by accident).
    salt: u64,
    minted: AtomicU64,
}

impl Default for TokenRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenRegistry {
    pub fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        TokenRegistry {
            inner: RwLock::new(Inner::default()),
            salt: now ^ ((std::process::id() as u64) << 32),
            minted: AtomicU64::new(0),
        }
    }

    fn mint(&self, prefix: &str) -> String {
        let n = self.minted.fetch_add(1, Ordering::Relaxed);
        let a = draw::bits(self.salt, Stream::Token, n);
        let b = draw::bits(self.salt, Stream::Token, n ^ (1 << 63));
        format!("{prefix}{a:016x}{b:016x}")
    }

    /// A new account with a refresh token and a generation-0 access token expiring at
    /// `expires_at_ms` (in the past for an account whose token has already expired).
    pub fn seed(&self, expires_at_ms: EpochMs) -> SeededAccount {
        let refresh = self.mint("1//mock-");
        let access = self.mint("ya29.mock-");
        let mut inner = self.inner.write();
        let index = inner.accounts.len() as u32;
        inner.accounts.push(AccountState {
            revoked: false,
            generation: 0,
            refreshes: 0,
        });
        inner.refresh.insert(refresh.as_str().into(), index);
        let issued = Issued {
            account: index,
            generation: 0,
            expires_at_ms,
        };
        inner.access.insert(access.as_str().into(), issued);
        SeededAccount {
            index,
            refresh_token: Secret::new(refresh),
            access_token: Secret::new(access),
            expires_at_ms,
        }
    }

    /// Accounts seeded so far.
    pub fn accounts(&self) -> usize {
        self.inner.read().accounts.len()
    }

    /// Access tokens issued so far (seeded and refreshed).
    pub fn issued(&self) -> usize {
        self.inner.read().access.len()
    }

    /// When each access token issued so far expires, by (account, generation): for audits that
    /// ask what token an account held at some instant.
    pub fn expiries(&self) -> std::collections::HashMap<(u32, u32), EpochMs> {
        self.inner
            .read()
            .access
            .values()
            .map(|i| ((i.account, i.generation), i.expires_at_ms))
            .collect()
    }

    /// Revokes `account`'s grant: its refresh token answers `invalid_grant` and every access
    /// token it was issued answers 401. `false` when there is no such account.
    pub fn revoke(&self, account: u32) -> bool {
        match self.inner.write().accounts.get_mut(account as usize) {
            Some(a) => {
                a.revoked = true;
                true
            }
            None => false,
        }
    }

    /// What `token` is at `now_ms`.
    pub fn check(&self, token: &str, now_ms: EpochMs) -> TokenCheck {
        let inner = self.inner.read();
        let Some(&issued) = inner.access.get(token) else {
            return TokenCheck::Unknown;
        };
        if inner.accounts[issued.account as usize].revoked {
            TokenCheck::Revoked(issued)
        } else if now_ms >= issued.expires_at_ms {
            TokenCheck::Expired(issued)
        } else {
            TokenCheck::Valid(issued)
        }
    }

    /// Looks up a refresh token and counts the attempt.
    pub fn begin_refresh(&self, refresh_token: &str) -> RefreshCheck {
        let mut inner = self.inner.write();
        let Some(&account) = inner.refresh.get(refresh_token) else {
            return RefreshCheck::Unknown;
        };
        let a = &mut inner.accounts[account as usize];
        if a.revoked {
            return RefreshCheck::Revoked { account };
        }
        let attempt = a.refreshes;
        a.refreshes += 1;
        RefreshCheck::Live { account, attempt }
    }

    /// Issues `account`'s next generation, valid until `expires_at_ms`. `None` if the account was
    /// revoked while the refresh was in flight.
    pub fn issue(&self, account: u32, expires_at_ms: EpochMs) -> Option<(Secret, Issued)> {
        let token = self.mint("ya29.mock-");
        let mut inner = self.inner.write();
        let a = inner.accounts.get_mut(account as usize)?;
        if a.revoked {
            return None;
        }
        a.generation += 1;
        let issued = Issued {
            account,
            generation: a.generation,
            expires_at_ms,
        };
        inner.access.insert(token.as_str().into(), issued);
        Some((Secret::new(token), issued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_know_their_account_generation_and_expiry() {
        let r = TokenRegistry::new();
        let a = r.seed(1_000);
        let b = r.seed(5_000);
        assert_ne!(a.access_token, b.access_token);
        assert_eq!(
            r.check(b.access_token.expose(), 999),
            TokenCheck::Valid(Issued {
                account: 1,
                generation: 0,
                expires_at_ms: 5_000
            })
        );
        assert!(matches!(
            r.check(a.access_token.expose(), 1_000),
            TokenCheck::Expired(_)
        ));
        assert_eq!(r.check("ya29.made-up", 0), TokenCheck::Unknown);
        assert_eq!(
            r.begin_refresh(a.refresh_token.expose()),
            RefreshCheck::Live { account: 0, attempt: 0 }
        );
        let (t1, i1) = r.issue(0, 9_000).unwrap();
        assert_eq!(i1.generation, 1);
        assert!(matches!(r.check(t1.expose(), 2_000), TokenCheck::Valid(_)));
        assert!(r.revoke(0));
        assert!(matches!(r.check(t1.expose(), 2_000), TokenCheck::Revoked(_)));
        assert_eq!(
            r.begin_refresh(a.refresh_token.expose()),
            RefreshCheck::Revoked { account: 0 }
        );
        assert!(r.issue(0, 9_000).is_none());
        assert!(!r.revoke(7));
    }
}
