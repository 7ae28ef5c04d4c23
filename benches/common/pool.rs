//! The pool the strategy benchmarks (`benches/strategies.rs`) and the hot-path profiling harness
//! (`examples/hot_path.rs`) run against: a few credentials on the wall clock, zero modelled
//! costs, outcomes not persisted, and a token endpoint in process that answers at once.

use credpool::clock::Clock;
use credpool::costs::Costs;
use credpool::future::BoxFuture;
use credpool::model::{Account, AccountsFile, Policy, RefreshFailure, TokenGrant};
use credpool::secret::Secret;
use credpool::store::backend::MemoryBackend;
use credpool::store::{self, StoreMode};
use credpool::strategy::{Env, StrategyOptions};
use credpool::upstream::TokenEndpoint;
use std::sync::Arc;

/// Credentials in the pool.
pub const CREDENTIALS: usize = 4;
/// Tokens valid for ten days: no refresh (not even ahead of expiry) during a benchmark.
pub const LONG_LIFETIME_S: i64 = 10 * 24 * 3600;

/// A token endpoint that answers at once: the refresh path's own cost, no network.
pub struct InstantTokens;

impl TokenEndpoint for InstantTokens {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        _refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            Ok(TokenGrant {
                access_token: Secret::new(format!("bench-{credential}-{attempt}")),
                expires_in: 3600,
            })
        })
    }
}

/// The inputs of every strategy: `accounts` on the wall clock, zero modelled costs, outcomes not
/// persisted, an in-memory `locked` store (written only by refreshes).
pub fn env(accounts: Vec<Account>, clock: Clock) -> Env {
    let text = AccountsFile::from_accounts(accounts.clone()).to_toml_string();
    let backend = Arc::new(MemoryBackend::new(Some(text)));
    Env {
        policy: Policy::default(),
        accounts,
        costs: Costs::default(),
        clock,
        store: store::open(StoreMode::Locked, backend, Costs::default()),
        tokens: Arc::new(InstantTokens),
        options: StrategyOptions {
            record_outcomes: false,
            ..StrategyOptions::default()
        },
    }
}

pub fn healthy_env() -> Env {
    let clock = Clock::wall();
    let now = clock.now_ms();
    env(
        (0..CREDENTIALS)
            .map(|i| Account::synthetic(i, now, LONG_LIFETIME_S))
            .collect(),
        clock,
    )
}

pub fn expired_env() -> Env {
    let clock = Clock::wall();
    let hour_ago = clock.now_ms() - 3_600_000;
    env(
        (0..CREDENTIALS)
            .map(|i| Account::synthetic(i, hour_ago, 3600))
            .collect(),
        clock,
    )
}
