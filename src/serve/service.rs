//! Everything one running serve shares between its requests, built once from the [`Config`]:
//! the strategy (from the registry, on the wall clock, zero modelled costs), the real file store,
//! the token endpoint over HTTP, the lease table, the keys, the metrics.

use super::config::Config;
use super::expiry::ExpiryBook;
use super::keys::Keys;
use super::lease_id::LeaseIds;
use super::leases::LeaseTable;
use super::metrics::Metrics;
use super::served::{FleetBuild, Served};
use super::upstream_client::{upstream_client, UpstreamClient};
use super::watched_store::WatchedStore;
use crate::cli::check::parse_pool;
use crate::clock::Clock;
use crate::costs::Costs;
use crate::input_error::read_input;
use crate::model::{AccountId, Policy};
use crate::store::file_backend::FileBackend;
use crate::store::AccountStore;
use crate::strategy::{Env, StrategyOptions};
use crate::upstream::http::{HttpUpstream, OAuthClient};
use crate::upstream::TokenEndpoint;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

pub struct Service {
    pub config: Config,
    pub strategy: Arc<Served>,
    pub store: Arc<WatchedStore>,
    pub leases: Arc<LeaseTable>,
    pub ids: LeaseIds,
    pub expiry: Arc<ExpiryBook>,
    pub metrics: Metrics,
    pub policy: Policy,
    pub clock: Clock,
    /// Account id -> position in the pool (the strategy's index). Fixed for the process's life:
    /// serve never adds or removes accounts.
    pub index: HashMap<AccountId, usize>,
    pub keys: Option<Keys>,
    pub admin_keys: Option<Keys>,
    /// Set on SIGTERM/SIGINT: no new lease is handed out, completions are still taken.
    pub draining: AtomicBool,
    /// Numbers requests for the strategy ([`crate::strategy::Request::number`]).
    pub requests: AtomicU64,
    /// The reverse proxy's pooled client to `--api-url` (streams last: no overall timeout).
    pub upstream: UpstreamClient,
}

impl Service {
    /// Loads keys and accounts and builds the strategy. Nothing is written: a file that cannot be
    /// parsed is refused here, with its line and column, and left as it was.
    pub fn build(config: Config) -> Result<Service, String> {
        let keys = config
            .keys
            .as_deref()
            .map(Keys::load)
            .transpose()
            .map_err(|e| e.to_string())?;
        let admin_keys = config
            .admin_keys
            .as_deref()
            .map(Keys::load)
            .transpose()
            .map_err(|e| e.to_string())?;
        let text = read_input(&config.accounts).map_err(|e| e.to_string())?;
        let file = parse_pool(&config.accounts, &text).map_err(|e| e.to_string())?;
        let accounts = file.accounts;
        let backend = Arc::new(FileBackend::new(&config.accounts));
        let store = Arc::new(WatchedStore::new(crate::store::open(
            config.store,
            backend,
            Costs::default(),
        )));
        let clock = Clock::wall();
        let policy = Policy {
            calls_per_rotation: config.calls_per_rotation,
            ..Policy::default()
        };
        let oauth = OAuthClient {
            id: config.client_id.clone(),
            secret: config.client_secret.clone(),
        };
        let http = HttpUpstream::with_token_url(&config.api_url, &config.token_url, oauth, config.refresh_timeout)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let expiry = Arc::new(ExpiryBook::new(&accounts));
        let tokens = expiry.endpoint(Arc::new(http) as Arc<dyn TokenEndpoint>, clock);
        let index = accounts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        let env = Env {
            policy: policy.clone(),
            accounts,
            costs: Costs::default(),
            clock,
            store: store.clone() as Arc<dyn AccountStore>,
            tokens,
            options: StrategyOptions::default(),
        };
        let fleet = config.fleet.as_ref().map(|f| FleetBuild {
            redis_url: &f.redis_url,
            pool: &f.pool,
            lease_ttl: f.refresh_lease_ttl,
            refresh_timeout: config.refresh_timeout,
        });
        let strategy = Arc::new(Served::build(config.strategy, env, fleet)?);
        let leases = Arc::new(LeaseTable::new(config.lease_ttl, config.max_leases));
        let metrics = Metrics::new(strategy.clone(), store.clone(), leases.clone());
        let upstream = upstream_client();
        Ok(Service {
            ids: LeaseIds::open().map_err(|e| format!("/dev/urandom: {e}"))?,
            config,
            strategy,
            store,
            leases,
            expiry,
            metrics,
            policy,
            clock,
            index,
            keys,
            admin_keys,
            draining: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            upstream,
        })
    }

    /// The number a lease request goes by and the user key the `sharded` strategy shards on
    /// (FNV-1a of the user string: stable across restarts and processes).
    pub fn request(&self, model: &str, user: &str) -> crate::strategy::Request {
        let number = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut h: u32 = 0x811c_9dc5;
        for b in user.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        crate::strategy::Request::new(number, h, model)
    }
}
