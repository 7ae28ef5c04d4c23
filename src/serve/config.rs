//! `credpool serve`'s settings: from the command line, from a TOML config file, or the defaults,
//! in that order of precedence, validated into one [`Config`] before anything starts.
//!
//! The config file is as strict as a scenario file: unknown keys, wrong types and bad values are
//! refused with file:line:column and a sentence saying what is expected. Every key has the name
//! of its flag with `_` for `-` (`--lease-ttl` is `lease_ttl`).

use super::served::ServedName;
use crate::duration::Span;
use crate::input_error::{read_input, InputError};
use crate::store::StoreMode;
use crate::strategy::StrategyName;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Google's OAuth token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's Code Assist API, which serves both the `v1beta/models/*` and `v1internal:*` paths
/// to OAuth tokens of Gemini CLI accounts.
pub const GOOGLE_API_URL: &str = "https://cloudcode-pa.googleapis.com";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Leases in flight at most: memory stays bounded whatever clients do (a lease is a few hundred
/// bytes; a client that leaks leases gets 503s, not the process's memory).
pub const DEFAULT_MAX_LEASES: usize = 100_000;
/// Attempts per proxied request: the first, and retries on other credentials after a 429.
pub const DEFAULT_PROXY_ATTEMPTS: u32 = 3;
/// Largest lease-API request body (they are a few dozen bytes).
pub const LEASE_BODY_LIMIT: usize = 64 * 1024;
/// Largest proxied request body (a prompt with inline images).
pub const DEFAULT_PROXY_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Every setting, each optional: what one source (flags, or the config file) says.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub accounts: Option<PathBuf>,
    pub strategy: Option<Spanned<ServedName>>,
    pub store: Option<Spanned<StoreMode>>,
    /// `fleet` only: the Redis that holds the fleet's shared state.
    pub redis: Option<Spanned<String>>,
    /// `fleet` only: the shared pool's name (its keys' hash tag) [default: `default`].
    pub pool: Option<Spanned<String>>,
    /// `fleet` only: how long a refresh lease lasts; must exceed `refresh_timeout`.
    pub refresh_lease_ttl: Option<Span>,
    pub listen: Option<Spanned<String>>,
    pub keys: Option<PathBuf>,
    pub admin_keys: Option<PathBuf>,
    pub token_url: Option<Spanned<String>>,
    pub api_url: Option<Spanned<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub lease_ttl: Option<Span>,
    pub drain_timeout: Option<Span>,
    pub refresh_timeout: Option<Span>,
    pub max_leases: Option<Spanned<usize>>,
    pub proxy_attempts: Option<Spanned<u32>>,
    pub calls_per_rotation: Option<Spanned<u64>>,
}

/// The settings serve runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub accounts: PathBuf,
    pub strategy: ServedName,
    pub store: StoreMode,
    /// `Some` exactly when the strategy is `fleet`.
    pub fleet: Option<FleetSettings>,
    pub listen: SocketAddr,
    pub keys: Option<PathBuf>,
    pub admin_keys: Option<PathBuf>,
    pub token_url: String,
    pub api_url: String,
    pub client_id: String,
    /// Redacted in `Debug` (a [`crate::secret::Secret`]).
    pub client_secret: crate::secret::Secret,
    pub lease_ttl: Duration,
    pub drain_timeout: Duration,
    pub refresh_timeout: Duration,
    pub max_leases: usize,
    pub proxy_attempts: u32,
    pub calls_per_rotation: u64,
}

/// Where a `fleet` serve keeps its shared state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    pub redis_url: String,
    pub pool: String,
    pub refresh_lease_ttl: Duration,
}

/// The shared pool's name when none is given.
pub const DEFAULT_POOL: &str = "default";

/// Reads a config file (strictly). A client secret in it makes the file a secret: it must not be
/// readable by group or others, as the keys files.
pub fn load_file(path: &Path) -> Result<Settings, InputError> {
    let text = read_input(path)?;
    let settings: Settings =
        toml::from_str(&text).map_err(|e| InputError::from_toml(path, &text, e.span(), e.message()))?;
    if settings.client_secret.is_some() {
        super::keys::check_private(path)?;
    }
    Ok(settings)
}

impl Settings {
    /// `self` where it says something, else `fallback`.
    pub fn or(self, fallback: Settings) -> Settings {
        Settings {
            accounts: self.accounts.or(fallback.accounts),
            strategy: self.strategy.or(fallback.strategy),
            store: self.store.or(fallback.store),
            redis: self.redis.or(fallback.redis),
            pool: self.pool.or(fallback.pool),
            refresh_lease_ttl: self.refresh_lease_ttl.or(fallback.refresh_lease_ttl),
            listen: self.listen.or(fallback.listen),
            keys: self.keys.or(fallback.keys),
            admin_keys: self.admin_keys.or(fallback.admin_keys),
            token_url: self.token_url.or(fallback.token_url),
            api_url: self.api_url.or(fallback.api_url),
            client_id: self.client_id.or(fallback.client_id),
            client_secret: self.client_secret.or(fallback.client_secret),
            lease_ttl: self.lease_ttl.or(fallback.lease_ttl),
            drain_timeout: self.drain_timeout.or(fallback.drain_timeout),
            refresh_timeout: self.refresh_timeout.or(fallback.refresh_timeout),
            max_leases: self.max_leases.or(fallback.max_leases),
            proxy_attempts: self.proxy_attempts.or(fallback.proxy_attempts),
            calls_per_rotation: self.calls_per_rotation.or(fallback.calls_per_rotation),
        }
    }

    /// Applies the defaults and checks every value. `source` names where the settings came from,
    /// for errors about values (a flag's value has no line; a config file's does, through
    /// `located`).
    pub fn resolve(self, located: &dyn Fn(std::ops::Range<usize>, String) -> String) -> Result<Config, String> {
        let accounts = self
            .accounts
            .ok_or("no accounts file: expected --accounts FILE (or `accounts = \"FILE\"` in --config)")?;
        let strategy = match self.strategy {
            None => ServedName::Local(StrategyName::LockFree),
            Some(s) if *s.get_ref() == ServedName::Local(StrategyName::AsShipped) => {
                return Err(located(
                    s.span(),
                    "strategy as_shipped is the replica of the shipped proxy's defects (lost updates, a \
                     re-entrant deadlock), not a design to serve: expected one of global_mutex, rwlock, \
                     queue_pool, sharded, lock_free, fleet"
                        .into(),
                ))
            }
            Some(s) => s.into_inner(),
        };
        let store = match self.store {
            None => StoreMode::GroupCommit,
            Some(s) if matches!(s.get_ref(), StoreMode::Naive | StoreMode::Locked) => {
                return Err(located(
                    s.span(),
                    format!(
                        "store {} does not fsync before a completion is acknowledged: expected durable or \
                         group_commit (serve acknowledges an outcome only once it is on disk)",
                        s.get_ref()
                    ),
                ))
            }
            Some(s) => s.into_inner(),
        };
        let listen_text = self
            .listen
            .unwrap_or_else(|| Spanned::new(0..0, DEFAULT_LISTEN.to_string()));
        let listen: SocketAddr = listen_text.get_ref().parse().map_err(|_| {
            located(
                listen_text.span(),
                format!(
                    "listen address {:?} is not an address: expected IP:PORT, e.g. 127.0.0.1:8787",
                    listen_text.get_ref()
                ),
            )
        })?;
        if self.keys.is_none() && !listen.ip().is_loopback() {
            return Err(located(
                listen_text.span(),
                format!(
                    "listen address {listen} is not loopback and no --keys file was given: anyone who \
                     can reach it could lease a token; expected --keys FILE, or a 127.0.0.1 address"
                ),
            ));
        }
        let url = |u: Option<Spanned<String>>, default: &str, what: &str| -> Result<String, String> {
            match u {
                None => Ok(default.to_string()),
                Some(u) => {
                    let text = u.get_ref().trim_end_matches('/').to_string();
                    match reqwest::Url::parse(&text) {
                        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(text),
                        _ => Err(located(
                            u.span(),
                            format!(
                                "{what} {:?} is not an http(s) URL: expected e.g. {default}",
                                u.get_ref()
                            ),
                        )),
                    }
                }
            }
        };
        let token_url = url(self.token_url, GOOGLE_TOKEN_URL, "token URL")?;
        let api_url = url(self.api_url, GOOGLE_API_URL, "API URL")?;
        let (client_id, client_secret) = match (self.client_id, self.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => (id, secret),
            _ => {
                return Err(
                    "no OAuth client to refresh tokens as: expected --client-id and --client-secret \
                            (or CREDPOOL_CLIENT_ID and CREDPOOL_CLIENT_SECRET in the environment, or \
                            client_id and client_secret in --config), the OAuth application the accounts' \
                            refresh tokens were issued to"
                        .into(),
                )
            }
        };
        let positive = |v: Option<Spanned<u64>>, default: u64, what: &str| -> Result<u64, String> {
            match v {
                None => Ok(default),
                Some(v) if *v.get_ref() == 0 => Err(located(v.span(), format!("{what} is 0: expected at least 1"))),
                Some(v) => Ok(v.into_inner()),
            }
        };
        let max_leases = positive(
            self.max_leases.map(|v| Spanned::new(v.span(), *v.get_ref() as u64)),
            DEFAULT_MAX_LEASES as u64,
            "max_leases",
        )? as usize;
        let proxy_attempts = positive(
            self.proxy_attempts
                .map(|v| Spanned::new(v.span(), u64::from(*v.get_ref()))),
            u64::from(DEFAULT_PROXY_ATTEMPTS),
            "proxy_attempts",
        )? as u32;
        let calls_per_rotation = positive(self.calls_per_rotation, 100, "calls_per_rotation")?;
        let lease_ttl = self.lease_ttl.map_or(DEFAULT_LEASE_TTL, |s| s.0);
        if lease_ttl < Duration::from_millis(10) {
            return Err(format!(
                "lease TTL {lease_ttl:?} is too short to complete a lease in: expected at least 10ms"
            ));
        }
        let refresh_timeout = self.refresh_timeout.map_or(Duration::from_secs(30), |s| s.0);
        let fleet = resolve_fleet(
            strategy,
            self.redis,
            self.pool,
            self.refresh_lease_ttl,
            refresh_timeout,
            located,
        )?;
        Ok(Config {
            accounts,
            strategy,
            store,
            fleet,
            listen,
            keys: self.keys,
            admin_keys: self.admin_keys,
            token_url,
            api_url,
            client_id,
            client_secret: crate::secret::Secret::new(client_secret),
            lease_ttl,
            drain_timeout: self.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |s| s.0),
            refresh_timeout,
            max_leases,
            proxy_attempts,
            calls_per_rotation,
        })
    }
}

/// The `fleet` settings: required with `fleet`, refused without it.
fn resolve_fleet(
    strategy: ServedName,
    redis: Option<Spanned<String>>,
    pool: Option<Spanned<String>>,
    refresh_lease_ttl: Option<Span>,
    refresh_timeout: Duration,
    located: &dyn Fn(std::ops::Range<usize>, String) -> String,
) -> Result<Option<FleetSettings>, String> {
    if strategy != ServedName::Fleet {
        if let Some(r) = &redis {
            return Err(located(
                r.span(),
                format!(
                    "--redis is only for --strategy fleet (strategy {strategy} keeps its pool in this process): \
                     expected --strategy fleet, or no --redis"
                ),
            ));
        }
        if let Some(p) = &pool {
            return Err(located(
                p.span(),
                format!("--pool is only for --strategy fleet (strategy {strategy} has no shared pool)"),
            ));
        }
        if refresh_lease_ttl.is_some() {
            return Err(format!(
                "--refresh-lease-ttl is only for --strategy fleet (strategy {strategy} refreshes inside this process)"
            ));
        }
        return Ok(None);
    }
    let Some(redis) = redis else {
        return Err(
            "strategy fleet keeps the fleet's shared state in Redis, and no Redis was given: expected \
                    --redis redis://HOST:PORT (or `redis = \"redis://HOST:PORT\"` in --config)"
                .into(),
        );
    };
    let redis_url = redis.get_ref().clone();
    match reqwest::Url::parse(&redis_url) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => {}
        _ => {
            return Err(located(
                redis.span(),
                format!("Redis URL {redis_url:?} is not a redis:// URL: expected e.g. redis://127.0.0.1:6379"),
            ))
        }
    }
    let pool_name = match pool {
        None => DEFAULT_POOL.to_string(),
        Some(p) => {
            crate::fleet::keys::valid_pool_name(p.get_ref()).map_err(|e| located(p.span(), e))?;
            p.into_inner()
        }
    };
    let refresh_lease_ttl =
        refresh_lease_ttl.map_or(crate::strategy::fleet::FleetOptions::default().lease_ttl, |s| s.0);
    if refresh_lease_ttl <= refresh_timeout {
        return Err(format!(
            "refresh lease TTL {refresh_lease_ttl:?} does not exceed the refresh timeout {refresh_timeout:?}: a \
             lease could run out under a live refresh and a second instance refresh the same token; expected \
             --refresh-lease-ttl above --refresh-timeout"
        ));
    }
    Ok(Some(FleetSettings {
        redis_url,
        pool: pool_name,
        refresh_lease_ttl,
    }))
}

/// Resolves flags over a config file (if any) over the defaults. Errors name the config file's
/// line and column where the bad value came from it.
pub fn resolve(flags: Settings, config_file: Option<&Path>) -> Result<Config, String> {
    let Some(path) = config_file else {
        return flags.resolve(&|_, message| message);
    };
    let file = load_file(path).map_err(|e| e.to_string())?;
    let text = read_input(path).map_err(|e| e.to_string())?;
    // A span that is not empty came from the file (flags carry empty spans).
    flags.or(file).resolve(&|span, message| {
        if span.is_empty() {
            message
        } else {
            InputError::at(path, &text, Some(span), message).to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, text).unwrap();
        resolve(Settings::default(), Some(&path)).map_err(|e| e.replace(&path.display().to_string(), "serve.toml"))
    }

    const OK: &str = "accounts = \"a.toml\"\nclient_id = \"id\"\n";

    #[test]
    fn defaults_are_the_issues() {
        let flags = Settings {
            accounts: Some("a.toml".into()),
            client_id: Some("id".into()),
            client_secret: Some("s".into()),
            ..Settings::default()
        };
        let c = resolve(flags, None).unwrap();
        assert_eq!(c.strategy, ServedName::Local(StrategyName::LockFree));
        assert_eq!(c.fleet, None);
        assert_eq!(c.store, StoreMode::GroupCommit);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.token_url, GOOGLE_TOKEN_URL);
        assert_eq!(c.lease_ttl, Duration::from_secs(600));
        assert!(!format!("{c:?}").contains("client_secret: \"s\""));
    }

    #[test]
    fn bad_values_are_located_in_the_file() {
        let e = parse(&format!("{OK}leas_ttl = \"1s\"\n")).unwrap_err();
        assert!(e.starts_with("serve.toml:3:1: unknown field `leas_ttl`"), "{e}");
        let e = parse(&format!("{OK}strategy = \"fastest\"\n")).unwrap_err();
        assert!(e.starts_with("serve.toml:3:12: unknown strategy \"fastest\""), "{e}");
        let e = parse(&format!("{OK}lease_ttl = 600\n")).unwrap_err();
        assert!(e.starts_with("serve.toml:3:13:") && e.contains("write the unit"), "{e}");
        let e = parse(&format!("{OK}listen = \"0.0.0.0:80\"\n")).unwrap_err();
        // No client secret yet: that error comes first only once the address is fine.
        assert!(e.starts_with("serve.toml:3:10:") && e.contains("not loopback"), "{e}");
        let e = parse(&format!("{OK}strategy = \"as_shipped\"\n")).unwrap_err();
        assert!(
            e.starts_with("serve.toml:3:12:") && e.contains("not a design to serve"),
            "{e}"
        );
        let e = parse(&format!("{OK}token_url = \"ftp://x\"\n")).unwrap_err();
        assert!(e.starts_with("serve.toml:3:13:"), "{e}");
        let e = parse(OK).unwrap_err();
        assert!(e.contains("no OAuth client"), "{e}");
        let e = parse(&format!("{OK}store = \"locked\"\n")).unwrap_err();
        assert!(e.starts_with("serve.toml:3:9:") && e.contains("does not fsync"), "{e}");
    }

    #[test]
    fn fleet_needs_redis_and_redis_needs_fleet() {
        let ok = format!("{OK}client_secret = \"s\"\n");
        let secret = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("serve.toml");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            resolve(Settings::default(), Some(&path)).map_err(|e| e.replace(&path.display().to_string(), "serve.toml"))
        };
        let e = secret(&format!("{ok}strategy = \"fleet\"\n")).unwrap_err();
        assert!(e.contains("no Redis was given") && e.contains("--redis"), "{e}");
        let e = secret(&format!("{ok}redis = \"redis://127.0.0.1:6379\"\n")).unwrap_err();
        assert!(
            e.starts_with("serve.toml:4:9:") && e.contains("only for --strategy fleet"),
            "{e}"
        );
        let e = secret(&format!("{ok}strategy = \"fleet\"\nredis = \"http://x\"\n")).unwrap_err();
        assert!(
            e.starts_with("serve.toml:5:9:") && e.contains("not a redis:// URL"),
            "{e}"
        );
        let e = secret(&format!(
            "{ok}strategy = \"fleet\"\nredis = \"redis://127.0.0.1:1\"\nrefresh_lease_ttl = \"10s\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("does not exceed the refresh timeout"), "{e}");
        let e = secret(&format!(
            "{ok}strategy = \"fleet\"\nredis = \"redis://127.0.0.1:1\"\npool = \"a{{b\"\n"
        ))
        .unwrap_err();
        assert!(e.starts_with("serve.toml:6:8:"), "{e}");
        let c = secret(&format!(
            "{ok}strategy = \"fleet\"\nredis = \"redis://127.0.0.1:1\"\nrefresh_timeout = \"1s\"\nrefresh_lease_ttl = \"2s\"\n"
        ))
        .unwrap();
        assert_eq!(c.strategy, ServedName::Fleet);
        assert_eq!(
            c.fleet,
            Some(FleetSettings {
                redis_url: "redis://127.0.0.1:1".into(),
                pool: DEFAULT_POOL.into(),
                refresh_lease_ttl: Duration::from_secs(2),
            })
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "accounts = \"a.toml\"\nclient_id = \"id\"\nstrategy = \"rwlock\"\nlease_ttl = \"1m\"\n",
        )
        .unwrap();
        let flags = Settings {
            strategy: Some(Spanned::new(0..0, ServedName::Local(StrategyName::Sharded))),
            client_secret: Some("s".into()),
            ..Settings::default()
        };
        let c = resolve(flags, Some(&path)).unwrap();
        assert_eq!(c.strategy, ServedName::Local(StrategyName::Sharded), "the flag wins");
        assert_eq!(c.lease_ttl, Duration::from_secs(60), "the file fills what no flag says");
        assert_eq!(c.client_id, "id");
    }
}
