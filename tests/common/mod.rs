//! Test doubles and fixtures shared by the strategy test files: a token endpoint on tokio's clock
//! that counts its calls and fails for chosen credentials, an [`Env`] over an in-memory store, and
//! ([`redis_server`]) a private `redis-server` per test.

#![allow(dead_code)] // each test file uses its own subset

pub mod redis_server;

use credpool::clock::Clock;
use credpool::costs::Costs;
use credpool::future::BoxFuture;
use credpool::model::{Account, AccountsFile, EpochMs, Policy, RefreshFailure, TokenGrant};
use credpool::secret::Secret;
use credpool::store::backend::MemoryBackend;
use credpool::store::{self, StoreMode};
use credpool::strategy::{Env, StrategyOptions};
use credpool::upstream::TokenEndpoint;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Epoch of the start of every test run (2025-11-24).
pub const T0: EpochMs = 1_764_000_000_000;
pub const MODEL: &str = "gemini-3-pro-preview";
pub const HOUR_MS: EpochMs = 3_600_000;

/// A token endpoint that answers after `latency` on tokio's clock, fails for the credentials in
/// `failing`, and counts calls per credential. Token `fresh-<credential>-<attempt>`, valid 1 h.
pub struct TokenDouble {
    latency: Duration,
    failing: HashSet<usize>,
    /// Per credential, how many of its first calls meet an outage (503) before it answers.
    outage_calls: HashMap<usize, u64>,
    calls: Vec<AtomicU64>,
}

impl TokenDouble {
    pub fn new(credentials: usize, latency: Duration, failing: &[usize]) -> Arc<Self> {
        Arc::new(TokenDouble {
            latency,
            failing: failing.iter().copied().collect(),
            outage_calls: HashMap::new(),
            calls: (0..credentials).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Like [`TokenDouble::new`] with no failing credential, but the first `calls` refreshes of
    /// each `(credential, calls)` in `outage` answer 503 (an outage, not a revoked token).
    pub fn with_outage(credentials: usize, latency: Duration, outage: &[(usize, u64)]) -> Arc<Self> {
        Arc::new(TokenDouble {
            latency,
            failing: HashSet::new(),
            outage_calls: outage.iter().copied().collect(),
            calls: (0..credentials).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Calls made for credential `i` (counted when the call starts).
    pub fn calls(&self, i: usize) -> u64 {
        self.calls[i].load(Ordering::SeqCst)
    }

    pub fn total_calls(&self) -> u64 {
        (0..self.calls.len()).map(|i| self.calls(i)).sum()
    }
}

/// Whether `token` is one the double issued for credential `i`.
pub fn issued_for(token: &Secret, i: usize) -> bool {
    token.expose().starts_with(&format!("fresh-{i}-"))
}

impl TokenEndpoint for TokenDouble {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        _refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            let before = self.calls[credential].fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.latency).await;
            if self.outage_calls.get(&credential).is_some_and(|&n| before < n) {
                Err(RefreshFailure::Server(503))
            } else if self.failing.contains(&credential) {
                Err(RefreshFailure::InvalidGrant)
            } else {
                Ok(TokenGrant {
                    access_token: Secret::new(format!("fresh-{credential}-{attempt}")),
                    expires_in: 3600,
                })
            }
        })
    }
}

/// A healthy account at [`T0`] (token valid for an hour).
pub fn healthy(i: usize) -> Account {
    Account::synthetic(i, T0, 3600)
}

/// An account whose token expired at [`T0`], holding the token `stale-<i>`.
pub fn expired(i: usize) -> Account {
    let mut a = Account::synthetic(i, T0 - HOUR_MS, 3600);
    a.access_token = Secret::new(format!("stale-{i}"));
    a
}

pub fn policy(calls_per_rotation: u64) -> Policy {
    Policy {
        calls_per_rotation,
        ..Policy::default()
    }
}

/// An [`Env`] over an in-memory `accounts.toml` holding `accounts`, with the clock at [`T0`].
pub struct Fixture {
    pub env: Env,
    pub backend: Arc<MemoryBackend>,
    pub tokens: Arc<TokenDouble>,
}

impl Fixture {
    pub fn new(accounts: Vec<Account>, policy: Policy, tokens: Arc<TokenDouble>) -> Fixture {
        Fixture::with(
            accounts,
            policy,
            tokens,
            StoreMode::Locked,
            Costs::default(),
            StrategyOptions::default(),
        )
    }

    pub fn with(
        accounts: Vec<Account>,
        policy: Policy,
        tokens: Arc<TokenDouble>,
        mode: StoreMode,
        costs: Costs,
        options: StrategyOptions,
    ) -> Fixture {
        let text = AccountsFile::from_accounts(accounts.clone()).to_toml_string();
        let backend = Arc::new(MemoryBackend::new(Some(text)));
        let store = store::open(mode, backend.clone(), costs.clone().without_file_costs());
        let env = Env {
            policy,
            accounts,
            costs,
            clock: Clock::starting_at(T0),
            store,
            tokens: tokens.clone(),
            options,
        };
        Fixture { env, backend, tokens }
    }

    /// The accounts as the store's file holds them now.
    pub fn persisted(&self) -> Vec<Account> {
        let text = self.backend.contents().expect("the accounts file exists");
        AccountsFile::parse(Path::new("memory:accounts.toml"), &text)
            .expect("the accounts file parses")
            .accounts
    }
}
